//! Writes `memory.x` from `shared::board::MPS2_AN386` and `model.rs` from `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::MPS2_AN386);
}
