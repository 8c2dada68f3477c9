//! Meta-gradients of one task for MAML (exact second order through every inner step), FOMAML,
//! Meta-SGD (learned per-parameter step sizes), ANIL (MAML adapting the head only) and
//! Reptile (first order: the direction from `θ0` to the adapted parameters).
//!
//! The inner loop is `shared::inner::step` on `shared`'s forward and backward passes: the step
//! differentiated here is the step the device takes. The second-order term is the
//! Hessian-vector product `shared::model::Layers::hvp` applied backwards through the steps:
//! with `θₜ₊₁ = θₜ − αₜ ⊙ ∇L(θₜ)`, `vₜ = vₜ₊₁ − H(θₜ)(αₜ ⊙ vₜ₊₁)` and
//! `∂L/∂αₜ += −∇L(θₜ) ⊙ vₜ₊₁`, summed over the parameters and steps that share a stored `α`
//! (one per parameter for Meta-SGD, one per layer and step for LSLR).

use nalgebra::SMatrix;

use shared::inner::{self, AdaptMask};
use shared::loss::Loss;
use shared::math::Real;
use shared::model::Layers;
use shared::wstar::AlphaKind;

/// The meta-learning algorithm: the blob's enum, one for the trainer and the blob.
pub use shared::wstar::Algorithm as Algo;

/// `--algorithm NAME`, for the command line.
///
/// ```
/// assert!(meta_train::algo::parse_algorithm("anil").is_ok());
/// assert!(meta_train::algo::parse_algorithm("ANIL").unwrap_err().contains("maml, fomaml"));
/// ```
pub fn parse_algorithm(s: &str) -> Result<Algo, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// A task's support (target-train) and query (target-test) batches. With a [`Workspace`] of
/// `n` samples, only the first `n` columns of each count.
#[derive(Clone, Debug)]
pub struct Task<T: Real, const I: usize, const O: usize, const K: usize> {
    /// Support inputs, one sample per column.
    pub xs: SMatrix<T, I, K>,
    /// Support targets.
    pub ys: SMatrix<T, O, K>,
    /// Query inputs.
    pub xq: SMatrix<T, I, K>,
    /// Query targets.
    pub yq: SMatrix<T, O, K>,
}

/// The inner loop's settings.
#[derive(Clone, Copy, Debug)]
pub struct Inner {
    /// Inner steps.
    pub steps: usize,
    /// Which layers adapt.
    pub mask: AdaptMask,
    /// Task loss.
    pub loss: Loss,
    /// How the step sizes are stored (`α`'s length and which one each parameter and step
    /// takes: [`AlphaKind::index`]).
    pub alpha: AlphaKind,
    /// The device guard's bound (`w*`'s `loss_bound`): a step after which the support loss is
    /// above it, or not finite, is undone and ends the adaptation, as on the device.
    pub loss_bound: f32,
}

impl Inner {
    /// The index in `α` of parameter `k` (in `layer`) at step `t`, for a model of `layers`
    /// layers.
    #[inline]
    fn alpha_index(&self, layers: usize, layer: usize, k: usize, t: usize) -> usize {
        self.alpha.index(layer, k, t, layers, self.steps)
    }
}

/// Buffers reused across tasks by one thread. Each batch holds `samples` samples in its first
/// columns; the columns after them are padding that the losses ignore, as on the device.
pub struct Workspace<T: Real, M: Layers<T, I, O>, const I: usize, const O: usize, const K: usize> {
    samples: usize,
    thetas: Vec<M>,
    grads: Vec<M>,
    caches: Vec<M::Cache<K>>,
    outs: Vec<SMatrix<T, O, K>>,
    q_cache: M::Cache<K>,
    /// The transpose of the parameters a backward pass runs through, when they are not `θ0`.
    t: M::Transposed,
    dy: SMatrix<T, O, K>,
    w: M,
    hv: M,
    tmp: M,
}

impl<T: Real, M: Layers<T, I, O>, const I: usize, const O: usize, const K: usize>
    Workspace<T, M, I, O, K>
{
    /// Buffers for `steps` inner steps on batches of `K` samples.
    pub fn new(steps: usize) -> Self {
        Self::with_samples(steps, K)
    }

    /// Buffers for `steps` inner steps on batches whose first `samples` columns (at most `K`)
    /// are samples and the rest padding.
    ///
    /// ```
    /// use meta_train::algo::Workspace;
    /// use shared::model::Mlp1;
    /// let ws = Workspace::<f32, Mlp1<f32, 2, 4, 3>, 2, 3, 8>::with_samples(1, 5);
    /// assert_eq!(ws.samples(), 5);
    /// ```
    pub fn with_samples(steps: usize, samples: usize) -> Self {
        Self {
            samples: samples.min(K),
            thetas: vec![M::zeros(); steps],
            grads: vec![M::zeros(); steps],
            caches: vec![M::new_cache(); steps],
            outs: vec![SMatrix::zeros(); steps],
            q_cache: M::new_cache(),
            t: M::zeros().transposed(),
            dy: SMatrix::zeros(),
            w: M::zeros(),
            hv: M::zeros(),
            tmp: M::zeros(),
        }
    }

    /// Samples per batch (the rest of the `K` columns is padding).
    pub fn samples(&self) -> usize {
        self.samples
    }
}

/// Runs the inner loop on the support set, then writes the meta-gradient of the query loss
/// into `g_theta` (w.r.t. `θ0`) and, when given, `g_alpha` (w.r.t. every stored `α`, as many
/// values as `alpha`). `alpha` is stored as `inner_cfg.alpha` says. `theta0_t`, when given, is
/// `theta0.transposed()`, kept by a caller that runs many tasks from the same `θ0` (the same
/// bits either way). Returns the query loss after adaptation.
#[allow(clippy::too_many_arguments)]
pub fn task_meta_grad<
    T: Real,
    M: Layers<T, I, O>,
    const I: usize,
    const O: usize,
    const K: usize,
>(
    theta0: &M,
    theta0_t: Option<&M::Transposed>,
    alpha: &[T],
    task: &Task<T, I, O, K>,
    inner_cfg: Inner,
    second_order: bool,
    ws: &mut Workspace<T, M, I, O, K>,
    g_theta: &mut M,
    mut g_alpha: Option<&mut [T]>,
) -> T {
    let loss = inner_cfg.loss;
    let keep_grads = g_alpha.is_some() && second_order;
    let s = inner_loop(theta0, theta0_t, alpha, task, inner_cfg, ws, keep_grads);
    let theta_s = if s == 0 { theta0 } else { &ws.thetas[s - 1] };
    let out = theta_s.forward(&task.xq, &mut ws.q_cache);
    let query_loss = loss.value_grad(&out, &task.yq, ws.samples, Some(&mut ws.dy));
    let t_s = if s == 0 {
        theta0_t
    } else {
        theta_s.transpose_to(&mut ws.t);
        Some(&ws.t)
    };
    theta_s.backward_with(t_s, &task.xq, &mut ws.q_cache, &ws.dy, g_theta, None);
    if let Some(ga) = g_alpha.as_deref_mut() {
        ga.fill(T::ZERO);
    }
    if !second_order {
        return query_loss;
    }
    let mask = inner_cfg.mask;
    for t in (0..s).rev() {
        // g_theta holds v_{t+1} = ∂L/∂θ_{t+1}.
        if let Some(ga) = g_alpha.as_deref_mut() {
            ws.tmp.clone_from(&ws.grads[t]);
            let mut k = 0;
            ws.tmp.zip_mut(g_theta, &mut |layer, g, v| {
                if mask.adapts(layer) {
                    for (i, (&g, &v)) in g.iter().zip(v).enumerate() {
                        let j = inner_cfg.alpha_index(M::LAYERS, layer, k + i, t);
                        ga[j] += -g * v;
                    }
                }
                k += v.len();
            });
        }
        let mut k = 0;
        ws.w.zip_mut(g_theta, &mut |layer, w, v| {
            for (i, (w, &v)) in w.iter_mut().zip(v).enumerate() {
                *w = if mask.adapts(layer) {
                    alpha[inner_cfg.alpha_index(M::LAYERS, layer, k + i, t)] * v
                } else {
                    T::ZERO
                };
            }
            k += v.len();
        });
        let (out_t, n) = (&ws.outs[t], ws.samples);
        let theta_t = if t == 0 { theta0 } else { &ws.thetas[t - 1] };
        theta_t.hvp(
            &ws.w,
            &task.xs,
            None,
            &ws.caches[t],
            &mut |r_out| loss.r_grad(out_t, r_out, n),
            &mut ws.hv,
        );
        g_theta.add_scaled(-T::ONE, &ws.hv);
    }
    query_loss
}

/// Reptile's update direction for one task: runs the inner loop on the support set and writes
/// `θ0 − θ_S` into `g_theta`, so that descending it moves `θ0` towards the adapted parameters.
/// `theta0_t` as for [`task_meta_grad`]. Returns the query loss at `θ_S`.
#[allow(clippy::too_many_arguments)]
pub fn task_reptile_grad<
    T: Real,
    M: Layers<T, I, O>,
    const I: usize,
    const O: usize,
    const K: usize,
>(
    theta0: &M,
    theta0_t: Option<&M::Transposed>,
    alpha: &[T],
    task: &Task<T, I, O, K>,
    inner_cfg: Inner,
    ws: &mut Workspace<T, M, I, O, K>,
    g_theta: &mut M,
) -> T {
    let loss = inner_cfg.loss;
    let theta_s = match inner_loop(theta0, theta0_t, alpha, task, inner_cfg, ws, false) {
        0 => theta0,
        s => &ws.thetas[s - 1],
    };
    let out = theta_s.forward(&task.xq, &mut ws.q_cache);
    let query_loss = loss.value_grad(&out, &task.yq, ws.samples, None);
    g_theta.clone_from(theta0);
    g_theta.add_scaled(-T::ONE, theta_s);
    query_loss
}

/// The inner loop on the support set, as the device runs it: `ws.thetas[t]` gets `θ_{t+1}`
/// (`θ_0` is read where it is), with each step's forward cache and outputs kept for the
/// backward pass through the steps, and its gradient too when `keep_grads`. Returns the steps
/// taken: like the device's guard, a step after which the loss on the support set is not
/// finite or above `inner_cfg.loss_bound` is undone and ends the adaptation (a diverging task
/// then trains from where it stopped, as it would adapt on the device, instead of poisoning
/// the meta-batch).
fn inner_loop<T: Real, M: Layers<T, I, O>, const I: usize, const O: usize, const K: usize>(
    theta0: &M,
    theta0_t: Option<&M::Transposed>,
    alpha: &[T],
    task: &Task<T, I, O, K>,
    inner_cfg: Inner,
    ws: &mut Workspace<T, M, I, O, K>,
    keep_grads: bool,
) -> usize {
    let steps = inner_cfg.steps;
    for t in 0..steps {
        let a = |layer: usize, k: usize| {
            alpha[inner_cfg.alpha_index(M::LAYERS, layer, k, t)].to_scale()
        };
        let (done, next) = ws.thetas.split_at_mut(t);
        let theta = if t == 0 { theta0 } else { &done[t - 1] };
        ws.outs[t] = theta.forward(&task.xs, &mut ws.caches[t]);
        let l = inner_cfg
            .loss
            .value_grad(&ws.outs[t], &task.ys, ws.samples, Some(&mut ws.dy));
        if t > 0 && !within(l, inner_cfg.loss_bound) {
            return t - 1;
        }
        // The gradient goes straight into the next step's buffer, as on the device.
        let t_t = if t == 0 {
            theta0_t
        } else {
            theta.transpose_to(&mut ws.t);
            Some(&ws.t)
        };
        theta.backward_with(t_t, &task.xs, &mut ws.caches[t], &ws.dy, &mut next[0], None);
        if keep_grads {
            ws.grads[t].clone_from(&next[0]);
        }
        inner::step(theta, &mut next[0], a, inner_cfg.mask);
    }
    if steps > 0 && inner_cfg.loss_bound.is_finite() {
        // The loss after the last step, which the device checks too. Without a bound only a
        // non-finite loss would undo it, and parameters that give one on the support set give
        // a non-finite query loss too in practice, which stops the run (its checkpoint intact):
        // the forward pass (8% of a one-step MAML meta-iteration, 16% of FOMAML's) is saved.
        let out = ws.thetas[steps - 1].forward(&task.xs, &mut ws.q_cache);
        let l = inner_cfg.loss.value_grad(&out, &task.ys, ws.samples, None);
        if !within(l, inner_cfg.loss_bound) {
            return steps - 1;
        }
    }
    steps
}

/// Whether the device's guard keeps a step whose support loss is `l`: finite and not above
/// `bound` (compared as the device compares, in `T`).
fn within<T: Real>(l: T, bound: f32) -> bool {
    l.is_finite() && l <= T::from_f32(bound)
}
