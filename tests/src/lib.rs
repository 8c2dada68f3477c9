//! End-to-end tests of tinyadapt live in `tests/`; this library holds what they share.
//!
//! Run them with `cargo test -p tinyadapt-tests`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A command running the `meta-train` binary, built once per test process by cargo with the
/// current profile.
///
/// ```no_run
/// let out = tinyadapt_tests::meta_train().arg("--help").output().unwrap();
/// assert!(out.status.success());
/// ```
pub fn meta_train() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        escargot::CargoBuild::new()
            .package("tinyadapt-meta-train")
            .bin("meta-train")
            .current_release()
            .run()
            .expect("cargo builds meta-train")
            .path()
            .to_path_buf()
    });
    Command::new(bin)
}

/// Runs `cmd` to the end and shows its output (`cargo test` prints it for a failing test).
///
/// ```no_run
/// let out = tinyadapt_tests::run(tinyadapt_tests::meta_train().arg("--help"));
/// assert!(out.status.success());
/// ```
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("meta-train starts");
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The folder of the Omniglot zips: `OMNIGLOT_DIR`, else the shared data folder beside the
/// repository (`../shared/data/omniglot`).
///
/// ```no_run
/// assert!(tinyadapt_tests::omniglot_dir().join("images_background_small1.zip").exists());
/// ```
pub fn omniglot_dir() -> PathBuf {
    std::env::var_os("OMNIGLOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/omniglot"),
        PathBuf::from,
    )
}
