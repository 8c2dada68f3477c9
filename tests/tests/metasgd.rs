//! A real Meta-SGD `w*` (tests/fixtures) learned step sizes that are large and negative. Run
//! for more steps than it was trained for, plain gradient descent from it diverges; the device
//! refuses those steps unless told to, and when told to, its divergence guard stops them.

use device::{AdaptError, Adapter, ExtraSteps, Sample, StepLimit};
use meta_train::eval::{held_out, EvalConfig};
use meta_train::model::SinusoidNet;
use nalgebra::SMatrix;
use shared::inner;
use shared::model::{Layers, Params};
use shared::wstar::{AlphaKind, Blob};

const BLOB: &[u8] = include_bytes!("../fixtures/metasgd-sinusoid-k10.bin");
const K: usize = 10;
const TASKS: usize = 100;

fn samples(index: usize) -> Vec<(f32, f32)> {
    held_out(
        &EvalConfig {
            tasks: TASKS,
            seed: 0,
            test_points: 1,
        },
        index,
        K,
    )
    .support
}

/// Support loss after each of `steps` plain inner steps, with no guard.
fn unguarded_losses(blob: &Blob<'_>, support: &[(f32, f32)], steps: usize) -> Vec<f32> {
    let x = SMatrix::<f32, 1, K>::from_fn(|_, j| support[j].0);
    let y = SMatrix::<f32, 1, K>::from_fn(|_, j| support[j].1);
    let mut theta = <SinusoidNet>::zeros();
    blob.load_theta0(&mut theta);
    let mut cache = <SinusoidNet>::new_cache::<K>();
    let mut dy = SMatrix::zeros();
    let mut losses = Vec::new();
    for _ in 0..=steps {
        let out = theta.forward(&x, &mut cache);
        losses.push(blob.meta.loss.value_grad(&out, &y, K, Some(&mut dy)));
        let mut next = <SinusoidNet>::zeros();
        theta.backward(&x, &mut cache, &dy, &mut next, None);
        inner::step(
            &theta,
            &mut next,
            |l, k| blob.step_alpha(l, k, 0),
            blob.meta.adapt,
        );
        theta = next;
    }
    losses
}

#[test]
fn learned_alpha_is_large_and_negative() {
    let blob = Blob::parse_for::<SinusoidNet, 1, 1>(BLOB).unwrap();
    assert_eq!(
        (blob.meta.alpha, blob.meta.steps),
        (AlphaKind::PerParameter, 1)
    );
    let alphas: Vec<f32> = (0..blob.alpha_len()).map(|k| blob.alpha(k)).collect();
    assert!(alphas.iter().any(|&a| a < -1.0), "some α strongly negative");
    assert!(
        alphas.iter().any(|&a| a > 1.0),
        "some α far above MAML's 0.01"
    );
}

#[test]
fn extra_steps_diverge_unguarded_are_refused_by_default_and_stopped_when_allowed() {
    let blob = Blob::parse_for::<SinusoidNet, 1, 1>(BLOB).unwrap();
    let (mut diverged, mut guarded) = (0, 0);
    for index in 0..TASKS {
        let support = samples(index);
        let plain = unguarded_losses(&blob, &support, 10);
        // The one trained step helps on (nearly) every task.
        let blow_up = plain[2..]
            .iter()
            .any(|&l| !(l.is_finite() && l < 100.0 * plain[0]));
        diverged += usize::from(blow_up);

        let mut a = Adapter::<SinusoidNet, 1, 1, K>::new(BLOB).unwrap();
        for &(x, y) in &support {
            a.push(Sample { x: [x], y: [y] }).unwrap();
        }
        let r = a.adapt().unwrap();
        assert_eq!((r.steps, r.undone), (1, None));
        assert_eq!(
            r.loss_after, plain[1],
            "the device's step is the plain step, bit for bit"
        );
        // More than w* was trained for: refused unless asked for.
        assert_eq!(
            a.adapt_steps(1, StepLimit::Trained),
            Err(AdaptError::TooManySteps {
                requested: 2,
                allowed: 1
            })
        );
        // Asked for: the loss never climbs past the trained step's, whatever the rule for
        // the extra steps. Without retries the guard stops at the first extra step that
        // raises it; with retries alone the step is shortened first, so that adaptation ends
        // no worse on the samples. (The default also grows its steps, which takes another
        // path: no such order holds for it.)
        let after_trained_step = |extra: ExtraSteps| {
            let mut b = Adapter::<SinusoidNet, 1, 1, K>::new(BLOB).unwrap();
            for &(x, y) in &support {
                b.push(Sample { x: [x], y: [y] }).unwrap();
            }
            b.adapt().unwrap();
            b.adapt_steps_with(9, StepLimit::Unchecked, extra).unwrap()
        };
        let stop = after_trained_step(ExtraSteps::STOP);
        let shorten = after_trained_step(ExtraSteps {
            growth: 0,
            ..ExtraSteps::DEFAULT
        });
        let more = a.adapt_steps(9, StepLimit::Unchecked).unwrap();
        let reference = plain[0].max(plain[1]);
        for r in [&stop, &shorten, &more] {
            assert!(
                r.loss_after.is_finite() && r.loss_after <= reference,
                "task {index}: {r:?}"
            );
        }
        assert!(
            shorten.loss_after <= stop.loss_after,
            "task {index}: {shorten:?} {stop:?}"
        );
        if blow_up {
            assert!(
                stop.undone.is_some(),
                "task {index}: diverging steps must be stopped: {plain:?} {stop:?}"
            );
        }
        guarded += usize::from(more.undone.is_some());
        assert!(a.predict(&[1.0]).unwrap()[0].is_finite());
    }
    println!("{diverged} of {TASKS} tasks diverge without the guard; the guard stopped {guarded}");
    assert!(
        diverged >= TASKS / 10,
        "only {diverged} of {TASKS} tasks diverge: the fixture no longer shows it"
    );
}
