//! tinyadapt firmware for an nRF51822-xxAC (Cortex-M0, no FPU, 32 KiB RAM) under QEMU's
//! `microbit` machine: serves the model named at build time (`TINYADAPT_FIRMWARE`, default the
//! sinusoid adapter) on UART0 (TX P0.24, RX P0.25, the micro:bit's interface-chip pins,
//! 115200 8N1); `TINYADAPT_BOARD=FILE.toml` builds it for a board described in that file.
#![no_std]
#![no_main]

#[cfg(feature = "semihosting")]
use qemu_rt as _;
#[cfg(feature = "rtt")]
use {defmt_rtt as _, panic_probe as _};

app::board_package!();

#[cortex_m_rt::entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("taken once, here");
    let uart = app::uart::Nrf51::new(0x4000_2000, 24, 25);
    app::run(
        uart,
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(cp.SYST),
    )
}
