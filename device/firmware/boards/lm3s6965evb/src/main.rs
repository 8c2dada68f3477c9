//! tinyadapt firmware for the lm3s6965evb board (TI LM3S6965EVB, Cortex-M3, under QEMU): serves the
//! model named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter) on UART0;
//! `TINYADAPT_BOARD=FILE.toml` builds it for a board described in that file instead.
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
    let uart = app::uart::Stellaris::new(0x4000_C000);
    app::run(
        uart,
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(cp.SYST),
    )
}
