//! tinyadapt firmware for the Nordic nRF52840 DK (Cortex-M4F) on `nrf52840-hal`: serves the
//! model named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter) on UARTE0,
//! wired to the on-board J-Link's virtual COM port (TX P0.06, RX P0.08, 115200 8N1); logs go
//! out over RTT and a panic halts in `panic-probe` for the debugger.
#![no_std]
#![no_main]

use defmt_rtt as _;
use nrf52840_hal::gpio::{p0, Level};
use nrf52840_hal::pac;
use nrf52840_hal::uarte::{Baudrate, Parity, Pins, Uarte};
use panic_probe as _;
use static_cell::StaticCell;

app::board_package!();

/// EasyDMA reads what it sends from RAM: responses leave through this buffer.
static TX_BUF: StaticCell<[u8; 64]> = StaticCell::new();
/// Requests arrive one byte at a time.
static RX_BUF: StaticCell<[u8; 1]> = StaticCell::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().expect("taken once, here");
    let p = pac::Peripherals::take().expect("taken once, here");
    let port0 = p0::Parts::new(p.P0);
    let pins = Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    let uarte = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    let (tx, rx) = uarte
        .split(TX_BUF.init([0; 64]), RX_BUF.init([0; 1]))
        .expect("buffers of valid sizes");
    app::run(
        app::uart::Duplex { rx, tx },
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        app::clock::Clock::start(cp.SYST),
    )
}
