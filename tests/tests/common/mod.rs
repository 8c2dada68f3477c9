//! What the QEMU tests share: the firmware, built once per test process, booting it, and
//! calling it.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use meta_train::eval::images_on_device::ClassifierFirmware;
use meta_train::link::firmware;
use meta_train::link::qemu::{Emulated, Flash, Qemu};
use shared::catalogue::{Arithmetic, Firmware};
use shared::link::{Request, Response};

/// Samples the sinusoid firmware holds (the largest K its `w*` is evaluated with).
pub const FIRMWARE_K: usize = Firmware::SINUSOID.capacity as usize;

/// Most time one request may take before the firmware counts as hung.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// ELFs of one firmware, one per board.
type Elfs = [OnceLock<PathBuf>; Emulated::ALL.len()];

/// `fw` for `on`, built once per test process into `elfs`.
fn built(elfs: &'static Elfs, on: Emulated, fw: &Firmware) -> &'static Path {
    let i = Emulated::ALL
        .iter()
        .position(|&b| b == on)
        .expect("a known board");
    elfs[i].get_or_init(|| {
        firmware::build(on.board(), fw).unwrap_or_else(|e| panic!("{}: {e:#}", on.board().name))
    })
}

/// The board's sinusoid firmware ELF, built once per test process.
pub fn firmware(on: Emulated) -> &'static Path {
    firmware_in(on, Arithmetic::F32)
}

/// The sinusoid firmware in `arithmetic` (`-q20` and `-q10h` are the builds for a core
/// without an FPU).
pub fn sinusoid_in(arithmetic: Arithmetic) -> Firmware {
    Firmware::SINUSOID
        .in_arithmetic(arithmetic)
        .expect("the sinusoid net fits every arithmetic's sums")
}

/// The board's sinusoid firmware ELF in `arithmetic`, built once per test process.
pub fn firmware_in(on: Emulated, arithmetic: Arithmetic) -> &'static Path {
    static ELF: [Elfs; Arithmetic::ALL.len()] =
        [const { [const { OnceLock::new() }; Emulated::ALL.len()] }; Arithmetic::ALL.len()];
    let a = Arithmetic::ALL
        .iter()
        .position(|&a| a == arithmetic)
        .expect("a known arithmetic");
    built(&ELF[a], on, &sinusoid_in(arithmetic))
}

/// Boots the sinusoid firmware on `on` with `flash` in its `w*` slots; requests time out
/// after [`TIMEOUT`].
pub fn boot(on: Emulated, flash: Flash<'_>) -> Qemu {
    boot_in(on, Arithmetic::F32, flash)
}

/// [`boot`] for the sinusoid firmware in `arithmetic`.
pub fn boot_in(on: Emulated, arithmetic: Arithmetic, flash: Flash<'_>) -> Qemu {
    boot_elf(on, firmware_in(on, arithmetic), flash)
}

fn boot_elf(on: Emulated, elf: &Path, flash: Flash<'_>) -> Qemu {
    let mut q = Qemu::boot(on, elf, flash).unwrap_or_else(|e| panic!("{}: {e:#}", on.board().name));
    q.link().timeout = TIMEOUT;
    q
}

/// An AN386 Omniglot classifier firmware's ELF (in either arithmetic), built once per test
/// process.
#[allow(dead_code)] // not every test binary boots the classifier
pub fn classifier_firmware(firmware: ClassifierFirmware) -> &'static Path {
    const N: usize = ClassifierFirmware::ALL.len() * Arithmetic::ALL.len();
    static ELF: [OnceLock<PathBuf>; N] = [const { OnceLock::new() }; N];
    let of = |f: ClassifierFirmware| f.in_arithmetic(firmware.firmware.arithmetic).ok();
    let i = ClassifierFirmware::ALL
        .iter()
        .position(|&f| of(f) == Some(firmware))
        .expect("a known classifier firmware");
    let a = Arithmetic::ALL
        .iter()
        .position(|&a| a == firmware.firmware.arithmetic)
        .expect("a known arithmetic");
    ELF[i + ClassifierFirmware::ALL.len() * a].get_or_init(|| {
        firmware
            .build()
            .unwrap_or_else(|e| panic!("mps2-an386 {:?} firmware: {e:#}", firmware.firmware))
    })
}

/// Boots the 5-way Omniglot classifier firmware on the AN386 with `flash` in its `w*` slots;
/// requests time out after [`TIMEOUT`].
#[allow(dead_code)]
pub fn boot_omniglot(flash: Flash<'_>) -> Qemu {
    boot_classifier(ClassifierFirmware::FIVE_WAY, flash)
}

/// Boots an Omniglot classifier firmware on the AN386 with `flash` in its `w*` slots;
/// requests time out after [`TIMEOUT`].
#[allow(dead_code)]
pub fn boot_classifier(firmware: ClassifierFirmware, flash: Flash<'_>) -> Qemu {
    let mut q = Qemu::boot(Emulated::An386, classifier_firmware(firmware), flash)
        .unwrap_or_else(|e| panic!("mps2-an386 {:?} firmware: {e:#}", firmware.firmware));
    q.link().timeout = TIMEOUT;
    q
}

/// Sends `req` and returns the response; for requests whose answer borrows no bytes.
pub fn call(q: &mut Qemu, req: &Request<'_>) -> Response<'static> {
    let mut buf = Vec::new();
    let r = q
        .call(req, &mut buf)
        .unwrap_or_else(|e| panic!("{req:?}: {e:#}"));
    owned(r)
}

/// Waits for the next response (after bytes sent with [`Qemu::send_raw`]).
pub fn next_response(q: &mut Qemu) -> Response<'static> {
    let mut buf = Vec::new();
    let r = q.response(&mut buf).unwrap_or_else(|e| panic!("{e:#}"));
    owned(r)
}

pub fn owned(r: Response<'_>) -> Response<'static> {
    match r {
        Response::Status(s) => Response::Status(s),
        Response::Pushed { samples } => Response::Pushed { samples },
        Response::Cleared => Response::Cleared,
        Response::Reset => Response::Reset,
        Response::Adapted { report, ticks } => Response::Adapted { report, ticks },
        Response::Memory(m) => Response::Memory(m),
        Response::Error(e) => Response::Error(e),
        Response::Staged { filled } => Response::Staged { filled },
        Response::PushedStaged { samples, ticks } => Response::PushedStaged { samples, ticks },
        r @ (Response::Prediction { .. }
        | Response::Predictions { .. }
        | Response::Params { .. }
        | Response::Classified { .. }) => {
            panic!("a response with borrowed bytes where none was expected: {r:?}")
        }
    }
}
