//! `meta-train train --tasks FILE.csv` as a user runs it: meta-train on a CSV file of
//! classification tasks, then `eval` the blob on the file's held-out tasks and `inspect` it; a
//! file whose shape is not compiled in is refused with the documented error.

use std::fmt::Write;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tinyadapt_tests::{meta_train, run};

/// Three blobs in the plane whose class names each task (user) permutes, with a fixed split.
fn write_tasks(path: &Path) {
    const CENTRES: [(f32, f32); 3] = [(2.0, 0.0), (-1.0, 1.732), (-1.0, -1.732)];
    const NAMES: [&str; 3] = ["walk", "run", "sit"];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut s = String::from("# classes: walk,run,sit\ntask,split,ax,ay,label\n");
    for t in 0..20 {
        let mut perm = [0, 1, 2];
        perm.shuffle(&mut rng);
        for split in ["train", "test"] {
            for _ in 0..16 {
                let c = rng.gen_range(0..3);
                let (cx, cy) = CENTRES[c];
                let (x, y) = (cx + rng.gen_range(-0.9..0.9), cy + rng.gen_range(-0.9..0.9));
                writeln!(s, "user{t},{split},{x},{y},{}", NAMES[perm[c]]).unwrap();
            }
        }
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn train_on_a_csv_file_then_eval_and_inspect_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("gestures.csv");
    write_tasks(&tasks);
    let run_dir = dir.path().join("run");
    let out = run(meta_train()
        .args(["train", "--quiet", "--tasks"])
        .arg(&tasks)
        .args([
            "--algorithm",
            "fomaml",
            "--k",
            "6",
            "--steps",
            "2",
            "--alpha",
            "0.5",
        ])
        .args([
            "--meta-lr",
            "3e-3",
            "--meta-batch",
            "8",
            "--iterations",
            "300",
        ])
        .args(["--holdout", "0.2", "--run"])
        .arg(&run_dir));
    assert!(out.status.success(), "train failed");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("4 held-out task(s)"), "{text}");
    assert!(text.contains("accuracy ± 95% CI"), "{text}");
    for f in [
        "config.json",
        "tasks.json",
        "wstar.bin",
        "metrics.csv",
        "eval.json",
    ] {
        assert!(run_dir.join(f).is_file(), "{f} missing from the run folder");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["family"], "csv");
    assert_eq!(config["model"], "mlp-2-40-40-3");

    let blob = run_dir.join("wstar.bin");
    let out = run(meta_train()
        .arg("eval")
        .arg(&blob)
        .arg("--tasks")
        .arg(&tasks)
        .arg("--json"));
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["metric"], "accuracy");
    assert_eq!(json["k"], 6);
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells[0]["steps"], 0);
    let before = cells[0]["mean"].as_f64().unwrap();
    let after = cells.iter().find(|c| c["steps"] == 2).unwrap()["mean"]
        .as_f64()
        .unwrap();
    assert!(
        after > 0.7 && after > before + 0.2,
        "adaptation on the device runtime: accuracy {before} -> {after}"
    );

    let out = run(meta_train().arg("inspect").arg(&blob));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2-40-40-3"), "{text}");
    assert!(text.contains("SoftmaxCrossEntropy"), "{text}");
    // The RAM a device needs to adapt it from 32 samples, as the device crate sizes it.
    type Net = shared::model::Mlp2<f32, 2, 40, 40, 3>;
    let ram = device::Adapter::<Net, 2, 3, 32>::RAM_BYTES;
    assert!(
        text.contains(&format!(
            "device RAM    K = 32: {ram} bytes of adapter state"
        )),
        "{text}"
    );

    // Without the task file, eval says how to evaluate the blob.
    let out = run(meta_train().arg("eval").arg(&blob));
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("evaluate it on its CSV tasks with --tasks FILE.csv"));
}

#[test]
fn a_shape_that_is_not_compiled_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("wide.csv");
    let mut s = String::from("task,a,b,c,d,e,y\n");
    for i in 0..40 {
        writeln!(s, "t{},1,2,3,4,{i},0.5", i % 2).unwrap();
    }
    std::fs::write(&tasks, s).unwrap();
    let out = run(meta_train()
        .args(["train", "--quiet", "--k", "5", "--tasks"])
        .arg(&tasks)
        .arg("--run")
        .arg(dir.path().join("run")));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("5 feature column(s) and 1 y column(s): a 5-40-40-1 model is not compiled in"),
        "{err}"
    );
    assert!(
        err.contains("`with_csv_shape!` in meta-train/src/model/mod.rs"),
        "{err}"
    );
}
