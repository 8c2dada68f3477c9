//! Losses over a batch of `n` valid samples (the first `n` columns of a `K`-column batch):
//! their value, their gradient, and the R-operator of the gradient for second-order terms.
//!
//! ```
//! use nalgebra::SMatrix;
//! use shared::loss::Loss;
//! let out = SMatrix::<f32, 1, 2>::new(1.0, 3.0);
//! let y = SMatrix::<f32, 1, 2>::new(0.0, 3.0);
//! let mut g = SMatrix::zeros();
//! assert_eq!(Loss::Mse.value_grad(&out, &y, 2, Some(&mut g)), 0.5);
//! assert_eq!(g, SMatrix::<f32, 1, 2>::new(1.0, 0.0));
//! ```

use nalgebra::SMatrix;
use serde::{Deserialize, Serialize};

use crate::math::Real;
use crate::model::Layers;

/// The task loss the inner loop minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Loss {
    /// Mean squared error over samples and outputs.
    Mse,
    /// Softmax cross-entropy against a one-hot (or soft) target, mean over samples.
    SoftmaxCrossEntropy,
}

impl Loss {
    /// The outputs of `model` for `x` that this loss reads, written into `out`: for softmax
    /// cross-entropy a classifier's logits ([`Layers::logits_into`]: in fixed point each
    /// sample's shifted so the largest is 0, which the softmax does not see), for MSE the
    /// outputs themselves.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::loss::Loss;
    /// use shared::model::{Dense, Layers};
    /// let mut d = Dense::<f32, 1, 2>::default();
    /// d.b[1] = 3.0;
    /// let x = SMatrix::<f32, 1, 1>::new(1.0);
    /// let mut out = SMatrix::zeros();
    /// Loss::SoftmaxCrossEntropy.outputs_into(&d, &x, &mut Dense::<f32, 1, 2>::new_cache::<1>(), &mut out);
    /// assert_eq!((out[0], out[1]), (0.0, 3.0)); // f32: the outputs, unshifted
    /// ```
    pub fn outputs_into<T, M, const I: usize, const O: usize, const K: usize>(
        self,
        model: &M,
        x: &SMatrix<T, I, K>,
        cache: &mut M::Cache<K>,
        out: &mut SMatrix<T, O, K>,
    ) where
        T: Real,
        M: Layers<T, I, O>,
    {
        match self {
            Loss::Mse => model.forward_into(x, cache, out),
            Loss::SoftmaxCrossEntropy => model.logits_into(x, cache, out),
        }
    }

    /// The loss over the first `n` columns; writes `∂L/∂out` into `grad` when given (columns
    /// from `n` on are zero there, so padding never moves the parameters).
    pub fn value_grad<T: Real, const O: usize, const K: usize>(
        self,
        out: &SMatrix<T, O, K>,
        target: &SMatrix<T, O, K>,
        n: usize,
        grad: Option<&mut SMatrix<T, O, K>>,
    ) -> T {
        match grad {
            Some(g) => {
                g.copy_from(out);
                self.value_grad_in_place(g, target, n)
            }
            None => self.value_grad_in_place(&mut out.clone(), target, n),
        }
    }

    /// [`Loss::value_grad`] with `∂L/∂out` written over the outputs: a device adapting a
    /// head keeps one `O × K` matrix on its stack instead of two.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::loss::Loss;
    /// let mut out = SMatrix::<f32, 1, 2>::new(1.0, 3.0);
    /// let y = SMatrix::<f32, 1, 2>::new(0.0, 3.0);
    /// assert_eq!(Loss::Mse.value_grad_in_place(&mut out, &y, 2), 0.5);
    /// assert_eq!(out, SMatrix::<f32, 1, 2>::new(1.0, 0.0));
    /// ```
    pub fn value_grad_in_place<T: Real, const O: usize, const K: usize>(
        self,
        out: &mut SMatrix<T, O, K>,
        target: &SMatrix<T, O, K>,
        n: usize,
    ) -> T {
        let n = n.min(K);
        // The sum in the accumulator, so that a loss whose mean fits the scalar is never
        // saturated by its sum (K squared errors of 3 are 45, beyond ±32 in Q10H).
        let mut total = T::ACC_ZERO;
        let value = match self {
            Loss::Mse => {
                let scale = T::ONE / T::from_usize(n * O);
                let two_scale = (T::ONE + T::ONE) * scale;
                for j in 0..n {
                    for i in 0..O {
                        let d = out[(i, j)] - target[(i, j)];
                        total = T::mac(total, d, d);
                        out[(i, j)] = two_scale * d;
                    }
                }
                T::narrow_mul(total, scale)
            }
            Loss::SoftmaxCrossEntropy => {
                let inv_n = T::ONE / T::from_usize(n);
                for j in 0..n {
                    // The whole column's softmax first: the gradient then overwrites it.
                    let (p, log_z) = softmax(out, j);
                    for i in 0..O {
                        let y = target[(i, j)];
                        if y != T::ZERO {
                            total = T::mac(total, y, log_z - out[(i, j)]);
                        }
                        out[(i, j)] = (p[i] - y) * inv_n;
                    }
                }
                T::narrow_mul(total, inv_n)
            }
        };
        out.as_mut_slice()[n * O..].fill(T::ZERO);
        value
    }

    /// `R{∂L/∂out}`: the derivative of the loss gradient along `r_out`, the direction of the
    /// outputs (for Hessian-vector products).
    pub fn r_grad<T: Real, const O: usize, const K: usize>(
        self,
        out: &SMatrix<T, O, K>,
        r_out: &SMatrix<T, O, K>,
        n: usize,
    ) -> SMatrix<T, O, K> {
        let n = n.min(K);
        let mut r = crate::model::kernels::zeros::<T, O, K>();
        match self {
            Loss::Mse => {
                let two_scale = (T::ONE + T::ONE) / T::from_usize(n * O);
                for j in 0..n {
                    for i in 0..O {
                        r[(i, j)] = two_scale * r_out[(i, j)];
                    }
                }
            }
            Loss::SoftmaxCrossEntropy => {
                let inv_n = T::ONE / T::from_usize(n);
                for j in 0..n {
                    let (p, _) = softmax(out, j);
                    let mut pr = T::ZERO;
                    for i in 0..O {
                        pr += p[i] * r_out[(i, j)];
                    }
                    for i in 0..O {
                        r[(i, j)] = p[i] * (r_out[(i, j)] - pr) * inv_n;
                    }
                }
            }
        }
        r
    }
}

/// Softmax of column `j` and its log-normaliser `log Σ exp`: the class probabilities the
/// cross-entropy loss trains, and the scores a device reports.
///
/// ```
/// let out = nalgebra::SMatrix::<f32, 3, 1>::new(1.0, 3.0, 1.0);
/// let (p, _) = shared::loss::softmax(&out, 0);
/// assert!(p[1] > 0.78 && p[1] < 0.79 && (p[0] - p[2]).abs() == 0.0);
/// ```
pub fn softmax<T: Real, const O: usize, const K: usize>(
    out: &SMatrix<T, O, K>,
    j: usize,
) -> ([T; O], T) {
    let mut m = out[(0, j)];
    for i in 1..O {
        if out[(i, j)] > m {
            m = out[(i, j)];
        }
    }
    let mut p = [T::ZERO; O];
    let mut s = T::ZERO;
    for i in 0..O {
        p[i] = (out[(i, j)] - m).exp();
        s += p[i];
    }
    for v in p.iter_mut() {
        *v = *v / s;
    }
    (p, m + s.ln())
}
