//! The build script of a board package, in one call: it writes `memory.x` and `board.rs` (the
//! board as a constant `BOARD`) from the [`Board`], so the linker, the firmware, the exporter
//! and the tests share one `w*` address, and `model.rs` from the firmware named in
//! `TINYADAPT_FIRMWARE` (see [`shared::catalogue`]; default [`DEFAULT`]); the board's
//! `main.rs` includes both. With `TINYADAPT_BOARD=FILE.toml` the board is the one described in
//! that file ([`shared::board_file`]): the same package then serves a board of the user's.
//!
//! A board package's `build.rs` is one line in `main`:
//!
//! ```no_run
//! tinyadapt_fw_build::generate(&shared::board::MPS2_AN386);
//! ```

use std::path::PathBuf;
use std::{env, fs};

use shared::board::Board;
use shared::catalogue::Firmware;

/// The environment variable naming the firmware to build (`mlp-2-40-40-3-k10`, `omniglot5`…).
pub const FIRMWARE_VAR: &str = "TINYADAPT_FIRMWARE";

/// The environment variable naming a board file that replaces the package's board.
pub const BOARD_VAR: &str = "TINYADAPT_BOARD";

/// The firmware built when [`FIRMWARE_VAR`] is unset.
pub const DEFAULT: Firmware = Firmware::SINUSOID;

/// Writes `memory.x`, `board.rs` and `model.rs` into `OUT_DIR` and tells cargo when to run
/// again. A firmware name that does not parse, or a board file that does not load, stops the
/// build with the reason.
pub fn generate(board: &Board) {
    let board = generate_modules(board);
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), board.memory_x()).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
}

/// [`generate`] without `memory.x`, for a board whose HAL brings its own linker scripts
/// (esp-hal's `linkall.x`): writes `board.rs` and `model.rs` and returns the board built for
/// (the package's, or [`BOARD_VAR`]'s file).
pub fn generate_modules(board: &Board) -> &Board {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed={BOARD_VAR}");
    let board = match env::var(BOARD_VAR) {
        Ok(path) => {
            println!("cargo:rerun-if-changed={path}");
            let file = shared::board_file::BoardFile::load(path.as_ref())
                .unwrap_or_else(|e| panic!("{BOARD_VAR}: {e}"));
            file.board
        }
        Err(_) => board,
    };
    fs::write(out.join("board.rs"), board.rust_source()).expect("OUT_DIR is writable");
    let firmware = match env::var(FIRMWARE_VAR) {
        Ok(name) => name.parse::<Firmware>().unwrap_or_else(|e| {
            panic!("{FIRMWARE_VAR}={name:?}: {e}");
        }),
        Err(_) => DEFAULT,
    };
    fs::write(out.join("model.rs"), firmware.rust_source()).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-env-changed={FIRMWARE_VAR}");
    println!("cargo:rerun-if-changed=build.rs");
    board
}
