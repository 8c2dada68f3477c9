//! Core clock ticks from SysTick: 24 bits in hardware, widened to 64 by counting wraps.
//!
//! Under QEMU with `-icount shift=0,align=off,sleep=off` virtual time advances exactly 1 ns
//! per instruction, so a tick count is an instruction count (times the clock period in ns):
//! deterministic, the same on every run.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// A running SysTick.
pub struct Clock {
    _syst: SYST,
}

impl Clock {
    /// Starts SysTick on the core clock.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Self { _syst: syst }
    }

    /// Ticks since [`Clock::start`].
    pub fn ticks(&self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Acquire);
            let down = SYST::get_current();
            if WRAPS.load(Ordering::Acquire) == before {
                return u64::from(before) * u64::from(RELOAD + 1) + u64::from(RELOAD - down);
            }
        }
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::AcqRel);
}
