//! Clock ticks for measurements: a [`Ticks`] times each adaptation and prediction the
//! firmware serves. [`Clock`] is the core's own: on Cortex-M SysTick (forward the SysTick
//! exception to [`tick`]; [`crate::board_package!`] does), on RISC-V the cycle counter, which
//! needs no interrupt. A board whose core has neither (the ESP32-C3 has no `mcycle`) hands in
//! its own timer.
//!
//! A measurement restarts the count, so its tick boundaries fall at the same instruction on
//! every run; under QEMU with `-icount` virtual time advances a fixed amount per instruction,
//! so a measured tick count is deterministic and converts to an instruction count (see
//! `shared::board::Board::qemu_icount_shift`).

#[cfg(target_arch = "arm")]
mod systick;
#[cfg(target_arch = "arm")]
pub use systick::{tick, Clock};

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
mod cycles;
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
pub use cycles::Clock;

/// What times the firmware's work, in the board's clock ticks (`shared::board::Board`'s
/// `core_clock_hz` per second).
///
/// ```ignore
/// struct Micros;
/// impl app::clock::Ticks for Micros {
///     fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
///         let start = esp_hal::time::Instant::now();
///         let r = f();
///         (r, start.elapsed().as_micros())
///     }
/// }
/// ```
pub trait Ticks {
    /// Runs `f` and returns its result with the ticks it took.
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64);
}
