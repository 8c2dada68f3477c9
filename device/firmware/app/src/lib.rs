//! The tinyadapt firmware, for any board: it serves the `device` runtime over the board's UART.
//!
//! At reset it picks the newest valid `w*` of the two slots in the board's flash region
//! (written there separately from the firmware; see `shared::slots`), then answers [`shared::link`] requests forever: push samples, adapt, predict,
//! reset, read parameters and memory use. Every refusal is a typed reply; nothing a host sends
//! stops it. A board package is `main` calling [`run`] with its UART and its
//! [`shared::board::Board`].
//!
//! `defmt` logs leave by semihosting (feature `semihosting`, QEMU) or RTT (feature `rtt`, a
//! debug probe). Under semihosting a panic or a fault ends QEMU with exit code 1 so a test sees
//! it; on hardware it resets the MCU.
#![no_std]

pub mod clock;
mod fault;
pub mod stack;
pub mod uart;

#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "semihosting")]
use defmt_semihosting as _;

use device::server::{Platform, Server};
use shared::board::Board;
use shared::link::{Memory, FIRMWARE_K, MAX_FRAME};
use shared::model::SinusoidNet;
use static_cell::ConstStaticCell;

/// The server this firmware runs: the MAML sinusoid net, one input, one output,
/// [`FIRMWARE_K`] samples.
pub type FirmwareServer = Server<'static, SinusoidNet, 1, 1, FIRMWARE_K>;

/// The server lives in zero-initialised RAM, never on the stack.
static SERVER: ConstStaticCell<FirmwareServer> = ConstStaticCell::new(FirmwareServer::UNLOADED);

/// A byte-wide serial port.
pub trait Serial {
    /// Waits for a byte.
    fn read(&mut self) -> u8;
    /// Sends a byte (waits while the transmitter is full).
    fn write(&mut self, byte: u8);
}

struct OnBoard {
    clock: clock::Clock,
}

impl Platform for OnBoard {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        self.clock.measure(f)
    }

    fn memory(&self) -> Memory {
        stack::memory()
    }
}

/// Serves the `w*` in `board`'s region over `uart`, forever.
pub fn run(mut uart: impl Serial, board: &Board) -> ! {
    let cp = cortex_m::Peripherals::take().expect("peripherals are taken once, here");
    let mut platform = OnBoard {
        clock: clock::Clock::start(cp.SYST),
    };
    let server = SERVER.take();
    // Refused slots are logged here and reported by Status; requests that need a blob get
    // the reason when no slot serves.
    let selection = server.load_slots([slot(board, 0), slot(board, 1)]);
    for (i, why) in selection.refused.iter().enumerate() {
        if let Some(e) = why {
            defmt::warn!("{=str}: w* slot {=usize} refused: {}", board.name, i, e);
        }
    }
    match selection.live {
        Some(i) => defmt::info!(
            "{=str}: serving w* slot {=usize} (generation {=u32}) at {=u32:#010x}, adapter {=u32} B RAM",
            board.name,
            i,
            selection.generation,
            board.slot(i).origin,
            server.status().adapter_bytes
        ),
        None => defmt::warn!("{=str}: no usable w* in either slot", board.name),
    }
    let mut out = [0u8; MAX_FRAME];
    loop {
        let byte = uart.read();
        if let Some(frame) = server.feed(byte, &mut out, &mut platform) {
            for &b in frame {
                uart.write(b);
            }
        }
    }
}

/// `w*` slot `i` of `board`'s flash.
fn slot(board: &Board, i: usize) -> &'static [u8] {
    let r = board.slot(i);
    // SAFETY: the slot is memory-mapped flash of the board, readable for its whole length and
    // not part of any Rust object. It is written only by a flasher (or debugger) from outside,
    // after which the firmware is reset or told to `Rescan`.
    unsafe { core::slice::from_raw_parts(r.origin as usize as *const u8, r.length as usize) }
}
