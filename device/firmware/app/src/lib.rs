//! The tinyadapt firmware for any board: it serves a `device` model over the board's serial
//! port.
//!
//! At reset it picks the newest valid `w*` of the two slots in the board's flash region
//! (written there separately from the firmware; see `shared::slots`), then answers
//! [`shared::link`] requests forever: push samples, adapt, predict, reset, read parameters and
//! memory use. Every refusal is a typed reply; nothing a host sends stops it.
//!
//! The crate owns no global handler and takes no peripheral, so it sits beside any HAL,
//! embassy or panic-probe. The board package (a `main.rs` of a few lines) picks the panic
//! handler and the `defmt` transport, hands in its serial port (anything with the
//! [`embedded_io`] traits: a HAL's UART, or the polled drivers in [`uart`]) and its clock
//! ([`clock::Clock`]: SysTick on Cortex-M, whose exception [`board_package!`] forwards, with
//! the modules its build script generates; the cycle counter on RISC-V):
//!
//! ```ignore
//! app::board_package!();
//!
//! #[cortex_m_rt::entry]
//! fn main() -> ! {
//!     let cp = cortex_m::Peripherals::take().unwrap();
//!     let uart = app::uart::Cmsdk::new(0x4000_4000);
//!     let clock = app::clock::Clock::start(cp.SYST);
//!     app::run(uart, &board::BOARD, model::FIRMWARE, model::server(), clock)
//! }
//! ```
//!
//! The served model's type comes from the firmware's name (`TINYADAPT_FIRMWARE`, see
//! `shared::catalogue`), which the board's build script turns into `model.rs`.
#![no_std]

pub mod clock;
pub mod stack;
pub mod uart;

/// What every board package's `main.rs` takes from its build script, and its SysTick
/// handler: the `board` module (`board::BOARD`, which `build_support::generate` writes from
/// the board's description), the `model` module (`model::FIRMWARE` and `model::server()`, the
/// served model's types and its `.bss` cell, from `TINYADAPT_FIRMWARE`), and the SysTick
/// exception forwarded to [`clock::tick`]. A package that keeps SysTick for itself writes
/// these out instead and calls [`clock::tick`] from its own handler.
///
/// ```ignore
/// app::board_package!();
///
/// #[cortex_m_rt::entry]
/// fn main() -> ! {
///     let cp = cortex_m::Peripherals::take().expect("taken once, here");
///     let clock = app::clock::Clock::start(cp.SYST);
///     app::run(my_uart, &board::BOARD, model::FIRMWARE, model::server(), clock)
/// }
/// ```
#[macro_export]
macro_rules! board_package {
    () => {
        /// The board this firmware is built for (`build_support::generate`).
        mod board {
            include!(concat!(env!("OUT_DIR"), "/board.rs"));
        }
        /// The served model: its types, its name and its server (`TINYADAPT_FIRMWARE`).
        mod model {
            include!(concat!(env!("OUT_DIR"), "/model.rs"));
        }
        #[cfg(target_arch = "arm")]
        #[cortex_m_rt::exception]
        fn SysTick() {
            $crate::clock::tick();
        }
    };
}

use device::server::{LinkServer, Platform, Served};
use embedded_io::{Read, Write};
use shared::board::Board;
use shared::link::{Memory, MAX_FRAME};

struct OnBoard<C> {
    clock: C,
}

impl<C: clock::Ticks> Platform for OnBoard<C> {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        self.clock.measure(f)
    }

    fn memory(&self) -> Memory {
        stack::memory()
    }
}

/// Serves the `w*` in `board`'s region over `serial` with `server`, forever; `clock` times
/// each adaptation and prediction (on Cortex-M, `clock::Clock::start(cp.SYST)`, with the
/// SysTick exception forwarded to `clock::tick`; on RISC-V, `clock::Clock::start()`).
/// `firmware` is the firmware's name (`model::FIRMWARE`), for the boot log.
///
/// A serial error (an overrun, a framing error) is logged and the byte dropped: the host's
/// request then fails to decode or times out, and the next one is served.
pub fn run<T: Served<'static>, const X: usize>(
    serial: impl Read + Write,
    board: &Board,
    firmware: &str,
    server: &'static mut LinkServer<'static, T, X>,
    clock: impl clock::Ticks,
) -> ! {
    run_with_slots(serial, board, firmware, server, clock, wstar_slots(board))
}

/// [`run`] with the two `w*` slots' bytes handed in, for a board whose flash the core does not
/// map at the slots' addresses (the ESP32-C3 reads it through its flash driver into RAM at
/// reset; a `Rescan` then sees that copy, so reset after writing a slot).
pub fn run_with_slots<T: Served<'static>, const X: usize>(
    mut serial: impl Read + Write,
    board: &Board,
    firmware: &str,
    server: &'static mut LinkServer<'static, T, X>,
    clock: impl clock::Ticks,
    slots: [&'static [u8]; 2],
) -> ! {
    #[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
    stack::paint();
    let mut platform = OnBoard { clock };
    // Refused slots are logged here and reported by Status; requests that need a blob get
    // the reason when no slot serves.
    defmt::info!("{=str}: firmware {=str}", board.name, firmware);
    let selection = server.load_slots(slots);
    for (i, why) in selection.refused.iter().enumerate() {
        if let Some(e) = why {
            defmt::warn!("{=str}: w* slot {=usize} refused: {}", board.name, i, e);
        }
    }
    match selection.live {
        Some(i) => defmt::info!(
            "{=str}: serving w* slot {=usize} (generation {=u32}) at {=u32:#010x}, {=u16} inputs, adapter {=u32} B RAM",
            board.name,
            i,
            selection.generation,
            board.slot(i).origin,
            server.status().inputs,
            server.status().adapter_bytes
        ),
        None => defmt::warn!("{=str}: no usable w* in either slot", board.name),
    }
    let mut out = [0u8; MAX_FRAME];
    let mut byte = [0u8; 1];
    loop {
        match serial.read(&mut byte) {
            Ok(1) => {}
            Ok(_) => continue,
            Err(e) => {
                defmt::warn!("serial read error: {}", defmt::Debug2Format(&e));
                continue;
            }
        }
        if let Some(frame) = server.feed(byte[0], &mut out, &mut platform) {
            if let Err(e) = serial.write_all(frame).and_then(|()| serial.flush()) {
                defmt::warn!("serial write error: {}", defmt::Debug2Format(&e));
            }
        }
    }
}

/// The two `w*` slots (A, B) of `board`'s flash, as bytes: what a firmware that runs its own
/// loop hands `device::slots::select` or an adapter, without unsafe code of its own.
///
/// ```ignore
/// let [a, _] = app::wstar_slots(&device::board::MPS2_AN386);
/// let (_generation, blob) = device::slots::slot_blob::<Net, 3, 2>(a)?;
/// adapter.load(blob)?;
/// ```
pub fn wstar_slots(board: &Board) -> [&'static [u8]; 2] {
    [slot(board, 0), slot(board, 1)]
}

/// `w*` slot `i` of `board`'s flash.
fn slot(board: &Board, i: usize) -> &'static [u8] {
    let r = board.slot(i);
    // SAFETY: the slot is memory-mapped flash of the board, readable for its whole length and
    // not part of any Rust object. It is written only by a flasher (or debugger) from outside,
    // after which the firmware is reset or told to `Rescan`.
    unsafe { core::slice::from_raw_parts(r.origin as usize as *const u8, r.length as usize) }
}
