//! A board described in a file: how a user adds their own board. The file is TOML; it is read
//! by `meta-train` (`--board FILE.toml`, `--on FILE.toml`) and by a board package's build
//! script (`TINYADAPT_BOARD=FILE.toml`), so the linker script, the firmware's constant, the
//! exporter and the tests all take the one description. The built-in boards are such files
//! too (`shared/boards/`).
//!
//! ```toml
//! name = "my-an386"
//! description = "an MPS2 AN386 with a smaller code region"
//! target = "thumbv7em-none-eabihf"
//! core_clock_hz = 25_000_000
//! package = "../device/firmware/boards/mps2-an386"   # its firmware package, from this file
//! code = { origin = 0x0, length = 0x8_0000 }
//! ram = { origin = 0x2000_0000, length = 0x4_0000 }
//! wstar = { origin = 0x8_0000, length = 0x8_0000 }
//! qemu = { machine = "mps2-an386", cpu = "cortex-m4", icount_shift = 6 }   # emulated only
//! # and, where the machine needs them, more QEMU arguments: options = ["-global", "…"]
//! probe_rs = { chip = "nRF52840_xxAA" }                                     # hardware only
//! ```
//!
//! Loading checks the description ([`Board::check`]): a region that overlaps another or runs
//! past the address space, or a `w*` region too small for its two slots, is an error naming
//! the file.

extern crate std;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::board::{Board, Region};

/// A board loaded from its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardFile {
    /// The board (its strings live as long as the program: a board is loaded once).
    pub board: &'static Board,
    /// The file it came from.
    pub path: PathBuf,
    /// Its firmware package, if the file names one (resolved from the file's folder).
    pub package: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    name: String,
    description: String,
    target: String,
    core_clock_hz: u32,
    package: Option<String>,
    code: RegionText,
    ram: RegionText,
    wstar: RegionText,
    qemu: Option<QemuText>,
    probe_rs: Option<ProbeText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionText {
    origin: u32,
    length: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QemuText {
    machine: String,
    cpu: String,
    icount_shift: u8,
    #[serde(default)]
    options: alloc::vec::Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeText {
    chip: String,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl BoardFile {
    /// Reads and checks the board described in `path`; errors name the file and what is
    /// wrong (a missing or mistyped key with its line, an overlapping region).
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read board file {}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// The board described by `text`, as if read from `path`.
    ///
    /// ```
    /// use shared::board_file::BoardFile;
    /// let text = std::fs::read_to_string("boards/lm3s6965evb.toml").unwrap();
    /// let b = BoardFile::parse(&text, "boards/lm3s6965evb.toml".as_ref()).unwrap();
    /// assert_eq!(*b.board, shared::board::LM3S6965EVB);
    /// let bad = text.replace("origin = 0x0002_0000", "origin = 0x0001_0000");
    /// let e = BoardFile::parse(&bad, "b.toml".as_ref()).unwrap_err();
    /// assert_eq!(e, "b.toml: the code and w* regions overlap");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let t: Text = toml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
        let region = |r: RegionText| Region {
            origin: r.origin,
            length: r.length,
        };
        let (machine, cpu, shift, options): (_, _, _, &'static [&'static str]) = match t.qemu {
            Some(q) => (
                Some(leak(q.machine)),
                Some(leak(q.cpu)),
                q.icount_shift,
                Box::leak(q.options.into_iter().map(leak).collect()),
            ),
            None => (None, None, 0, &[]),
        };
        let board = Board {
            name: leak(t.name),
            description: leak(t.description),
            target: leak(t.target),
            code: region(t.code),
            ram: region(t.ram),
            wstar: region(t.wstar),
            core_clock_hz: t.core_clock_hz,
            qemu_machine: machine,
            qemu_cpu: cpu,
            qemu_icount_shift: shift,
            qemu_options: options,
            probe_rs_chip: t.probe_rs.map(|p| leak(p.chip)),
        };
        board
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Ok(Self {
            board: Box::leak(Box::new(board)),
            path: path.to_path_buf(),
            package: t.package.map(|p| folder.join(p)),
        })
    }
}

/// The board file of a built-in board (`shared/boards/NAME.toml`, in this source tree).
pub fn builtin_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("boards")
        .join(name.to_string() + ".toml")
}
