//! The three matrix products the layers need, written once with a fixed summation order.
//!
//! A sum accumulates through [`Real::mac`]: for a float that is `acc + a * b`, rounded at
//! every addition, so the order below is the contract; for fixed point it is an exact `i64`
//! sum rounded once ([`Real::narrow`]), so any order gives the same bits and a
//! microcontroller sums it in register tiles of its own (`wide`).
//!
//! nalgebra holds the matrices; these loops do the arithmetic. The order of every sum is part of
//! the contract: the host and the firmware run this exact code, so their results agree bit for
//! bit (Rust never fuses `a * b + c` into an FMA on its own). The loops are laid out so the
//! compiler can vectorise them across independent outputs (never across one sum), which keeps
//! the host trainer fast without changing a single bit.
//!
//! ```
//! use nalgebra::SMatrix;
//! use shared::model::kernels::add_mul;
//! let w = SMatrix::<f32, 2, 2>::new(1.0, 2.0, 3.0, 4.0);
//! let x = SMatrix::<f32, 2, 1>::new(1.0, 1.0);
//! let mut out = SMatrix::<f32, 2, 1>::zeros();
//! add_mul(&mut out, &w, &x);
//! assert_eq!(out, SMatrix::<f32, 2, 1>::new(3.0, 7.0));
//! ```

use nalgebra::{ArrayStorage, SMatrix};

use crate::math::Real;

mod wide;
use wide::Layout;

/// Whether `T`'s accumulator takes two words on this target: a microcontroller then runs the
/// products of [`wide`], which keep fewer sums side by side, in its general registers.
const fn wide<T: Real>() -> bool {
    cfg!(target_os = "none") && T::ACC_WORDS > 1
}

/// A zero matrix, built directly from its array (nalgebra's generic constructors go through an
/// element iterator the compiler does not always flatten).
#[inline]
pub fn zeros<T: Real, const R: usize, const C: usize>() -> SMatrix<T, R, C> {
    SMatrix::from_data(ArrayStorage([[T::ZERO; R]; C]))
}

/// Output rows summed side by side in [`add_mul`] and [`add_mul_bt`]: as many as a
/// microcontroller's FPU keeps in registers (16 of its 32), all of them on the host (wider
/// vectors). Where the rows do not all fit, two output columns go side by side in blocks of
/// `ROWS / 2` rows, so each value loaded serves both (on the Cortex-M4F: 212,708 instructions
/// per inner step of the sinusoid net instead of 230,455). Like [`BLOCK`], it changes the order
/// of the loops, never of any sum.
#[cfg(target_os = "none")]
const ROWS: usize = 16;
#[cfg(not(target_os = "none"))]
const ROWS: usize = 64;

/// `out += w · x`: for each column `j`, `out[:, j] += Σ_l w[:, l] · x[l, j]`, `l` ascending.
#[inline]
pub fn add_mul<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, O, K>,
    w: &SMatrix<T, O, I>,
    x: &SMatrix<T, I, K>,
) {
    if wide::<T>() {
        wide::product(
            mul_layout(O, I, K),
            out.as_mut_slice(),
            w.as_slice(),
            x.as_slice(),
            true,
        );
    } else {
        add_mul_rows::<T, O, I, K, ROWS>(out, w, x);
    }
}

/// Columns summed side by side where all output rows fit in registers at once: a sum has to
/// wait for its previous addition, so the host interleaves independent columns (more of them
/// when a column is narrow) to keep its vector units busy. Like [`ROWS`], it changes the order
/// of the loops, never of any sum. A microcontroller's FPU does not pipeline that way.
#[cfg(target_os = "none")]
const fn cols(_rows: usize) -> usize {
    1
}
#[cfg(not(target_os = "none"))]
const fn cols(rows: usize) -> usize {
    if rows >= 16 {
        2
    } else {
        8
    }
}

/// [`add_mul`] over blocks of `R` output rows.
#[inline]
fn add_mul_rows<T: Real, const O: usize, const I: usize, const K: usize, const R: usize>(
    out: &mut SMatrix<T, O, K>,
    w: &SMatrix<T, O, I>,
    x: &SMatrix<T, I, K>,
) {
    let w = w.as_slice();
    let x = x.as_slice();
    if O <= R {
        // All rows at once (the host: the compiler vectorises across them).
        let out = out.as_mut_slice();
        let mut j = 0;
        if cols(O) >= 8 {
            j = add_mul_cols::<T, O, I, K, 8>(out, w, x, j);
        }
        if cols(O) >= 2 {
            j = add_mul_cols::<T, O, I, K, 2>(out, w, x, j);
        }
        add_mul_cols::<T, O, I, K, 1>(out, w, x, j);
        return;
    }
    let out = out.as_mut_slice();
    let mut j0 = 0;
    // Two columns at a time in blocks of half the rows: each weight loaded once for both.
    while R >= 2 && j0 + 2 <= K {
        let mut r0 = 0;
        while r0 + R / 2 <= O {
            let mut acc = [[T::ACC_ZERO; R]; 2];
            for (q, a) in acc.iter_mut().enumerate() {
                widen_into(&mut a[..R / 2], &out[(j0 + q) * O + r0..][..R / 2]);
            }
            for (l, wc) in w.chunks_exact(O).enumerate() {
                let (x0, x1) = (x[j0 * I + l], x[(j0 + 1) * I + l]);
                for (r, &wv) in wc[r0..r0 + R / 2].iter().enumerate() {
                    acc[0][r] = T::mac(acc[0][r], wv, x0);
                    acc[1][r] = T::mac(acc[1][r], wv, x1);
                }
            }
            for (q, a) in acc.iter().enumerate() {
                narrow_into(&mut out[(j0 + q) * O + r0..][..R / 2], &a[..R / 2]);
            }
            r0 += R / 2;
        }
        if r0 < O {
            for q in 0..2 {
                let (xc, oc) = (
                    &x[(j0 + q) * I..(j0 + q + 1) * I],
                    &mut out[(j0 + q) * O..(j0 + q + 1) * O],
                );
                add_mul_tail::<T, O, R>(oc, w, xc, r0);
            }
        }
        j0 += 2;
    }
    for (j, oc) in out.chunks_exact_mut(O).enumerate().skip(j0) {
        let xc = &x[j * I..(j + 1) * I];
        let mut r0 = 0;
        while r0 + R <= O {
            // Full blocks have a fixed trip count: the accumulators stay in registers.
            let ob = &mut oc[r0..r0 + R];
            let mut acc = [T::ACC_ZERO; R];
            widen_into(&mut acc, ob);
            for (wc, &xv) in w.chunks_exact(O).zip(xc) {
                for (a, &wv) in acc.iter_mut().zip(&wc[r0..r0 + R]) {
                    *a = T::mac(*a, wv, xv);
                }
            }
            narrow_into(ob, &acc);
            r0 += R;
        }
        if r0 < O {
            add_mul_tail::<T, O, R>(oc, w, xc, r0);
        }
    }
}

/// The rows from `r0` (fewer than `R`) of one column of [`add_mul`]: `oc[r] += Σ_l w[r, l] ·
/// xc[l]`.
#[inline(always)]
fn add_mul_tail<T: Real, const O: usize, const R: usize>(
    oc: &mut [T],
    w: &[T],
    xc: &[T],
    r0: usize,
) {
    let n = O - r0;
    let mut acc = [T::ACC_ZERO; R];
    widen_into(&mut acc[..n], &oc[r0..]);
    for (wc, &xv) in w.chunks_exact(O).zip(xc) {
        for (a, &wv) in acc[..n].iter_mut().zip(&wc[r0..]) {
            *a = T::mac(*a, wv, xv);
        }
    }
    narrow_into(&mut oc[r0..], &acc[..n]);
}

/// `acc[i] = from[i]` widened, as the start of a sum.
#[inline(always)]
fn widen_into<T: Real>(acc: &mut [T::Acc], from: &[T]) {
    for (a, &v) in acc.iter_mut().zip(from) {
        *a = v.widen();
    }
}

/// `to[i] = acc[i]` rounded: the end of a sum.
#[inline(always)]
fn narrow_into<T: Real>(to: &mut [T], acc: &[T::Acc]) {
    for (t, &a) in to.iter_mut().zip(acc) {
        *t = T::narrow(a);
    }
}

/// [`add_mul`] on all rows at once, `C` columns side by side from column `j`; returns the
/// first column left (fewer than `C` remain).
#[inline(always)]
fn add_mul_cols<T: Real, const O: usize, const I: usize, const K: usize, const C: usize>(
    out: &mut [T],
    w: &[T],
    x: &[T],
    mut j: usize,
) -> usize {
    while j + C <= K {
        let mut acc = [[T::ACC_ZERO; O]; C];
        for (q, a) in acc.iter_mut().enumerate() {
            widen_into(a, &out[(j + q) * O..(j + q + 1) * O]);
        }
        for (l, wc) in w.chunks_exact(O).enumerate() {
            for (q, a) in acc.iter_mut().enumerate() {
                let xv = x[(j + q) * I + l];
                for (a, &wv) in a.iter_mut().zip(wc) {
                    *a = T::mac(*a, wv, xv);
                }
            }
        }
        for (q, a) in acc.iter().enumerate() {
            narrow_into(&mut out[(j + q) * O..(j + q + 1) * O], a);
        }
        j += C;
    }
    j
}

/// `out += a · bᵀ`: for each column `l`, `out[:, l] += Σ_j a[:, j] · b[l, j]`, `j` ascending.
#[inline]
pub fn add_mul_bt<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, O, I>,
    a: &SMatrix<T, O, K>,
    b: &SMatrix<T, I, K>,
) {
    if wide::<T>() {
        wide::product(
            bt_layout(O, I, K),
            out.as_mut_slice(),
            a.as_slice(),
            b.as_slice(),
            true,
        );
    } else {
        add_mul_bt_rows::<T, O, I, K, ROWS, true>(out, a, b);
    }
}

/// `out = a · bᵀ`: [`add_mul_bt`] on an `out` of zeros (the same bits), without writing the
/// zeros first.
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::kernels::mul_bt;
/// let a = SMatrix::<f32, 2, 1>::new(1.0, 2.0);
/// let b = SMatrix::<f32, 1, 1>::new(3.0);
/// let mut out = SMatrix::<f32, 2, 1>::repeat(9.0);
/// mul_bt(&mut out, &a, &b);
/// assert_eq!(out, SMatrix::<f32, 2, 1>::new(3.0, 6.0));
/// ```
#[inline]
pub fn mul_bt<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, O, I>,
    a: &SMatrix<T, O, K>,
    b: &SMatrix<T, I, K>,
) {
    if wide::<T>() {
        wide::product(
            bt_layout(O, I, K),
            out.as_mut_slice(),
            a.as_slice(),
            b.as_slice(),
            false,
        );
    } else {
        add_mul_bt_rows::<T, O, I, K, ROWS, false>(out, a, b);
    }
}

/// `out (O × K) += w (O × I) · x (I × K)` as a [`wide`] product.
#[inline(always)]
const fn mul_layout(o: usize, i: usize, k: usize) -> Layout {
    Layout {
        rows: o,
        cols: k,
        terms: i,
        out: o,
        a_row: 1,
        a_term: o,
        b_term: 1,
        b_col: i,
    }
}

/// `out (I × K) = wᵀ · d` (`w`: O × I, `d`: O × K) as a [`wide`] product: `wᵀ`'s row `r` is
/// `w`'s column `r`, so no transpose is needed.
#[inline(always)]
const fn at_layout(o: usize, i: usize, k: usize) -> Layout {
    Layout {
        rows: i,
        cols: k,
        terms: o,
        out: i,
        a_row: o,
        a_term: 1,
        b_term: 1,
        b_col: o,
    }
}

/// `out (O × I) = a (O × K) · bᵀ (b: I × K)` as a [`wide`] product.
#[inline(always)]
const fn bt_layout(o: usize, i: usize, k: usize) -> Layout {
    Layout {
        rows: o,
        cols: i,
        terms: k,
        out: o,
        a_row: 1,
        a_term: o,
        b_term: i,
        b_col: 1,
    }
}

/// [`add_mul_bt`] (`ADD`) or [`mul_bt`] over blocks of `R` output rows.
#[inline]
fn add_mul_bt_rows<
    T: Real,
    const O: usize,
    const I: usize,
    const K: usize,
    const R: usize,
    const ADD: bool,
>(
    out: &mut SMatrix<T, O, I>,
    a: &SMatrix<T, O, K>,
    b: &SMatrix<T, I, K>,
) {
    let a = a.as_slice();
    let b = b.as_slice();
    if O <= R {
        let out = out.as_mut_slice();
        let mut l = 0;
        if cols(O) >= 8 {
            l = add_mul_bt_cols::<T, O, I, K, 8, ADD>(out, a, b, l);
        }
        if cols(O) >= 2 {
            l = add_mul_bt_cols::<T, O, I, K, 2, ADD>(out, a, b, l);
        }
        add_mul_bt_cols::<T, O, I, K, 1, ADD>(out, a, b, l);
        return;
    }
    let out = out.as_mut_slice();
    if !ADD {
        out.fill(T::ZERO);
    }
    let mut l0 = 0;
    // Two output columns at a time in blocks of half the rows: each `a` value loaded once for
    // both.
    while R >= 2 && l0 + 2 <= I {
        let mut r0 = 0;
        while r0 + R / 2 <= O {
            let mut acc = [[T::ACC_ZERO; R]; 2];
            for (q, s) in acc.iter_mut().enumerate() {
                widen_into(&mut s[..R / 2], &out[(l0 + q) * O + r0..][..R / 2]);
            }
            for (j, ac) in a.chunks_exact(O).enumerate() {
                let (b0, b1) = (b[j * I + l0], b[j * I + l0 + 1]);
                for (r, &av) in ac[r0..r0 + R / 2].iter().enumerate() {
                    acc[0][r] = T::mac(acc[0][r], av, b0);
                    acc[1][r] = T::mac(acc[1][r], av, b1);
                }
            }
            for (q, s) in acc.iter().enumerate() {
                narrow_into(&mut out[(l0 + q) * O + r0..][..R / 2], &s[..R / 2]);
            }
            r0 += R / 2;
        }
        if r0 < O {
            for q in 0..2 {
                let oc = &mut out[(l0 + q) * O..(l0 + q + 1) * O];
                add_mul_bt_tail::<T, O, I, R>(oc, a, b, l0 + q, r0);
            }
        }
        l0 += 2;
    }
    for (l, oc) in out.chunks_exact_mut(O).enumerate().skip(l0) {
        let mut r0 = 0;
        while r0 + R <= O {
            let ob = &mut oc[r0..r0 + R];
            let mut acc = [T::ACC_ZERO; R];
            widen_into(&mut acc, ob);
            for (j, ac) in a.chunks_exact(O).enumerate() {
                let bv = b[j * I + l];
                for (s, &av) in acc.iter_mut().zip(&ac[r0..r0 + R]) {
                    *s = T::mac(*s, av, bv);
                }
            }
            narrow_into(ob, &acc);
            r0 += R;
        }
        if r0 < O {
            add_mul_bt_tail::<T, O, I, R>(oc, a, b, l, r0);
        }
    }
}

/// The rows from `r0` (fewer than `R`) of column `l` of [`add_mul_bt`]: `oc[r] += Σ_j a[r, j]
/// · b[l, j]`.
#[inline(always)]
fn add_mul_bt_tail<T: Real, const O: usize, const I: usize, const R: usize>(
    oc: &mut [T],
    a: &[T],
    b: &[T],
    l: usize,
    r0: usize,
) {
    let n = O - r0;
    let mut acc = [T::ACC_ZERO; R];
    widen_into(&mut acc[..n], &oc[r0..]);
    for (j, ac) in a.chunks_exact(O).enumerate() {
        let bv = b[j * I + l];
        for (s, &av) in acc[..n].iter_mut().zip(&ac[r0..]) {
            *s = T::mac(*s, av, bv);
        }
    }
    narrow_into(&mut oc[r0..], &acc[..n]);
}

/// [`add_mul_bt`] on all rows at once, `C` columns side by side from column `l`; returns the
/// first column left (fewer than `C` remain).
#[inline(always)]
fn add_mul_bt_cols<
    T: Real,
    const O: usize,
    const I: usize,
    const K: usize,
    const C: usize,
    const ADD: bool,
>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    mut l: usize,
) -> usize {
    while l + C <= I {
        let mut acc = [[T::ACC_ZERO; O]; C];
        if ADD {
            for (q, s) in acc.iter_mut().enumerate() {
                widen_into(s, &out[(l + q) * O..(l + q + 1) * O]);
            }
        }
        for (j, ac) in a.chunks_exact(O).enumerate() {
            for (q, s) in acc.iter_mut().enumerate() {
                let bv = b[j * I + l + q];
                for (s, &av) in s.iter_mut().zip(ac) {
                    *s = T::mac(*s, av, bv);
                }
            }
        }
        for (q, s) in acc.iter().enumerate() {
            narrow_into(&mut out[(l + q) * O..(l + q + 1) * O], s);
        }
        l += C;
    }
    l
}

/// `wᵀ`, built 8 × 8 tiles at a time ([`Real::transpose8`]): vector shuffles on the host.
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::kernels::transpose;
/// let w = SMatrix::<f32, 9, 11>::from_fn(|i, j| (i * 11 + j) as f32);
/// assert_eq!(transpose(&w), w.transpose());
/// ```
#[inline]
pub fn transpose<T: Real, const O: usize, const I: usize>(
    w: &SMatrix<T, O, I>,
) -> SMatrix<T, I, O> {
    let mut t = zeros::<T, I, O>();
    transpose_into::<T, O, I>(w.as_slice(), t.as_mut_slice(), I);
    t
}

/// Writes `w` (`O × I`, column-major) transposed into `out`: its row `i` at
/// `out[i · stride..][..I]` (`stride ≥ I`; the values between rows are left as they are).
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::kernels::transpose_into;
/// let w = SMatrix::<f32, 2, 3>::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
/// let mut out = [0.0; 8];
/// transpose_into::<f32, 2, 3>(w.as_slice(), &mut out, 4);
/// assert_eq!(out, [1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0]);
/// ```
#[inline]
pub fn transpose_into<T: Real, const O: usize, const I: usize>(
    w: &[T],
    out: &mut [T],
    stride: usize,
) {
    const T8: usize = 8;
    let (o8, i8) = (O / T8 * T8, I / T8 * T8);
    for c0 in (0..i8).step_by(T8) {
        for r0 in (0..o8).step_by(T8) {
            // Tile row `c` is column `c0 + c` of `w` over rows `r0..r0 + 8`.
            let tile: [[T; T8]; T8] = core::array::from_fn(|c| {
                let col = &w[(c0 + c) * O + r0..][..T8];
                core::array::from_fn(|r| col[r])
            });
            for (r, row) in T::transpose8(tile).iter().enumerate() {
                out[(r0 + r) * stride + c0..][..T8].copy_from_slice(row);
            }
        }
    }
    // What the tiles leave: the last `O − o8` rows of every column, and the last `I − i8`
    // columns of the other rows.
    for c in 0..I {
        let from = if c < i8 { o8 } else { 0 };
        for (r, &v) in w[c * O..(c + 1) * O].iter().enumerate().skip(from) {
            out[r * stride + c] = v;
        }
    }
}

/// Columns of `w` transposed at a time in [`add_mul_at`]: a small block on a microcontroller
/// (it lives on the stack), a wider one on the host (fewer passes, wider vectors). The block
/// size changes the order of the loops, never the order of any sum, so both give the same bits.
#[cfg(target_os = "none")]
const BLOCK: usize = 8;
#[cfg(not(target_os = "none"))]
const BLOCK: usize = 24;

/// Inputs up to which the host transposes all of `w` in one block (one pass over `d`).
#[cfg(target_os = "none")]
const WHOLE: usize = 0;
#[cfg(not(target_os = "none"))]
const WHOLE: usize = 48;

/// `out += wᵀ · d`: `out[l, j] += Σ_i w[i, l] · d[i, j]`, the sum taken with `i` ascending
/// from zero and added to `out` at the end.
///
/// Blocks of [`BLOCK`] columns of `w` are transposed into a small stack buffer (`O × BLOCK`
/// values) so the sums for a block of outputs run side by side: vectorised on the host, plain
/// scalar code on a microcontroller, the same order and bits on both.
#[inline]
pub fn add_mul_at<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, I, K>,
    w: &SMatrix<T, O, I>,
    d: &SMatrix<T, O, K>,
) {
    at::<T, O, I, K, true>(out, w, d);
}

/// `out = wᵀ · d`: [`add_mul_at`] on an `out` of zeros (the same bits), without writing the
/// zeros first.
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::kernels::mul_at;
/// let w = SMatrix::<f32, 2, 1>::new(1.0, 2.0);
/// let d = SMatrix::<f32, 2, 1>::new(3.0, -0.5);
/// let mut out = SMatrix::<f32, 1, 1>::repeat(9.0);
/// mul_at(&mut out, &w, &d);
/// assert_eq!(out[0], 2.0);
/// ```
#[inline]
pub fn mul_at<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, I, K>,
    w: &SMatrix<T, O, I>,
    d: &SMatrix<T, O, K>,
) {
    at::<T, O, I, K, false>(out, w, d);
}

/// [`add_mul_at`] (`ADD`) or [`mul_at`], blocked for the shape.
#[inline]
fn at<T: Real, const O: usize, const I: usize, const K: usize, const ADD: bool>(
    out: &mut SMatrix<T, I, K>,
    w: &SMatrix<T, O, I>,
    d: &SMatrix<T, O, K>,
) {
    if wide::<T>() {
        wide::product(
            at_layout(O, I, K),
            out.as_mut_slice(),
            w.as_slice(),
            d.as_slice(),
            ADD,
        );
    } else if I <= WHOLE {
        add_mul_at_blocked::<T, O, I, K, I, ADD>(out, w, d);
    } else {
        add_mul_at_blocked::<T, O, I, K, BLOCK, ADD>(out, w, d);
    }
}

/// `out = wt · d` where `wt = wᵀ`: [`mul_at`] (the same bits) for a caller that keeps the
/// transpose, because it runs many backward passes through the same weights.
///
/// ```
/// use nalgebra::SMatrix;
/// use shared::model::kernels::{mul_at, mul_at_transposed};
/// let w = SMatrix::<f32, 2, 3>::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
/// let d = SMatrix::<f32, 2, 1>::new(0.5, -1.0);
/// let (mut a, mut b) = (SMatrix::<f32, 3, 1>::zeros(), SMatrix::<f32, 3, 1>::zeros());
/// mul_at(&mut a, &w, &d);
/// mul_at_transposed(&mut b, &w.transpose(), &d);
/// assert_eq!(a, b);
/// ```
#[inline]
pub fn mul_at_transposed<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, I, K>,
    wt: &SMatrix<T, I, O>,
    d: &SMatrix<T, O, K>,
) {
    let (wt, d, out) = (wt.as_slice(), d.as_slice(), out.as_mut_slice());
    if I <= WHOLE {
        at_block::<T, O, I, K, I, false>(wt, I, 0, I, 0, I, d, out);
    } else {
        for lb in (0..I).step_by(BLOCK) {
            let nb = BLOCK.min(I - lb);
            at_block::<T, O, I, K, BLOCK, false>(wt, I, lb, nb, lb, nb, d, out);
        }
    }
}

/// [`add_mul_at`] (`ADD`) or [`mul_at`] with block size `B`.
#[inline]
fn add_mul_at_blocked<
    T: Real,
    const O: usize,
    const I: usize,
    const K: usize,
    const B: usize,
    const ADD: bool,
>(
    out: &mut SMatrix<T, I, K>,
    w: &SMatrix<T, O, I>,
    d: &SMatrix<T, O, K>,
) {
    let w = w.as_slice();
    let d = d.as_slice();
    let out = out.as_mut_slice();
    if B >= I {
        // All of `w` at once.
        let mut tb = [[T::ZERO; B]; O];
        transpose_into::<T, O, I>(w, tb.as_flattened_mut(), B);
        at_block::<T, O, I, K, B, ADD>(tb.as_flattened(), B, 0, B, 0, I, d, out);
        return;
    }
    let mut tb = [[T::ZERO; B]; O];
    for lb in (0..I).step_by(B) {
        let nb = B.min(I - lb);
        for (c, wc) in w[lb * O..(lb + nb) * O].chunks_exact(O).enumerate() {
            for (row, &v) in tb.iter_mut().zip(wc) {
                row[c] = v;
            }
        }
        at_block::<T, O, I, K, B, ADD>(tb.as_flattened(), B, 0, B, lb, nb, d, out);
    }
}

/// The sums of [`add_mul_at`] (`ADD`) or [`mul_at`] for the `nb ≤ B` outputs from `lb`.
/// `rows` holds them transposed: `w`'s row `i` over those outputs is `rows[i · stride +
/// from..]`, `width` values (at least `nb`; a fixed `B` lets the compiler keep the sums in
/// registers).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn at_block<
    T: Real,
    const O: usize,
    const I: usize,
    const K: usize,
    const B: usize,
    const ADD: bool,
>(
    rows: &[T],
    stride: usize,
    from: usize,
    width: usize,
    lb: usize,
    nb: usize,
    d: &[T],
    out: &mut [T],
) {
    // Two columns of `d` at a time: independent sums keep the vector units busy.
    const JG: usize = 2;
    let row = |i: usize| &rows[i * stride + from..i * stride + from + width];
    let mut j = 0;
    while j < K {
        let nj = JG.min(K - j);
        let mut acc = [[T::ACC_ZERO; B]; JG];
        if nj == JG {
            // The common case with a fixed trip count, which the compiler unrolls.
            let dc = &d[j * O..(j + JG) * O];
            for i in 0..O {
                let r = row(i);
                for (q, acc) in acc.iter_mut().enumerate() {
                    let dv = dc[q * O + i];
                    for (a, &t) in acc.iter_mut().zip(r) {
                        *a = T::mac(*a, t, dv);
                    }
                }
            }
        } else {
            for (q, acc) in acc.iter_mut().enumerate().take(nj) {
                let dc = &d[(j + q) * O..(j + q + 1) * O];
                for (i, &dv) in dc.iter().enumerate() {
                    for (a, &t) in acc.iter_mut().zip(row(i)) {
                        *a = T::mac(*a, t, dv);
                    }
                }
            }
        }
        for (q, acc) in acc.iter().enumerate().take(nj) {
            let col = (j + q) * I + lb;
            for (o, &a) in out[col..col + nb].iter_mut().zip(acc) {
                // A sum that starts from `+0` is never `−0`, so `a` has the bits of `0 + a`.
                *o = if ADD { o.add_narrow(a) } else { T::narrow(a) };
            }
        }
        j += nj;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled<const R: usize, const C: usize>(seed: f64) -> SMatrix<f64, R, C> {
        SMatrix::from_fn(|i, j| ((i * 7 + j * 3) as f64 * 0.37 + seed).sin())
    }

    /// Largest absolute entry (nalgebra's `norm` needs float features this crate does not enable).
    fn max_abs<const R: usize, const C: usize>(m: &SMatrix<f64, R, C>) -> f64 {
        m.iter().fold(0.0, |acc, v| acc.max(v.abs()))
    }

    #[test]
    fn block_size_never_changes_a_bit() {
        let w = SMatrix::<f32, 40, 37>::from_fn(|i, j| ((i * 7 + j * 3) as f32 * 0.37).sin());
        let d = SMatrix::<f32, 40, 10>::from_fn(|i, j| ((i * 3 + j * 13) as f32 * 0.11).cos());
        let bits = |m: &SMatrix<f32, 37, 10>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut reference = SMatrix::<f32, 37, 10>::from_element(0.5);
        add_mul_at_blocked::<f32, 40, 37, 10, 1, true>(&mut reference, &w, &d);
        for run in [
            add_mul_at_blocked::<f32, 40, 37, 10, 8, true>,
            add_mul_at_blocked::<f32, 40, 37, 10, 24, true>,
            add_mul_at_blocked::<f32, 40, 37, 10, 37, true>,
            add_mul_at_blocked::<f32, 40, 37, 10, 64, true>,
        ] {
            let mut out = SMatrix::<f32, 37, 10>::from_element(0.5);
            run(&mut out, &w, &d);
            assert_eq!(bits(&out), bits(&reference));
        }
    }

    #[test]
    fn row_blocks_never_change_a_bit() {
        let w = SMatrix::<f32, 40, 37>::from_fn(|i, j| ((i * 7 + j * 3) as f32 * 0.37).sin());
        let x = SMatrix::<f32, 37, 10>::from_fn(|i, j| ((i * 3 + j * 13) as f32 * 0.11).cos());
        let bits = |m: &SMatrix<f32, 40, 10>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut reference = SMatrix::<f32, 40, 10>::from_element(0.5);
        add_mul_rows::<f32, 40, 37, 10, 1>(&mut reference, &w, &x);
        let a = SMatrix::<f32, 40, 10>::from_fn(|i, j| ((i * 5 + j * 11) as f32 * 0.23).sin());
        let b = SMatrix::<f32, 37, 10>::from_fn(|i, j| ((i * 13 + j * 2) as f32 * 0.17).cos());
        let gbits = |m: &SMatrix<f32, 40, 37>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut g_ref = SMatrix::<f32, 40, 37>::from_element(0.25);
        add_mul_bt_rows::<f32, 40, 37, 10, 1, true>(&mut g_ref, &a, &b);
        for run in [
            add_mul_bt_rows::<f32, 40, 37, 10, 7, true>,
            add_mul_bt_rows::<f32, 40, 37, 10, 16, true>,
            add_mul_bt_rows::<f32, 40, 37, 10, 64, true>,
        ] {
            let mut g = SMatrix::<f32, 40, 37>::from_element(0.25);
            run(&mut g, &a, &b);
            assert_eq!(gbits(&g), gbits(&g_ref));
        }
        for run in [
            add_mul_rows::<f32, 40, 37, 10, 7>,
            add_mul_rows::<f32, 40, 37, 10, 16>,
            add_mul_rows::<f32, 40, 37, 10, 40>,
            add_mul_rows::<f32, 40, 37, 10, 64>,
        ] {
            let mut out = SMatrix::<f32, 40, 10>::from_element(0.5);
            run(&mut out, &w, &x);
            assert_eq!(bits(&out), bits(&reference));
        }
    }

    /// In fixed point every layout of rows, columns and blocks gives each output its start
    /// plus the exact sum of its products, rounded once: what makes the host (wide blocks) and
    /// a microcontroller (narrow ones) agree.
    #[test]
    fn fixed_point_sums_round_once_in_every_layout() {
        use crate::fixed::Q20;
        let q = |a: usize, b: usize, s: f32| Q20::from_f32(((a * 7 + b * 3) as f32 * s).sin());
        let w = SMatrix::<Q20, 40, 37>::from_fn(|i, j| q(i, j, 0.37));
        let x = SMatrix::<Q20, 37, 10>::from_fn(|i, j| q(i, j, 0.11));
        let d = SMatrix::<Q20, 40, 10>::from_fn(|i, j| q(i, j, 0.23));
        let start = Q20::from_f32(0.5);
        let exact = |start: Q20, terms: &mut dyn Iterator<Item = (Q20, Q20)>| {
            let products: i64 = terms
                .map(|(a, b)| a.to_raw() as i64 * b.to_raw() as i64)
                .sum();
            Q20::narrow(start.widen() + products)
        };
        let y = SMatrix::<Q20, 40, 10>::from_fn(|i, j| {
            exact(start, &mut (0..37).map(|l| (w[(i, l)], x[(l, j)])))
        });
        let g = SMatrix::<Q20, 40, 37>::from_fn(|i, l| {
            exact(start, &mut (0..10).map(|j| (d[(i, j)], x[(l, j)])))
        });
        for run in [
            add_mul_rows::<Q20, 40, 37, 10, 1>,
            add_mul_rows::<Q20, 40, 37, 10, 7>,
            add_mul_rows::<Q20, 40, 37, 10, 16>,
            add_mul_rows::<Q20, 40, 37, 10, 64>,
        ] {
            let mut out = SMatrix::from_element(start);
            run(&mut out, &w, &x);
            assert_eq!(out, y);
        }
        for run in [
            add_mul_bt_rows::<Q20, 40, 37, 10, 1, true>,
            add_mul_bt_rows::<Q20, 40, 37, 10, 7, true>,
            add_mul_bt_rows::<Q20, 40, 37, 10, 16, true>,
            add_mul_bt_rows::<Q20, 40, 37, 10, 64, true>,
        ] {
            let mut out = SMatrix::from_element(start);
            run(&mut out, &d, &x);
            assert_eq!(out, g);
        }
        // `wᵀ · d` is summed from zero and added at the end: in fixed point that is one
        // rounding too.
        let dx = SMatrix::<Q20, 37, 10>::from_fn(|l, j| {
            exact(start, &mut (0..40).map(|i| (w[(i, l)], d[(i, j)])))
        });
        // The microcontroller's products (run here on the host too).
        let mut out = SMatrix::<Q20, 40, 10>::from_element(start);
        let l = mul_layout(40, 37, 10);
        wide::product(l, out.as_mut_slice(), w.as_slice(), x.as_slice(), true);
        assert_eq!(out, y);
        let mut out = SMatrix::<Q20, 40, 37>::from_element(start);
        let l = bt_layout(40, 37, 10);
        wide::product(l, out.as_mut_slice(), d.as_slice(), x.as_slice(), true);
        assert_eq!(out, g);
        let l = at_layout(40, 37, 10);
        let mut out = SMatrix::<Q20, 37, 10>::from_element(start);
        wide::product(l, out.as_mut_slice(), w.as_slice(), d.as_slice(), true);
        assert_eq!(out, dx);
        for run in [
            add_mul_at_blocked::<Q20, 40, 37, 10, 1, true>,
            add_mul_at_blocked::<Q20, 40, 37, 10, 8, true>,
            add_mul_at_blocked::<Q20, 40, 37, 10, 37, true>,
            add_mul_at_blocked::<Q20, 40, 37, 10, 64, true>,
        ] {
            let mut out = SMatrix::from_element(start);
            run(&mut out, &w, &d);
            assert_eq!(out, dx);
        }
    }

    /// The contract written as plain loops: each sum starts from `out` and adds its terms in
    /// ascending order (`dx` sums from zero, then adds to `out`).
    fn naive<const O: usize, const I: usize, const K: usize>(
        out: &SMatrix<f32, O, K>,
        w: &SMatrix<f32, O, I>,
        x: &SMatrix<f32, I, K>,
        g: &SMatrix<f32, O, I>,
        d: &SMatrix<f32, O, K>,
        dx: &SMatrix<f32, I, K>,
    ) -> (SMatrix<f32, O, K>, SMatrix<f32, O, I>, SMatrix<f32, I, K>) {
        let mut y = *out;
        for i in 0..O {
            for j in 0..K {
                for l in 0..I {
                    y[(i, j)] += w[(i, l)] * x[(l, j)];
                }
            }
        }
        let mut gw = *g;
        for i in 0..O {
            for l in 0..I {
                for j in 0..K {
                    gw[(i, l)] += d[(i, j)] * x[(l, j)];
                }
            }
        }
        let mut dxs = *dx;
        for l in 0..I {
            for j in 0..K {
                let mut s = 0.0f32;
                for i in 0..O {
                    s += w[(i, l)] * d[(i, j)];
                }
                dxs[(l, j)] += s;
            }
        }
        (y, gw, dxs)
    }

    /// Every way the kernels group rows and columns (narrow and wide outputs, column counts
    /// that leave remainders) gives the bits of the plain loops.
    #[test]
    fn column_groups_and_whole_transposes_never_change_a_bit() {
        fn check<const O: usize, const I: usize, const K: usize>() {
            let f = |a: usize, b: usize, s: f32| ((a * 7 + b * 3) as f32 * s).sin();
            let w = SMatrix::<f32, O, I>::from_fn(|i, j| f(i, j, 0.37));
            let x = SMatrix::<f32, I, K>::from_fn(|i, j| f(i, j, 0.11));
            let d = SMatrix::<f32, O, K>::from_fn(|i, j| f(i, j, 0.23));
            let out = SMatrix::<f32, O, K>::from_fn(|i, j| f(i, j, 0.05));
            let g = SMatrix::<f32, O, I>::from_fn(|i, j| f(i, j, 0.07));
            let dx = SMatrix::<f32, I, K>::from_fn(|i, j| f(i, j, 0.03));
            let (y, gw, dxs) = naive(&out, &w, &x, &g, &d, &dx);
            let (mut y2, mut gw2, mut dx2) = (out, g, dx);
            add_mul(&mut y2, &w, &x);
            add_mul_bt(&mut gw2, &d, &x);
            add_mul_at(&mut dx2, &w, &d);
            let bits = |m: &[f32]| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(y2.as_slice()),
                bits(y.as_slice()),
                "{O}x{I}x{K} add_mul"
            );
            assert_eq!(
                bits(gw2.as_slice()),
                bits(gw.as_slice()),
                "{O}x{I}x{K} add_mul_bt"
            );
            assert_eq!(
                bits(dx2.as_slice()),
                bits(dxs.as_slice()),
                "{O}x{I}x{K} add_mul_at"
            );
            let (_, g0, dx0) = naive(&out, &w, &x, &SMatrix::zeros(), &d, &SMatrix::zeros());
            let mut dx3 = SMatrix::<f32, I, K>::repeat(7.0);
            mul_at_transposed(&mut dx3, &w.transpose(), &d);
            assert_eq!(
                bits(dx3.as_slice()),
                bits(dx0.as_slice()),
                "{O}x{I}x{K} transposed"
            );
            let mut dx4 = SMatrix::<f32, I, K>::repeat(7.0);
            mul_at(&mut dx4, &w, &d);
            assert_eq!(
                bits(dx4.as_slice()),
                bits(dx0.as_slice()),
                "{O}x{I}x{K} mul_at"
            );
            let mut g3 = SMatrix::<f32, O, I>::repeat(7.0);
            mul_bt(&mut g3, &d, &x);
            assert_eq!(
                bits(g3.as_slice()),
                bits(g0.as_slice()),
                "{O}x{I}x{K} mul_bt"
            );
        }
        check::<1, 40, 10>();
        check::<40, 1, 10>();
        check::<40, 40, 10>();
        check::<3, 5, 13>();
        check::<15, 9, 1>();
        check::<17, 50, 11>();
        check::<70, 3, 7>();
    }

    /// Tiles and edges together move every value to its place, whatever the shape.
    #[test]
    fn transpose_matches_nalgebra_for_every_shape() {
        fn check<const O: usize, const I: usize>() {
            let w32 = SMatrix::<f32, O, I>::from_fn(|i, j| (i * 1000 + j) as f32 - 0.5);
            assert_eq!(transpose(&w32), w32.transpose(), "{O}x{I} f32");
            let w64 = SMatrix::<f64, O, I>::from_fn(|i, j| (i * 1000 + j) as f64 - 0.5);
            assert_eq!(transpose(&w64), w64.transpose(), "{O}x{I} f64");
        }
        check::<8, 8>();
        check::<40, 40>();
        check::<16, 24>();
        check::<1, 40>();
        check::<40, 1>();
        check::<13, 17>();
        check::<9, 7>();
    }

    #[test]
    fn kernels_match_nalgebra_products() {
        let w = filled::<11, 13>(0.1);
        let x = filled::<13, 5>(0.2);
        let d = filled::<11, 5>(0.3);
        let mut out = SMatrix::<f64, 11, 5>::zeros();
        add_mul(&mut out, &w, &x);
        assert!(max_abs(&(out - w * x)) < 1e-12);
        let mut g = SMatrix::<f64, 11, 13>::zeros();
        add_mul_bt(&mut g, &d, &x);
        assert!(max_abs(&(g - d * x.transpose())) < 1e-12);
        let mut dx = SMatrix::<f64, 13, 5>::zeros();
        add_mul_at(&mut dx, &w, &d);
        assert!(max_abs(&(dx - w.transpose() * d)) < 1e-12);
    }
}
