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
