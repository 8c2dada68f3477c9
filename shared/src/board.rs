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
    /// Clock ticks per second of the firmware's measurements: the core clock for SysTick and
    /// `mcycle`, or the board's own timer's rate.
    pub core_clock_hz: u32,
    /// `qemu-system-arm -M` machine, for emulated boards.
    pub qemu_machine: Option<&'static str>,
    /// `qemu-system-arm -cpu` model, for emulated boards.
    pub qemu_cpu: Option<&'static str>,
    /// QEMU `-icount shift=N`: each instruction takes `2^N` ns of virtual time. Chosen longer
    /// than a clock tick, so a measured tick count `t` gives the exact instruction count
    /// `round(t · tick_ns / 2^N)`.
    pub qemu_icount_shift: u8,
    /// More `qemu-system-arm` arguments the board needs (e.g. `-global
    /// nrf51-soc.sram-size=32768` for a chip variant the machine does not model by default).
    pub qemu_options: &'static [&'static str],
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
    qemu_cpu: Some("cortex-m4"),
    // 40 ns ticks, 64 ns instructions.
    qemu_icount_shift: 6,
    qemu_options: &[],
    probe_rs_chip: None,
};

/// Arm MPS2 with the AN505 image: Cortex-M33 with FPU (`thumbv8m.main-none-eabihf`), under
/// QEMU. The core starts in the secure state with its vector table at `0x1000_0000`, the
/// secure alias of the 4 MiB SSRAM1; `w*` sits in the same SSRAM1 at its non-secure address
/// (an access from the secure state reaches it, and QEMU's loader writes there). RAM is the
/// first 256 KiB of SSRAM2 at its secure alias; UART0 is at `0x5020_0000`.
pub const MPS2_AN505: Board = Board {
    name: "mps2-an505",
    description: "Arm MPS2 AN505, Cortex-M33 with FPU (QEMU)",
    target: "thumbv8m.main-none-eabihf",
    code: Region {
        origin: 0x1000_0000,
        length: 0x0010_0000,
    },
    ram: Region {
        origin: 0x3800_0000,
        length: 0x0004_0000,
    },
    wstar: Region {
        origin: 0x0010_0000,
        length: 0x0010_0000,
    },
    core_clock_hz: 20_000_000,
    qemu_machine: Some("mps2-an505"),
    qemu_cpu: Some("cortex-m33"),
    // 50 ns ticks, 64 ns instructions.
    qemu_icount_shift: 6,
    qemu_options: &[],
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
    qemu_cpu: Some("cortex-m3"),
    // 80 ns ticks, 128 ns instructions.
    qemu_icount_shift: 7,
    qemu_options: &[],
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
    qemu_cpu: None,
    qemu_icount_shift: 0,
    qemu_options: &[],
    probe_rs_chip: Some("nRF52840_xxAA"),
};

/// Raspberry Pi Pico: RP2040, dual Cortex-M0+ (one used) without an FPU, 2 MiB of QSPI flash
/// at `0x1000_0000` (its first 256 B are the second-stage bootloader, so the firmware starts
/// after it), 264 KiB of RAM (the 256 KiB striped banks are used). The `w*` region is the last
/// 128 KiB of flash.
pub const RPI_PICO: Board = Board {
    name: "rpi-pico",
    description: "Raspberry Pi Pico, RP2040 Cortex-M0+ (no FPU), 2 MiB flash, 264 KiB RAM",
    target: "thumbv6m-none-eabi",
    code: Region {
        origin: 0x1000_0100,
        length: 0x001D_FF00,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0004_0000,
    },
    wstar: Region {
        origin: 0x101E_0000,
        length: 0x0002_0000,
    },
    core_clock_hz: 125_000_000,
    qemu_machine: None,
    qemu_cpu: None,
    qemu_icount_shift: 0,
    qemu_options: &[],
    probe_rs_chip: Some("RP2040"),
};

/// An STM32F405 (Cortex-M4F, 1 MiB flash, 128 KiB SRAM and 64 KiB CCM RAM): the Netduino
/// Plus 2, emulated by QEMU's `netduinoplus2` machine, running the `stm32f4xx-hal` firmware.
/// The firmware takes flash sectors 0–7 (512 KiB), `w*` sectors 8–11 (two slots of two
/// 128 KiB sectors each, erasable apart); RAM is SRAM1 and SRAM2. QEMU clocks the core at
/// 168 MHz whatever the RCC is told (it models no RCC), the firmware's PLL setting on the
/// real chip.
pub const NETDUINOPLUS2: Board = Board {
    name: "netduinoplus2",
    description: "Netduino Plus 2, STM32F405RG Cortex-M4F, 1 MiB flash, 192 KiB RAM",
    target: "thumbv7em-none-eabihf",
    code: Region {
        origin: 0x0800_0000,
        length: 0x0008_0000,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0002_0000,
    },
    wstar: Region {
        origin: 0x0808_0000,
        length: 0x0008_0000,
    },
    core_clock_hz: 168_000_000,
    qemu_machine: Some("netduinoplus2"),
    qemu_cpu: Some("cortex-m4"),
    // 5.95 ns ticks, 8 ns instructions.
    qemu_icount_shift: 3,
    qemu_options: &[],
    probe_rs_chip: Some("STM32F405RGTx"),
};

/// An nRF51822-xxAC (Cortex-M0, `thumbv6m-none-eabi`, no FPU, 256 KiB flash, 32 KiB RAM),
/// emulated by QEMU's `microbit` machine with its SRAM set to the xxAC's 32 KiB (the BBC
/// micro:bit's own xxAA has 16 KiB, too little for the sinusoid adapter's 21 KiB). Code in the
/// first 192 KiB of flash, `w*` in the last 64 KiB (two slots of 32 pages); UART0 at
/// `0x4000_2000`.
pub const NRF51822_XXAC: Board = Board {
    name: "nrf51822-xxac",
    description: "nRF51822-xxAC, Cortex-M0 (no FPU), 256 KiB flash, 32 KiB RAM",
    target: "thumbv6m-none-eabi",
    code: Region {
        origin: 0x0000_0000,
        length: 0x0003_0000,
    },
    ram: Region {
        origin: 0x2000_0000,
        length: 0x0000_8000,
    },
    wstar: Region {
        origin: 0x0003_0000,
        length: 0x0001_0000,
    },
    core_clock_hz: 16_000_000,
    qemu_machine: Some("microbit"),
    qemu_cpu: Some("cortex-m0"),
    // 62.5 ns ticks, 64 ns instructions.
    qemu_icount_shift: 6,
    qemu_options: &["-global", "nrf51-soc.sram-size=32768"],
    probe_rs_chip: Some("nRF51822_xxAC"),
};

/// A RISC-V RV32IMAC core without an FPU (`riscv32imac-unknown-none-elf`, the class of the
/// SiFive E31, GD32VF103 and ESP32-C3's RV32IMC) on QEMU's `virt` machine: QEMU's `sifive_e`
/// has 16 KiB of RAM, too little for the sinusoid adapter. Code, RAM and `w*` are three parts
/// of the machine's DRAM (QEMU's loader writes the `w*` there as it would flash); the NS16550A
/// UART is at `0x1000_0000`. The clock is the cycle counter, which under QEMU's `-icount`
/// counts nanoseconds of virtual time.
pub const RISCV32_VIRT: Board = Board {
    name: "riscv32-virt",
    description: "RISC-V RV32IMAC (no FPU) on QEMU's virt machine",
    target: "riscv32imac-unknown-none-elf",
    code: Region {
        origin: 0x8000_0000,
        length: 0x0010_0000,
    },
    ram: Region {
        origin: 0x8010_0000,
        length: 0x0004_0000,
    },
    wstar: Region {
        origin: 0x8020_0000,
        length: 0x0010_0000,
    },
    core_clock_hz: 1_000_000_000,
    qemu_machine: Some("virt"),
    qemu_cpu: Some("rv32"),
    // 1 ns ticks, 1 ns instructions.
    qemu_icount_shift: 0,
    qemu_options: &["-bios", "none"],
    probe_rs_chip: None,
};

/// Espressif ESP32-C3-DevKitM-1: ESP32-C3, RISC-V RV32IMC without an FPU, 4 MiB of flash,
/// 400 KiB of SRAM, on `esp-hal`. Its flash is reached through the MMU cache, which maps only
/// the app image, so `code` and `w*` here are flash offsets (the partition table's `factory`
/// and `wstar` partitions, as `espflash` and `probe-rs` take them), not CPU addresses: the
/// firmware reads the two slots through the flash driver into RAM at reset. RAM is the DRAM
/// view of the SRAM. The clock is esp-hal's microsecond time base (the SYSTIMER): the core
/// has no `mcycle`.
pub const ESP32C3_DEVKITM: Board = Board {
    name: "esp32c3-devkitm",
    description: "Espressif ESP32-C3-DevKitM-1, RISC-V RV32IMC (no FPU), 4 MiB flash, 400 KiB RAM",
    target: "riscv32imc-unknown-none-elf",
    code: Region {
        origin: 0x0001_0000,
        length: 0x001E_0000,
    },
    ram: Region {
        origin: 0x3FC8_0000,
        length: 0x0006_0000,
    },
    wstar: Region {
        origin: 0x001F_0000,
        length: 0x0001_0000,
    },
    core_clock_hz: 1_000_000,
    qemu_machine: None,
    qemu_cpu: None,
    qemu_icount_shift: 0,
    qemu_options: &[],
    probe_rs_chip: Some("esp32c3"),
};

/// Why a board description cannot hold a firmware and its `w*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoardError {
    /// A region of no bytes, or one that runs past the 32-bit address space.
    Region(&'static str),
    /// Two regions share addresses.
    Overlap(&'static str, &'static str),
    /// The `w*` region's halves (slots A and B) are too small for a slot header and a blob
    /// header, or the region's length is odd.
    Slots {
        /// Bytes in each slot.
        slot: u32,
    },
    /// No core clock: instructions and ticks cannot be told.
    Clock,
}

impl core::fmt::Display for BoardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BoardError::Region(r) => write!(
                f,
                "the {r} region is empty or runs past the end of the address space"
            ),
            BoardError::Overlap(a, b) => write!(f, "the {a} and {b} regions overlap"),
            BoardError::Slots { slot } => write!(
                f,
                "the w* region must split into two slots of at least 64 bytes (an even length); its slots have {slot} bytes"
            ),
            BoardError::Clock => write!(f, "the core clock must be above 0 Hz"),
        }
    }
}

impl Board {
    /// Checks that the regions are non-empty, within the address space and apart, and that
    /// the `w*` region holds two slots.
    ///
    /// ```
    /// use shared::board::{BoardError, Region, BOARDS, MPS2_AN386};
    /// assert!(BOARDS.iter().all(|b| b.check().is_ok()));
    /// let mut b = MPS2_AN386;
    /// b.wstar = Region { origin: 0x000F_0000, length: 0x2_0000 }; // into the code
    /// assert_eq!(b.check(), Err(BoardError::Overlap("code", "w*")));
    /// ```
    pub fn check(&self) -> Result<(), BoardError> {
        let regions = [("code", self.code), ("RAM", self.ram), ("w*", self.wstar)];
        for (name, r) in regions {
            if r.length == 0 || r.origin.checked_add(r.length).is_none() {
                return Err(BoardError::Region(name));
            }
        }
        for (i, (a, ra)) in regions.iter().enumerate() {
            for (b, rb) in &regions[i + 1..] {
                if ra.origin < rb.end() && rb.origin < ra.end() {
                    return Err(BoardError::Overlap(a, b));
                }
            }
        }
        let slot = self.wstar.length / 2;
        if !self.wstar.length.is_multiple_of(2) || slot < 64 {
            return Err(BoardError::Slots { slot });
        }
        if self.core_clock_hz == 0 {
            return Err(BoardError::Clock);
        }
        Ok(())
    }
}

/// Every board, emulated first.
pub const BOARDS: [&Board; 9] = [
    &MPS2_AN386,
    &MPS2_AN505,
    &LM3S6965EVB,
    &NETDUINOPLUS2,
    &NRF51822_XXAC,
    &RISCV32_VIRT,
    &NRF52840_DK,
    &RPI_PICO,
    &ESP32C3_DEVKITM,
];

/// The board called `name`.
pub fn by_name(name: &str) -> Option<&'static Board> {
    BOARDS.iter().copied().find(|b| b.name == name)
}

#[cfg(feature = "alloc")]
impl Board {
    /// This board as a Rust constant `BOARD` (`board.rs`, written by a board package's build
    /// script, so a board described in a file reaches the firmware as a constant too).
    ///
    /// ```
    /// let src = shared::board::LM3S6965EVB.rust_source();
    /// assert!(src.contains("pub const BOARD: shared::board::Board"));
    /// assert!(src.contains("origin: 0x00020000"));
    /// ```
    pub fn rust_source(&self) -> alloc::string::String {
        let region = |r: &Region| {
            alloc::format!(
                "shared::board::Region {{ origin: {:#010x}, length: {:#x} }}",
                r.origin,
                r.length
            )
        };
        let opt = |o: Option<&str>| o.map_or("None".into(), |v| alloc::format!("Some({v:?})"));
        alloc::format!(
            "// Generated from the board `{name}` by the board package's build.rs: do not edit.\n\
             /// The board this firmware is built for.\n\
             pub const BOARD: shared::board::Board = shared::board::Board {{\n    \
             name: {name:?},\n    description: {description:?},\n    target: {target:?},\n    \
             code: {code},\n    ram: {ram},\n    wstar: {wstar},\n    \
             core_clock_hz: {clock},\n    qemu_machine: {machine},\n    qemu_cpu: {cpu},\n    \
             qemu_icount_shift: {shift},\n    qemu_options: &{options:?},\n    \
             probe_rs_chip: {chip},\n}};\n",
            name = self.name,
            description = self.description,
            target = self.target,
            code = region(&self.code),
            ram = region(&self.ram),
            wstar = region(&self.wstar),
            clock = self.core_clock_hz,
            machine = opt(self.qemu_machine),
            cpu = opt(self.qemu_cpu),
            shift = self.qemu_icount_shift,
            options = self.qemu_options,
            chip = opt(self.probe_rs_chip),
        )
    }

    /// The `memory.x` linker script of this board's firmware (for `cortex-m-rt`): code and RAM,
    /// and the `w*` region as symbols so the firmware and this constant cannot disagree.
    pub fn memory_x(&self) -> alloc::string::String {
        alloc::format!(
            "/* Generated from shared::board::{name} by build.rs: do not edit. */\n\
             MEMORY\n{{\n  FLASH : ORIGIN = {co:#010x}, LENGTH = {cl:#x}\n  \
             RAM : ORIGIN = {ro:#010x}, LENGTH = {rl:#x}\n  \
             WSTAR : ORIGIN = {wo:#010x}, LENGTH = {wl:#x}\n}}\n\
             _wstar_start = ORIGIN(WSTAR);\n_wstar_end = ORIGIN(WSTAR) + LENGTH(WSTAR);\n{riscv}",
            name = self.name,
            co = self.code.origin,
            cl = self.code.length,
            ro = self.ram.origin,
            rl = self.ram.length,
            wo = self.wstar.origin,
            wl = self.wstar.length,
            // riscv-rt places its sections in regions named by these aliases, and names the
            // stack's bottom `__estack` where cortex-m-rt and esp-hal say `_stack_end`.
            riscv = if self.target.starts_with("riscv") {
                "REGION_ALIAS(\"REGION_TEXT\", FLASH);\nREGION_ALIAS(\"REGION_RODATA\", FLASH);\n\
                 REGION_ALIAS(\"REGION_DATA\", RAM);\nREGION_ALIAS(\"REGION_BSS\", RAM);\n\
                 REGION_ALIAS(\"REGION_HEAP\", RAM);\nREGION_ALIAS(\"REGION_STACK\", RAM);\n\
                 PROVIDE(_stack_end = __estack);\n"
            } else {
                ""
            },
        )
    }
}
