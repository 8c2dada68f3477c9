//! Classification on the device: argmax label and softmax scores, after adapting on a few
//! labelled samples (one-hot targets).

use device::{AdaptError, Adapter, Sample, StepLimit};
use shared::loss::Loss;
use shared::model::{Mlp1, Params};
use shared::wstar::{encode, Meta};

type Net = Mlp1<f32, 2, 16, 3>;

fn blob(loss: Loss) -> Vec<u8> {
    let meta = Meta::new::<Net, 2, 3>(loss, 1);
    let theta: Vec<f32> = (0..Net::PARAMS)
        .map(|k| ((k * 37 % 23) as f32 - 11.0) / 40.0)
        .collect();
    encode(
        &meta,
        &theta,
        &[0.5],
        &[0.0; 2],
        &[1.0; 2],
        &[0.0; 3],
        &[1.0; 3],
    )
    .unwrap()
}

fn one_hot(c: usize) -> [f32; 3] {
    let mut y = [0.0; 3];
    y[c] = 1.0;
    y
}

#[test]
fn a_few_labelled_samples_teach_the_device_three_classes() {
    let b = blob(Loss::SoftmaxCrossEntropy);
    let mut a = Adapter::<Net, 2, 3, 6>::new(&b).unwrap();
    let points = [
        ([2.0, 0.0], 0),
        ([2.2, 0.3], 0),
        ([-1.0, 1.8], 1),
        ([-1.2, 2.1], 1),
        ([-1.0, -2.0], 2),
        ([-0.8, -1.7], 2),
    ];
    for (x, c) in points {
        a.push(Sample { x, y: one_hot(c) }).unwrap();
    }
    let r = a.adapt_steps(60, StepLimit::Unchecked).unwrap();
    assert!(r.loss_after < 0.2 * r.loss_before, "{r:?}");
    for (x, c) in points {
        let got = a.classify(&x).unwrap();
        assert_eq!(got.label, c, "{x:?}: {got:?}");
        assert!(got.scores[c] > 0.5);
        assert!((got.scores.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        // The label is the largest score.
        assert!(got.scores.iter().all(|&s| s <= got.scores[got.label]));
    }
    // Unseen points near each cluster.
    assert_eq!(a.classify(&[2.5, 0.1]).unwrap().label, 0);
    assert_eq!(a.classify(&[-1.1, 2.5]).unwrap().label, 1);
    assert_eq!(a.classify(&[-0.9, -2.4]).unwrap().label, 2);
}

#[test]
fn a_regressor_is_not_a_classifier_and_bad_input_is_refused() {
    let b = blob(Loss::Mse);
    let a = Adapter::<Net, 2, 3, 6>::new(&b).unwrap();
    assert_eq!(a.classify(&[0.0, 0.0]), Err(AdaptError::NotAClassifier));
    let b = blob(Loss::SoftmaxCrossEntropy);
    let a = Adapter::<Net, 2, 3, 6>::new(&b).unwrap();
    assert_eq!(
        a.classify(&[f32::NAN, 0.0]),
        Err(AdaptError::NonFiniteInput)
    );
    assert_eq!(
        Adapter::<Net, 2, 3, 6>::UNLOADED.classify(&[0.0, 0.0]),
        Err(AdaptError::NoBlob)
    );
}

#[test]
fn a_prototype_start_classifies_by_the_nearest_class_mean_before_any_step() {
    use shared::model::Dense;
    use shared::wstar::{encode_starting, HeadStart};
    type Head = Dense<f32, 2, 3>;
    let meta = Meta::new::<Head, 2, 3>(Loss::SoftmaxCrossEntropy, 1);
    let norms: [&[f32]; 4] = [&[0.0; 2], &[1.0; 2], &[0.0; 3], &[1.0; 3]];
    // θ0 = 0 and α = 0: whatever the head knows comes from the prototypes.
    let b = encode_starting(
        &meta,
        &[0.0; Head::PARAMS],
        &[0.0],
        norms,
        None,
        HeadStart::Prototypes,
    )
    .unwrap();
    let mut a = Adapter::<Head, 2, 3, 8>::new(&b).unwrap();
    let points = [
        ([2.0, 0.0], 0),
        ([3.0, 1.0], 0),
        ([-1.0, 2.0], 1),
        ([-1.0, 3.0], 2),
        ([-2.0, 3.0], 2),
    ];
    for (x, c) in points {
        a.push(Sample { x, y: one_hot(c) }).unwrap();
    }
    // Before adapting, the head is θ0: every class scores the same.
    assert_eq!(a.classify(&[2.0, 0.0]).unwrap().scores, [1.0 / 3.0; 3]);
    let r = a.adapt_steps(0, StepLimit::Trained).unwrap();
    assert_eq!(r.steps, 0);
    // Means (2.5, 0.5), (−1, 2), (−1.5, 3): weights 2μ, biases −‖μ‖².
    let h = a.params().clone();
    assert_eq!((h.w[(0, 0)], h.w[(0, 1)], h.b[0]), (5.0, 1.0, -6.5));
    assert_eq!((h.w[(1, 0)], h.w[(1, 1)], h.b[1]), (-2.0, 4.0, -5.0));
    assert_eq!((h.w[(2, 0)], h.w[(2, 1)], h.b[2]), (-3.0, 6.0, -11.25));
    assert_eq!(a.classify(&[2.4, 0.4]).unwrap().label, 0);
    assert_eq!(a.classify(&[-0.9, 2.1]).unwrap().label, 1);
    assert_eq!(a.classify(&[-1.6, 3.2]).unwrap().label, 2);
    // The prototypes are added once per reset, not once per call.
    a.adapt().unwrap();
    assert_eq!(a.params(), &h);
    // A reset goes back to θ0; the next adaptation adds the prototypes of the samples then.
    a.reset();
    assert_eq!(a.params(), &Head::zeros());
    a.clear_samples();
    a.push(Sample {
        x: [1.0, 1.0],
        y: one_hot(1),
    })
    .unwrap();
    a.adapt().unwrap();
    let h = a.params();
    assert_eq!((h.w[(1, 0)], h.w[(1, 1)], h.b[1]), (2.0, 2.0, -2.0));
    // Classes without a sample keep θ0's row.
    assert_eq!(
        (h.w[(0, 0)], h.b[0], h.w[(2, 1)], h.b[2]),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn a_fixed_point_head_labels_as_f32_where_its_logits_leave_the_range() {
    // Features like the Omniglot body's (non-negative, sparse, up to 4; squared norms 30 to
    // 60): the prototype biases −‖μ‖² and the logits leave Q10H's ±32, where a saturated
    // bias or logit would tie classes. Centred, the half-word head adapts and labels as f32.
    use device::fixed::{Q10H, Q20};
    use shared::math::Real;
    use shared::model::Dense;
    use shared::wstar::{encode_starting, HeadStart};
    const F: usize = 16;
    const N: usize = 4;
    type Head<T> = Dense<T, F, N>;
    let mut seed = 7u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32
    };
    let centres: Vec<[f32; F]> = (0..N)
        .map(|_| {
            core::array::from_fn(|_| {
                if next() < 0.6 {
                    1.0 + 3.0 * next()
                } else {
                    0.0
                }
            })
        })
        .collect();
    let mut near = |c: usize| -> [f32; F] {
        core::array::from_fn(|i| (centres[c][i] + 0.8 * (next() - 0.5)).max(0.0))
    };
    let support: Vec<([f32; F], usize)> = (0..2 * N).map(|k| (near(k % N), k % N)).collect();
    let queries: Vec<([f32; F], usize)> = (0..40).map(|k| (near(k % N), k % N)).collect();
    let norm2 = |x: &[f32; F]| x.iter().map(|v| v * v).sum::<f32>();
    assert!(
        support.iter().all(|(x, _)| norm2(x) > 32.0),
        "the case this is about"
    );
    let meta = Meta::new::<Head<f32>, F, N>(Loss::SoftmaxCrossEntropy, 3);
    let theta: Vec<f32> = (0..Head::<f32>::PARAMS)
        .map(|k| ((k * 7 % 11) as f32 - 5.0) / 50.0)
        .collect();
    let norms: [&[f32]; 4] = [&[0.0; F], &[1.0; F], &[0.0; N], &[1.0; N]];
    let b = encode_starting(&meta, &theta, &[0.02], norms, None, HeadStart::Prototypes).unwrap();
    fn run<T: Real>(
        b: &[u8],
        support: &[([f32; F], usize)],
        queries: &[([f32; F], usize)],
    ) -> (device::AdaptReport, Vec<(usize, [f32; N])>) {
        let mut a = Adapter::<Head<T>, F, N, 8, T>::new(b).unwrap();
        for &(x, c) in support {
            let mut y = [0.0; N];
            y[c] = 1.0;
            a.push(Sample { x, y }).unwrap();
        }
        let r = a.adapt().unwrap();
        let labels = queries
            .iter()
            .map(|(x, _)| a.classify(x).map(|c| (c.label, c.scores)).unwrap())
            .collect();
        (r, labels)
    }
    let (r32, want) = run::<f32>(&b, &support, &queries);
    let correct = want
        .iter()
        .zip(&queries)
        .filter(|((l, _), (_, c))| l == c)
        .count();
    assert!(correct >= 36, "f32 labels {correct} of 40 right");
    for (name, (r, got)) in [
        ("q20", run::<Q20>(&b, &support, &queries)),
        ("q10h", run::<Q10H>(&b, &support, &queries)),
    ] {
        assert_eq!(r.steps, 3, "{name}: {r:?}");
        for (before, after) in [
            (r.loss_before, r32.loss_before),
            (r.loss_after, r32.loss_after),
        ] {
            assert!(
                (before - after).abs() < 0.01 + 0.01 * after.abs(),
                "{name}: {r:?} against {r32:?}"
            );
        }
        for ((l, s), (l32, s32)) in got.iter().zip(&want) {
            assert_eq!(l, l32, "{name}: {s:?} against {s32:?}");
            assert!(
                s.iter().zip(s32).all(|(a, b)| (a - b).abs() < 0.01),
                "{name}: {s:?} against {s32:?}"
            );
        }
    }
}
