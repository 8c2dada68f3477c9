//! The device `--on` names, connected: its firmware built and booted under QEMU, or a board on
//! a serial port already flashed with it. Every on-device evaluation opens one with
//! [`Device::open`] and runs over its [`Link`] with [`with_link!`](crate::with_link).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use shared::catalogue::Firmware;

use super::qemu::{ensure_qemu, Flash, Qemu};
use super::serial::Serial;
use super::{firmware, Link, On};

/// How long a board on a serial port may take to answer one request (an adaptation on a slow
/// core takes seconds).
pub const SERIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected device.
pub enum Device {
    /// The firmware `elf` under QEMU.
    Emulated {
        /// The running emulator.
        qemu: Qemu,
        /// The firmware it runs.
        elf: PathBuf,
    },
    /// A board on a serial port.
    Serial(Link<Serial>),
}

impl Device {
    /// Connects to the device `on` names. For an emulated board, `elf` (default: the firmware
    /// `firmware` built for the board) boots under QEMU with `blob` in `w*` slot A; a serial
    /// port is opened, its board already flashed with that firmware and `blob`.
    ///
    /// ```no_run
    /// use meta_train::link::{device::Device, firmware, On};
    /// use meta_train::with_link;
    /// let blob = std::fs::read("runs/csv-gestures/wstar.bin")?;
    /// let fw = firmware::for_blob(&blob, None)?;
    /// let mut device = Device::open(&On::parse("qemu-an386")?, &fw, None, &blob)?;
    /// let status = with_link!(device, link => link.status())?;
    /// println!("{} serves {} inputs", device.name(), status.inputs);
    /// # anyhow::Ok(())
    /// ```
    pub fn open(on: &On, firmware: &Firmware, elf: Option<&Path>, blob: &[u8]) -> Result<Self> {
        match on {
            On::Qemu(_) | On::Board(_) => {
                let target = on.emulated().expect("an emulated board");
                ensure_qemu(target.board)?;
                let elf = match elf {
                    Some(p) => p.to_path_buf(),
                    None => firmware::build_for(&target, firmware)?,
                };
                let qemu = Qemu::boot_board(target.board, &elf, Flash::Blob(blob))?;
                Ok(Device::Emulated { qemu, elf })
            }
            On::Serial(path) => {
                let mut link = Link::new(Serial::open(path)?);
                link.timeout = SERIAL_TIMEOUT;
                Ok(Device::Serial(link))
            }
        }
    }

    /// The board's name (`mps2-an386`), or the serial port's path.
    pub fn name(&self) -> String {
        match self {
            Device::Emulated { qemu, .. } => qemu.board().name.into(),
            Device::Serial(link) => link.port().path().into(),
        }
    }

    /// The firmware ELF, when this process booted it.
    pub fn elf(&self) -> Option<&Path> {
        match self {
            Device::Emulated { elf, .. } => Some(elf),
            Device::Serial(_) => None,
        }
    }

    /// The board's RAM in bytes, when known (an emulated board).
    pub fn board_ram(&self) -> Option<u64> {
        match self {
            Device::Emulated { qemu, .. } => Some(u64::from(qemu.board().ram.length)),
            Device::Serial(_) => None,
        }
    }

    /// The firmware's `defmt` log so far, decoded (under QEMU; a board's log goes to its
    /// probe, so none here).
    pub fn logs(&self) -> Result<Vec<String>> {
        match self {
            Device::Emulated { qemu, .. } => qemu.logs(),
            Device::Serial(_) => Ok(Vec::new()),
        }
    }
}

/// Evaluates `$body` with `$link` bound to the `&mut Link<P>` of the [`Device`] `$device`,
/// whatever its transport.
#[macro_export]
macro_rules! with_link {
    ($device:expr, $link:ident => $body:expr) => {
        match &mut $device {
            $crate::link::device::Device::Emulated { qemu, .. } => {
                let $link = qemu.link();
                $body
            }
            $crate::link::device::Device::Serial($link) => $body,
        }
    };
}
