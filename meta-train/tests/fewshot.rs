//! Few-shot classification: the ANIL head's exact meta-gradient against f64 finite
//! differences, the device classifier against the trainer's own adaptation bit for bit, and
//! reproducible training.

use meta_train::eval::images::run_episode;
use meta_train::model::head::OMNIGLOT_BODY;
use meta_train::model::head::{self, HeadTask, Order};
use meta_train::run_dir::RunDir;
use meta_train::tasks::episodes::{Episode, EpisodeSpec, Sampler};
use meta_train::tasks::omniglot::{Character, Image};
use meta_train::tasks::Stream;
use meta_train::train::images::{self, FewShotCheckpoint, FewShotConfig};
use meta_train::train::time_split::TimeSplit;
use meta_train::train::Progress;
use shared::body::Views;
use shared::loss::Loss;
use shared::model::{Dense, Params};
use shared::wstar::HeadStart;

/// A deterministic pseudo-random value in [-1, 1).
fn noise(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x2545_F491);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

const F: usize = 6;
const N: usize = 3;
const K: usize = 6;
const STEPS: usize = 3;

fn samples(n: usize, salt: u64) -> Vec<(Vec<f64>, usize)> {
    (0..n)
        .map(|j| {
            (
                (0..F).map(|i| 1.5 * noise(j * F + i, salt)).collect(),
                j % N,
            )
        })
        .collect()
}

/// The query loss after adaptation, the quantity the meta-gradient differentiates.
fn query_loss(
    head0: &Dense<f64, F, N>,
    start: HeadStart,
    alpha: &[f64],
    task: &HeadTask<f64, F, N, K>,
) -> f64 {
    let adapted = head::adapt(head0, start, alpha, STEPS, task);
    let n_q = task.n_query() as f64;
    task.query
        .iter()
        .map(|(x, y, n)| {
            let out = adapted.affine(x);
            *n as f64 / n_q * Loss::SoftmaxCrossEntropy.value_grad(&out, y, *n, None)
        })
        .sum()
}

#[test]
fn anil_meta_gradient_matches_f64_finite_differences_through_every_inner_step() {
    check_meta_gradient(HeadStart::Theta0, K, &[0.7]);
}

#[test]
fn meta_sgd_step_sizes_per_head_parameter_match_f64_finite_differences() {
    let params = F * N + N;
    let alpha: Vec<f64> = (0..params).map(|k| 0.5 + 0.4 * noise(k, 9)).collect();
    check_meta_gradient(HeadStart::Prototypes, K, &alpha);
}

#[test]
fn the_meta_gradient_through_a_prototype_start_matches_f64_finite_differences() {
    // Five support samples in six columns: a padding column, and classes of 2, 2 and 1.
    check_meta_gradient(HeadStart::Prototypes, K - 1, &[0.2]);
}

#[test]
fn the_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_head() {
    let mut head0 = Dense::<f64, F, N>::zeros();
    head0.fill_with(|k| 0.4 * noise(k, 1));
    let task = HeadTask::<f64, F, N, K>::new(&samples(K, 2), &samples(10, 3));
    let alpha = &[0.7];
    let fo = head::meta_grad(&head0, HeadStart::Theta0, alpha, STEPS, Order::First, &task);
    let exact = head::meta_grad(
        &head0,
        HeadStart::Theta0,
        alpha,
        STEPS,
        Order::Second,
        &task,
    );
    // No inner step at the adapted head: the gradient of the query loss there.
    let adapted = head::adapt(&head0, HeadStart::Theta0, alpha, STEPS, &task);
    let at_adapted = head::meta_grad(&adapted, HeadStart::Theta0, alpha, 0, Order::Second, &task);
    let flat = |d: &Dense<f64, F, N>| {
        let mut v = Vec::new();
        d.for_each(&mut |_, s| v.extend_from_slice(s));
        v
    };
    let diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    assert_eq!(fo.loss, exact.loss);
    assert!(diff(&flat(&fo.head), &flat(&at_adapted.head)) < 1e-12);
    assert!(diff(fo.xq[0].as_slice(), at_adapted.xq[0].as_slice()) < 1e-12);
    // Nothing reaches the support features without the second-order terms ...
    assert!(fo.xs.iter().all(|&v| v == 0.0));
    assert!(exact.xs.iter().any(|&v| v.abs() > 1e-6));
    // ... and the approximation is one: the exact θ0 gradient differs.
    assert!(diff(&flat(&fo.head), &flat(&exact.head)) > 1e-4);
    // α keeps its first-order part: −Σₜ⟨∇L_s(θₜ), ∂L_q/∂θ_S⟩, non-zero here.
    assert!(fo.alpha[0].abs() > 1e-6 && fo.alpha != exact.alpha);
}

fn check_meta_gradient(start: HeadStart, n_support: usize, alpha: &[f64]) {
    let mut head0 = Dense::<f64, F, N>::zeros();
    head0.fill_with(|k| 0.4 * noise(k, 1));
    let (support, query) = (samples(n_support, 2), samples(10, 3));
    let task = HeadTask::<f64, F, N, K>::new(&support, &query);
    let g = head::meta_grad(&head0, start, alpha, STEPS, Order::Second, &task);
    let query_loss = |head0: &Dense<f64, F, N>, alpha: &[f64], task: &HeadTask<f64, F, N, K>| {
        query_loss(head0, start, alpha, task)
    };
    assert!((g.loss - query_loss(&head0, alpha, &task)).abs() < 1e-12);
    let h = 1e-5;
    let rel = |fd: f64, an: f64| (fd - an).abs() / (fd.abs() + an.abs()).max(1e-4);
    let mut worst = 0.0f64;
    // θ0 of the head.
    let mut flat = Vec::new();
    g.head.for_each(&mut |_, s| flat.extend_from_slice(s));
    for (k, &an) in flat.iter().enumerate() {
        let at = |d: f64| {
            let mut p = head0.clone();
            let mut i = 0;
            p.for_each_mut(&mut |_, s| {
                for v in s {
                    if i == k {
                        *v += d;
                    }
                    i += 1;
                }
            });
            query_loss(&p, alpha, &task)
        };
        worst = worst.max(rel((at(h) - at(-h)) / (2.0 * h), an));
    }
    // α: the one value, or each parameter's.
    assert_eq!(g.alpha.len(), alpha.len());
    for (k, &an) in g.alpha.iter().enumerate() {
        let at = |d: f64| {
            let mut a = alpha.to_vec();
            a[k] += d;
            query_loss(&head0, &a, &task)
        };
        worst = worst.max(rel((at(h) - at(-h)) / (2.0 * h), an));
    }
    // Support features: only the second-order path reaches them.
    let mut support_first_order_gap = 0.0f64;
    for j in 0..n_support {
        for i in 0..F {
            let at = |d: f64| {
                let mut s = support.clone();
                s[j].0[i] += d;
                query_loss(&head0, alpha, &HeadTask::new(&s, &query))
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            worst = worst.max(rel(fd, g.xs[(i, j)]));
            support_first_order_gap = support_first_order_gap.max(fd.abs());
        }
    }
    // Query features.
    for (j, q) in query.iter().enumerate() {
        for i in 0..F {
            let at = |d: f64| {
                let mut qq = query.clone();
                qq[j].0[i] += d;
                let _ = q;
                query_loss(&head0, alpha, &HeadTask::new(&support, &qq))
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            worst = worst.max(rel(fd, g.xq[j / K][(i, j % K)]));
        }
    }
    assert!(worst < 1e-6, "worst relative error {worst:e}");
    // A first-order method gives the support features no gradient at all; this one must.
    assert!(support_first_order_gap > 1e-3);
}

/// Random ink images, labels `j % ways`.
fn images(n: usize, ways: usize, salt: u64) -> Vec<(Vec<f32>, usize)> {
    (0..n)
        .map(|j| {
            let px = (0..OMNIGLOT_BODY.inputs())
                .map(|i| (0.5 + 0.5 * noise(j * 1000 + i, salt)) as f32)
                .collect();
            (px, j % ways)
        })
        .collect()
}

#[test]
fn the_device_classifier_adapts_and_answers_as_the_trainer_bit_for_bit() {
    device_matches_trainer(HeadStart::Theta0, false, Views::Single);
}

#[test]
fn meta_sgd_step_sizes_on_the_device_match_the_trainer_bit_for_bit() {
    device_matches_trainer(HeadStart::Prototypes, true, Views::Single);
}

/// The 5-way head of a 20-way checkpoint, as its blob holds it.
fn five_way_head(ck: &FewShotCheckpoint) -> Dense<f32, { meta_train::model::head::FEATURES }, 5> {
    let rows = ck.head_rows(5);
    let mut h = Dense::zeros();
    h.fill_with(|i| rows[i]);
    h
}

#[test]
fn a_prototype_start_on_the_device_matches_the_trainer_bit_for_bit() {
    device_matches_trainer(HeadStart::Prototypes, false, Views::Single);
}

#[test]
fn shifted_views_on_the_device_match_the_trainer_bit_for_bit() {
    device_matches_trainer(HeadStart::Prototypes, false, Views::Shifted);
}

fn device_matches_trainer(start: HeadStart, per_parameter_alpha: bool, views: Views) {
    let mut config = FewShotConfig::omniglot(20, 1);
    config.start = start;
    config.per_parameter_alpha = per_parameter_alpha;
    let mut ck = FewShotCheckpoint::new(&config);
    for (k, v) in ck.head.iter_mut().enumerate() {
        *v = 0.05 * noise(k, 9) as f32;
    }
    for (k, a) in ck.alpha.iter_mut().enumerate() {
        *a += 0.05 * noise(k, 4) as f32;
    }
    // A 20-way run's 5-way classifier: five of its rows of θ0 (and of α, one per parameter).
    let blob = ck.blob_viewing::<5>(views).unwrap();
    let parsed = shared::wstar::Blob::parse(&blob).unwrap();
    assert_eq!((parsed.start, parsed.views), (start, views));
    assert_eq!(
        parsed.alpha_len(),
        if per_parameter_alpha { 5 * 128 + 5 } else { 1 }
    );
    let alpha = ck.alpha_rows(5);
    for e in 0..3 {
        let ep = Episode {
            support: images(5, 5, 10 + e),
            query: images(15, 5, 20 + e),
        };
        // The device holds up to 25 support images: its padding must not change a bit.
        let device = run_episode::<5, 25, f32>(&blob, &ep).unwrap();
        let task = HeadTask::<f32, { meta_train::model::head::FEATURES }, 5, 5>::new(
            &images::features_viewing(&ck.body, &ep.support, views),
            &images::features_viewing(&ck.body, &ep.query, views),
        );
        let adapted = head::adapt(&five_way_head(&ck), start, &alpha, ck.config.steps, &task);

        let mut host_labels = Vec::new();
        for (xq, _, n) in &task.query {
            let out = adapted.affine(xq);
            for j in 0..*n {
                let col: Vec<f32> = (0..5).map(|i| out[(i, j)]).collect();
                let best = (0..5).fold(0, |b, i| if col[i] > col[b] { i } else { b });
                host_labels.push(best);
            }
        }
        assert_eq!(device.labels, host_labels, "episode {e}");
    }
}

/// A pool of `n` synthetic characters: each a random blob pattern, drawn 20 times with noise.
fn pool(n: usize) -> Vec<Character> {
    (0..n)
        .map(|c| Character {
            alphabet: format!("A{}", c % 2),
            name: format!("c{c}"),
            images: (0..20)
                .map(|d| Image {
                    file: format!("{d}.png"),
                    pixels: (0..OMNIGLOT_BODY.inputs())
                        .map(|i| {
                            let base = f64::from(noise(i / 7, c as u64) > 0.3);
                            (base + 0.1 * noise(i, (c * 100 + d) as u64)) as f32
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Trains `cfg` (5-way, up to 5 support images) on `pools` (training, validation) into `rd`, quietly.
fn train(
    cfg: &FewShotConfig,
    (train_pool, val_pool): (&[Character], &[Character]),
    rd: &RunDir,
    resume: bool,
) -> anyhow::Result<FewShotCheckpoint> {
    let split = TimeSplit::default();
    images::train::<5, 5>(
        cfg,
        train_pool,
        val_pool,
        rd,
        resume,
        Progress::Quiet,
        &split,
    )
}

/// A 5-way 1-shot run of `iterations` tiny meta-batches, validated and checkpointed every 2.
fn tiny_run(iterations: u64) -> FewShotConfig {
    let mut config = FewShotConfig::omniglot(5, 1);
    config.iterations = iterations;
    config.meta_batch = 2;
    config.query = 1;
    config.val_every = 2;
    config.val_episodes = 2;
    config.checkpoint_every = 2;
    config
}

#[test]
fn training_gives_the_same_blob_on_one_thread_or_two_and_after_a_resume() {
    let (train_pool, val_pool) = (pool(10), pool(6));
    let config = tiny_run(4);
    let dir = tempfile::tempdir().unwrap();
    let run = |threads: usize, name: &str, cfg: &FewShotConfig, resume: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let rd = RunDir::create(dir.path().join(name)).unwrap();
        pool.install(|| train(cfg, (&train_pool, &val_pool), &rd, resume))
            .unwrap()
            .blob::<5>()
            .unwrap()
    };
    let one = run(1, "one", &config, false);
    let two = run(2, "two", &config, false);
    assert_eq!(one, two);
    let mut half = config.clone();
    half.iterations = 2;
    let _ = run(2, "resumed", &half, false);
    let resumed = run(2, "resumed", &config, true);
    assert_eq!(one, resumed);
    // And it learned something: the head moved away from zero.
    let ck = FewShotCheckpoint::new(&config).blob::<5>().unwrap();
    assert_ne!(one, ck);
}

#[test]
fn within_alphabet_training_draws_each_episode_from_one_alphabet() {
    // Two alphabets of five characters: 5-way episodes within one alphabet exist, 6-way not.
    let (train_pool, val_pool) = (pool(10), pool(6));
    let mut config = tiny_run(2);
    let dir = tempfile::tempdir().unwrap();
    let run = |cfg: &FewShotConfig, name: &str| {
        let rd = RunDir::create(dir.path().join(name)).unwrap();
        train(cfg, (&train_pool, &val_pool), &rd, false).map(|ck| ck.blob::<5>().unwrap())
    };
    let across = run(&config, "across").unwrap();
    config.within_alphabet = true;
    let within = run(&config, "within").unwrap();
    assert_ne!(across, within, "the flag changed nothing");
    let small = pool(8); // alphabets of four characters
    let err = train(
        &config,
        (&small, &val_pool),
        &RunDir::create(dir.path().join("small")).unwrap(),
        false,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("meta-training classes"),
        "{err:#}"
    );
}

#[test]
fn a_twenty_way_run_gives_a_five_way_head_of_its_first_five_classes() {
    let mut ck = FewShotCheckpoint::new(&FewShotConfig::omniglot(20, 1));
    for (k, v) in ck.head.iter_mut().enumerate() {
        *v = k as f32;
    }
    let h20 = ck.head_model::<20>();
    let mut h5 = Dense::<f32, { meta_train::model::head::FEATURES }, 5>::zeros();
    let rows = ck.head_rows(5);
    h5.fill_with(|k| rows[k]);
    for c in 0..5 {
        assert_eq!(h5.b[c], h20.b[c]);
        for i in 0..meta_train::model::head::FEATURES {
            assert_eq!(h5.w[(c, i)], h20.w[(c, i)]);
        }
    }
    let five = ck.blob_for(5, shared::body::Views::Single).unwrap();
    assert!(shared::wstar::Blob::parse(&five).is_ok());
    assert!(FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1))
        .blob_for(20, shared::body::Views::Single)
        .is_err());
}

#[test]
fn meta_validation_scores_each_episode_as_the_device_does_from_each_image_once() {
    let pool = pool(6);
    // A random head adapted from θ0 with a small step: right on some queries, not all.
    let mut ck = FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1));
    ck.alpha = vec![0.001];
    for (k, v) in ck.head.iter_mut().enumerate() {
        *v = 0.5 * noise(k, 11) as f32;
    }
    let sampler = Sampler::across(&pool, EpisodeSpec::new(5, 1)).unwrap();
    let mut val = images::Validation::new(&sampler, &pool, 3, 8);
    // 8 episodes of 5 · 16 images from 120: images recur, and are computed once.
    assert!(val.distinct_images() <= 120 && val.distinct_images() < 8 * 80);
    let blob = ck.blob::<5>().unwrap();
    let (mut correct, mut total) = (0, 0);
    for i in 0..8 {
        let ep = sampler.episode(3, Stream::Eval, i);
        let device = run_episode::<5, 5, f32>(&blob, &ep).unwrap();
        correct += device
            .labels
            .iter()
            .zip(&ep.query)
            .filter(|(l, (_, want))| *l == want)
            .count();
        total += ep.query.len();
    }
    let host = val.accuracy::<5, 5>(&ck, &TimeSplit::default());
    assert_eq!(host, correct as f64 / total as f64);
    assert!(
        correct > 0 && correct < total,
        "{correct} of {total}: a hollow check"
    );
}
