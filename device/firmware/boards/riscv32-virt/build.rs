//! Writes `memory.x` from `shared::board::RISCV32_VIRT` and `model.rs` from
//! `TINYADAPT_FIRMWARE`.
fn main() {
    build_support::generate(&shared::board::RISCV32_VIRT);
}
