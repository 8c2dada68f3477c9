//! The exact meta-gradient of ANIL with a dense softmax head: the inner loop adapts only the
//! head on the support features; the gradient of the query loss flows to the head's `θ0`, to
//! the scalar step size `α`, and (second order, through every inner step) to the support and
//! query features, from where the body's backward pass takes it.
//!
//! With `θₜ₊₁ = θₜ − α ∇L_s(θₜ, X)` and `v` the adjoint of `θₜ₊₁`, reverse mode gives
//! `∂/∂θₜ = v − H(α v)`, `∂/∂α += −⟨∇L_s(θₜ), v⟩` and `∂/∂X −= ∂²L_s/∂X∂θ · (α v)`; the last
//! two products are the R-operator passes of `shared`'s dense layer and loss.
//!
//! A head started from the support set's class prototypes ([`HeadStart::Prototypes`]) has
//! `θ₀ = θ0 + P(X)`: the adjoint of `θ₀` is that of `θ0`, and `P`'s backward pass adds to the
//! support features' gradient.

use nalgebra::SMatrix;
use serde::{Deserialize, Serialize};
use shared::inner::{self, AdaptMask};
use shared::loss::Loss;
use shared::math::Real;
use shared::model::{Dense, Params};
use shared::wstar::HeadStart;

pub use shared::body::OMNIGLOT_BODY;

/// Features the body gives the head.
pub const FEATURES: usize = OMNIGLOT_BODY.features();

/// The head of an `N`-way classifier.
pub type Head<const N: usize> = Dense<f32, FEATURES, N>;

/// Calls `$body` with `const $N: usize` (ways) and `const $K: usize` (support samples, also
/// the query chunk) bound for the supported episode shapes `(way, shot)`.
#[macro_export]
macro_rules! with_episode_shape {
    ($way:expr, $shot:expr, $N:ident, $K:ident => $body:expr) => {
        match ($way, $shot) {
            (5, 1) => {
                const $N: usize = 5;
                const $K: usize = 5;
                $body
            }
            (5, 5) => {
                const $N: usize = 5;
                const $K: usize = 25;
                $body
            }
            (20, 1) => {
                const $N: usize = 20;
                const $K: usize = 20;
                $body
            }
            (20, 5) => {
                const $N: usize = 20;
                const $K: usize = 100;
                $body
            }
            (40, 1) => {
                const $N: usize = 40;
                const $K: usize = 40;
                $body
            }
            (w, s) => Err(anyhow::anyhow!(
                "{w}-way {s}-shot is not supported: use 5-way 1- or 5-shot, 20-way 1- or \
                 5-shot, or (to train) 40-way 1-shot"
            )),
        }
    };
}

/// One episode as the head sees it: support features and one-hot labels (`n_support` valid
/// columns), and the query in chunks of `K` columns.
#[derive(Clone, Debug)]
pub struct HeadTask<T: Real, const F: usize, const N: usize, const K: usize> {
    /// Support features.
    pub xs: SMatrix<T, F, K>,
    /// Support one-hot labels.
    pub ys: SMatrix<T, N, K>,
    /// Valid support columns.
    pub n_support: usize,
    /// Query chunks: features, one-hot labels, valid columns.
    pub query: Vec<(SMatrix<T, F, K>, SMatrix<T, N, K>, usize)>,
}

impl<T: Real, const F: usize, const N: usize, const K: usize> HeadTask<T, F, N, K> {
    /// Builds the task from `(features, label)` lists.
    pub fn new(support: &[(Vec<T>, usize)], query: &[(Vec<T>, usize)]) -> Self {
        let mut task = Self::empty();
        task.refill(
            support.iter().map(|(f, label)| (f.as_slice(), *label)),
            query.iter().map(|(f, label)| (f.as_slice(), *label)),
        );
        task
    }

    /// A task without samples, for [`HeadTask::refill`].
    pub fn empty() -> Self {
        Self {
            xs: SMatrix::zeros(),
            ys: SMatrix::zeros(),
            n_support: 0,
            query: Vec::new(),
        }
    }

    /// Replaces the samples with `(features, label)` pairs, in place: no allocation once the
    /// query has had as many chunks before. Panics on more than `K` support samples, a label
    /// of `N` or more, or features that are not `F` long.
    ///
    /// ```
    /// use meta_train::model::head::HeadTask;
    /// let f = [[1.0f32, 0.0], [0.0, 1.0], [0.5, 0.5]];
    /// let mut task = HeadTask::<f32, 2, 2, 2>::empty();
    /// task.refill([(&f[0][..], 0), (&f[1][..], 1)], [(&f[2][..], 1); 3]);
    /// assert_eq!((task.n_support, task.n_query(), task.query.len()), (2, 3, 2));
    /// assert_eq!(task.ys[(1, 1)], 1.0);
    /// ```
    pub fn refill<'f>(
        &mut self,
        support: impl IntoIterator<Item = (&'f [T], usize)>,
        query: impl IntoIterator<Item = (&'f [T], usize)>,
    ) where
        T: 'f,
    {
        self.xs.fill(T::ZERO);
        self.ys.fill(T::ZERO);
        self.n_support = 0;
        for (j, (f, label)) in support.into_iter().enumerate() {
            assert!(j < K, "more than K = {K} support samples");
            self.xs.column_mut(j).copy_from_slice(f);
            self.ys[(label, j)] = T::ONE;
            self.n_support = j + 1;
        }
        self.query.clear();
        for (j, (f, label)) in query.into_iter().enumerate() {
            if j % K == 0 {
                self.query.push((SMatrix::zeros(), SMatrix::zeros(), 0));
            }
            let (x, y, n) = self.query.last_mut().expect("a chunk was pushed");
            x.column_mut(j % K).copy_from_slice(f);
            y[(label, j % K)] = T::ONE;
            *n += 1;
        }
    }

    /// Query samples.
    pub fn n_query(&self) -> usize {
        self.query.iter().map(|q| q.2).sum()
    }
}

/// What one episode gives the outer loop.
#[derive(Clone, Debug)]
pub struct HeadGrad<T: Real, const F: usize, const N: usize, const K: usize> {
    /// Mean query loss after adaptation.
    pub loss: T,
    /// Query samples classified correctly after adaptation.
    pub correct: usize,
    /// `∂L/∂θ0` of the head.
    pub head: Dense<T, F, N>,
    /// `∂L/∂α`: one value for a scalar `α`, else one per head parameter.
    pub alpha: Vec<T>,
    /// `∂L/∂(support features)`.
    pub xs: SMatrix<T, F, K>,
    /// `∂L/∂(query features)`, one matrix per query chunk.
    pub xq: Vec<SMatrix<T, F, K>>,
}

/// The head an adaptation starts from: `head0`, plus the support set's class prototypes when
/// `start` says so (the device's rule, [`Dense::add_prototypes`]).
fn start_of<T: Real, const F: usize, const N: usize, const K: usize>(
    head0: &Dense<T, F, N>,
    start: HeadStart,
    task: &HeadTask<T, F, N, K>,
) -> Dense<T, F, N> {
    let mut theta = head0.clone();
    if start == HeadStart::Prototypes {
        theta.add_prototypes(&task.xs, &task.ys);
    }
    theta
}

/// The step size of head parameter `i`: `alpha` holds one value (MAML, ANIL) or one per
/// parameter (Meta-SGD), in parameter order.
fn alpha_at<T: Real>(alpha: &[T], i: usize) -> T {
    if alpha.len() == 1 {
        alpha[0]
    } else {
        alpha[i]
    }
}

/// Adapts `head0` (started as `start` says) with `steps` inner steps of sizes `alpha` (one, or
/// one per parameter) on the support set (the device's rule, [`inner::step`]) and returns the
/// adapted head.
pub fn adapt<T: Real, const F: usize, const N: usize, const K: usize>(
    head0: &Dense<T, F, N>,
    start: HeadStart,
    alpha: &[T],
    steps: usize,
    task: &HeadTask<T, F, N, K>,
) -> Dense<T, F, N> {
    let mut theta = start_of(head0, start, task);
    let mut next = Dense::zeros();
    let mut dy = SMatrix::<T, N, K>::zeros();
    for _ in 0..steps {
        let out = theta.affine(&task.xs);
        Loss::SoftmaxCrossEntropy.value_grad(&out, &task.ys, task.n_support, Some(&mut dy));
        theta.affine_backward(&task.xs, &dy, &mut next, None);
        inner::step(
            &theta,
            &mut next,
            |_, i| alpha_at(alpha, i).to_scale(),
            AdaptMask::ALL,
        );
        core::mem::swap(&mut theta, &mut next);
    }
    theta
}

/// Query samples that `head` classifies correctly (argmax, first on ties).
pub fn correct<T: Real, const F: usize, const N: usize, const K: usize>(
    head: &Dense<T, F, N>,
    task: &HeadTask<T, F, N, K>,
) -> usize {
    let mut correct = 0;
    for (xq, yq, n) in &task.query {
        let out = head.affine(xq);
        for j in 0..*n {
            let mut best = 0;
            for i in 1..N {
                if out[(i, j)] > out[(best, j)] {
                    best = i;
                }
            }
            correct += usize::from(yq[(best, j)] == T::ONE);
        }
    }
    correct
}

/// How far the meta-gradient follows the inner steps back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Exactly, through every step's Hessian (ANIL).
    #[default]
    Second,
    /// First-order (FOMAML on the head): each step's Jacobian taken as the identity, so the
    /// query gradient at the adapted head is `θ0`'s gradient, and the features get the query
    /// loss's gradient (and, with a prototype start, the prototypes') but nothing through the
    /// steps. `α`'s gradient keeps its first-order part, `−Σₜ⟨∇L_s(θₜ), v⟩`.
    First,
}

/// The meta-gradient of the query loss after `steps` inner steps (see the module docs), exact
/// or first-order.
pub fn meta_grad<T: Real, const F: usize, const N: usize, const K: usize>(
    head0: &Dense<T, F, N>,
    start: HeadStart,
    alpha: &[T],
    steps: usize,
    order: Order,
    task: &HeadTask<T, F, N, K>,
) -> HeadGrad<T, F, N, K> {
    let mut work = MetaGrad::new();
    work.compute(head0, start, alpha, steps, order, task);
    work.grad
}

/// [`meta_grad`] with its buffers kept: each inner step's head, outputs and gradients, and
/// the result. The training loop keeps one per episode of a meta-batch, so that after the
/// first meta-iteration it allocates nothing.
///
/// ```
/// use meta_train::model::head::{meta_grad, HeadTask, MetaGrad, Order};
/// use shared::model::{Dense, Params};
/// use shared::wstar::HeadStart;
/// let f = [[1.0f32, 0.0], [0.0, 1.0]];
/// let task = HeadTask::<f32, 2, 2, 2>::new(
///     &[(f[0].to_vec(), 0), (f[1].to_vec(), 1)],
///     &[(f[1].to_vec(), 1)],
/// );
/// let mut head0 = Dense::<f32, 2, 2>::zeros();
/// head0.fill_with(|i| 0.1 * i as f32);
/// let mut work = MetaGrad::new();
/// let g = work.compute(&head0, HeadStart::Theta0, &[0.5], 3, Order::Second, &task);
/// let fresh = meta_grad(&head0, HeadStart::Theta0, &[0.5], 3, Order::Second, &task);
/// assert_eq!((g.loss, g.alpha.clone(), g.xs), (fresh.loss, fresh.alpha, fresh.xs));
/// ```
#[derive(Clone, Debug)]
pub struct MetaGrad<T: Real, const F: usize, const N: usize, const K: usize> {
    thetas: Vec<Dense<T, F, N>>,
    outs: Vec<SMatrix<T, N, K>>,
    dys: Vec<SMatrix<T, N, K>>,
    grads: Vec<Dense<T, F, N>>,
    /// The result of the last [`MetaGrad::compute`].
    pub grad: HeadGrad<T, F, N, K>,
}

impl<T: Real, const F: usize, const N: usize, const K: usize> Default for MetaGrad<T, F, N, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real, const F: usize, const N: usize, const K: usize> MetaGrad<T, F, N, K> {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            thetas: Vec::new(),
            outs: Vec::new(),
            dys: Vec::new(),
            grads: Vec::new(),
            grad: HeadGrad {
                loss: T::ZERO,
                correct: 0,
                head: Dense::zeros(),
                alpha: Vec::new(),
                xs: SMatrix::zeros(),
                xq: Vec::new(),
            },
        }
    }

    /// [`meta_grad`] into [`MetaGrad::grad`], which it returns.
    pub fn compute(
        &mut self,
        head0: &Dense<T, F, N>,
        start: HeadStart,
        alpha: &[T],
        steps: usize,
        order: Order,
        task: &HeadTask<T, F, N, K>,
    ) -> &HeadGrad<T, F, N, K> {
        let Self {
            thetas,
            outs,
            dys,
            grads,
            grad,
        } = self;
        let loss = Loss::SoftmaxCrossEntropy;
        let n_s = task.n_support;
        // Forward through the inner steps, keeping each step's parameters, outputs and
        // gradients.
        thetas.clear();
        outs.clear();
        dys.clear();
        grads.clear();
        thetas.push(start_of(head0, start, task));
        for t in 0..steps {
            let out = thetas[t].affine(&task.xs);
            let mut dy = SMatrix::<T, N, K>::zeros();
            loss.value_grad(&out, &task.ys, n_s, Some(&mut dy));
            let mut g = Dense::zeros();
            thetas[t].affine_backward(&task.xs, &dy, &mut g, None);
            let mut next = g.clone();
            inner::step(
                &thetas[t],
                &mut next,
                |_, i| alpha_at(alpha, i).to_scale(),
                AdaptMask::ALL,
            );
            outs.push(out);
            dys.push(dy);
            grads.push(g);
            thetas.push(next);
        }
        // The query loss at the adapted head, a mean over every query sample.
        let theta_s = &thetas[steps];
        let n_q = T::from_usize(task.n_query().max(1));
        let v = &mut grad.head;
        *v = Dense::zeros();
        let mut g = Dense::zeros();
        let mut total = T::ZERO;
        grad.xq.clear();
        let mut dy = SMatrix::<T, N, K>::zeros();
        for (x, y, n) in &task.query {
            let out = theta_s.affine(x);
            let share = T::from_usize(*n) / n_q;
            total += share * loss.value_grad(&out, y, *n, Some(&mut dy));
            dy *= share;
            let mut dx = SMatrix::zeros();
            theta_s.affine_backward(x, &dy, &mut g, Some(&mut dx));
            grad.xq.push(dx);
            v.add_scaled(T::ONE, &g);
        }
        let d_alpha = &mut grad.alpha;
        d_alpha.clear();
        d_alpha.resize(alpha.len(), T::ZERO);
        let xs = &mut grad.xs;
        *xs = SMatrix::zeros();
        let mut hv = Dense::zeros();
        for t in (0..steps).rev() {
            // v is the adjoint of θₜ₊₁ = θₜ − α ⊙ gₜ: α gets −gₜ ⊙ v (summed for a scalar α).
            let mut gt = grads[t].clone();
            let mut i = 0;
            gt.zip_mut(v, &mut |_, a, b| {
                for (a, &b) in a.iter().zip(b) {
                    d_alpha[if alpha.len() == 1 { 0 } else { i }] -= *a * b;
                    i += 1;
                }
            });
            if order == Order::First {
                continue;
            }
            // u = α ⊙ v.
            let mut u = v.clone();
            let mut i = 0;
            u.for_each_mut(&mut |_, s| {
                for x in s {
                    *x *= alpha_at(alpha, i);
                    i += 1;
                }
            });
            let rz = u.affine(&task.xs);
            let rdz = loss.r_grad(&outs[t], &rz, n_s);
            let rdx = thetas[t].affine_backward_r(&u, &task.xs, None, &dys[t], &rdz, &mut hv, true);
            *xs -= rdx;
            v.add_scaled(-T::ONE, &hv);
        }
        // v is now the adjoint of the start, and so of θ0.
        if start == HeadStart::Prototypes {
            *xs += Dense::add_prototypes_backward(v, &task.xs, &task.ys);
        }
        grad.loss = total;
        grad.correct = correct(theta_s, task);
        grad
    }
}
