//! Writes `memory.x` from `shared::board::RPI_PICO` and `model.rs` from `TINYADAPT_FIRMWARE`,
//! and puts `boot2.x` (the RP2040's second-stage bootloader in the first 256 B of flash) on
//! the linker's path.
fn main() {
    build_support::generate(&shared::board::RPI_PICO);
    println!(
        "cargo:rustc-link-search={}",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    );
    println!("cargo:rerun-if-changed=boot2.x");
}
