//! Writes `board.rs` from `shared::board::ESP32C3_DEVKITM` and `model.rs` from
//! `TINYADAPT_FIRMWARE`; esp-hal brings the linker scripts (`linkall.x`).
fn main() {
    build_support::generate_modules(&shared::board::ESP32C3_DEVKITM);
}
