//! tinyadapt firmware for the Raspberry Pi Pico (RP2040, Cortex-M0+, no FPU) on `rp2040-hal`:
//! serves the model named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter)
//! on UART0 (TX GP0, RX GP1, 115200 8N1: a USB-serial adapter, or a Debug Probe's UART); logs
//! go out over RTT and a panic halts in `panic-probe` for the debugger.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;
use rp2040_hal::clocks::{init_clocks_and_plls, Clock};
use rp2040_hal::fugit::RateExtU32;
use rp2040_hal::gpio::{FunctionUart, Pins};
use rp2040_hal::pac;
use rp2040_hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use rp2040_hal::{Sio, Watchdog};

app::board_package!();

/// The second-stage bootloader for the Pico's W25Q080 flash, placed by `boot2.x`.
#[link_section = ".boot2"]
#[used]
static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The Pico's crystal.
const XOSC_HZ: u32 = 12_000_000;

#[cortex_m_rt::entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("taken once, here");
    let mut p = pac::Peripherals::take().expect("taken once, here");
    let mut watchdog = Watchdog::new(p.WATCHDOG);
    let Ok(clocks) = init_clocks_and_plls(
        XOSC_HZ,
        p.XOSC,
        p.CLOCKS,
        p.PLL_SYS,
        p.PLL_USB,
        &mut p.RESETS,
        &mut watchdog,
    ) else {
        panic!("the crystal or a PLL did not start");
    };
    let sio = Sio::new(p.SIO);
    let pins = Pins::new(p.IO_BANK0, p.PADS_BANK0, sio.gpio_bank0, &mut p.RESETS);
    let uart_pins = (
        pins.gpio0.into_function::<FunctionUart>(),
        pins.gpio1.into_function::<FunctionUart>(),
    );
    let uart = UartPeripheral::new(p.UART0, uart_pins, &mut p.RESETS)
        .enable(
            UartConfig::new(115_200.Hz(), DataBits::Eight, None, StopBits::One),
            clocks.peripheral_clock.freq(),
        )
        .expect("115200 8N1 from the peripheral clock");
    app::run(
        uart,
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(cp.SYST),
    )
}
