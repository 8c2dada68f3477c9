//! The boards tinyadapt runs on and where their `w*` lives: one constant per board, read by the
//! firmware (its linker script is generated from it), the exporter and the tests.
//!
//! ```
//! use shared::board::{by_name, LM3S6965EVB};
//! let b = by_name("lm3s6965evb").unwrap();
//! assert_eq!(b.wstar.origin, LM3S6965EVB.wstar.origin);
//! // The w* region never overlaps the code.
//! assert!(b.code.origin + b.code.length <= b.wstar.origin);
//! ```

/// A memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub origin: u32,
    /// Length in bytes.
    pub length: u32,
}

impl Region {
    /// One past the last address.
    pub const fn end(&self) -> u32 {
        self.origin + self.length
    }
}

impl Board {
    /// `w*` slot `i` (0: A, 1: B): the two halves of the `w*` region (see [`crate::slots`]).
    pub const fn slot(&self, i: usize) -> Region {
        let half = self.wstar.length / 2;
        Region {
            origin: self.wstar.origin + if i == 0 { 0 } else { half },
            length: half,
        }
    }
}

/// A board: its memories, its `w*` flash region and how to run or flash it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// Name used on the command line (`--board`, `--on qemu-NAME`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Rust target triple of its firmware.
    pub target: &'static str,
    /// Flash (or code memory) that holds the firmware.
    pub code: Region,
    /// RAM.
    pub ram: Region,
    /// The flash region `w*` is written to, separately from the firmware.
    pub wstar: Region,
    /// Core clock: SysTick ticks per second.
    pub core_clock_hz: u32,
    /// `qemu-system-arm -M` machine, for emulated boards.
    pub qemu_machine: Option<&'static str>,
    /// QEMU `-icount shift=N`: each instruction takes `2^N` ns of virtual time. Chosen longer
    /// than a clock tick, so a measured tick count `t` gives the exact instruction count
    /// `round(t · tick_ns / 2^N)`.
    pub qemu_icount_shift: u8,
    /// `probe-rs --chip` name, for real boards.
    pub probe_rs_chip: Option<&'static str>,
}

/// Arm MPS2 with the AN386 image: Cortex-M4F (`thumbv7em-none-eabihf`), under QEMU.
pub const MPS2_AN386: Board = Board {
    name: "mps2-an386",
    description: "Arm MPS2 AN386, Cortex-M4F (QEMU)",
    target: "thumbv7em-none-eabihf",
    code: Region {
        origin: 0x0000_0000,
        length: 0x0010_0000,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0004_0000,
    },
    wstar: Region {
        origin: 0x0010_0000,
        length: 0x0010_0000,
    },
    core_clock_hz: 25_000_000,
    qemu_machine: Some("mps2-an386"),
    // 40 ns ticks, 64 ns instructions.
    qemu_icount_shift: 6,
    probe_rs_chip: None,
};

/// TI LM3S6965 evaluation board: Cortex-M3 (`thumbv7m-none-eabi`), 256 KiB flash, 64 KiB RAM,
/// under QEMU. The small-MCU case.
pub const LM3S6965EVB: Board = Board {
    name: "lm3s6965evb",
    description: "TI LM3S6965EVB, Cortex-M3, 256 KiB flash, 64 KiB RAM (QEMU)",
    target: "thumbv7m-none-eabi",
    code: Region {
        origin: 0x0000_0000,
        length: 0x0002_0000,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0001_0000,
    },
    wstar: Region {
        origin: 0x0002_0000,
        length: 0x0001_0000,
    },
    core_clock_hz: 12_500_000,
    qemu_machine: Some("lm3s6965evb"),
    // 80 ns ticks, 128 ns instructions.
    qemu_icount_shift: 7,
    probe_rs_chip: None,
};

/// Nordic nRF52840 DK: Cortex-M4F, 1 MiB flash, 256 KiB RAM. A real board, for `export`; its
/// `w*` region is the last 128 KiB of flash.
pub const NRF52840_DK: Board = Board {
    name: "nrf52840-dk",
    description: "Nordic nRF52840 DK, Cortex-M4F, 1 MiB flash, 256 KiB RAM",
    target: "thumbv7em-none-eabihf",
    code: Region {
        origin: 0x0000_0000,
        length: 0x000E_0000,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0004_0000,
    },
    wstar: Region {
        origin: 0x000E_0000,
        length: 0x0002_0000,
    },
    core_clock_hz: 64_000_000,
    qemu_machine: None,
    qemu_icount_shift: 0,
    probe_rs_chip: Some("nRF52840_xxAA"),
};

/// Every board, emulated first.
pub const BOARDS: [&Board; 3] = [&MPS2_AN386, &LM3S6965EVB, &NRF52840_DK];

/// The board called `name`.
pub fn by_name(name: &str) -> Option<&'static Board> {
    BOARDS.iter().copied().find(|b| b.name == name)
}

#[cfg(feature = "alloc")]
impl Board {
    /// The `memory.x` linker script of this board's firmware (for `cortex-m-rt`): code and RAM,
    /// and the `w*` region as symbols so the firmware and this constant cannot disagree.
    pub fn memory_x(&self) -> alloc::string::String {
        alloc::format!(
            "/* Generated from shared::board::{name} by build.rs: do not edit. */\n\
             MEMORY\n{{\n  FLASH : ORIGIN = {co:#010x}, LENGTH = {cl:#x}\n  \
             RAM : ORIGIN = {ro:#010x}, LENGTH = {rl:#x}\n  \
             WSTAR : ORIGIN = {wo:#010x}, LENGTH = {wl:#x}\n}}\n\
             _wstar_start = ORIGIN(WSTAR);\n_wstar_end = ORIGIN(WSTAR) + LENGTH(WSTAR);\n",
            name = self.name,
            co = self.code.origin,
            cl = self.code.length,
            ro = self.ram.origin,
            rl = self.ram.length,
            wo = self.wstar.origin,
            wl = self.wstar.length,
        )
    }
}
