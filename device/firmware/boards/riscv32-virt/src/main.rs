//! tinyadapt firmware for a RISC-V RV32IMAC core on QEMU's `virt` machine: serves the model
//! named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter) on its NS16550A
//! UART; `TINYADAPT_BOARD=FILE.toml` builds it for a board described in that file.
#![no_std]
#![no_main]

use qemu_rt as _;

app::board_package!();

#[riscv_rt::entry]
fn main() -> ! {
    let uart = app::uart::Ns16550::new(0x1000_0000);
    app::run(
        uart,
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(),
    )
}
