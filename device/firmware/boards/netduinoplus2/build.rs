//! Writes `memory.x` from `shared::board::NETDUINOPLUS2` and `model.rs` from
//! `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::NETDUINOPLUS2);
}
