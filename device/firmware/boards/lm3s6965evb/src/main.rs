//! tinyadapt firmware for the lm3s6965evb board.
#![no_std]
#![no_main]

use app::uart::Stellaris;

#[cortex_m_rt::entry]
fn main() -> ! {
    app::run(
        Stellaris::new(0x4000_C000),
        &shared::board::LM3S6965EVB,
        app::sinusoid(),
    )
}
