//! The device adapter: sample intake, the step budget, the divergence guard, reset,
//! normalisation and bit-exact agreement with a reference inner loop built from `shared`.

use device::{
    AdaptError, Adapter, BlobError, ExtraSteps, Guard, PushError, PushErrorKind, Sample, StepLimit,
};
use nalgebra::SMatrix;
use shared::inner::{self, AdaptMask};
use shared::loss::Loss;
use shared::model::{Layers, Mlp1, Params};
use shared::wstar::{encode, AlphaKind, Blob, Meta};

type Net = Mlp1<f32, 1, 8, 1>;
const K: usize = 5;
type A<'w> = Adapter<'w, Net, 1, 1, K>;

fn theta0<M: Params<f32>>() -> Vec<f32> {
    (0..M::PARAMS)
        .map(|k| ((k * 37 % 11) as f32 - 5.0) / 10.0)
        .collect()
}

/// Normalisation `(x_mean, x_std, y_mean, y_std)`.
type Norm<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32]);
const IDENTITY: Norm<'static> = (&[0.0], &[1.0], &[0.0], &[1.0]);

fn blob_with<M: Layers<f32, I, O>, const I: usize, const O: usize>(
    meta: &Meta,
    alpha: &[f32],
    norm: Norm<'_>,
) -> Vec<u8> {
    encode(meta, &theta0::<M>(), alpha, norm.0, norm.1, norm.2, norm.3).unwrap()
}

/// A 1-8-1 regression blob: MSE, `steps` inner steps, scalar `alpha`, no normalisation.
fn regression_blob(steps: u16, alpha: f32) -> Vec<u8> {
    let meta = Meta::new::<Net, 1, 1>(Loss::Mse, steps);
    blob_with::<Net, 1, 1>(&meta, &[alpha], IDENTITY)
}

fn line_samples() -> Vec<Sample<1, 1>> {
    [-1.0f32, -0.5, 0.0, 0.5, 1.0]
        .iter()
        .map(|&x| Sample {
            x: [x],
            y: [2.0 * x],
        })
        .collect()
}

fn filled<'w, M: Layers<f32, I, O>, const I: usize, const O: usize, const KK: usize>(
    blob: &'w [u8],
    samples: &[Sample<I, O>],
) -> Adapter<'w, M, I, O, KK> {
    let mut a = Adapter::<M, I, O, KK>::new(blob).unwrap();
    for &s in samples {
        a.push(s).unwrap();
    }
    a
}

fn bits<M: Params<f32>>(m: &M) -> Vec<u32> {
    let mut v = Vec::new();
    m.for_each(&mut |_, s| v.extend(s.iter().map(|x| x.to_bits())));
    v
}

fn theta0_bits<M: Params<f32>>(blob: &Blob<'_>) -> Vec<u32> {
    let mut m = M::zeros();
    blob.load_theta0(&mut m);
    bits(&m)
}

/// The inner loop written out from `shared`'s pieces: the parameters after `steps` steps and
/// the loss before each step and after the last.
fn reference<M: Layers<f32, I, O>, const I: usize, const O: usize, const KK: usize>(
    blob: &Blob<'_>,
    samples: &[Sample<I, O>],
    steps: usize,
) -> (M, Vec<f32>) {
    let n = samples.len();
    let mut x = SMatrix::<f32, I, KK>::zeros();
    let mut y = SMatrix::<f32, O, KK>::zeros();
    for (j, s) in samples.iter().enumerate() {
        for i in 0..I {
            let (mean, std) = blob.input_norm(i);
            x[(i, j)] = (s.x[i] - mean) / std;
        }
        for o in 0..O {
            let (mean, std) = blob.output_norm(o);
            y[(o, j)] = (s.y[o] - mean) / std;
        }
    }
    let mut theta = M::zeros();
    blob.load_theta0(&mut theta);
    let mut cache = M::new_cache::<KK>();
    let mut losses = Vec::new();
    for s in 0..=steps {
        let out = theta.forward(&x, &mut cache);
        let mut dy = SMatrix::<f32, O, KK>::zeros();
        losses.push(blob.meta.loss.value_grad(&out, &y, n, Some(&mut dy)));
        if s == steps {
            break;
        }
        let mut next = M::zeros();
        theta.backward(&x, &mut cache, &dy, &mut next, None);
        inner::step(
            &theta,
            &mut next,
            |l, k| blob.step_alpha(l, k, s),
            blob.meta.adapt,
        );
        theta = next;
    }
    (theta, losses)
}

/// `forward` on one normalised input, denormalised: what `predict` must return.
fn manual_predict<M: Layers<f32, I, O>, const I: usize, const O: usize>(
    blob: &Blob<'_>,
    params: &M,
    x: &[f32; I],
) -> [f32; O] {
    let mut xn = SMatrix::<f32, I, 1>::zeros();
    for i in 0..I {
        let (mean, std) = blob.input_norm(i);
        xn[i] = (x[i] - mean) / std;
    }
    let out = params.forward(&xn, &mut M::new_cache::<1>());
    let mut y = [0.0; O];
    for o in 0..O {
        let (mean, std) = blob.output_norm(o);
        y[o] = out[o] * std + mean;
    }
    y
}

// ---------------------------------------------------------------------------------------------
// Loading.

#[test]
fn new_refuses_bad_blobs_with_typed_errors() {
    let good = regression_blob(3, 0.05);
    assert!(A::new(&good).is_ok());
    assert_eq!(A::new(&[0xFF; 4096]).err(), Some(BlobError::Erased));
    assert_eq!(
        A::new(&good[..good.len() - 1]).err(),
        Some(BlobError::LengthMismatch {
            declared: (good.len() - 20) as u32,
            actual: good.len() - 21
        })
    );
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert!(matches!(
        A::new(&bad).err(),
        Some(BlobError::CrcMismatch { .. })
    ));
    // A blob for a 1-9-1 net is not one for the 1-8-1 net.
    let other = blob_with::<Mlp1<f32, 1, 9, 1>, 1, 1>(
        &Meta::new::<Mlp1<f32, 1, 9, 1>, 1, 1>(Loss::Mse, 3),
        &[0.05],
        IDENTITY,
    );
    assert!(matches!(
        A::new(&other).err(),
        Some(BlobError::SignatureMismatch { .. })
    ));
}

#[test]
fn a_fresh_adapter_holds_theta0() {
    let blob = regression_blob(3, 0.05);
    let a = A::new(&blob).unwrap();
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    let want: Vec<u32> = theta0::<Net>().iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits(a.params()), want);
    assert!(a.is_empty());
    assert_eq!(a.len(), 0);
    assert_eq!(a.steps_since_reset(), 0);
    assert_eq!(a.blob().unwrap().meta.steps, 3);
}

// ---------------------------------------------------------------------------------------------
// Samples.

#[test]
fn push_beyond_capacity_hands_back_the_exact_sample() {
    let blob = regression_blob(3, 0.05);
    let mut a = A::new(&blob).unwrap();
    for (i, s) in line_samples().into_iter().enumerate() {
        assert_eq!(a.push(s), Ok(()));
        assert_eq!(a.len(), i + 1);
    }
    let extra = Sample {
        x: [0.123_456_7],
        y: [-9.875],
    };
    assert_eq!(
        a.push(extra),
        Err(PushError {
            kind: PushErrorKind::Full,
            sample: extra
        })
    );
    assert_eq!(a.len(), K);
    // The full buffer still holds the first K samples: adapting matches the reference on them.
    let r = a.adapt().unwrap();
    let (_, losses) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &line_samples(), 3);
    assert_eq!(r.loss_before, losses[0]);
    // Clearing makes room again.
    a.clear_samples();
    assert!(a.is_empty());
    assert_eq!(a.push(extra), Ok(()));
    assert_eq!(a.len(), 1);
}

#[test]
fn non_finite_samples_are_refused_and_handed_back() {
    let blob = regression_blob(3, 0.05);
    let mut a = A::new(&blob).unwrap();
    a.push(line_samples()[0]).unwrap();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for s in [Sample { x: [bad], y: [1.0] }, Sample { x: [0.5], y: [bad] }] {
            let e = a.push(s).unwrap_err();
            assert_eq!(e.kind, PushErrorKind::NonFinite, "{s:?}");
            assert_eq!(e.sample.x[0].to_bits(), s.x[0].to_bits());
            assert_eq!(e.sample.y[0].to_bits(), s.y[0].to_bits());
            assert_eq!(a.len(), 1, "a refused sample must not be stored");
        }
    }
}

#[test]
fn samples_that_overflow_when_normalised_are_refused() {
    let meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    let blob = blob_with::<Net, 1, 1>(&meta, &[0.05], (&[0.0], &[1e-30], &[0.0], &[1e-30]));
    let mut a = A::new(&blob).unwrap();
    // Finite in the user's units, infinite once divided by the tiny std.
    for s in [
        Sample {
            x: [1e10],
            y: [0.0],
        },
        Sample {
            x: [0.0],
            y: [-1e10],
        },
    ] {
        assert_eq!(
            a.push(s),
            Err(PushError {
                kind: PushErrorKind::NonFinite,
                sample: s
            })
        );
    }
    assert!(a.is_empty());
    assert_eq!(
        a.push(Sample {
            x: [1e-31],
            y: [0.0]
        }),
        Ok(())
    );
    assert_eq!(a.predict(&[1e10]), Err(AdaptError::NonFiniteInput));
}

#[test]
fn samples_far_outside_the_training_data_are_refused() {
    let meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    // Training data: x with mean 10 and std 2, y with mean 0 and std 0.5.
    let blob = blob_with::<Net, 1, 1>(&meta, &[0.05], (&[10.0], &[2.0], &[0.0], &[0.5]));
    let mut a = A::new(&blob).unwrap();
    let limit = shared::report::MAX_NORMALISED;
    // Just inside: taken.
    let inside = Sample {
        x: [10.0 + 2.0 * limit],
        y: [-0.5 * limit],
    };
    assert_eq!(a.push(inside), Ok(()));
    // Just outside, in x or in y: refused and handed back.
    for s in [
        Sample {
            x: [10.0 + 2.0 * limit * 1.01],
            y: [0.0],
        },
        Sample {
            x: [10.0],
            y: [0.5 * limit * 1.01],
        },
        Sample {
            x: [-1e20],
            y: [0.0],
        },
    ] {
        assert_eq!(
            a.push(s),
            Err(PushError {
                kind: PushErrorKind::OutOfRange,
                sample: s
            })
        );
    }
    assert_eq!(a.len(), 1);
}

#[test]
fn adapt_without_samples_is_refused() {
    let blob = regression_blob(3, 0.05);
    let mut a = A::new(&blob).unwrap();
    assert_eq!(a.adapt(), Err(AdaptError::NoSamples));
    assert_eq!(
        a.adapt_steps(0, StepLimit::Unchecked),
        Err(AdaptError::NoSamples)
    );
    assert_eq!(
        a.adapt_steps(2, StepLimit::Trained),
        Err(AdaptError::NoSamples)
    );
    assert_eq!(a.steps_since_reset(), 0);
    for s in line_samples() {
        a.push(s).unwrap();
    }
    a.clear_samples();
    assert_eq!(a.adapt(), Err(AdaptError::NoSamples));
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
}

#[test]
fn predict_refuses_non_finite_input() {
    let blob = regression_blob(3, 0.05);
    let a = A::new(&blob).unwrap();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_eq!(a.predict(&[bad]), Err(AdaptError::NonFiniteInput));
    }
    assert!(a.predict(&[0.25]).unwrap()[0].is_finite());
}

// ---------------------------------------------------------------------------------------------
// Adaptation and the step budget.

#[test]
fn adapt_runs_the_trained_steps_exactly_like_the_reference_loop() {
    let steps = 4u16;
    let blob = regression_blob(steps, 0.05);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    let r = a.adapt().unwrap();
    let (want, losses) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, steps as usize);
    assert_eq!(r.steps, steps);
    assert_eq!(r.undone, None);
    assert_eq!(a.steps_since_reset(), u32::from(steps));
    assert_eq!(r.loss_before, losses[0]);
    assert_eq!(r.loss_after, losses[steps as usize]);
    assert_eq!(bits(a.params()), bits(&want));
    // The task is learnable: every step lowers the loss, and by a real margin overall.
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert!(r.loss_after < 0.8 * r.loss_before, "{r:?}");
    assert_ne!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    // Prediction uses the adapted parameters.
    for x in [-0.75f32, 0.0, 0.3] {
        assert_eq!(
            a.predict(&[x]).unwrap(),
            manual_predict(a.blob().unwrap(), &want, &[x])
        );
    }
}

#[test]
fn steps_beyond_the_trained_budget_need_unchecked() {
    let blob = regression_blob(3, 0.05);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    a.adapt().unwrap();
    let adapted = bits(a.params());
    assert_eq!(
        a.adapt_steps(1, StepLimit::Trained),
        Err(AdaptError::TooManySteps {
            requested: 4,
            allowed: 3
        })
    );
    assert_eq!(bits(a.params()), adapted, "a refused call must not step");
    assert_eq!(a.steps_since_reset(), 3);
    // adapt() has nothing left to run.
    let r = a.adapt().unwrap();
    assert_eq!((r.steps, r.undone), (0, None));
    assert_eq!(r.loss_after, r.loss_before);
    assert_eq!(bits(a.params()), adapted);
    // Unchecked runs on past the budget.
    let r = a.adapt_steps(2, StepLimit::Unchecked).unwrap();
    assert_eq!((r.steps, r.undone), (2, None));
    assert_eq!(a.steps_since_reset(), 5);
    let (want, losses) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, 5);
    assert_eq!(bits(a.params()), bits(&want));
    assert_eq!(r.loss_before, losses[3]);
    assert_eq!(r.loss_after, losses[5]);

    // Asking for more than the budget up front runs nothing.
    let mut b: A = filled(&blob, &samples);
    assert_eq!(
        b.adapt_steps(4, StepLimit::Trained),
        Err(AdaptError::TooManySteps {
            requested: 4,
            allowed: 3
        })
    );
    assert_eq!(b.steps_since_reset(), 0);
    assert_eq!(bits(b.params()), theta0_bits::<Net>(b.blob().unwrap()));
    // Split calls add up to the same steps.
    assert_eq!(b.adapt_steps(1, StepLimit::Trained).unwrap().steps, 1);
    assert_eq!(b.adapt().unwrap().steps, 2);
    let (want, _) = reference::<Net, 1, 1, K>(b.blob().unwrap(), &samples, 3);
    assert_eq!(bits(b.params()), bits(&want));
}

#[test]
fn reset_returns_to_theta0_bit_for_bit() {
    let blob = regression_blob(3, 0.05);
    let samples = line_samples();
    let fresh: A = filled(&blob, &samples);
    let mut a: A = filled(&blob, &samples);
    let first = a.adapt().unwrap();
    let adapted = bits(a.params());
    a.adapt_steps(2, StepLimit::Unchecked).unwrap();
    a.reset();
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    assert_eq!(bits(a.params()), bits(fresh.params()));
    assert_eq!(a.steps_since_reset(), 0);
    assert_eq!(a.len(), samples.len(), "reset keeps the samples");
    for x in [-2.0f32, -0.5, 0.0, 0.7, 3.0] {
        let (p, q) = (a.predict(&[x]).unwrap(), fresh.predict(&[x]).unwrap());
        assert_eq!(p[0].to_bits(), q[0].to_bits());
    }
    // The full budget is available again and reproduces the first adaptation.
    let again = a.adapt().unwrap();
    assert_eq!(again, first);
    assert_eq!(bits(a.params()), adapted);
}

#[test]
fn adapting_twice_from_the_same_state_is_deterministic() {
    let blob = regression_blob(5, 0.05);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    let mut b: A = filled(&blob, &samples);
    let (ra, rb) = (a.adapt().unwrap(), b.adapt().unwrap());
    assert_eq!(ra.loss_before.to_bits(), rb.loss_before.to_bits());
    assert_eq!(ra.loss_after.to_bits(), rb.loss_after.to_bits());
    assert_eq!(bits(a.params()), bits(b.params()));
    let (pa, pb) = (a.predict(&[0.4]).unwrap(), b.predict(&[0.4]).unwrap());
    assert_eq!(pa[0].to_bits(), pb[0].to_bits());
}

#[test]
fn padding_columns_do_not_change_the_result() {
    // The same five samples in a buffer of 5 and of 8: the three zero columns are padding.
    let blob = regression_blob(4, 0.05);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    let mut b: Adapter<Net, 1, 1, 8> = filled(&blob, &samples);
    assert_eq!(a.adapt().unwrap(), b.adapt().unwrap());
    assert_eq!(bits(a.params()), bits(b.params()));
    // And fewer samples than K give the reference result on those samples only.
    let mut c: A = filled(&blob, &samples[..2]);
    c.adapt().unwrap();
    let (want, _) = reference::<Net, 1, 1, K>(c.blob().unwrap(), &samples[..2], 4);
    assert_eq!(bits(c.params()), bits(&want));
    assert_ne!(bits(c.params()), bits(a.params()));
}

#[test]
fn only_masked_layers_and_nonzero_alphas_adapt() {
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    meta.adapt = AdaptMask::head_only(2);
    let blob = blob_with::<Net, 1, 1>(&meta, &[0.05], IDENTITY);
    let mut a: A = filled(&blob, &line_samples());
    a.adapt().unwrap();
    let (now, start) = (bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    let hidden = 8 + 8; // layer 0: W (8×1) and b (8)
    assert_eq!(now[..hidden], start[..hidden], "a frozen layer moved");
    assert_ne!(now[hidden..], start[hidden..], "the head did not adapt");

    // Per-parameter α: zero entries stay put, the rest follow the reference.
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    meta.alpha = AlphaKind::PerParameter;
    meta.algorithm = shared::wstar::Algorithm::MetaSgd;
    let alpha: Vec<f32> = (0..Net::PARAMS)
        .map(|k| {
            if k % 3 == 0 {
                0.0
            } else {
                0.02 + 0.01 * (k % 4) as f32
            }
        })
        .collect();
    let blob = blob_with::<Net, 1, 1>(&meta, &alpha, IDENTITY);
    let mut a: A = filled(&blob, &line_samples());
    let r = a.adapt().unwrap();
    assert!(r.loss_after < r.loss_before);
    let (now, start) = (bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    for k in 0..Net::PARAMS {
        if alpha[k] == 0.0 {
            assert_eq!(now[k], start[k], "parameter {k} has α = 0 but moved");
        }
    }
    let (want, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &line_samples(), 3);
    assert_eq!(now, bits(&want));
}

#[test]
fn per_layer_per_step_alphas_are_taken_step_by_step() {
    // LSLR: layer 0 frozen at step 1 only, the head with its own α at every step; extra
    // steps take the last trained step's α.
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    (meta.algorithm, meta.alpha) = (shared::wstar::Algorithm::Lslr, AlphaKind::PerLayerPerStep);
    let alpha = [0.05, 0.02, 0.0, 0.03, 0.04, 0.01];
    let blob = blob_with::<Net, 1, 1>(&meta, &alpha, IDENTITY);
    let mut a: A = filled(&blob, &line_samples());
    a.adapt_steps(1, StepLimit::Trained).unwrap();
    let after_one = bits(a.params());
    a.adapt_steps(1, StepLimit::Trained).unwrap();
    let hidden = 8 + 8;
    assert_eq!(
        bits(a.params())[..hidden],
        after_one[..hidden],
        "layer 0 moved at the step whose α is 0"
    );
    assert_ne!(bits(a.params())[hidden..], after_one[hidden..]);
    a.adapt_steps(1, StepLimit::Trained).unwrap();
    let (want, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &line_samples(), 3);
    assert_eq!(bits(a.params()), bits(&want));
    // Two unchecked steps past the trained three, with step 2's α.
    a.adapt_steps_with(2, StepLimit::Unchecked, ExtraSteps::STOP)
        .unwrap();
    let (want, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &line_samples(), 5);
    assert_eq!(bits(a.params()), bits(&want));
}

#[test]
fn classification_adapts_like_the_reference() {
    type Clf = Mlp1<f32, 2, 8, 3>;
    let meta = Meta::new::<Clf, 2, 3>(Loss::SoftmaxCrossEntropy, 5);
    let blob = blob_with::<Clf, 2, 3>(&meta, &[0.5], (&[0.0; 2], &[1.0; 2], &[0.0; 3], &[1.0; 3]));
    let samples: Vec<Sample<2, 3>> = (0..6)
        .map(|j| {
            let c = j % 3;
            let mut y = [0.0; 3];
            y[c] = 1.0;
            let t = c as f32 * 2.1 + 0.3 * j as f32;
            Sample {
                x: [t.cos(), t.sin()],
                y,
            }
        })
        .collect();
    let mut a: Adapter<Clf, 2, 3, 6> = filled(&blob, &samples);
    let r = a.adapt().unwrap();
    assert_eq!((r.steps, r.undone), (5, None));
    assert!(r.loss_after < r.loss_before, "{r:?}");
    let (want, losses) = reference::<Clf, 2, 3, 6>(a.blob().unwrap(), &samples, 5);
    assert_eq!(bits(a.params()), bits(&want));
    assert_eq!(r.loss_after, losses[5]);
}

// ---------------------------------------------------------------------------------------------
// The divergence guard.

/// Loss of the 1-8-1 net with parameters `m` on the line samples.
fn loss_of(blob: &Blob<'_>, m: &Net, samples: &[Sample<1, 1>]) -> f32 {
    let mut x = SMatrix::<f32, 1, K>::zeros();
    let mut y = SMatrix::<f32, 1, K>::zeros();
    for (j, s) in samples.iter().enumerate() {
        x[j] = s.x[0];
        y[j] = s.y[0];
    }
    let out = m.forward(&x, &mut Net::new_cache::<K>());
    blob.meta.loss.value_grad(&out, &y, samples.len(), None)
}

#[test]
fn a_diverging_step_is_undone_exactly() {
    // A step size far past stability: the loss grows by orders of magnitude each step until it
    // overflows f32, several steps in. Trained for 100 steps, so every step is a trained one and
    // only the non-finite rule applies.
    let blob = regression_blob(100, 2e3);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    let r = a.adapt_steps(100, StepLimit::Unchecked).unwrap();
    let s = r.undone.expect("the step size must make some step diverge");
    assert!(
        s >= 2,
        "want a few good steps before the bad one, got undone at {s}"
    );
    assert_eq!(r.steps, s);
    assert_eq!(a.steps_since_reset(), u32::from(s));
    assert!(
        r.loss_after.is_finite() && r.loss_after > r.loss_before,
        "{r:?}"
    );

    // The live parameters are those after exactly `s` steps.
    let mut b: A = filled(&blob, &samples);
    let rb = b.adapt_steps(s, StepLimit::Unchecked).unwrap();
    assert_eq!((rb.steps, rb.undone), (s, None));
    assert_eq!(bits(a.params()), bits(b.params()));
    assert_eq!(r.loss_after.to_bits(), rb.loss_after.to_bits());
    let (want, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, s as usize);
    assert_eq!(bits(a.params()), bits(&want));
    // And the step it refused really was non-finite.
    let (next, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, s as usize + 1);
    assert!(!loss_of(a.blob().unwrap(), &next, &samples).is_finite());

    // Still usable: predictions are finite, retrying undoes the same step again, reset works.
    assert!(a.predict(&[0.5]).unwrap()[0].is_finite());
    assert_eq!(a.predict(&[0.5]), b.predict(&[0.5]));
    let again = a.adapt_steps(1, StepLimit::Unchecked).unwrap();
    assert_eq!(again.undone, Some(0));
    assert_eq!(again.steps, 0);
    assert_eq!(again.loss_after.to_bits(), again.loss_before.to_bits());
    assert_eq!(again.loss_before.to_bits(), r.loss_after.to_bits());
    assert_eq!(bits(a.params()), bits(b.params()));
    a.reset();
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    let r2 = a.adapt_steps(100, StepLimit::Unchecked).unwrap();
    assert_eq!(r2, r, "the guard is deterministic");
}

#[test]
fn an_extra_step_that_climbs_is_undone() {
    // Trained for one step, with a step size far past stability: the trained step is kept
    // although it raises the loss; the first extra step climbs higher and is undone.
    let blob = regression_blob(1, 2e3);
    let samples = line_samples();
    let mut a: A = filled(&blob, &samples);
    let r = a.adapt_steps(100, StepLimit::Unchecked).unwrap();
    assert_eq!(
        (r.steps, r.undone, r.cause),
        (1, Some(1), Some(Guard::Rose)),
        "{r:?}"
    );
    assert_eq!(a.steps_since_reset(), 1);
    assert!(
        r.loss_after > r.loss_before,
        "the trained step climbs: {r:?}"
    );
    // The live parameters are those after the trained step, bit for bit; the refused step climbed.
    let (one, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, 1);
    assert_eq!(bits(a.params()), bits(&one));
    let (next, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, 2);
    assert!(loss_of(a.blob().unwrap(), &next, &samples) > r.loss_after);
    // Left alone, that step size overflows within a few more steps: the guard matters.
    let (far, _) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, 12);
    let far_loss = loss_of(a.blob().unwrap(), &far, &samples);
    assert!(
        far_loss.is_nan() || far_loss >= 1e6,
        "plain steps would blow up: {far_loss}"
    );

    // Still usable: predictions are finite, retrying undoes the same step again, reset works.
    assert!(a.predict(&[0.5]).unwrap()[0].is_finite());
    let again = a.adapt_steps(1, StepLimit::Unchecked).unwrap();
    assert_eq!((again.steps, again.undone), (0, Some(0)));
    assert_eq!(bits(a.params()), bits(&one));
    a.reset();
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    let r2 = a.adapt_steps(100, StepLimit::Unchecked).unwrap();
    assert_eq!(r2, r, "the guard is deterministic");
}

#[test]
fn extra_steps_must_lower_the_loss_in_one_call_or_many() {
    // Step sizes from stable to oscillating: past the trained step, a step that raises the
    // loss is shortened (up to BACKTRACKS halvings), or with no retries the guard stops
    // there, whether the steps come in one call or one by one; growing steps too.
    let samples = line_samples();
    let shorten = ExtraSteps {
        growth: 0,
        ..ExtraSteps::DEFAULT
    };
    let grow = ExtraSteps {
        growth: 4,
        ..ExtraSteps::DEFAULT
    };
    for retries in [ExtraSteps::STOP, shorten, grow] {
        let mut guarded = Vec::new();
        for alpha in [0.01f32, 0.05, 0.3, 1.0, 5.0] {
            let blob = regression_blob(1, alpha);
            let mut one: A = filled(&blob, &samples);
            let r = one
                .adapt_steps_with(40, StepLimit::Unchecked, retries)
                .unwrap();
            guarded.push(r.undone.is_some());
            if r.undone.is_some() {
                assert_eq!(r.cause, Some(Guard::Rose), "alpha {alpha}: {r:?}");
            }
            let mut many: A = filled(&blob, &samples);
            let mut kept = 0;
            for i in 0..40 {
                let ri = many
                    .adapt_steps_with(1, StepLimit::Unchecked, retries)
                    .unwrap();
                kept += ri.steps;
                if i > 0 {
                    assert!(ri.loss_after <= ri.loss_before, "alpha {alpha}: {ri:?}");
                }
            }
            assert_eq!(kept, r.steps, "alpha {alpha}");
            assert_eq!(bits(one.params()), bits(many.params()), "alpha {alpha}");
            if retries == shorten {
                // Shortening a step never ends worse on the samples than stopping there.
                let mut stopping: A = filled(&blob, &samples);
                let s = stopping
                    .adapt_steps_with(40, StepLimit::Unchecked, ExtraSteps::STOP)
                    .unwrap();
                assert!(r.loss_after <= s.loss_after, "alpha {alpha}: {r:?} {s:?}");
            }
        }
        if retries == ExtraSteps::STOP {
            assert!(
                guarded.contains(&true) && guarded.contains(&false),
                "both regimes covered: {guarded:?}"
            );
        } else {
            assert!(
                !guarded.contains(&true),
                "halving rescues every step size here: {guarded:?}"
            );
        }
    }
    // A step size too small for the samples: growing steps get further in as many steps.
    let blob = regression_blob(1, 0.01);
    let ends = [shorten, grow].map(|extra| {
        let mut a: A = filled(&blob, &samples);
        a.adapt_steps_with(20, StepLimit::Unchecked, extra)
            .unwrap()
            .loss_after
    });
    assert!(
        ends[1] < 0.5 * ends[0],
        "growing {} vs {}",
        ends[1],
        ends[0]
    );
    // The largest settings a caller can pass: no panic, no wrap-around, still descending.
    for alpha in [0.01f32, 5.0] {
        let blob = regression_blob(1, alpha);
        let mut a: A = filled(&blob, &samples);
        let extreme = ExtraSteps {
            backtracks: u8::MAX,
            growth: u8::MAX,
        };
        let r = a
            .adapt_steps_with(40, StepLimit::Unchecked, extreme)
            .unwrap();
        assert!(
            r.loss_after.is_finite() && r.loss_after <= r.loss_before,
            "{r:?}"
        );
    }
    // With a new sample, the next extra step is judged on the new sample set.
    let blob = regression_blob(1, 0.3);
    let mut a: A = filled(&blob, &samples[..samples.len() - 1]);
    a.adapt_steps(2, StepLimit::Unchecked).unwrap();
    a.push(samples[samples.len() - 1]).unwrap();
    let r = a.adapt_steps(1, StepLimit::Unchecked).unwrap();
    assert!(r.loss_after <= r.loss_before, "{r:?}");
}

#[test]
fn a_huge_per_parameter_alpha_is_undone_on_the_first_step() {
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    meta.alpha = AlphaKind::PerParameter;
    let mut alpha = vec![0.05f32; Net::PARAMS];
    // The output bias steps backwards (ascent) by an absurd amount: the loss overflows.
    alpha[Net::PARAMS - 1] = -1e30;
    let blob = blob_with::<Net, 1, 1>(&meta, &alpha, IDENTITY);
    let mut a: A = filled(&blob, &line_samples());
    let r = a.adapt().unwrap();
    assert_eq!(r.undone, Some(0));
    assert_eq!(r.steps, 0);
    assert_eq!(r.loss_after.to_bits(), r.loss_before.to_bits());
    assert_eq!(a.steps_since_reset(), 0);
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    assert!(a.predict(&[0.1]).unwrap()[0].is_finite());
}

#[test]
fn a_step_above_the_loss_bound_is_undone() {
    let samples = line_samples();
    let unbounded = regression_blob(3, 0.05);
    let l0 = filled::<Net, 1, 1, K>(&unbounded, &samples)
        .adapt()
        .unwrap()
        .loss_before;
    assert!(l0 > 0.0);

    let bounded = |alpha: f32| {
        let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
        meta.loss_bound = l0 * 1.001;
        blob_with::<Net, 1, 1>(&meta, &[alpha], IDENTITY)
    };
    // An overshooting (but finite) step lands above the bound: undone.
    let big = bounded(5.0);
    let mut a: A = filled(&big, &samples);
    let r = a.adapt().unwrap();
    assert_eq!(r.loss_before, l0);
    assert_eq!(r.undone, Some(0));
    assert_eq!(r.steps, 0);
    assert_eq!(r.loss_after, r.loss_before);
    assert_eq!(bits(a.params()), theta0_bits::<Net>(a.blob().unwrap()));
    // The overshoot is finite: it is the bound that refused it, not the NaN check.
    let (_, losses) = reference::<Net, 1, 1, K>(a.blob().unwrap(), &samples, 1);
    assert!(
        losses[1].is_finite() && losses[1] > l0 * 1.001,
        "{losses:?}"
    );

    // The same bound with a sensible step size keeps every step.
    let small = bounded(0.05);
    let mut b: A = filled(&small, &samples);
    let r = b.adapt().unwrap();
    assert_eq!((r.steps, r.undone), (3, None));
}

// ---------------------------------------------------------------------------------------------
// Normalisation.

#[test]
fn predictions_are_denormalised() {
    type Net2 = Mlp1<f32, 2, 6, 2>;
    let meta = Meta::new::<Net2, 2, 2>(Loss::Mse, 3);
    let norm: Norm<'_> = (&[1.0, -2.0], &[0.5, 4.0], &[10.0, -3.0], &[2.0, 0.25]);
    let blob = blob_with::<Net2, 2, 2>(&meta, &[0.05], norm);
    let mut a = Adapter::<Net2, 2, 2, 4>::new(&blob).unwrap();
    let parsed = Blob::parse_for::<Net2, 2, 2>(&blob).unwrap();
    let mut theta = Net2::zeros();
    parsed.load_theta0(&mut theta);

    for x in [[0.0f32, 0.0], [1.0, -2.0], [2.5, 7.0], [-3.0, 0.1]] {
        let got = a.predict(&x).unwrap();
        let want = manual_predict(&parsed, &theta, &x);
        assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "x = {x:?}");
        // Not the raw output: the denormalisation is really applied.
        let raw = manual_predict(
            &Blob::parse_for::<Net2, 2, 2>(&plain2()).unwrap(),
            &theta,
            &x,
        );
        assert_ne!(got, raw);
    }
    // At the input mean the model sees zeros: the output is the output layer's bias path.
    let at_mean = a.predict(&[1.0, -2.0]).unwrap();
    let zero = theta.forward(&SMatrix::<f32, 2, 1>::zeros(), &mut Net2::new_cache::<1>());
    assert_eq!(at_mean, [zero[0] * 2.0 + 10.0, zero[1] * 0.25 - 3.0]);

    // Samples are normalised on the way in: adaptation matches the reference on the
    // normalised data, and predictions after it are denormalised too.
    let samples: Vec<Sample<2, 2>> = (0..4)
        .map(|j| {
            let t = j as f32;
            Sample {
                x: [1.0 + 0.5 * (t - 1.5), -2.0 + 3.0 * t],
                y: [10.0 + 2.0 * t, -3.0 + 0.1 * t],
            }
        })
        .collect();
    for &s in &samples {
        a.push(s).unwrap();
    }
    let r = a.adapt().unwrap();
    assert!(r.loss_after < r.loss_before, "{r:?}");
    let (want, losses) = reference::<Net2, 2, 2, 4>(&parsed, &samples, 3);
    assert_eq!(bits(a.params()), bits(&want));
    assert_eq!(r.loss_before, losses[0]);
    let x = [0.7f32, 1.3];
    assert_eq!(a.predict(&x).unwrap(), manual_predict(&parsed, &want, &x));
}

/// The same 2-6-2 net without normalisation.
fn plain2() -> Vec<u8> {
    type Net2 = Mlp1<f32, 2, 6, 2>;
    let meta = Meta::new::<Net2, 2, 2>(Loss::Mse, 3);
    blob_with::<Net2, 2, 2>(&meta, &[0.05], (&[0.0; 2], &[1.0; 2], &[0.0; 2], &[1.0; 2]))
}
