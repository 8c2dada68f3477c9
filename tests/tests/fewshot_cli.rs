//! `meta-train train-fewshot` and `eval` of its classifier as a user runs them on the second
//! Omniglot split: the run learns from `images_background_small2`, its run folder remembers
//! the split, `eval` picks it up (and refuses a `--split` that would evaluate on alphabets the
//! classifier learned from), and `--validation` evaluates on the held-out characters of the
//! training alphabets.
//!
//! Needs the Omniglot data (`OMNIGLOT_DIR`, by default `../shared/data/omniglot`).

use tinyadapt_tests::{meta_train, omniglot_dir, run};

#[test]
fn a_small2_run_is_evaluated_on_small1s_new_alphabets_or_its_validation_characters() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let trained = run(meta_train()
        .args(["train-fewshot", "--quiet", "--split", "small2"])
        .args(["--iterations", "4", "--meta-batch", "2", "--query", "2"])
        .args(["--eval-episodes", "0", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(omniglot_dir()));
    assert!(trained.status.success());
    let said = String::from_utf8_lossy(&trained.stderr);
    assert!(
        said.contains("images_background_small2.zip")
            && said.contains("Balinese, Early_Aramaic, Korean")
            && said.contains("--validation"),
        "{said}"
    );
    let blob = out.join("wstar.bin");
    let eval = |extra: &[&str]| {
        run(meta_train()
            .arg("eval")
            .arg(&blob)
            .args(["--tasks", "3", "--omniglot"])
            .arg(omniglot_dir())
            .args(extra))
    };
    let new = eval(&[]);
    assert!(new.status.success());
    let table = String::from_utf8_lossy(&new.stdout);
    assert!(
        table.contains(
            "86 characters of alphabets never seen in training (Balinese, Early_Aramaic, Korean)"
        ) && table.contains("5-way 1-shot"),
        "{table}"
    );
    let validation = eval(&["--validation"]);
    assert!(validation.status.success());
    let table = String::from_utf8_lossy(&validation.stdout);
    // 20% of each small2 alphabet (Greek 24, Japanese 47, Latin 26, Sanskrit 42, Tagalog 17:
    // 5 + 9 + 5 + 8 + 3), each in four rotations.
    assert!(
        table.contains("120 characters of meta-validation")
            && table.contains("Greek")
            && !table.contains("Korean"),
        "{table}"
    );
    let wrong = eval(&["--split", "small1"]);
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("--split small1") && said.contains("images_background_small2.zip"),
        "{said}"
    );
}
