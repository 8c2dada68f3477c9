//! The three products for an accumulator of two machine words (fixed point's `i64`) on a
//! microcontroller: two rows by two columns of outputs at a time, their four sums held in
//! registers while the terms stream past. An integer sum is exact, so how the outputs are
//! grouped never changes a bit: these give what the host's blocks give.

use crate::math::Real;

/// Where a product's values sit in its three column-major slices: `out[r + c · out]`,
/// `a[r · a_row + t · a_term]`, `b[t · b_term + c · b_col]` for output row `r`, column `c`
/// and term `t`.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub terms: usize,
    pub out: usize,
    pub a_row: usize,
    pub a_term: usize,
    pub b_term: usize,
    pub b_col: usize,
}

/// `out[r, c] = s + Σ_t a[r, t] · b[t, c]` for every output, rounded once, where `s` is the
/// value in `out` (`from_out`) or zero.
#[inline(always)]
pub(super) fn product<T: Real>(l: Layout, out: &mut [T], a: &[T], b: &[T], from_out: bool) {
    for c in 0..l.cols {
        rows::<T, 1>(l, out, a, b, c, from_out);
    }
}

/// [`product`] on the `CB` columns from `c`.
#[inline(always)]
fn rows<T: Real, const CB: usize>(
    l: Layout,
    out: &mut [T],
    a: &[T],
    b: &[T],
    c: usize,
    from_out: bool,
) {
    let mut r = 0;
    while r + 2 <= l.rows {
        tile::<T, 2, CB>(l, out, a, b, (r, c), from_out);
        r += 2;
    }
    if r < l.rows {
        tile::<T, 1, CB>(l, out, a, b, (r, c), from_out);
    }
}

/// [`product`] on the `RB × CB` outputs from `(r, c)`.
#[inline(always)]
fn tile<T: Real, const RB: usize, const CB: usize>(
    l: Layout,
    out: &mut [T],
    a: &[T],
    b: &[T],
    (r, c): (usize, usize),
    from_out: bool,
) {
    let at = |i: usize, q: usize| r + i + (c + q) * l.out;
    let mut acc = [[T::ACC_ZERO; CB]; RB];
    if from_out {
        for (i, row) in acc.iter_mut().enumerate() {
            for (q, s) in row.iter_mut().enumerate() {
                *s = out[at(i, q)].widen();
            }
        }
    }
    for t in 0..l.terms {
        let av: [T; RB] = core::array::from_fn(|i| a[(r + i) * l.a_row + t * l.a_term]);
        let bv: [T; CB] = core::array::from_fn(|q| b[t * l.b_term + (c + q) * l.b_col]);
        for (row, &x) in acc.iter_mut().zip(&av) {
            for (s, &y) in row.iter_mut().zip(&bv) {
                *s = T::mac(*s, x, y);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (q, &s) in row.iter().enumerate() {
            out[at(i, q)] = T::narrow(s);
        }
    }
}
