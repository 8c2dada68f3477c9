//! The stack's high-water mark: the stack is painted once (by `cortex-m-rt` at reset, feature
//! `paint-stack`; on RISC-V by [`paint`] when the app starts, as `riscv-rt` has no such
//! feature); the lowest word no longer painted is the deepest the stack has been.

use shared::link::Memory;

#[cfg(target_arch = "arm")]
extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
extern "C" {
    static _stack_start: u32;
    #[link_name = "__estack"]
    static _stack_end: u32;
}

const PAINT: u32 = 0xCCCC_CCCC;

/// Lowest and one-past-highest address of the stack.
fn bounds() -> (usize, usize) {
    (
        core::ptr::addr_of!(_stack_end) as usize,
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
        stack_size: (top - bottom) as u32,
    }
}
