//! A linear softmax head started from the support set's class prototypes (Proto-MAML,
//! Triantafillou et al. 2020).
//!
//! With `μ_c` the mean of class `c`'s support inputs, row `c` of the head gets `2·μ_c` added
//! to its weights and `‖μ_c‖²` taken from its bias. Since `−‖x − μ_c‖² = 2·μ_cᵀx − ‖μ_c‖² −
//! ‖x‖²` and the last term is the same for every class, the head then ranks classes as the
//! nearest prototype does (a prototypical network), from its first step on; the inner steps
//! refine that. `θ0` is added, so a meta-learned offset stays possible.
//!
//! Targets are one-hot columns (or soft labels: `μ_c` is then the `y_c`-weighted mean); a class
//! with no sample keeps its row. Columns whose weight is zero are skipped, not added as zeros,
//! so padding columns never change a bit and the result does not depend on the batch width.

use nalgebra::SMatrix;

use super::Dense;
use crate::math::{Centre, Real};

impl<T: Real, const I: usize, const O: usize> Dense<T, I, O> {
    /// Adds the class prototypes of the samples `x` (one per column) with targets `y` (see the
    /// module docs).
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::model::Dense;
    /// let mut head = Dense::<f32, 2, 2>::default();
    /// let x = SMatrix::<f32, 2, 3>::new(1.0, 3.0, 0.0, 0.0, 0.0, 4.0);
    /// let y = SMatrix::<f32, 2, 3>::new(1.0, 1.0, 0.0, 0.0, 0.0, 1.0);
    /// head.add_prototypes(&x, &y);
    /// // class 0: μ = (2, 0); class 1: μ = (0, 4)
    /// assert_eq!((head.w[(0, 0)], head.w[(0, 1)], head.b[0]), (4.0, 0.0, -4.0));
    /// assert_eq!((head.w[(1, 0)], head.w[(1, 1)], head.b[1]), (0.0, 8.0, -16.0));
    /// ```
    ///
    /// In an arithmetic that saturates ([`Real::SATURATES`]), each `b_c − ‖μ_c‖²` is summed in
    /// the accumulator and all of them are shifted alike, around the midpoint of the largest
    /// and the smallest ([`Centre::Middle`]), before they are rounded: the norms (a feature
    /// vector's squared length, about 23 for the Omniglot body's, up to 60) leave Q10H's ±32,
    /// their differences rarely do, and a shift common to every class changes no softmax.
    ///
    /// ```
    /// use nalgebra::SMatrix;
    /// use shared::fixed::Q10H;
    /// use shared::math::Real;
    /// use shared::model::Dense;
    /// let q = Q10H::from_f32;
    /// let mut head = Dense::<Q10H, 2, 2>::default();
    /// let x = SMatrix::<Q10H, 2, 2>::new(q(6.0), q(0.0), q(0.0), q(4.0));
    /// let y = SMatrix::<Q10H, 2, 2>::new(q(1.0), q(0.0), q(0.0), q(1.0));
    /// head.add_prototypes(&x, &y);
    /// // −36 and −16, shifted by their midpoint −26:
    /// assert_eq!((head.b[0].to_f32(), head.b[1].to_f32()), (-10.0, 10.0));
    /// ```
    pub fn add_prototypes<const K: usize>(&mut self, x: &SMatrix<T, I, K>, y: &SMatrix<T, O, K>) {
        let two = T::ONE + T::ONE;
        let mut biases = [T::ACC_ZERO; O];
        for (c, bias) in biases.iter_mut().enumerate() {
            *bias = self.b[c].widen();
            let Some(mu) = prototype(x, y, c) else {
                continue;
            };
            let mut norm = T::ZERO;
            for (i, &m) in mu.iter().enumerate() {
                self.w[(c, i)] += two * m;
                if T::SATURATES {
                    *bias = T::mac(*bias, -m, m);
                } else {
                    norm += m * m;
                }
            }
            self.b[c] -= norm;
        }
        if T::SATURATES {
            T::narrow_centred(&biases, self.b.as_mut_slice(), Centre::Middle);
        }
    }

    /// The backward pass of [`Dense::add_prototypes`]: given `v`, the gradient of a loss with
    /// respect to the head after the prototypes were added, returns its gradient with respect
    /// to `x` (the gradient with respect to the head before is `v` itself).
    pub fn add_prototypes_backward<const K: usize>(
        v: &Self,
        x: &SMatrix<T, I, K>,
        y: &SMatrix<T, O, K>,
    ) -> SMatrix<T, I, K> {
        let two = T::ONE + T::ONE;
        let mut dx = SMatrix::<T, I, K>::zeros();
        for c in 0..O {
            let Some(mu) = prototype(x, y, c) else {
                continue;
            };
            let n = class_weight(y, c);
            // ∂L/∂μ = 2·v_w[c] − 2·μ·v_b[c]; each sample of the class holds y/n of μ.
            let mut g_mu = SMatrix::<T, I, 1>::zeros();
            for i in 0..I {
                g_mu[i] = two * v.w[(c, i)] - two * mu[i] * v.b[c];
            }
            for j in 0..K {
                let share = y[(c, j)];
                if share != T::ZERO {
                    let s = share / n;
                    for i in 0..I {
                        dx[(i, j)] += s * g_mu[i];
                    }
                }
            }
        }
        dx
    }
}

/// The total weight of class `c`'s samples.
fn class_weight<T: Real, const O: usize, const K: usize>(y: &SMatrix<T, O, K>, c: usize) -> T {
    let mut n = T::ZERO;
    for j in 0..K {
        n += y[(c, j)];
    }
    n
}

/// The `y_c`-weighted mean of the columns of `x`; `None` when class `c` has no weight.
fn prototype<T: Real, const I: usize, const O: usize, const K: usize>(
    x: &SMatrix<T, I, K>,
    y: &SMatrix<T, O, K>,
    c: usize,
) -> Option<SMatrix<T, I, 1>> {
    let n = class_weight(y, c);
    if n <= T::ZERO {
        return None;
    }
    let mut mu = SMatrix::<T, I, 1>::zeros();
    for j in 0..K {
        let share = y[(c, j)];
        if share != T::ZERO {
            for i in 0..I {
                mu[i] += share * x[(i, j)];
            }
        }
    }
    for m in mu.iter_mut() {
        *m = *m / n;
    }
    Some(mu)
}
