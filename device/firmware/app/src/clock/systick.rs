//! SysTick as the clock: 24 bits in hardware, widened by counting wraps ([`tick`], called from
//! the board's SysTick handler).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

const RELOAD: u32 = 0x00FF_FFFF;
const PERIOD: u64 = RELOAD as u64 + 1;
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// SysTick on the core clock.
pub struct Clock {
    syst: SYST,
}

impl Clock {
    /// Starts SysTick on the core clock, with its wrap interrupt.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Self { syst }
    }
}

impl super::Ticks for Clock {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        WRAPS.store(0, Ordering::Release);
        // Writing the current value restarts the count: the next tick reloads it.
        self.syst.clear_current();
        let r = f();
        (r, elapsed())
    }
}

/// Ticks since the last restart: 0 until the first tick, then one per tick (the counter
/// reloads on the first tick and wraps every `PERIOD` ticks).
fn elapsed() -> u64 {
    loop {
        let wraps = WRAPS.load(Ordering::Acquire);
        let down = SYST::get_current();
        if WRAPS.load(Ordering::Acquire) == wraps {
            let full = u64::from(wraps) * PERIOD;
            return if down == 0 {
                full
            } else {
                full + PERIOD - u64::from(down)
            };
        }
    }
}

/// Counts a SysTick wrap: the board's SysTick exception handler calls this (the crate owns
/// no handler, so the board keeps SysTick for itself if it likes, as long as it forwards).
///
/// ```ignore
/// #[cortex_m_rt::exception]
/// fn SysTick() {
///     app::clock::tick();
/// }
/// ```
pub fn tick() {
    // A load and a store rather than `fetch_add`, which ARMv6-M (Cortex-M0/M0+) lacks: the
    // exception cannot be preempted by the thread-mode code that resets the count, so nothing
    // writes in between.
    WRAPS.store(
        WRAPS.load(Ordering::Acquire).wrapping_add(1),
        Ordering::Release,
    );
}
