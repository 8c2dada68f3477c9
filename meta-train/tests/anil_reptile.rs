//! ANIL and Reptile produce the same `w*` blob as the other algorithms, and the device runs
//! their inner loops: ANIL adapts the head only, Reptile's outer step moves `θ0` towards the
//! parameters the device's own adaptation reaches.

use device::{Adapter, Sample, StepLimit};
use meta_train::algo::Algo;
use meta_train::bench::paper_config;
use meta_train::run_dir::RunDir;
use meta_train::train::{init_theta, sinusoid_task, train, Progress};
use shared::inner::AdaptMask;
use shared::model::{Params, SinusoidNet};
use shared::wstar::{encode, Algorithm, Blob};

fn flat(m: &SinusoidNet) -> Vec<f32> {
    let mut v = Vec::new();
    m.for_each(&mut |_, s| v.extend_from_slice(s));
    v
}

#[test]
fn anil_blobs_adapt_only_the_head_on_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = paper_config(Algo::Anil, 30);
    cfg.meta_batch = 4;
    let run = RunDir::create(dir.path().join("anil")).unwrap();
    let t = train::<SinusoidNet, 10>(&cfg, &run, false, Progress::Quiet).unwrap();
    let blob = Blob::parse(&t.blob).unwrap();
    assert_eq!(blob.meta.algorithm, Algorithm::Anil);
    assert_eq!(blob.meta.adapt, AdaptMask::head_only(3));

    let mut a = Adapter::<SinusoidNet, 1, 1, 10>::new(&t.blob).unwrap();
    let before = flat(a.params());
    for i in 0..10 {
        let x = -4.5 + i as f32;
        a.push(Sample {
            x: [x],
            y: [2.0 * x.sin()],
        })
        .unwrap();
    }
    a.adapt_steps(5, StepLimit::Unchecked).unwrap();
    let after = flat(a.params());
    // The body (1-40 and 40-40 layers: 40 + 40 + 1600 + 40 values) stays; the head moves.
    let body = 40 + 40 + 1600 + 40;
    assert_eq!(before[..body], after[..body], "the body must not adapt");
    assert_ne!(before[body..], after[body..], "the head must adapt");
}

#[test]
fn reptile_moves_theta0_towards_what_the_device_adapts_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = paper_config(Algo::Reptile, 1);
    cfg.meta_batch = 1;
    cfg.steps = 3;
    cfg.meta_lr = 0.5;
    // θ0 as the trainer initialises it, as a blob; then one iteration of Reptile.
    let init = init_theta::<SinusoidNet, 1, 1>(cfg.seed);
    let blob0 = encode(
        &cfg.meta::<SinusoidNet, 1, 1>(),
        &init,
        &[cfg.alpha],
        &[0.0],
        &[1.0],
        &[0.0],
        &[1.0],
    )
    .unwrap();
    let run1 = RunDir::create(dir.path().join("r1")).unwrap();
    let t1 = train::<SinusoidNet, 10>(&cfg, &run1, false, Progress::Quiet).unwrap();
    assert_eq!(
        Blob::parse(&t1.blob).unwrap().meta.algorithm,
        Algorithm::Reptile
    );

    // The device's adaptation from θ0 on iteration 0's task.
    let task = sinusoid_task::<10>(cfg.seed, 0);
    let mut a = Adapter::<SinusoidNet, 1, 1, 10>::new(&blob0).unwrap();
    for j in 0..10 {
        a.push(Sample {
            x: [task.xs[j]],
            y: [task.ys[j]],
        })
        .unwrap();
    }
    let theta0 = flat(a.params());
    let r = a.adapt_steps(3, StepLimit::Unchecked).unwrap();
    assert_eq!(r.steps, 3);
    let adapted = flat(a.params());
    let theta1 = flat(
        Adapter::<SinusoidNet, 1, 1, 10>::new(&t1.blob)
            .unwrap()
            .params(),
    );
    for k in 0..theta0.len() {
        let want = theta0[k] + 0.5 * (adapted[k] - theta0[k]);
        assert!(
            (theta1[k] - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "parameter {k}: {} vs {want}",
            theta1[k]
        );
    }
    assert_ne!(theta0, theta1);
}
