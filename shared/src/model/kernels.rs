//! The three matrix products the layers need, written once with a fixed summation order.
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

use nalgebra::SMatrix;

use crate::math::Real;

/// `out += w · x`: for each column `j`, `out[:, j] += Σ_l w[:, l] · x[l, j]`, `l` ascending.
#[inline]
pub fn add_mul<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, O, K>,
    w: &SMatrix<T, O, I>,
    x: &SMatrix<T, I, K>,
) {
    let w = w.as_slice();
    let x = x.as_slice();
    for (j, oc) in out.as_mut_slice().chunks_exact_mut(O).enumerate() {
        for (l, wc) in w.chunks_exact(O).enumerate() {
            let xv = x[j * I + l];
            for (o, &wv) in oc.iter_mut().zip(wc) {
                *o += wv * xv;
            }
        }
    }
}

/// `out += a · bᵀ`: for each column `l`, `out[:, l] += Σ_j a[:, j] · b[l, j]`, `j` ascending.
#[inline]
pub fn add_mul_bt<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, O, I>,
    a: &SMatrix<T, O, K>,
    b: &SMatrix<T, I, K>,
) {
    let a = a.as_slice();
    let b = b.as_slice();
    for (l, oc) in out.as_mut_slice().chunks_exact_mut(O).enumerate() {
        for (j, ac) in a.chunks_exact(O).enumerate() {
            let bv = b[j * I + l];
            for (o, &av) in oc.iter_mut().zip(ac) {
                *o += av * bv;
            }
        }
    }
}

/// Lanes of the striped dot product in [`add_mul_at`].
const LANES: usize = 8;

/// `out += wᵀ · d`: `out[l, j] += dot(w[:, l], d[:, j])`.
///
/// Each dot product sums into [`LANES`] striped partial sums (element `i` goes to lane
/// `i % LANES`), which are then added in a fixed tree. That order is fixed, so it is the same
/// on every target, and it lets the host vectorise a single dot product.
#[inline]
pub fn add_mul_at<T: Real, const O: usize, const I: usize, const K: usize>(
    out: &mut SMatrix<T, I, K>,
    w: &SMatrix<T, O, I>,
    d: &SMatrix<T, O, K>,
) {
    let w = w.as_slice();
    let d = d.as_slice();
    for (j, oc) in out.as_mut_slice().chunks_exact_mut(I).enumerate() {
        let dc = &d[j * O..(j + 1) * O];
        for (l, o) in oc.iter_mut().enumerate() {
            *o += dot(&w[l * O..(l + 1) * O], dc);
        }
    }
}

/// The striped dot product of [`add_mul_at`].
#[inline]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.chunks_exact(LANES);
    for (ca, cb) in (&mut ac).zip(&mut bc) {
        for k in 0..LANES {
            acc[k] += ca[k] * cb[k];
        }
    }
    for (k, (&x, &y)) in ac.remainder().iter().zip(bc.remainder()).enumerate() {
        acc[k] += x * y;
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled<const R: usize, const C: usize>(seed: f64) -> SMatrix<f64, R, C> {
        SMatrix::from_fn(|i, j| ((i * 7 + j * 3) as f64 * 0.37 + seed).sin())
    }

    #[test]
    fn kernels_match_nalgebra_products() {
        let w = filled::<11, 13>(0.1);
        let x = filled::<13, 5>(0.2);
        let d = filled::<11, 5>(0.3);
        let mut out = SMatrix::<f64, 11, 5>::zeros();
        add_mul(&mut out, &w, &x);
        assert!((out - w * x).norm() < 1e-12);
        let mut g = SMatrix::<f64, 11, 13>::zeros();
        add_mul_bt(&mut g, &d, &x);
        assert!((g - d * x.transpose()).norm() < 1e-12);
        let mut dx = SMatrix::<f64, 13, 5>::zeros();
        add_mul_at(&mut dx, &w, &d);
        assert!((dx - w.transpose() * d).norm() < 1e-12);
    }
}
