//! tinyadapt firmware for the Netduino Plus 2 (STM32F405RG, Cortex-M4F) on `stm32f4xx-hal`:
//! serves the model named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter)
//! on USART1 (TX PA9, RX PA10, AF7, 115200 8N1), the UART QEMU's `netduinoplus2` machine puts
//! on its first serial port. The same HAL code runs in CI under QEMU and on the board; only
//! the clock and the log transport differ (see the features in `Cargo.toml`).
#![no_std]
#![no_main]

#[cfg(feature = "semihosting")]
use qemu_rt as _;
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
#[cfg(feature = "rtt")]
use {defmt_rtt as _, panic_probe as _};

app::board_package!();

#[cortex_m_rt::entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("taken once, here");
    let dp = pac::Peripherals::take().expect("taken once, here");
    // QEMU models no RCC: a PLL never reports ready there, so the emulated build stays on
    // the 16 MHz HSI the chip starts on (QEMU clocks the core at 168 MHz regardless).
    let clocks = if cfg!(feature = "rtt") {
        Config::hsi().sysclk(168.MHz())
    } else {
        Config::hsi()
    };
    let mut rcc = dp.RCC.freeze(clocks);
    let gpioa = dp.GPIOA.split(&mut rcc);
    let (tx, rx) = dp
        .USART1
        .serial((gpioa.pa9, gpioa.pa10), 115_200.bps(), &mut rcc)
        .expect("115200 8N1 is a valid setting")
        .split();
    app::run(
        app::uart::Duplex {
            rx: app::uart::Blocking(rx),
            tx,
        },
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(cp.SYST),
    )
}
