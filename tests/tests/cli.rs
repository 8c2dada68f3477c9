//! The `meta-train` CLI as a user runs it: train a small run, then `eval` and `inspect` the
//! blob it wrote; corrupt and truncated blobs give the documented errors and a failing exit.

use std::path::{Path, PathBuf};
use std::process::Command;

use tinyadapt_tests::{meta_train, run};

/// `meta-train train` of a short MAML run into `dir`; `extra` flag-value pairs replace the
/// defaults.
fn train_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut flags: Vec<[&str; 2]> = vec![
        ["--iterations", "200"],
        ["--meta-batch", "5"],
        ["--checkpoint-every", "50"],
        ["--log-every", "50"],
        ["--eval-tasks", "20"],
    ];
    for pair in extra.chunks(2) {
        match flags.iter_mut().find(|f| f[0] == pair[0]) {
            Some(f) => f[1] = pair[1],
            None => flags.push([pair[0], pair[1]]),
        }
    }
    let mut cmd = meta_train();
    cmd.args(["train", "--quiet", "--out"])
        .arg(dir)
        .args(flags.concat());
    cmd
}

/// Runs [`train_cmd`]; returns the blob's path.
fn short_run(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = run(&mut train_cmd(dir, extra));
    assert!(out.status.success(), "train failed");
    dir.join("wstar.bin")
}

#[test]
fn train_writes_a_run_folder_that_eval_and_inspect_read() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    // Long enough that adaptation clearly helps on held-out tasks.
    let blob = short_run(
        &run_dir,
        &[
            "--iterations",
            "1000",
            "--meta-batch",
            "10",
            "--eval-tasks",
            "20",
        ],
    );
    for f in [
        "config.json",
        "metrics.csv",
        "checkpoint.bin",
        "wstar.bin",
        "learning_curve.png",
        "eval.json",
    ] {
        assert!(run_dir.join(f).is_file(), "{f} missing from the run folder");
    }
    // Ordinary permissions, as any other program's files in that folder get.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let plain = run_dir.join("plain");
        std::fs::write(&plain, b"").unwrap();
        for f in ["config.json", "metrics.csv", "checkpoint.bin", "wstar.bin"] {
            assert_eq!(mode(&run_dir.join(f)), mode(&plain), "{f}");
        }
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["iterations"], 1000);
    assert_eq!(config["algorithm"], "maml");
    let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        1 + 20,
        "a header and a row every 50 iterations:\n{metrics}"
    );

    let plot = dir.path().join("eval.png");
    let out = run(meta_train()
        .args(["eval", "--tasks", "30", "--plot"])
        .arg(&plot)
        .arg(&blob));
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("mean MSE"), "{table}");
    // Four step counts for each of K = 5 and K = 10.
    assert_eq!(
        table
            .lines()
            .filter(|l| l.trim_start().starts_with("5 ") || l.trim_start().starts_with("10 "))
            .count(),
        8
    );
    assert_eq!(&std::fs::read(&plot).unwrap()[..8], b"\x89PNG\r\n\x1a\n");

    let out = run(meta_train()
        .args(["eval", "--tasks", "30", "--json"])
        .arg(&blob));
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["k"], 5);
    assert_eq!(json[1]["k"], 10);
    let cells = json[1]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let before = cells[0]["mean"].as_f64().unwrap();
    let after = cells[3]["mean"].as_f64().unwrap();
    assert!(
        after < before,
        "10 steps of adaptation lower the error: {before} -> {after}"
    );

    let out = run(meta_train().arg("inspect").arg(&blob));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1-40-40-1"), "{text}");
    assert!(text.contains("1761 parameters"), "{text}");
    assert!(text.contains("device RAM"), "{text}");
}

#[test]
fn a_user_error_prints_its_message_and_no_backtrace() {
    let out = run(meta_train()
        .args(["inspect", "no/such/wstar.bin"])
        .env("RUST_BACKTRACE", "1"));
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: cannot read w* blob no/such/wstar.bin:"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn corrupt_and_truncated_blobs_are_refused_with_the_documented_errors() {
    let dir = tempfile::tempdir().unwrap();
    let blob = short_run(&dir.path().join("run"), &["--eval-tasks", "0"]);
    let bytes = std::fs::read(&blob).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "flipped",
            {
                let mut b = bytes.clone();
                b[100] ^= 0x10;
                b
            },
            "w* CRC mismatch",
        ),
        (
            "truncated",
            bytes[..bytes.len() - 7].to_vec(),
            "w* length mismatch",
        ),
        ("short", bytes[..10].to_vec(), "w* blob too short"),
        (
            "magic",
            {
                let mut b = bytes.clone();
                b[0] = b'X';
                b
            },
            "bad magic",
        ),
    ];
    for (name, data, message) in cases {
        let path = dir.path().join(format!("{name}.bin"));
        std::fs::write(&path, data).unwrap();
        for sub in ["eval", "inspect"] {
            let out = run(meta_train().arg(sub).arg(&path));
            assert!(!out.status.success(), "{sub} accepted a {name} blob");
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(
                err.contains(message),
                "{sub} on a {name} blob: expected {message:?} in {err:?}"
            );
            assert!(
                err.contains(&path.display().to_string()),
                "the error names the file: {err}"
            );
        }
    }
    let missing = dir.path().join("nope.bin");
    let out = run(meta_train().arg("eval").arg(&missing));
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot read w* blob"));
}

#[test]
fn same_seed_and_flags_give_a_byte_identical_blob_and_resume_matches() {
    let dir = tempfile::tempdir().unwrap();
    let a = short_run(
        &dir.path().join("a"),
        &["--eval-tasks", "0", "--threads", "1"],
    );
    let b = short_run(
        &dir.path().join("b"),
        &["--eval-tasks", "0", "--threads", "2"],
    );
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same seed, different thread count"
    );

    // Stop after 100 iterations, then resume to 200: the same blob as the uninterrupted run.
    let c_dir = dir.path().join("c");
    let c = short_run(&c_dir, &["--iterations", "100", "--eval-tasks", "0"]);
    assert_ne!(std::fs::read(&c).unwrap(), std::fs::read(&a).unwrap());
    let out = run(train_cmd(&c_dir, &["--eval-tasks", "0"]).arg("--resume"));
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(c_dir.join("wstar.bin")).unwrap(),
        std::fs::read(&a).unwrap(),
        "resumed run differs"
    );
    assert_eq!(
        std::fs::read_to_string(c_dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        std::fs::read_to_string(dir.path().join("a/metrics.csv"))
            .unwrap()
            .lines()
            .count()
    );

    let other = short_run(&dir.path().join("d"), &["--eval-tasks", "0", "--seed", "1"]);
    assert_ne!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&a).unwrap(),
        "the seed matters"
    );

    // Resuming with another config is refused, naming the checkpoint.
    let out = run(train_cmd(&c_dir, &["--meta-batch", "6", "--eval-tasks", "0"]).arg("--resume"));
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("checkpoint.bin was written with another config"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let blob = short_run(&dir.path().join("run"), &["--eval-tasks", "0"]);
    // The reader is gone before `eval` prints a line: like `meta-train eval BLOB | head -0`.
    let mut child = meta_train()
        .arg("eval")
        .arg(&blob)
        .args(["--tasks", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}
