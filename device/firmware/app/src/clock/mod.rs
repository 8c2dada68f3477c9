//! Clock ticks for measurements: [`Clock`] times each adaptation and prediction the firmware
//! serves. On Cortex-M it is SysTick (forward the SysTick exception to [`tick`];
//! [`crate::board_package!`] does); on RISC-V the core's cycle counter, which needs no
//! interrupt.
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
