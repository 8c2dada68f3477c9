//! The global handlers of a tinyadapt firmware under QEMU: `defmt` logs leave by semihosting
//! (on QEMU's stdout), and a panic or a fault (a Cortex-M HardFault, a RISC-V exception) is
//! logged and ends QEMU with exit code 1, so a test sees it. A board package for an emulated board links it with `use tinyadapt_fw_qemu
//! as _;`; one for hardware picks `panic-probe` and `defmt-rtt` instead.
#![no_std]

use defmt_semihosting as _;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    semihosting::process::exit(1)
}

#[cfg(target_arch = "arm")]
#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
    semihosting::process::exit(1)
}

#[cfg(any(target_arch = "riscv32", target_arch = "riscv64"))]
#[export_name = "ExceptionHandler"]
fn exception(frame: &riscv_rt::TrapFrame) -> ! {
    defmt::error!(
        "exception {=usize} at pc {=usize:#010x} (ra {=usize:#010x})",
        riscv::register::mcause::read().code(),
        riscv::register::mepc::read(),
        frame.ra
    );
    semihosting::process::exit(1)
}
