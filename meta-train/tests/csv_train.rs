//! Meta-training on CSV task files: classification and regression tasks train with every
//! algorithm, adaptation on held-out tasks (through the device runtime) beats both chance and
//! the unadapted model, unsupported shapes and too-small tasks give the documented errors, and
//! a resumed run ends with the blob of an uninterrupted one.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use meta_train::algo::Algo;
use meta_train::eval::csv::{evaluate_csv, CsvEval, CsvEvalConfig};
use meta_train::run_dir::RunDir;
use meta_train::tasks::csv::CsvTasks;
use meta_train::train::csv::{self, train_csv};
use meta_train::train::{Progress, TrainConfig, Trained};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared::loss::Loss;
use shared::wstar::Blob;

/// Three gaussian-ish blobs in the plane whose labels each task permutes: a model that does
/// not adapt can only guess (1/3), one that adapts on a few labelled samples can tell them
/// apart.
fn blobs_csv(dir: &Path, tasks: usize, rows: usize) -> PathBuf {
    const CENTRES: [(f32, f32); 3] = [(2.0, 0.0), (-1.0, 1.732), (-1.0, -1.732)];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut s = String::from("# classes: red,green,blue\ntask,split,x1,x2,label\n");
    for t in 0..tasks {
        let mut perm = [0, 1, 2];
        perm.shuffle(&mut rng);
        for split in ["train", "test"] {
            for _ in 0..rows {
                let c = rng.gen_range(0..3);
                let (cx, cy) = CENTRES[c];
                let x = cx + rng.gen_range(-0.9..0.9);
                let y = cy + rng.gen_range(-0.9..0.9);
                writeln!(s, "user{t},{split},{x},{y},{}", perm[c]).unwrap();
            }
        }
    }
    let path = dir.join("blobs.csv");
    std::fs::write(&path, s).unwrap();
    path
}

/// Linear tasks `y = a·x1 + b·x2 + c` in the units of a sensor (large offsets), no split.
fn linear_csv(dir: &Path, tasks: usize, rows: usize) -> PathBuf {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut s = String::from("task,x1,x2,y\n");
    for t in 0..tasks {
        let (a, b, c) = (
            rng.gen_range(-2.0..2.0f32),
            rng.gen_range(-2.0..2.0f32),
            rng.gen_range(-1.0..1.0f32),
        );
        for _ in 0..rows {
            let x1 = rng.gen_range(-1.0..1.0f32);
            let x2 = rng.gen_range(-1.0..1.0f32);
            writeln!(
                s,
                "t{t},{},{},{}",
                20.0 + x1,
                100.0 * x2,
                a * x1 + b * x2 + c
            )
            .unwrap();
        }
    }
    let path = dir.join("linear.csv");
    std::fs::write(&path, s).unwrap();
    path
}

fn config(file: &Path, algorithm: Algo, iterations: u64) -> TrainConfig {
    let tasks = CsvTasks::load(file).unwrap();
    let (inputs, outputs) = csv::dims(&tasks);
    let reptile = algorithm == Algo::Reptile;
    TrainConfig {
        family: csv::FAMILY.into(),
        model: csv::model_name(inputs, outputs),
        algorithm,
        k: 9,
        steps: if reptile { 5 } else { 2 },
        alpha: if reptile { 0.3 } else { 0.5 },
        meta_batch: 8,
        iterations,
        meta_lr: if reptile { 0.5 } else { 3e-3 },
        seed: 0,
        log_every: 50,
        checkpoint_every: 100,
        loss_bound: None,
    }
}

fn train(cfg: &TrainConfig, file: &Path, run: &Path, resume: bool) -> anyhow::Result<Trained> {
    let run = RunDir::create(run).unwrap();
    train_csv(cfg, file, 0.2, &run, resume, Progress::Quiet)
}

fn eval(blob: &[u8], file: &Path) -> CsvEval {
    let tasks = CsvTasks::load(file).unwrap();
    let cfg = CsvEvalConfig {
        holdout: 0.2,
        draws: 10,
        seed: 0,
    };
    evaluate_csv(blob, &tasks, &cfg).unwrap()
}

/// The metric before adaptation and after the trained steps; prints them with their 95%
/// intervals.
fn before_after(what: &str, r: &CsvEval, trained_steps: usize) -> (f64, f64) {
    let at = |s: usize| r.cells.iter().find(|c| usize::from(c.steps) == s).unwrap();
    let (before, after) = (at(0), at(trained_steps));
    eprintln!(
        "{what}: {} {:.3} ± {:.3} unadapted, {:.3} ± {:.3} after {trained_steps} step(s)",
        r.metric, before.mean, before.ci95, after.mean, after.ci95
    );
    (before.mean, after.mean)
}

#[test]
fn every_algorithm_learns_to_adapt_a_classifier_to_held_out_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let file = blobs_csv(dir.path(), 20, 20);
    for algorithm in [
        Algo::Maml,
        Algo::Fomaml,
        Algo::MetaSgd,
        Algo::Anil,
        Algo::Reptile,
    ] {
        let start = std::time::Instant::now();
        let cfg = config(&file, algorithm, 300);
        let t = train(
            &cfg,
            &file,
            &dir.path().join(format!("{algorithm:?}")),
            false,
        )
        .unwrap();
        let blob = Blob::parse(&t.blob).unwrap();
        assert_eq!(blob.meta.loss, Loss::SoftmaxCrossEntropy);
        assert_eq!(blob.meta.shape, [2, 40, 40, 3]);
        assert_eq!(blob.meta.trained_k, 9);
        let r = eval(&t.blob, &file);
        assert_eq!(r.metric, "accuracy");
        assert_eq!(r.tasks, ["user16", "user17", "user18", "user19"]);
        let what = format!("{algorithm:?} ({:.1} s)", start.elapsed().as_secs_f64());
        let (before, after) = before_after(&what, &r, cfg.steps);
        let chance = r.chance.unwrap();
        assert!(
            after > chance + 0.3 && after > before + 0.25,
            "{algorithm:?}: held-out accuracy {before:.3} unadapted, {after:.3} adapted, chance {chance:.3}"
        );
    }
}

#[test]
fn a_regression_file_trains_and_adaptation_lowers_the_held_out_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = linear_csv(dir.path(), 30, 30);
    let mut cfg = config(&file, Algo::Maml, 300);
    cfg.alpha = 0.1;
    let t = train(&cfg, &file, &dir.path().join("run"), false).unwrap();
    let blob = Blob::parse(&t.blob).unwrap();
    assert_eq!(blob.meta.loss, Loss::Mse);
    // The inputs are standardised with the meta-training rows' statistics.
    let (m1, s1) = blob.input_norm(0);
    let (m2, s2) = blob.input_norm(1);
    assert!(
        (m1 - 20.0).abs() < 0.1 && (s1 - 0.577).abs() < 0.05,
        "{m1} {s1}"
    );
    assert!(m2.abs() < 10.0 && (s2 - 57.7).abs() < 5.0, "{m2} {s2}");
    let r = eval(&t.blob, &file);
    assert_eq!(r.metric, "mse");
    assert_eq!(r.tasks.len(), 6);
    let (before, after) = before_after("regression", &r, cfg.steps);
    assert!(after < 0.5 * before, "MSE {before} -> {after}");
}

#[test]
fn unsupported_shapes_and_too_small_tasks_give_the_documented_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.csv");
    let mut s = String::from("task,a,b,c,d,e,y\n");
    for i in 0..30 {
        writeln!(s, "t{},1,2,3,4,{i},0.5", i % 3).unwrap();
    }
    std::fs::write(&wide, s).unwrap();
    let mut cfg = config(&wide, Algo::Maml, 10);
    cfg.k = 2;
    let e = train(&cfg, &wide, &dir.path().join("wide"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{}: 5 feature column(s) and 1 y column(s): a 5-40-40-1 model is not compiled in",
            wide.display()
        )),
        "{e}"
    );
    assert!(e.contains("[1, 2, 3, 6]"), "{e}");
    assert!(
        e.contains("`with_csv_shape!` in meta-train/src/model/mod.rs"),
        "{e}"
    );

    let small = dir.path().join("small.csv");
    let mut s = String::from("task,x,y\n");
    for i in 0..20 {
        writeln!(s, "big,{i},1").unwrap();
    }
    for i in 0..7 {
        writeln!(s, "tiny,{i},1").unwrap();
    }
    std::fs::write(&small, s).unwrap();
    let mut cfg = config(&small, Algo::Maml, 10);
    cfg.k = 5;
    let e = train(&cfg, &small, &dir.path().join("small"), false)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:22: task \"tiny\" has 7 samples, fewer than 2K = 10 (K = 5 support and 5 query samples)",
            small.display()
        )
    );
    cfg.k = 40;
    let e = train(&cfg, &small, &dir.path().join("small"), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("fewer than 2K = 80"), "{e}");
}

#[test]
fn resume_gives_the_blob_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = blobs_csv(dir.path(), 10, 12);
    let whole = train(
        &config(&file, Algo::Maml, 60),
        &file,
        &dir.path().join("whole"),
        false,
    )
    .unwrap();
    let part = dir.path().join("part");
    let half = train(&config(&file, Algo::Maml, 30), &file, &part, false).unwrap();
    assert_ne!(half.blob, whole.blob);
    let resumed = train(&config(&file, Algo::Maml, 60), &file, &part, true).unwrap();
    assert_eq!(resumed.blob, whole.blob, "resumed run differs");
    assert_eq!(std::fs::read(part.join("wstar.bin")).unwrap(), whole.blob);

    // Another task file under the same run folder is refused.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let changed = blobs_csv(&other, 10, 13);
    let e = train(&config(&changed, Algo::Maml, 90), &changed, &part, true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("tasks.json was written for another task file or --holdout"),
        "{e}"
    );
}

#[test]
fn a_padded_batch_gives_the_meta_gradient_of_its_samples_alone() {
    use meta_train::algo::{task_meta_grad, Inner, Task, Workspace};
    use nalgebra::SMatrix;
    use shared::inner::AdaptMask;
    use shared::model::{Mlp2, Params};
    type Net = Mlp2<f32, 2, 8, 8, 3>;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut theta = Net::zeros();
    theta.fill_with(|_| rng.gen_range(-0.5..0.5));
    let alpha: Vec<f32> = (0..Net::PARAMS).map(|_| rng.gen_range(0.1..0.5)).collect();
    let mut exact: Task<f32, 2, 3, 5> = Task {
        xs: SMatrix::zeros(),
        ys: SMatrix::zeros(),
        xq: SMatrix::zeros(),
        yq: SMatrix::zeros(),
    };
    for j in 0..5 {
        for i in 0..2 {
            exact.xs[(i, j)] = rng.gen_range(-2.0..2.0);
            exact.xq[(i, j)] = rng.gen_range(-2.0..2.0);
        }
        exact.ys[(rng.gen_range(0..3), j)] = 1.0;
        exact.yq[(rng.gen_range(0..3), j)] = 1.0;
    }
    // The padding holds garbage: it must not count.
    let mut padded: Task<f32, 2, 3, 8> = Task {
        xs: SMatrix::from_element(9.0),
        ys: SMatrix::from_element(1.0),
        xq: SMatrix::from_element(-7.0),
        yq: SMatrix::from_element(1.0),
    };
    for j in 0..5 {
        padded.xs.set_column(j, &exact.xs.column(j));
        padded.ys.set_column(j, &exact.ys.column(j));
        padded.xq.set_column(j, &exact.xq.column(j));
        padded.yq.set_column(j, &exact.yq.column(j));
    }
    let inner = Inner {
        steps: 2,
        mask: AdaptMask::ALL,
        loss: Loss::SoftmaxCrossEntropy,
        alpha: shared::wstar::AlphaKind::PerParameter,
        loss_bound: f32::INFINITY,
    };
    let (mut g1, mut g2) = (Net::zeros(), Net::zeros());
    let (mut a1, mut a2) = (vec![0.0; Net::PARAMS], vec![0.0; Net::PARAMS]);
    let l1 = task_meta_grad(
        &theta,
        None,
        &alpha,
        &exact,
        inner,
        true,
        &mut Workspace::new(2),
        &mut g1,
        Some(&mut a1),
    );
    let l2 = task_meta_grad(
        &theta,
        None,
        &alpha,
        &padded,
        inner,
        true,
        &mut Workspace::with_samples(2, 5),
        &mut g2,
        Some(&mut a2),
    );
    let flat = |m: &Net| {
        let mut v = Vec::new();
        m.for_each(&mut |_, s| v.extend_from_slice(s));
        v
    };
    assert!(
        (l1 - l2).abs() <= 1e-6 * l1.abs(),
        "query loss {l1} vs {l2}"
    );
    for (name, a, b) in [("θ0", flat(&g1), flat(&g2)), ("α", a1, a2)] {
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * scale, "{name}: {x} vs {y}");
        }
    }
}
