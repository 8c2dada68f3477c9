//! The inner-loop rule: one gradient step `θ ← θ − α ⊙ ∇L(θ)` on the adapted layers.
//!
//! The device's adaptation and the host trainer's inner loop both call [`step`], so the step
//! the host differentiates through is the step the device takes.
//!
//! ```
//! use shared::inner::{step, AdaptMask};
//! use shared::model::{Dense, Params};
//! let theta = Dense::<f32, 1, 1>::zeros();
//! let mut g = Dense::<f32, 1, 1>::zeros();
//! g.w[(0, 0)] = 2.0;
//! g.b[0] = -4.0;
//! step(&theta, &mut g, |_, _| 0.5, AdaptMask::ALL);
//! assert_eq!((g.w[(0, 0)], g.b[0]), (-1.0, 2.0));
//! ```

use serde::{Deserialize, Serialize};

use crate::math::Real;
use crate::model::Params;

/// Which layers the inner loop adapts: bit `l` set means layer `l` adapts.
///
/// ```
/// use shared::inner::AdaptMask;
/// let anil = AdaptMask::head_only(3);
/// assert!(!anil.adapts(0) && !anil.adapts(1) && anil.adapts(2));
/// assert!(AdaptMask::ALL.adapts(7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptMask(pub u32);

impl AdaptMask {
    /// Every layer adapts (MAML, Meta-SGD).
    pub const ALL: Self = Self(u32::MAX);

    /// Only the last of `layers` layers adapts (ANIL).
    pub const fn head_only(layers: usize) -> Self {
        Self(1 << (layers - 1))
    }

    /// Whether layer `layer` adapts.
    pub const fn adapts(self, layer: usize) -> bool {
        layer < 32 && self.0 & (1 << layer) != 0
    }
}

/// One inner step. On entry `grad_then_next` holds `∇L(θ)`; on return it holds
/// `θ − α ⊙ ∇L(θ)` on adapted layers and `θ` elsewhere. `alpha(layer, index)` gives the step
/// size of the parameter at flat `index`.
///
/// Writing the result over the gradient lets the device keep two parameter buffers and swap
/// them, so a step that diverges can be undone exactly.
pub fn step<T: Real, P: Params<T>>(
    theta: &P,
    grad_then_next: &mut P,
    alpha: impl Fn(usize, usize) -> T::Scale,
    mask: AdaptMask,
) {
    let mut k = 0;
    grad_then_next.zip_mut(theta, &mut |layer, g, t| {
        if mask.adapts(layer) {
            for (i, (g, &t)) in g.iter_mut().zip(t).enumerate() {
                *g = t.sub_scaled(alpha(layer, k + i), *g);
            }
        } else {
            g.copy_from_slice(t);
        }
        k += t.len();
    });
}

/// Scales a step in place: `next ← θ + (next − θ) · factor`, the candidate `factor` times as
/// far along the step from `θ` (the growing and shrinking extra steps of the device's guard,
/// with `factor` a power of two). Never inlined, like [`halve_step`].
///
/// ```
/// use shared::inner::stretch_step;
/// use shared::model::{Dense, Params};
/// let theta = Dense::<f32, 1, 1>::zeros();
/// let mut next = Dense::<f32, 1, 1>::zeros();
/// next.w[(0, 0)] = -1.0;
/// next.b[0] = 2.0;
/// stretch_step(&theta, &mut next, 4.0);
/// assert_eq!((next.w[(0, 0)], next.b[0]), (-4.0, 8.0));
/// ```
#[inline(never)]
pub fn stretch_step<T: Real, P: Params<T>>(theta: &P, next: &mut P, factor: T) {
    next.zip_mut(theta, &mut |_, n, t| {
        for (n, &t) in n.iter_mut().zip(t) {
            *n = t + (*n - t) * factor;
        }
    });
}

/// Halves a step in place: `next ← θ + (next − θ) / 2`, the candidate half way along the
/// step from `θ` (a backtracking line search's retry, in the candidate's own buffer).
/// Layers the step left alone stay `θ` exactly. Never inlined: inlined into the device's
/// adaptation loop it grew that frame by 1.4 KB on the Cortex-M4F (stack high-water mark 5,676
/// bytes instead of 4,316).
///
/// ```
/// use shared::inner::halve_step;
/// use shared::model::{Dense, Params};
/// let theta = Dense::<f32, 1, 1>::zeros();
/// let mut next = Dense::<f32, 1, 1>::zeros();
/// next.w[(0, 0)] = -1.0;
/// next.b[0] = 2.0;
/// halve_step(&theta, &mut next);
/// assert_eq!((next.w[(0, 0)], next.b[0]), (-0.5, 1.0));
/// ```
#[inline(never)]
pub fn halve_step<T: Real, P: Params<T>>(theta: &P, next: &mut P) {
    let half = T::ONE / (T::ONE + T::ONE);
    next.zip_mut(theta, &mut |_, n, t| {
        for (n, &t) in n.iter_mut().zip(t) {
            *n = t + (*n - t) * half;
        }
    });
}
