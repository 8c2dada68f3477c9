//! Panics and faults: logged, then QEMU exits with code 1 (semihosting) or the MCU resets.

use cortex_m_rt::{exception, ExceptionFrame};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    fail()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
    fail()
}

fn fail() -> ! {
    #[cfg(feature = "semihosting")]
    semihosting::process::exit(1);
    #[cfg(not(feature = "semihosting"))]
    cortex_m::peripheral::SCB::sys_reset()
}
