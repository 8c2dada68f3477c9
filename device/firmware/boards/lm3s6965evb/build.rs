//! Writes `memory.x` from `shared::board::LM3S6965EVB` and `model.rs` from `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::LM3S6965EVB);
}
