//! The second-order meta-gradients (MAML through every inner step, Meta-SGD's α-gradient)
//! against f64 central differences of the whole inner-loop-then-query loss.

use meta_train::algo::{task_meta_grad, Inner, Task, Workspace};
use meta_train::model::SinusoidNet;
use meta_train::train::{init_theta, sinusoid_task};
use nalgebra::SMatrix;
use shared::inner::AdaptMask;
use shared::loss::Loss;
use shared::math::Real;
use shared::model::{Layers, Mlp2, Params};

type Net<T> = Mlp2<T, 1, 40, 40, 1>;
const K: usize = 10;
const STEPS: usize = 2;

fn inner() -> Inner {
    Inner {
        steps: STEPS,
        mask: AdaptMask::ALL,
        loss: Loss::Mse,
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
    alpha: &[f64],
    task: &Task<f64, 1, 1, K>,
    ws: &mut Workspace<f64, Net<f64>, 1, 1, K>,
) -> f64 {
    let mut g = Net::<f64>::zeros();
    task_meta_grad(
        &from_flat::<f64, Net<f64>>(theta),
        None,
        alpha,
        task,
        inner(),
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
    alpha: Vec<f32>,
    task: Task<f32, 1, 1, K>,
}

fn case(per_parameter: bool) -> Case {
    let theta = init_theta::<SinusoidNet, 1, 1>(3);
    // Step sizes large enough that the Hessian term moves the meta-gradient clearly.
    let alpha = if per_parameter {
        (0..<SinusoidNet>::PARAMS)
            .map(|k| 0.02 + 0.06 * ((k * 7919 % 101) as f32 / 100.0))
            .collect()
    } else {
        vec![0.05]
    };
    Case {
        theta,
        alpha,
        task: sinusoid_task::<K>(11, 5),
    }
}

type Kept = <SinusoidNet as Layers<f32, 1, 1>>::Transposed;

/// The f32 meta-gradient of a case (with `θ0`'s transpose `kept` when given): query loss,
/// `θ0`'s and `α`'s gradients.
fn meta_grad_f32(
    c: &Case,
    second_order: bool,
    kept: Option<&Kept>,
) -> (f32, SinusoidNet, SinusoidNet) {
    let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
    let (mut g, mut ga) = (<SinusoidNet>::zeros(), <SinusoidNet>::zeros());
    let theta: SinusoidNet = from_flat(&c.theta);
    let l = task_meta_grad(
        &theta,
        kept,
        &c.alpha,
        &c.task,
        inner(),
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
    (to64(flat(&g)), to64(flat(&ga)))
}

#[test]
fn maml_second_order_meta_gradient_matches_f64_finite_differences() {
    let c = case(false);
    let task = task64(&c.task);
    let theta: Vec<f64> = c.theta.iter().map(|&v| f64::from(v)).collect();
    let alpha = [f64::from(c.alpha[0])];
    let mut ws = Workspace::new(STEPS);
    let fd = central(&theta, |t| loss64(t, &alpha, &task, &mut ws));
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

#[test]
fn metasgd_alpha_gradient_matches_f64_finite_differences() {
    let c = case(true);
    let task = task64(&c.task);
    let theta: Vec<f64> = c.theta.iter().map(|&v| f64::from(v)).collect();
    let alpha: Vec<f64> = c.alpha.iter().map(|&v| f64::from(v)).collect();
    let mut ws = Workspace::new(STEPS);
    let fd_theta = central(&theta, |t| loss64(t, &alpha, &task, &mut ws));
    let fd_alpha = central(&alpha, |a| loss64(&theta, a, &task, &mut ws));
    let (g_theta, g_alpha) = analytic_f32(&c, true);
    let (e_theta, e_alpha) = (rel_err(&g_theta, &fd_theta), rel_err(&g_alpha, &fd_alpha));
    let (first, _) = analytic_f32(&c, false);
    println!("Meta-SGD: θ0 relative error {e_theta:.2e}, α relative error {e_alpha:.2e}");
    assert!(rel_err(&first, &fd_theta) > 1e-2);
    assert!(
        e_theta <= 1e-5,
        "θ0 meta-gradient relative error {e_theta:.2e}"
    );
    assert!(
        e_alpha <= 1e-5,
        "α meta-gradient relative error {e_alpha:.2e}"
    );
}

#[test]
fn the_inner_loop_is_the_device_adaptation() {
    // The trainer's inner loop and the device adapter take bit-identical steps.
    let c = case(false);
    let meta = {
        let mut m = shared::wstar::Meta::new::<SinusoidNet, 1, 1>(Loss::Mse, STEPS as u16);
        m.trained_k = K as u16;
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
    adapter.adapt().unwrap();
    let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
    let mut g = <SinusoidNet>::zeros();
    let theta: SinusoidNet = from_flat(&c.theta);
    let q = task_meta_grad(
        &theta,
        None,
        &c.alpha,
        &c.task,
        inner(),
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
    assert_eq!(Loss::Mse.value_grad(&out, &c.task.yq, K, None), q);
}

/// Keeping `θ0`'s transposed weights across tasks, as the trainer does, changes no bit of any
/// algorithm's meta-gradient, loss or Reptile direction.
#[test]
fn the_kept_transpose_of_theta0_gives_the_same_bits() {
    use meta_train::algo::task_reptile_grad;
    let bits = |m: &SinusoidNet| flat(m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for per_parameter in [false, true] {
        let c = case(per_parameter);
        let theta: SinusoidNet = from_flat(&c.theta);
        let kept = theta.transposed();
        for second_order in [false, true] {
            let run = |t: Option<&Kept>| {
                let (l, g, ga) = meta_grad_f32(&c, second_order, t);
                (l.to_bits(), bits(&g), bits(&ga))
            };
            assert_eq!(run(None), run(Some(&kept)), "second order: {second_order}");
        }
        let reptile = |t: Option<&Kept>| {
            let mut ws = Workspace::<f32, SinusoidNet, 1, 1, K>::new(STEPS);
            let mut g = <SinusoidNet>::zeros();
            let l = task_reptile_grad(&theta, t, &c.alpha, &c.task, inner(), &mut ws, &mut g);
            (l.to_bits(), bits(&g))
        };
        assert_eq!(reptile(None), reptile(Some(&kept)));
    }
}
