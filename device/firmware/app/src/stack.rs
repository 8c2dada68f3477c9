//! The stack's high-water mark: `cortex-m-rt` paints the stack at reset (feature
//! `paint-stack`); the lowest word no longer painted is the deepest the stack has been.

use shared::link::Memory;

extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

const PAINT: u32 = 0xCCCC_CCCC;

/// Stack size and the most used since reset.
pub fn memory() -> Memory {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let mut at = bottom;
    // SAFETY: every word between `_stack_end` and `_stack_start` is RAM owned by the stack; a
    // volatile read of a word below the stack pointer reads paint or old frames.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    Memory {
        stack_peak: (top - at) as u32,
        stack_size: (top - bottom) as u32,
    }
}
