//! Writes `memory.x` from `shared::board::MPS2_AN386` (code, RAM and the `w*` region).
fn main() {
    build_support::generate(&shared::board::MPS2_AN386);
}
