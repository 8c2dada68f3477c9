//! tinyadapt firmware for the ESP32-C3-DevKitM-1 (RISC-V RV32IMC, no FPU) on `esp-hal`:
//! serves the model named at build time (`TINYADAPT_FIRMWARE`, default the sinusoid adapter)
//! on UART0 (TX GPIO21, RX GPIO20, the board's USB-UART bridge, 115200 8N1); logs go out over
//! RTT (the chip's USB-JTAG), a panic prints through `esp-backtrace`.
//!
//! Two things differ from a Cortex-M board: the `w*` slots are read from the `wstar` flash
//! partition into RAM at reset (the MMU maps only the app image), and the clock is esp-hal's
//! microsecond time base (the core has no `mcycle`).
#![no_std]
#![no_main]

use defmt_rtt as _;
use esp_backtrace as _;
use esp_hal::time::Instant;
use esp_hal::uart::{Config, Uart};
use esp_storage::FlashStorage;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();
app::board_package!();

/// Bytes of one `w*` slot: half the `wstar` partition.
const SLOT: usize = board::BOARD.slot(0).length as usize;

/// The two slots, read from flash at reset.
static SLOTS: StaticCell<[[u8; SLOT]; 2]> = StaticCell::new();

/// esp-hal's time base, in microseconds.
struct Micros;

impl app::clock::Ticks for Micros {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        let start = Instant::now();
        let r = f();
        (r, start.elapsed().as_micros())
    }
}

#[esp_hal::main]
fn main() -> ! {
    let p = esp_hal::init(esp_hal::Config::default());
    let slots = SLOTS.init([[0xFF; SLOT]; 2]);
    let mut flash = FlashStorage::new(p.FLASH);
    for (i, slot) in slots.iter_mut().enumerate() {
        // A slot that cannot be read stays erased (0xFF): the server refuses it as blank.
        if let Err(e) = flash.read(board::BOARD.slot(i).origin, slot) {
            defmt::warn!(
                "w* slot {=usize}: flash read failed: {}",
                i,
                defmt::Debug2Format(&e)
            );
        }
    }
    let uart = Uart::new(p.UART0, Config::default())
        .expect("the default UART configuration is valid")
        .with_tx(p.GPIO21)
        .with_rx(p.GPIO20);
    let [a, b] = slots;
    app::run_with_slots(
        uart,
        &board::BOARD,
        model::FIRMWARE,
        model::server(),
        Micros,
        [a, b],
    )
}
