//! Adam, the outer-loop optimiser (Kingma & Ba, 2015).

use serde::{Deserialize, Serialize};

/// Adam state for one flat parameter vector.
///
/// ```
/// use meta_train::train::optim::Adam;
/// let mut adam = Adam::new(0.1, 1);
/// let mut p = [1.0f32];
/// adam.step(&mut p, &[2.0]);
/// assert!((p[0] - 0.9).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator guard.
    pub eps: f32,
    /// Steps taken.
    pub t: u64,
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    /// Adam with the usual `β1 = 0.9`, `β2 = 0.999`, `ε = 1e-8` for `n` parameters.
    pub fn new(lr: f32, n: usize) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// One update of `params` along `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        let u = self.begin();
        u.apply(params, grad, &mut self.m, &mut self.v);
    }

    /// Starts an update: counts the step and returns its constants, to [`Update::apply`] to
    /// ranges of the parameters (with the matching ranges of [`Adam::moments_mut`]).
    pub fn begin(&mut self) -> Update {
        self.t += 1;
        let t = self.t.min(i32::MAX as u64) as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        Update {
            lr: self.lr * c2.sqrt() / c1,
            b1: self.beta1,
            b2: self.beta2,
            eps: self.eps * c2.sqrt(),
        }
    }

    /// The first and second moments.
    pub fn moments_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.m, &mut self.v)
    }
}

/// The constants of one Adam update.
#[derive(Clone, Copy, Debug)]
pub struct Update {
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
}

impl Update {
    /// Updates `p` along `g` with moments `m` and `v` (all the same range of parameters).
    ///
    /// Moments that decay below the smallest normal `f32` are set to zero. A parameter whose
    /// gradient stays zero (a dead ReLU unit) would otherwise keep subnormal moments for
    /// thousands of steps, and x86 cores take a slow microcode path on every subnormal operand:
    /// that made this loop a tenth of a first-order meta-iteration. The step is the same: such
    /// a moment changes a step by less than `lr · 1e-28`, and `√v` of it vanishes against `ε`.
    pub fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let Update { lr, b1, b2, eps } = *self;
        let normal = |x: f32| if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x };
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
            *m = normal(b1 * *m + (1.0 - b1) * g);
            *v = normal(b2 * *v + (1.0 - b2) * g * g);
            *p -= lr * *m / (v.sqrt() + eps);
        }
    }
}
