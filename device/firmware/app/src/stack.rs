//! The stack's high-water mark: the stack is painted once (by `cortex-m-rt` at reset, feature
//! `paint-stack`; on RISC-V by [`paint`] when the app starts, as neither `riscv-rt` nor
//! esp-hal's runtime paints); the lowest word no longer painted is the deepest the stack has
//! been. The runtimes name the stack's ends `_stack_start` (top) and `_stack_end` (bottom);
//! for `riscv-rt`, whose bottom is `__estack`, the generated `memory.x` provides the alias.

use shared::link::Memory;

extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

const PAINT: u32 = 0xCCCC_CCCC;

/// Bytes at the bottom of the stack left alone on RISC-V: esp-hal keeps its stack-guard word
/// there (60 bytes up by default) and a debug trigger faults on any write to it.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
const UNPAINTED: usize = 128;
#[cfg(not(any(target_arch = "riscv32", target_arch = "riscv64")))]
const UNPAINTED: usize = 0;

/// The stack's painted part: from above [`UNPAINTED`] at the bottom to the top.
fn bounds() -> (usize, usize) {
    (
        core::ptr::addr_of!(_stack_end) as usize + UNPAINTED,
        core::ptr::addr_of!(_stack_start) as usize,
    )
}

/// Paints the stack below the caller's frame (less a margin for this call), for
/// [`memory`]: what `cortex-m-rt` does at reset, done here where the runtime does not.
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[inline(never)]
pub fn paint() {
    const MARGIN: usize = 256;
    let here = 0u32;
    let sp = core::ptr::addr_of!(here) as usize;
    let (bottom, _) = bounds();
    let mut at = bottom;
    while at + MARGIN < sp {
        // SAFETY: the words from the stack's bottom to below this frame are stack RAM no frame
        // uses now (the stack grows down, and this function is the deepest call).
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Stack size and the most used since reset.
pub fn memory() -> Memory {
    let (bottom, top) = bounds();
    let mut at = bottom;
    // SAFETY: every word between the stack's bottom and top is RAM owned by the stack; a
    // volatile read of a word below the stack pointer reads paint or old frames.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    Memory {
        stack_peak: (top - at) as u32,
        stack_size: (top - bottom + UNPAINTED) as u32,
    }
}
