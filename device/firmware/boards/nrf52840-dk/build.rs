//! Writes `memory.x` from `shared::board::NRF52840_DK` and `model.rs` from `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::NRF52840_DK);
}
