//! The global handlers of a tinyadapt firmware under QEMU: `defmt` logs leave by semihosting
//! (on QEMU's stdout), and a panic or a HardFault is logged and ends QEMU with exit code 1, so
//! a test sees it. A board package for an emulated board links it with `use tinyadapt_fw_qemu
//! as _;`; one for hardware picks `panic-probe` and `defmt-rtt` instead.
#![no_std]

use cortex_m_rt::{exception, ExceptionFrame};
use defmt_semihosting as _;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(1)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
    semihosting::process::exit(1)
}
