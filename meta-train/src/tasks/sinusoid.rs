//! The sinusoid regression family of the MAML paper: `y = A·sin(x − φ)`, `A ~ U[0.1, 5]`,
//! `φ ~ U[0, π]`, `x ~ U[−5, 5]`.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One sinusoid task.
///
/// ```
/// use meta_train::tasks::sinusoid::Sinusoid;
/// let t = Sinusoid { amplitude: 2.0, phase: 0.0 };
/// assert_eq!(t.eval(0.0), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sinusoid {
    /// `A`.
    pub amplitude: f32,
    /// `φ`.
    pub phase: f32,
}

/// Inputs are drawn from `[-X_RANGE, X_RANGE]`.
pub const X_RANGE: f32 = 5.0;

impl Sinusoid {
    /// Draws a task.
    pub fn sample(rng: &mut impl Rng) -> Self {
        Self {
            amplitude: rng.gen_range(0.1..5.0),
            phase: rng.gen_range(0.0..std::f32::consts::PI),
        }
    }

    /// `A·sin(x − φ)`.
    pub fn eval(&self, x: f32) -> f32 {
        self.amplitude * (x - self.phase).sin()
    }

    /// `n` points `(x, y)` with `x ~ U[−5, 5]`.
    pub fn points(&self, rng: &mut impl Rng, n: usize) -> impl Iterator<Item = (f32, f32)> + '_ {
        let xs: Vec<f32> = (0..n).map(|_| rng.gen_range(-X_RANGE..X_RANGE)).collect();
        xs.into_iter().map(move |x| (x, self.eval(x)))
    }
}
