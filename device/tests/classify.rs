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
