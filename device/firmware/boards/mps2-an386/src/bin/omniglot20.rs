//! tinyadapt firmware for the mps2-an386 board: the 20-way Omniglot image classifier (its
//! convolutional body read from the `w*` slot in place, the head adapted on up to 20 images:
//! 20-way 1-shot).
#![no_std]
#![no_main]

use app::uart::Cmsdk;

#[cortex_m_rt::entry]
fn main() -> ! {
    app::run(
        Cmsdk::new(0x4000_4000),
        &shared::board::MPS2_AN386,
        app::omniglot20(),
    )
}
