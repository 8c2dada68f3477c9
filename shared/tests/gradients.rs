//! Gradient checks of the model code against finite differences (in `f64`), the `f32` path
//! against the `f64` one, the parameter order and shapes, and the inner-loop step rule.

use std::cell::RefCell;

use nalgebra::SMatrix;
use shared::inner::{step, AdaptMask};
use shared::loss::Loss;
use shared::math::Real;
use shared::model::{forward_macs, Dense, Hidden, Layers, Mlp1, Mlp2, Params};

/// Batch columns.
const K: usize = 4;
/// Valid columns; column `K - 1` is padding.
const N: usize = 3;
/// Finite-difference step.
const EPS: f64 = 1e-6;
/// Tolerance of the relative error norm of finite-difference checks.
const TOL: f64 = 1e-6;
/// The smallest |pre-activation| of a ReLU allowed in the data, so an `EPS` step never crosses
/// a kink.
const KINK_MARGIN: f64 = 1e-3;

const LOSSES: [Loss; 2] = [Loss::Mse, Loss::SoftmaxCrossEntropy];

// ---------------------------------------------------------------------------------------------
// Helpers.

fn flat<T: Real, P: Params<T>>(p: &P) -> Vec<T> {
    let mut v = Vec::with_capacity(P::PARAMS);
    p.for_each(&mut |_, s| v.extend_from_slice(s));
    v
}

fn from_flat<T: Real, P: Params<T>>(v: &[T]) -> P {
    assert_eq!(v.len(), P::PARAMS);
    let mut p = P::zeros();
    p.fill_with(|k| v[k]);
    p
}

fn layer_of_index<T: Real, P: Params<T>>() -> Vec<usize> {
    let mut v = Vec::new();
    P::zeros().for_each(&mut |l, s| v.extend(std::iter::repeat_n(l, s.len())));
    v
}

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// `‖a − b‖ / ‖b‖`; `b` must not be zero (a check against zero checks nothing).
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let nb = norm(b);
    assert!(nb > 1e-8, "reference is (almost) zero: {nb}");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&d) / nb
}

/// Deterministic parameters: `scale · sin(1.7 k + seed)`.
fn model<M: Params<f64>>(seed: f64, scale: f64) -> M {
    let mut m = M::zeros();
    m.fill_with(|k| scale * (1.7 * k as f64 + seed).sin());
    m
}

/// Inputs and targets for `N` valid columns, padding column zero (as the device pads).
fn data<const I: usize, const O: usize>(
    loss: Loss,
    seed: f64,
) -> (SMatrix<f64, I, K>, SMatrix<f64, O, K>) {
    let x = SMatrix::<f64, I, K>::from_fn(|i, j| {
        if j < N {
            1.3 * (0.9 * i as f64 + 2.1 * j as f64 + seed).sin()
        } else {
            0.0
        }
    });
    let y = SMatrix::<f64, O, K>::from_fn(|i, j| {
        if j >= N {
            return 0.0;
        }
        match loss {
            Loss::Mse => (0.7 * i as f64 - 1.1 * j as f64 + seed).cos(),
            Loss::SoftmaxCrossEntropy => {
                if i == (2 * j + 1) % O {
                    1.0
                } else {
                    0.0
                }
            }
        }
    });
    (x, y)
}

fn loss_at<M: Layers<f64, I, O>, const I: usize, const O: usize>(
    m: &M,
    x: &SMatrix<f64, I, K>,
    y: &SMatrix<f64, O, K>,
    loss: Loss,
) -> f64 {
    let mut c = M::new_cache::<K>();
    let out = m.forward(x, &mut c);
    loss.value_grad(&out, y, N, None)
}

/// Loss, `∂L/∂θ` and `∂L/∂x`.
fn grad_at<T: Real, M: Layers<T, I, O>, const I: usize, const O: usize>(
    m: &M,
    x: &SMatrix<T, I, K>,
    y: &SMatrix<T, O, K>,
    loss: Loss,
) -> (T, M, SMatrix<T, I, K>) {
    let mut c = M::new_cache::<K>();
    let out = m.forward(x, &mut c);
    let mut dy = SMatrix::<T, O, K>::zeros();
    let l = loss.value_grad(&out, y, N, Some(&mut dy));
    let (mut g, mut dx) = (M::zeros(), SMatrix::zeros());
    m.backward(x, &mut c, &dy, &mut g, Some(&mut dx));
    (l, g, dx)
}

/// `H·u` (and the R-derivative of `∂L/∂x` along `rx`).
fn hvp_at<M: Layers<f64, I, O>, const I: usize, const O: usize>(
    m: &M,
    u: &M,
    x: &SMatrix<f64, I, K>,
    rx: Option<&SMatrix<f64, I, K>>,
    y: &SMatrix<f64, O, K>,
    loss: Loss,
) -> (M, SMatrix<f64, I, K>) {
    let mut c = M::new_cache::<K>();
    let out = m.forward(x, &mut c);
    let mut dy = SMatrix::<f64, O, K>::zeros();
    loss.value_grad(&out, y, N, Some(&mut dy));
    let mut g = M::zeros();
    m.backward(x, &mut c, &dy, &mut g, None);
    let mut hv = M::zeros();
    // A non-zero start checks that `hvp` overwrites `hv`.
    hv.fill_with(|k| 1e3 + k as f64);
    let rdx = m.hvp(u, x, rx, &c, &mut |r| loss.r_grad(&out, r, N), &mut hv);
    (hv, rdx)
}

/// The smallest |pre-activation| of any ReLU over the valid columns.
trait Kinks<const I: usize> {
    fn min_abs_z(&self, x: &SMatrix<f64, I, K>) -> f64;
}

impl<const I: usize, const O: usize> Kinks<I> for Dense<f64, I, O> {
    fn min_abs_z(&self, _: &SMatrix<f64, I, K>) -> f64 {
        f64::INFINITY
    }
}

impl<const I: usize, const H: usize, const O: usize, R: Kinks<H>> Kinks<I>
    for Hidden<f64, I, H, O, R>
{
    fn min_abs_z(&self, x: &SMatrix<f64, I, K>) -> f64 {
        let z = self.layer.affine(x);
        let mut m = f64::INFINITY;
        for j in 0..N {
            for i in 0..H {
                m = m.min(z[(i, j)].abs());
            }
        }
        let a = z.map(|v| v.max(0.0));
        m.min(self.rest.min_abs_z(&a))
    }
}

fn assert_clear_of_kinks<M: Kinks<I>, const I: usize>(m: &M, x: &SMatrix<f64, I, K>) {
    let z = m.min_abs_z(x);
    assert!(
        z >= KINK_MARGIN,
        "test data lies within {z} of a ReLU kink: choose another seed"
    );
}

// ---------------------------------------------------------------------------------------------
// Gradient checks.

fn check_backward<M, const I: usize, const O: usize>(seed: f64)
where
    M: Layers<f64, I, O> + Kinks<I>,
{
    for loss in LOSSES {
        let m: M = model(seed, 0.8);
        let (x, y) = data::<I, O>(loss, seed);
        assert_clear_of_kinks(&m, &x);

        let (l, g, dx) = grad_at(&m, &x, &y, loss);
        assert_eq!(l, loss_at(&m, &x, &y, loss), "{loss:?}: value_grad value");

        // ∂L/∂θ against central differences, every parameter.
        let theta = flat(&m);
        let mut fd = vec![0.0; M::PARAMS];
        for k in 0..M::PARAMS {
            let mut p = theta.clone();
            p[k] = theta[k] + EPS;
            let lp = loss_at(&from_flat::<f64, M>(&p), &x, &y, loss);
            p[k] = theta[k] - EPS;
            let lm = loss_at(&from_flat::<f64, M>(&p), &x, &y, loss);
            fd[k] = (lp - lm) / (2.0 * EPS);
        }
        let e = rel_err(&flat(&g), &fd);
        assert!(e <= TOL, "{loss:?}: dθ relative error {e}");
        // Each layer's own slice too, so a small layer cannot hide in a big norm.
        let layers = layer_of_index::<f64, M>();
        let gf = flat(&g);
        for l in 0..M::LAYERS {
            let (a, b): (Vec<f64>, Vec<f64>) = (0..M::PARAMS)
                .filter(|&k| layers[k] == l)
                .map(|k| (gf[k], fd[k]))
                .unzip();
            let e = rel_err(&a, &b);
            assert!(e <= TOL, "{loss:?}: layer {l} dθ relative error {e}");
        }

        // ∂L/∂x against central differences, every entry including the padding column.
        let mut fdx = SMatrix::<f64, I, K>::zeros();
        for j in 0..K {
            for i in 0..I {
                let mut xp = x;
                xp[(i, j)] += EPS;
                let lp = loss_at(&m, &xp, &y, loss);
                xp[(i, j)] = x[(i, j)] - EPS;
                let lm = loss_at(&m, &xp, &y, loss);
                fdx[(i, j)] = (lp - lm) / (2.0 * EPS);
            }
        }
        let e = rel_err(dx.as_slice(), fdx.as_slice());
        assert!(e <= TOL, "{loss:?}: dx relative error {e}");
        for i in 0..I {
            assert_eq!(dx[(i, K - 1)], 0.0, "{loss:?}: dx of the padding column");
        }

        // Without `dx`, the same parameter gradient.
        let mut c = M::new_cache::<K>();
        let out = m.forward(&x, &mut c);
        let mut dy = SMatrix::<f64, O, K>::zeros();
        loss.value_grad(&out, &y, N, Some(&mut dy));
        let mut g2 = M::zeros();
        g2.fill_with(|k| -7.0 - k as f64); // backward must overwrite, not accumulate
        m.backward(&x, &mut c, &dy, &mut g2, None);
        assert_eq!(
            flat(&g2),
            flat(&g),
            "{loss:?}: gradient depends on asking for dx"
        );
    }
}

fn check_padding_ignored<M, const I: usize, const O: usize>(seed: f64)
where
    M: Layers<f64, I, O> + Kinks<I>,
{
    for loss in LOSSES {
        let m: M = model(seed, 0.8);
        let (x, y) = data::<I, O>(loss, seed);
        let (mut x2, mut y2) = (x, y);
        for i in 0..I {
            x2[(i, K - 1)] = 37.0 - 11.0 * i as f64;
        }
        for i in 0..O {
            y2[(i, K - 1)] = if i == 0 { 1.0 } else { -25.0 * i as f64 };
        }
        assert_ne!(x, x2);
        let (l, g, dx) = grad_at(&m, &x, &y, loss);
        let (l2, g2, dx2) = grad_at(&m, &x2, &y2, loss);
        assert_eq!(
            l.to_bits(),
            l2.to_bits(),
            "{loss:?}: padding moved the loss"
        );
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        assert_eq!(
            bits(flat(&g)),
            bits(flat(&g2)),
            "{loss:?}: padding moved dθ"
        );
        assert_eq!(dx, dx2, "{loss:?}: padding moved dx");

        let u: M = model(seed + 0.5, 1.0);
        let (hv, _) = hvp_at(&m, &u, &x, None, &y, loss);
        let (hv2, _) = hvp_at(&m, &u, &x2, None, &y2, loss);
        assert_eq!(flat(&hv), flat(&hv2), "{loss:?}: padding moved H·u");
    }
}

fn check_hvp<M, const I: usize, const O: usize>(seed: f64)
where
    M: Layers<f64, I, O> + Kinks<I>,
{
    for loss in LOSSES {
        let m: M = model(seed, 0.8);
        let (x, y) = data::<I, O>(loss, seed);
        assert_clear_of_kinks(&m, &x);
        let u: M = model(seed + 0.5, 1.0);
        let v: M = model(seed - 1.25, 1.0);

        // Parameter direction only: H·u against central differences of the gradient.
        let (hv, rdx) = hvp_at(&m, &u, &x, None, &y, loss);
        assert_eq!(
            rdx,
            SMatrix::<f64, I, K>::zeros(),
            "no input direction: zeros"
        );
        let mut plus = m.clone();
        plus.add_scaled(EPS, &u);
        let mut minus = m.clone();
        minus.add_scaled(-EPS, &u);
        assert_clear_of_kinks(&plus, &x);
        assert_clear_of_kinks(&minus, &x);
        let (_, gp, _) = grad_at(&plus, &x, &y, loss);
        let (_, gm, _) = grad_at(&minus, &x, &y, loss);
        let fd: Vec<f64> = flat(&gp)
            .iter()
            .zip(flat(&gm))
            .map(|(a, b)| (a - b) / (2.0 * EPS))
            .collect();
        let e = rel_err(&flat(&hv), &fd);
        assert!(e <= TOL, "{loss:?}: H·u relative error {e}");

        // The Hessian is symmetric: v·(H u) = u·(H v).
        let (hv_v, _) = hvp_at(&m, &v, &x, None, &y, loss);
        let dot = |a: &M, b: &M| -> f64 { flat(a).iter().zip(flat(b)).map(|(p, q)| p * q).sum() };
        let (vhu, uhv) = (dot(&v, &hv), dot(&u, &hv_v));
        assert!(
            (vhu - uhv).abs() <= 1e-10 * vhu.abs().max(uhv.abs()).max(1.0),
            "{loss:?}: v·Hu = {vhu}, u·Hv = {uhv}"
        );

        // Joint direction (u in θ, rx in x): both H·u and R{∂L/∂x}.
        let rx = SMatrix::<f64, I, K>::from_fn(|i, j| (0.3 * i as f64 + 1.9 * j as f64).cos());
        let (hv, rdx) = hvp_at(&m, &u, &x, Some(&rx), &y, loss);
        let (xp, xm) = (x + rx * EPS, x - rx * EPS);
        assert_clear_of_kinks(&plus, &xp);
        assert_clear_of_kinks(&minus, &xm);
        let (_, gp, dxp) = grad_at(&plus, &xp, &y, loss);
        let (_, gm, dxm) = grad_at(&minus, &xm, &y, loss);
        let fd: Vec<f64> = flat(&gp)
            .iter()
            .zip(flat(&gm))
            .map(|(a, b)| (a - b) / (2.0 * EPS))
            .collect();
        let e = rel_err(&flat(&hv), &fd);
        assert!(e <= TOL, "{loss:?}: H·(u, rx) relative error {e}");
        let fdx = (dxp - dxm) / (2.0 * EPS);
        let e = rel_err(rdx.as_slice(), fdx.as_slice());
        assert!(e <= TOL, "{loss:?}: R{{dx}} relative error {e}");
    }
}

type D = Dense<f64, 3, 2>;
type M1 = Mlp1<f64, 3, 6, 2>;
type M2 = Mlp2<f64, 3, 7, 5, 2>;

#[test]
fn dense_backward_matches_finite_differences() {
    check_backward::<D, 3, 2>(0.3);
}

#[test]
fn mlp1_backward_matches_finite_differences() {
    check_backward::<M1, 3, 2>(0.3);
}

#[test]
fn mlp2_backward_matches_finite_differences() {
    check_backward::<M2, 3, 2>(0.3);
}

#[test]
fn mlp2_wide_output_backward_matches_finite_differences() {
    // O = 4 exercises the softmax over more than two classes.
    check_backward::<Mlp2<f64, 2, 6, 9, 4>, 2, 4>(1.4);
}

#[test]
fn padding_column_never_moves_loss_or_gradients() {
    check_padding_ignored::<D, 3, 2>(0.3);
    check_padding_ignored::<M1, 3, 2>(0.3);
    check_padding_ignored::<M2, 3, 2>(0.3);
}

#[test]
fn dense_hvp_matches_finite_differences() {
    check_hvp::<D, 3, 2>(0.3);
}

#[test]
fn mlp1_hvp_matches_finite_differences() {
    check_hvp::<M1, 3, 2>(0.3);
}

#[test]
fn mlp2_hvp_matches_finite_differences() {
    check_hvp::<M2, 3, 2>(0.3);
    check_hvp::<Mlp2<f64, 2, 6, 9, 4>, 2, 4>(1.4);
}

/// The `f32` gradient (micromath `exp`/`ln`) against the `f64` one on the same parameters.
fn check_f32<M32, M64, const I: usize, const O: usize>(seed: f64)
where
    M32: Layers<f32, I, O>,
    M64: Layers<f64, I, O> + Kinks<I>,
{
    for loss in LOSSES {
        let m64: M64 = model(seed, 0.8);
        let v32: Vec<f32> = flat(&m64).iter().map(|&v| v as f32).collect();
        let m32: M32 = from_flat(&v32);
        let m64: M64 = from_flat(&v32.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let (x, y) = data::<I, O>(loss, seed);
        let (x32, y32) = (x.map(|v| v as f32), y.map(|v| v as f32));
        let (x, y) = (x32.map(f64::from), y32.map(f64::from));
        assert_clear_of_kinks(&m64, &x);

        // MSE is plain f32 arithmetic (measured ~1e-7); cross-entropy goes through micromath's
        // exp (gradients measured ~1.5e-5) and ln, whose error is absolute (~1e-4 in the loss).
        let (tol_loss, tol_grad) = match loss {
            Loss::Mse => (1e-6, 1e-6),
            Loss::SoftmaxCrossEntropy => (3e-4, 1e-4),
        };
        let (l32, g32, dx32) = grad_at(&m32, &x32, &y32, loss);
        let (l64, g64, dx64) = grad_at(&m64, &x, &y, loss);
        let err = ((l32 as f64) - l64).abs() / l64.abs().max(1.0);
        assert!(err <= tol_loss, "{loss:?}: f32 loss {l32} vs f64 {l64}");
        let g32: Vec<f64> = flat(&g32).iter().map(|&v| v as f64).collect();
        let e = rel_err(&g32, &flat(&g64));
        assert!(e <= tol_grad, "{loss:?}: f32 dθ relative error {e}");
        let dx32: Vec<f64> = dx32.iter().map(|&v| v as f64).collect();
        let e = rel_err(&dx32, dx64.as_slice());
        assert!(e <= tol_grad, "{loss:?}: f32 dx relative error {e}");
    }
}

#[test]
fn f32_gradients_agree_with_f64() {
    check_f32::<Dense<f32, 3, 2>, D, 3, 2>(0.3);
    check_f32::<Mlp1<f32, 3, 6, 2>, M1, 3, 2>(0.3);
    check_f32::<Mlp2<f32, 3, 7, 5, 2>, M2, 3, 2>(0.3);
}

// ---------------------------------------------------------------------------------------------
// Losses.

#[test]
fn loss_values_match_closed_forms() {
    let out =
        SMatrix::<f64, 2, K>::from_column_slice(&[0.5, -1.0, 2.0, 0.0, -0.25, 1.5, 99.0, 99.0]);
    let y = SMatrix::<f64, 2, K>::from_column_slice(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    // MSE over the N·O valid entries.
    let sq: f64 = [
        (0.5f64 - 1.0),
        (-1.0 - 0.0),
        (2.0 - 0.0),
        (0.0 - 1.0),
        (-0.25 - 1.0),
        (1.5 - 0.0),
    ]
    .iter()
    .map(|d| d * d)
    .sum();
    let mse = Loss::Mse.value_grad(&out, &y, N, None);
    assert!((mse - sq / 6.0).abs() < 1e-15, "{mse}");
    // Cross-entropy: mean over samples of −log softmax[target].
    let ce = Loss::SoftmaxCrossEntropy.value_grad(&out, &y, N, None);
    let nll = |o: [f64; 2], t: usize| -> f64 {
        let lse = (o[0].exp() + o[1].exp()).ln();
        lse - o[t]
    };
    let want = (nll([0.5, -1.0], 0) + nll([2.0, 0.0], 1) + nll([-0.25, 1.5], 0)) / 3.0;
    assert!((ce - want).abs() < 1e-14, "{ce} vs {want}");
    // Large logits stay finite (the softmax subtracts the max).
    let big =
        SMatrix::<f64, 2, K>::from_column_slice(&[0.0, 1000.0, 0.0, 1000.0, 5.0, 5.0, 0.0, 0.0]);
    let ce = Loss::SoftmaxCrossEntropy.value_grad(&big, &y, N, None);
    assert!((ce - (1000.0 + 2f64.ln()) / 3.0).abs() < 1e-9, "{ce}");
    let big32 = big.map(|v| v as f32);
    let y32 = y.map(|v| v as f32);
    let mut g = SMatrix::<f32, 2, K>::zeros();
    let ce32 = Loss::SoftmaxCrossEntropy.value_grad(&big32, &y32, N, Some(&mut g));
    assert!(
        ce32.is_finite() && g.iter().all(|v| v.is_finite()),
        "{ce32}"
    );
}

// ---------------------------------------------------------------------------------------------
// Parameter order and shapes.

#[test]
fn params_visit_layers_in_order_weights_column_major_then_biases() {
    type Net = Mlp2<f64, 3, 7, 5, 2>;
    assert_eq!(Net::LAYERS, 3);
    assert_eq!(Net::PARAMS, 3 * 7 + 7 + 7 * 5 + 5 + 5 * 2 + 2);
    let mut net = Net::zeros();
    net.fill_with(|k| k as f64);
    // Layer 0: W (7×3) column-major, then b.
    assert_eq!(net.layer.w[(0, 0)], 0.0);
    assert_eq!(net.layer.w[(1, 0)], 1.0);
    assert_eq!(net.layer.w[(0, 1)], 7.0);
    assert_eq!(net.layer.w[(6, 2)], 20.0);
    assert_eq!(net.layer.b[0], 21.0);
    assert_eq!(net.layer.b[6], 27.0);
    // Layer 1: W (5×7), then b.
    assert_eq!(net.rest.layer.w[(0, 0)], 28.0);
    assert_eq!(net.rest.layer.w[(4, 6)], 28.0 + 34.0);
    assert_eq!(net.rest.layer.b[0], 63.0);
    // Layer 2 (output): W (2×5), then b.
    assert_eq!(net.rest.rest.w[(1, 0)], 69.0);
    assert_eq!(net.rest.rest.b[1], 79.0);
    assert_eq!(flat(&net), (0..80).map(|k| k as f64).collect::<Vec<_>>());
    let layers = layer_of_index::<f64, Net>();
    assert_eq!(layers.iter().filter(|&&l| l == 0).count(), 28);
    assert_eq!(layers.iter().filter(|&&l| l == 1).count(), 40);
    assert_eq!(layers.iter().filter(|&&l| l == 2).count(), 12);
    assert!(layers.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(net.first_non_finite(), None);
    net.rest.layer.b[2] = f64::NAN;
    assert_eq!(net.first_non_finite(), Some(65));
}

fn widths<M: Layers<f32, I, O>, const I: usize, const O: usize>() -> Vec<usize> {
    let mut v = Vec::new();
    M::shape(&mut |w| v.push(w));
    v
}

#[test]
fn shape_lists_every_layer_width() {
    assert_eq!(widths::<Dense<f32, 3, 2>, 3, 2>(), [3, 2]);
    assert_eq!(widths::<Mlp1<f32, 1, 4, 1>, 1, 1>(), [1, 4, 1]);
    assert_eq!(widths::<Mlp2<f32, 3, 7, 5, 2>, 3, 2>(), [3, 7, 5, 2]);
    assert_eq!(
        forward_macs::<Mlp2<f32, 3, 7, 5, 2>, 3, 2>(4),
        4 * (3 * 7 + 7 * 5 + 5 * 2)
    );
}

#[test]
fn forward_matches_a_hand_written_mlp() {
    let m: M2 = model(0.9, 0.8);
    let (x, _) = data::<3, 2>(Loss::Mse, 0.9);
    let mut c = M2::new_cache::<K>();
    let out = m.forward(&x, &mut c);
    let relu = |v: f64| v.max(0.0);
    for j in 0..K {
        let xj = x.column(j);
        let a1 = (m.layer.w * xj + m.layer.b).map(relu);
        let a2 = (m.rest.layer.w * a1 + m.rest.layer.b).map(relu);
        let o = m.rest.rest.w * a2 + m.rest.rest.b;
        for i in 0..2 {
            assert!((out[(i, j)] - o[i]).abs() < 1e-12, "out[{i},{j}]");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The inner step.

#[test]
fn inner_step_adapts_masked_layers_with_per_index_alpha() {
    type Net = Mlp2<f32, 3, 7, 5, 2>;
    let layers = layer_of_index::<f32, Net>();
    let mut theta = Net::zeros();
    theta.fill_with(|k| (0.37 * k as f32).sin());
    let mut grad = Net::zeros();
    grad.fill_with(|k| (1.3 * k as f32 + 0.2).cos());
    let alpha_of = |layer: usize, k: usize| 0.01 * (k as f32 + 1.0) + 0.5 * layer as f32;

    for mask in [
        AdaptMask::ALL,
        AdaptMask::head_only(3),
        AdaptMask(0b101),
        AdaptMask(0b010),
        AdaptMask(0),
    ] {
        let calls = RefCell::new(Vec::new());
        let mut next = grad.clone();
        step(
            &theta,
            &mut next,
            |layer, k| {
                calls.borrow_mut().push((layer, k));
                alpha_of(layer, k)
            },
            mask,
        );
        let (t, g, n) = (flat(&theta), flat(&grad), flat(&next));
        let mut want_calls = Vec::new();
        for k in 0..Net::PARAMS {
            let l = layers[k];
            if mask.adapts(l) {
                let want = t[k] - alpha_of(l, k) * g[k];
                assert_eq!(n[k].to_bits(), want.to_bits(), "{mask:?} k={k}");
                assert_ne!(n[k], t[k], "{mask:?} k={k}: adapted parameter unchanged");
                want_calls.push((l, k));
            } else {
                assert_eq!(
                    n[k].to_bits(),
                    t[k].to_bits(),
                    "{mask:?} k={k}: masked layer moved"
                );
            }
        }
        // α is asked for exactly the adapted parameters, with their flat index and layer.
        assert_eq!(calls.into_inner(), want_calls, "{mask:?}");
    }
}

#[test]
fn adapt_mask_bits() {
    assert!(AdaptMask::head_only(1).adapts(0));
    assert!(!AdaptMask::head_only(3).adapts(3));
    assert!(AdaptMask(0b101).adapts(2) && !AdaptMask(0b101).adapts(1));
    assert!(AdaptMask::ALL.adapts(31));
    assert!(!AdaptMask::ALL.adapts(32), "no bit for layer 32");
    assert!(!AdaptMask(0).adapts(0));
}
