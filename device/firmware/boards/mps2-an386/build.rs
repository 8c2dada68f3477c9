//! Writes `memory.x` from `shared::board::MPS2_AN386`, so the linker, the firmware, the exporter
//! and the tests share one `w*` address.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), shared::board::MPS2_AN386.memory_x())
        .expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
