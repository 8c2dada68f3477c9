//! Talking to a device: one client of the link protocol ([`Link`]) over three transports —
//! the device runtime in-process ([`Loopback`], the host simulation of any firmware), the
//! firmware under QEMU ([`qemu`]) and a board's serial port ([`serial`]) — the firmware
//! builder ([`firmware`]), the device `--on` names ([`device`]) and the parity check between
//! two of them ([`parity`]).

pub mod client;
pub mod device;
pub mod firmware;
pub mod loopback;
pub mod parity;
pub mod qemu;
pub mod serial;

pub use client::{Link, Port, Refused};
pub use loopback::Loopback;

use anyhow::{bail, Result};
use qemu::Emulated;

/// Where `--on` runs: an emulated board (the firmware is built and booted under QEMU) or a
/// real board on a serial port (its firmware already flashed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum On {
    /// An emulated board.
    Qemu(Emulated),
    /// A board described in a file (`FILE.toml`) whose firmware is built for it and booted
    /// under QEMU (the file names a QEMU machine).
    Board(firmware::Target),
    /// A serial port's path (`/dev/ttyACM0`, `COM3`).
    Serial(String),
}

impl On {
    /// Parses `--on`: `qemu-an386`, `qemu-netduinoplus2`, …, a board file (`FILE.toml`, emulated), or
    /// a serial port (a path, or `COMn`).
    ///
    /// ```
    /// use meta_train::link::{qemu::Emulated, On};
    /// assert_eq!(On::parse("qemu-an386")?, On::Qemu(Emulated::An386));
    /// assert_eq!(On::parse("/dev/ttyACM0")?, On::Serial("/dev/ttyACM0".into()));
    /// assert_eq!(On::parse("COM3")?, On::Serial("COM3".into()));
    /// assert!(On::parse("an386").is_err());
    /// # anyhow::Ok(())
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(e) = Emulated::by_name(s) {
            return Ok(On::Qemu(e));
        }
        if s.ends_with(".toml") {
            return Ok(On::Board(firmware::Target::parse(s)?));
        }
        let com = s
            .strip_prefix("COM")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if s.contains('/') || com {
            return Ok(On::Serial(s.into()));
        }
        let names: Vec<_> = Emulated::ALL.iter().map(|e| e.name()).collect();
        bail!(
            "--on {s:?}: give an emulated board ({}), a board file (FILE.toml) or a serial port (/dev/ttyACM0, COM3)",
            names.join(", ")
        )
    }

    /// The board to build for and boot under QEMU, unless this is a serial port.
    pub fn emulated(&self) -> Option<firmware::Target> {
        match self {
            On::Qemu(e) => Some(firmware::Target::builtin(e.board())),
            On::Board(t) => Some(t.clone()),
            On::Serial(_) => None,
        }
    }
}
