//! Writes `memory.x` from `shared::board::NRF51822_XXAC` and `model.rs` from
//! `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::NRF51822_XXAC);
}
