//! tinyadapt firmware for the mps2-an386 board: the MAML sinusoid adapter.
#![no_std]
#![no_main]

use app::uart::Cmsdk;

#[cortex_m_rt::entry]
fn main() -> ! {
    app::run(
        Cmsdk::new(0x4000_4000),
        &shared::board::MPS2_AN386,
        app::sinusoid(),
    )
}
