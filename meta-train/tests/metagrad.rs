//! The second-order meta-gradients (MAML through every inner step, Meta-SGD's and LSLR's
//! α-gradients) against f64 central differences of the whole inner-loop-then-query loss.

use meta_train::algo::{task_meta_grad, Inner, Task, Workspace};
use meta_train::model::SinusoidNet;
use meta_train::train::{init_theta, sinusoid_task};
use nalgebra::SMatrix;
use shared::inner::AdaptMask;
use shared::loss::Loss;
use shared::math::Real;
use shared::model::{Layers, Mlp2, Params};
use shared::wstar::{Algorithm, AlphaKind};

type Net<T> = Mlp2<T, 1, 40, 40, 1>;
const K: usize = 10;
const STEPS: usize = 2;

fn inner(alpha: AlphaKind) -> Inner {
    bounded(alpha, f32::INFINITY)
}

fn bounded(alpha: AlphaKind, loss_bound: f32) -> Inner {
    Inner {
        steps: STEPS,
        mask: AdaptMask::ALL,
        loss: Loss::Mse,
        alpha,
        loss_bound,
    }
}

fn task64(t: &Task<f32, 1, 1, K>) -> Task<f64, 1, 1, K> {
    let c = |m: &SMatrix<f32, 1, K>| m.map(f64::from);
    Task {
        xs: c(&t.xs),
        ys: c(&t.ys),
        xq: c(&t.xq),
        yq: c(&t.yq),
    }
}

fn from_flat<T: Real, M: Params<T>>(v: &[T]) -> M {
    let mut m = M::zeros();
    m.fill_with(|k| v[k]);
    m
}

fn flat<T: Real, M: Params<T>>(m: &M) -> Vec<T> {
    let mut v = Vec::new();
    m.for_each(&mut |_, s| v.extend_from_slice(s));
    v
}

/// Query loss after the inner loop, in f64.
fn loss64(
    theta: &[f64],
    (kind, alpha): (AlphaKind, &[f64]),
    task: &Task<f64, 1, 1, K>,
    ws: &mut Workspace<f64, Net<f64>, 1, 1, K>,
) -> f64 {
    let mut g = Net::<f64>::zeros();
    task_meta_grad(
        &from_flat::<f64, Net<f64>>(theta),
        None,
        alpha,
        task,
        inner(kind),
        false,
        ws,
        &mut g,
        None,
    )
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

/// Central differences of `f` over every coordinate of `x`.
fn central(x: &[f64], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let eps = 1e-6;
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let v = x[i];
            x[i] = v + eps;
            let hi = f(&x);
            x[i] = v - eps;
            let lo = f(&x);
            x[i] = v;
            (hi - lo) / (2.0 * eps)
        })
        .collect()
}

struct Case {
    theta: Vec<f32>,
    kind: AlphaKind,
    alpha: Vec<f32>,
    task: Task<f32, 1, 1, K>,
}

fn case(kind: AlphaKind) -> Case {
    let theta = init_theta::<SinusoidNet, 1, 1>(3);
    // Step sizes large enough that the Hessian term moves the meta-gradient clearly.
    let n = kind.len(<SinusoidNet>::PARAMS, <SinusoidNet>::LAYERS, STEPS);
    let alpha = match kind {
        AlphaKind::Scalar => vec![0.05],
        _ => (0..n)
            .map(|k| 0.02 + 0.06 * ((k * 7919 % 101) as f32 / 100.0))
            .collect(),
    };
    Case {
        theta,
        kind,
        alpha,
        task: sinusoid_task::<K>(11, 5),
    }
}

impl Case {
    fn alpha64(&self) -> Vec<f64> {
        self.alpha.iter().map(|&v| f64::from(v)).collect()
    }
}

type Kept = <SinusoidNet as Layers<f32, 1, 1>>::Transposed;

/// The f32 meta-gradient of a case (with `θ0`'s transpose `kept` when given): query loss,
/// `θ0`'s and `α`'s gradients.
fn meta_grad_f32(
    c: &Case,
    second_order: bool,
    kept: Option<&Kept>,
) -> (f32, SinusoidNet, Vec<f32>) {
    let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
    let (mut g, mut ga) = (<SinusoidNet>::zeros(), vec![0.0; c.alpha.len()]);
    let theta: SinusoidNet = from_flat(&c.theta);
    let l = task_meta_grad(
        &theta,
        kept,
        &c.alpha,
        &c.task,
        inner(c.kind),
        second_order,
        &mut ws,
        &mut g,
        Some(&mut ga),
    );
    (l, g, ga)
}

fn analytic_f32(c: &Case, second_order: bool) -> (Vec<f64>, Vec<f64>) {
    let (_, g, ga) = meta_grad_f32(c, second_order, None);
    let to64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect();
    (to64(flat(&g)), to64(ga))
}

#[test]
fn maml_second_order_meta_gradient_matches_f64_finite_differences() {
    let c = case(AlphaKind::Scalar);
    let task = task64(&c.task);
    let theta: Vec<f64> = c.theta.iter().map(|&v| f64::from(v)).collect();
    let alpha = c.alpha64();
    let mut ws = Workspace::new(STEPS);
    let fd = central(&theta, |t| loss64(t, (c.kind, &alpha), &task, &mut ws));
    let (second, _) = analytic_f32(&c, true);
    let (first, _) = analytic_f32(&c, false);
    let err = rel_err(&second, &fd);
    let fo_gap = rel_err(&first, &fd);
    println!("MAML: relative error {err:.2e}; first-order differs by {fo_gap:.2e}");
    assert!(
        fo_gap > 1e-2,
        "first-order gradient too close ({fo_gap:.2e}) for the check to test the Hessian term"
    );
    assert!(
        err <= 1e-5,
        "second-order meta-gradient relative error {err:.2e}"
    );
}

/// Checks `θ0`'s and every stored α's meta-gradient of a case with learned step sizes
/// against central differences (relative errors at most 1e-5), and that the first-order
/// gradient is far enough off for the check to test the Hessian term.
fn learned_alpha_gradients_match(kind: AlphaKind) {
    let c = case(kind);
    let task = task64(&c.task);
    let theta: Vec<f64> = c.theta.iter().map(|&v| f64::from(v)).collect();
    let alpha = c.alpha64();
    let mut ws = Workspace::new(STEPS);
    let fd_theta = central(&theta, |t| loss64(t, (kind, &alpha), &task, &mut ws));
    let fd_alpha = central(&alpha, |a| loss64(&theta, (kind, a), &task, &mut ws));
    let (g_theta, g_alpha) = analytic_f32(&c, true);
    let (first, _) = analytic_f32(&c, false);
    let (e_theta, e_alpha) = (rel_err(&g_theta, &fd_theta), rel_err(&g_alpha, &fd_alpha));
    println!("{kind:?}: θ0 relative error {e_theta:.2e}, α relative error {e_alpha:.2e}");
    assert!(rel_err(&first, &fd_theta) > 1e-2);
    assert!(
        e_theta <= 1e-5,
        "{kind:?}: θ0 meta-gradient relative error {e_theta:.2e}"
    );
    assert!(
        e_alpha <= 1e-5,
        "{kind:?}: α meta-gradient relative error {e_alpha:.2e}"
    );
}

#[test]
fn lslr_alpha_gradient_matches_f64_finite_differences() {
    // One α per layer and step (3 layers × 2 steps): each step's gradient goes to its own.
    learned_alpha_gradients_match(AlphaKind::PerLayerPerStep);
}

#[test]
fn metasgd_alpha_gradient_matches_f64_finite_differences() {
    learned_alpha_gradients_match(AlphaKind::PerParameter);
}

#[test]
fn the_inner_loop_is_the_device_adaptation() {
    // The trainer's inner loop and the device adapter take bit-identical steps, with every
    // kind of step size.
    for (algorithm, kind) in [
        (Algorithm::Maml, AlphaKind::Scalar),
        (Algorithm::MetaSgd, AlphaKind::PerParameter),
        (Algorithm::Lslr, AlphaKind::PerLayerPerStep),
    ] {
        let steps = the_inner_loop_is_the_device_adaptation_with(algorithm, kind, f32::INFINITY);
        assert_eq!(steps, STEPS as u16);
    }
}

#[test]
fn a_step_above_the_loss_bound_is_undone_in_training_as_on_the_device() {
    // Every support loss is above this bound: the device's guard undoes the first step and
    // stops, and the trainer's inner loop trains from θ0 as the device would adapt.
    let steps =
        the_inner_loop_is_the_device_adaptation_with(Algorithm::Maml, AlphaKind::Scalar, 1e-6);
    assert_eq!(steps, 0);
}

/// Adapts a case on the device and in the trainer's inner loop with `w*`'s `loss_bound`;
/// fails unless the query loss is the same bits. Returns the steps the device took.
fn the_inner_loop_is_the_device_adaptation_with(
    algorithm: Algorithm,
    kind: AlphaKind,
    loss_bound: f32,
) -> u16 {
    let c = case(kind);
    let meta = {
        let mut m = shared::wstar::Meta::new::<SinusoidNet, 1, 1>(Loss::Mse, STEPS as u16);
        (m.algorithm, m.alpha) = (algorithm, kind);
        m.trained_k = K as u16;
        m.loss_bound = loss_bound;
        m
    };
    let blob =
        shared::wstar::encode(&meta, &c.theta, &c.alpha, &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    let mut adapter = device::Adapter::<SinusoidNet, 1, 1, K>::new(&blob).unwrap();
    for j in 0..K {
        adapter
            .push(device::Sample {
                x: [c.task.xs[j]],
                y: [c.task.ys[j]],
            })
            .unwrap();
    }
    let report = adapter.adapt().unwrap();
    let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
    let mut g = <SinusoidNet>::zeros();
    let theta: SinusoidNet = from_flat(&c.theta);
    let q = task_meta_grad(
        &theta,
        None,
        &c.alpha,
        &c.task,
        bounded(kind, loss_bound),
        false,
        &mut ws,
        &mut g,
        None,
    );
    // Query loss from the trainer equals the device's loss on the query points.
    let mut out = SMatrix::<f32, 1, K>::zeros();
    for j in 0..K {
        out[j] = adapter.predict(&[c.task.xq[j]]).unwrap()[0];
    }
    let mut cache = <SinusoidNet>::new_cache::<K>();
    let direct = adapter.params().forward(&c.task.xq, &mut cache);
    assert_eq!(
        out, direct,
        "per-sample prediction equals the batched forward pass"
    );
    assert_eq!(
        Loss::Mse.value_grad(&out, &c.task.yq, K, None),
        q,
        "{algorithm:?}"
    );
    report.steps
}

/// Keeping `θ0`'s transposed weights across tasks, as the trainer does, changes no bit of any
/// algorithm's meta-gradient, loss or Reptile direction.
#[test]
fn the_kept_transpose_of_theta0_gives_the_same_bits() {
    use meta_train::algo::task_reptile_grad;
    let bits = |m: &SinusoidNet| flat(m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for kind in [
        AlphaKind::Scalar,
        AlphaKind::PerParameter,
        AlphaKind::PerLayerPerStep,
    ] {
        let c = case(kind);
        let theta: SinusoidNet = from_flat(&c.theta);
        let kept = theta.transposed();
        for second_order in [false, true] {
            let run = |t: Option<&Kept>| {
                let (l, g, ga) = meta_grad_f32(&c, second_order, t);
                let ga: Vec<u32> = ga.iter().map(|v| v.to_bits()).collect();
                (l.to_bits(), bits(&g), ga)
            };
            assert_eq!(run(None), run(Some(&kept)), "second order: {second_order}");
        }
        let reptile = |t: Option<&Kept>| {
            let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
            let mut g = <SinusoidNet>::zeros();
            let l = task_reptile_grad(&theta, t, &c.alpha, &c.task, inner(c.kind), &mut ws, &mut g);
            (l.to_bits(), bits(&g))
        };
        assert_eq!(reptile(None), reptile(Some(&kept)));
    }
}
