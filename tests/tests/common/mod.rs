//! What the QEMU tests share: the firmware, built once per test process, and booting it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use meta_train::qemu::{build_firmware, Emulated, Flash, Qemu};

/// Most time one request may take before the firmware counts as hung.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The board's firmware ELF, built once per test process.
pub fn firmware(on: Emulated) -> &'static Path {
    static ELF: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    let i = Emulated::ALL
        .iter()
        .position(|&b| b == on)
        .expect("a known board");
    ELF[i]
        .get_or_init(|| build_firmware(on).unwrap_or_else(|e| panic!("{}: {e:#}", on.board().name)))
}

/// Boots the firmware on `on` with `flash` in its `w*` slots; requests time out after
/// [`TIMEOUT`].
pub fn boot(on: Emulated, flash: Flash<'_>) -> Qemu {
    let mut q = Qemu::boot(on, firmware(on), flash)
        .unwrap_or_else(|e| panic!("{}: {e:#}", on.board().name));
    q.timeout = TIMEOUT;
    q
}
