//! The RISC-V cycle counter (`mcycle`, 64 bits) as the clock: no interrupt, no wrap to count.
//! Under QEMU with `-icount` it reads the virtual time in nanoseconds.

/// The core's cycle counter.
pub struct Clock {
    _private: (),
}

impl Clock {
    /// The cycle counter runs from reset: nothing to start.
    pub fn start() -> Self {
        Self { _private: () }
    }
}

impl super::Ticks for Clock {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        let start = riscv::register::mcycle::read64();
        let r = f();
        (r, riscv::register::mcycle::read64().wrapping_sub(start))
    }
}
