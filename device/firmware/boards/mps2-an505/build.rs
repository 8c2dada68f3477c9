//! Writes `memory.x` from `shared::board::MPS2_AN505` and `model.rs` from `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::MPS2_AN505);
}
