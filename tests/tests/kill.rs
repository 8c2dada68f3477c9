//! A training run killed with SIGKILL at ten moments, and resumed each time, ends with the
//! byte-identical blob of an uninterrupted run: checkpoints are written atomically and the
//! resumed run continues exactly where the checkpoint left off.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tinyadapt_tests::meta_train;

const ITERATIONS: &str = "3000";

fn train(dir: &Path, resume: bool) -> Command {
    let mut cmd = meta_train();
    cmd.args([
        "train",
        "--quiet",
        "--iterations",
        ITERATIONS,
        "--meta-batch",
        "5",
        "--checkpoint-every",
        "50",
    ])
    .args(["--log-every", "50", "--eval-tasks", "0", "--out"])
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

#[test]
fn sigkill_at_ten_moments_then_resume_gives_the_uninterrupted_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let start = Instant::now();
    assert!(train(&whole, false).status().unwrap().success());
    let full_run = start.elapsed();

    // Kill moments spread over the run's length, from a fixed seed.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let killed = tmp.path().join("killed");
    let (mut kills, mut resumes) = (0, 0);
    for _ in 0..10 {
        let resume = killed.join("checkpoint.bin").exists();
        resumes += usize::from(resume);
        let mut child = train(&killed, resume).spawn().unwrap();
        let wait = full_run.mul_f64(0.02 + 0.06 * (next() % 1000) as f64 / 1000.0);
        std::thread::sleep(wait.max(Duration::from_millis(20)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 8,
        "only {kills} of 10 runs were still going when killed"
    );
    assert!(
        resumes >= 5,
        "only {resumes} runs resumed from a checkpoint"
    );
    let resume = killed.join("checkpoint.bin").exists();
    let out = train(&killed, resume).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(killed.join("wstar.bin")).unwrap(),
        std::fs::read(whole.join("wstar.bin")).unwrap(),
        "the killed-and-resumed run ends with another blob"
    );
    let rows = |d: &Path| {
        std::fs::read_to_string(d.join("metrics.csv"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(rows(&killed), rows(&whole));
}
