//! Builds the firmware for a board and a catalogue entry ([`shared::catalogue::Firmware`]):
//! `cargo build --release` in the board's package with `TINYADAPT_FIRMWARE` set, so the
//! board's build script writes the model's types. Each built ELF is kept under its own name
//! (`device/firmware/target/models/BOARD/FIRMWARE.elf`), and builds take a lock, so tests
//! and commands building different models side by side never get each other's ELF.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use object::{Object, ObjectSection};
use shared::board::Board;
use shared::catalogue::{Arithmetic, Firmware, Model};
use shared::wstar::Blob;

use super::loopback::CAPACITIES;

/// The firmware workspace in this source tree.
pub fn firmware_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../device/firmware");
    dir.canonicalize().unwrap_or(dir)
}

/// The board packages: `device/firmware/boards/NAME`.
pub fn board_package(board: &Board) -> PathBuf {
    firmware_dir().join("boards").join(board.name)
}

/// The firmware that serves `blob`, holding `capacity` samples; by default the smallest
/// capacity the host simulates that holds the blob's trained K (a dense model), or the named
/// Omniglot firmware of its classes.
///
/// ```
/// use meta_train::link::firmware::for_blob;
/// use shared::model::{Mlp2, Params};
/// use shared::wstar::{encode, Meta};
/// type Net = Mlp2<f32, 2, 40, 40, 3>;
/// let mut meta = Meta::new::<Net, 2, 3>(shared::loss::Loss::SoftmaxCrossEntropy, 2);
/// meta.trained_k = 6;
/// let blob = encode(&meta, &vec![0.1; Net::PARAMS], &[0.1], &[0.0; 2], &[1.0; 2], &[0.0; 3], &[1.0; 3]).unwrap();
/// assert_eq!(for_blob(&blob, None)?.to_string(), "mlp-2-40-40-3-k10");
/// assert_eq!(for_blob(&blob, Some(6))?.to_string(), "mlp-2-40-40-3-k6");
/// # anyhow::Ok(())
/// ```
pub fn for_blob(blob: &[u8], capacity: Option<u16>) -> Result<Firmware> {
    let parsed = Blob::parse(blob).map_err(|e| anyhow::anyhow!("w*: {e}"))?;
    let mut fw = Firmware::for_blob(&parsed, capacity).map_err(|e| anyhow::anyhow!("w*: {e}"))?;
    if capacity.is_none() {
        fw.capacity = match fw.model {
            Model::Omniglot { ways } => Firmware::NAMED
                .iter()
                .find(|(_, f)| f.model == Model::Omniglot { ways })
                .map_or(fw.capacity, |(_, f)| f.capacity),
            _ => CAPACITIES
                .into_iter()
                .find(|&c| c >= fw.capacity)
                .unwrap_or(fw.capacity),
        };
    }
    Ok(fw)
}

/// A board to build for: a built-in one, or one described in a board file
/// ([`shared::board_file`]), with its firmware package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The board.
    pub board: &'static Board,
    /// Its board file, when it is not a built-in board (the build gets `TINYADAPT_BOARD`).
    pub file: Option<PathBuf>,
    /// Its firmware package.
    pub package: PathBuf,
}

impl Target {
    /// A built-in board, with its package `device/firmware/boards/NAME`.
    pub fn builtin(board: &'static Board) -> Self {
        Self {
            board,
            file: None,
            package: board_package(board),
        }
    }

    /// A built-in board by name, or the board described in the file `arg` (a path ending in
    /// `.toml`), checked.
    ///
    /// ```
    /// use meta_train::link::firmware::Target;
    /// assert_eq!(Target::parse("lm3s6965evb")?.board.name, "lm3s6965evb");
    /// let e = Target::parse("lm3s").unwrap_err().to_string();
    /// assert!(e.contains("mps2-an386, mps2-an505, lm3s6965evb, netduinoplus2, nrf51822-xxac, riscv32-virt, nrf52840-dk, rpi-pico, esp32c3-devkitm"), "{e}");
    /// # anyhow::Ok(())
    /// ```
    pub fn parse(arg: &str) -> Result<Self> {
        if arg.ends_with(".toml") {
            let f = shared::board_file::BoardFile::load(Path::new(arg))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let package = f.package.clone().unwrap_or_else(|| board_package(f.board));
            return Ok(Self {
                board: f.board,
                file: Some(f.path.canonicalize().unwrap_or(f.path)),
                package: package.canonicalize().unwrap_or(package),
            });
        }
        match shared::board::by_name(arg) {
            Some(b) => Ok(Self::builtin(b)),
            None => {
                let names: Vec<_> = shared::board::BOARDS.iter().map(|b| b.name).collect();
                bail!(
                    "unknown board {arg:?}; boards: {}, or a board file (FILE.toml)",
                    names.join(", ")
                )
            }
        }
    }
}

/// Builds `firmware` for the built-in `board` (release) if needed and returns its ELF.
pub fn build(board: &'static Board, firmware: &Firmware) -> Result<PathBuf> {
    build_for(&Target::builtin(board), firmware)
}

/// Builds `firmware` for `target` (release) if needed and returns its ELF.
pub fn build_for(target: &Target, firmware: &Firmware) -> Result<PathBuf> {
    let (board, package) = (target.board, &target.package);
    if !package.join("Cargo.toml").exists() {
        bail!(
            "{} has no firmware package (looked for {}); name one with `package = \"DIR\"` in its board file",
            board.name,
            package.display(),
        );
    }
    let bin = binary_of(package)?;
    let target_dir = firmware_dir().join("target");
    std::fs::create_dir_all(&target_dir)?;
    let lock = File::create(target_dir.join("tinyadapt-build.lock"))?;
    lock.lock().context("locking the firmware build")?;
    let elf = build_package(
        package,
        &bin,
        board.target,
        Some(firmware),
        target.file.as_deref(),
    )?;
    let kept_dir = target_dir.join("models").join(board.name);
    std::fs::create_dir_all(&kept_dir)?;
    let kept = kept_dir.join(format!("{firmware}.elf"));
    let partial = kept_dir.join(format!("{firmware}.elf.partial"));
    std::fs::copy(&elf, &partial)
        .with_context(|| format!("the firmware build left no ELF at {}", elf.display()))?;
    std::fs::rename(&partial, &kept)?;
    Ok(kept)
}

/// The binary a firmware package builds: its first `[[bin]]`, or the package's name.
fn binary_of(package: &Path) -> Result<String> {
    let manifest = package.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let t: toml::Table = toml::from_str(&text).with_context(|| manifest.display().to_string())?;
    let bin = t
        .get("bin")
        .and_then(|b| b.as_array()?.first()?.get("name")?.as_str())
        .or_else(|| t.get("package")?.get("name")?.as_str());
    match bin {
        Some(b) => Ok(b.to_string()),
        None => bail!("{}: no package name", manifest.display()),
    }
}

/// Builds the binary `bin` of the firmware package at `package` for `target` (release),
/// serving `firmware` when given (`TINYADAPT_FIRMWARE`), for the board of `board_file` when
/// given (`TINYADAPT_BOARD`), and returns cargo's ELF. Used for the
/// board packages and the example packages (`device/firmware/examples/`).
pub fn build_package(
    package: &Path,
    bin: &str,
    target: &str,
    firmware: Option<&Firmware>,
    board_file: Option<&Path>,
) -> Result<PathBuf> {
    ensure_target(target)?;
    let target_dir = firmware_dir().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(package)
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            bin,
            "--target-dir",
        ])
        .arg(&target_dir);
    if let Some(f) = firmware {
        cmd.env("TINYADAPT_FIRMWARE", f.to_string());
    }
    match board_file {
        Some(f) => cmd.env("TINYADAPT_BOARD", f),
        None => cmd.env_remove("TINYADAPT_BOARD"),
    };
    // The host build's settings must not leak into the firmware build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().with_context(|| {
        format!(
            "cannot run cargo to build the firmware in {}",
            package.display()
        )
    })?;
    if !status.success() {
        let what = firmware.map_or_else(|| bin.to_string(), |f| format!("the {f} firmware"));
        bail!(
            "building {what} failed (cargo build --release in {}); if the linker says a region overflowed, the model does not fit the board",
            package.display()
        );
    }
    Ok(target_dir.join(target).join("release").join(bin))
}

/// Adds the board's Rust target with `rustup target add` when it is missing (the toolchain
/// file names `stable` only, so a fresh machine has no thumb targets).
fn ensure_target(target: &str) -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(()); // no rustup: the toolchain is managed otherwise; cargo will tell
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    eprintln!("adding the Rust target {target} (rustup target add {target})");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("`rustup target add {target}` failed; the firmware cannot be built without it");
    }
    Ok(())
}

/// What `meta-train firmware` prints: the ELF, its code flash and static RAM against the
/// board's, and how to flash it and a `w*`.
pub fn describe(board: &Board, firmware: &Firmware, elf: &Path) -> Result<String> {
    let sizes = elf_sizes(&std::fs::read(elf)?)?;
    let slot = board.slot(0);
    let mut s = format!(
        "firmware {firmware} for the {}:\n  {}\n\
         arithmetic {}\n\
         code flash {} B of {} B; static RAM {} B of {} B (the stack takes the rest)\n\
         w* slot A at {:#010x}, {} B (slot B follows it)\n",
        board.description,
        elf.display(),
        match firmware.arithmetic {
            Arithmetic::F32 => "f32 (the FPU's, or soft float on a core without one)",
            Arithmetic::Q20 =>
                "q20: fixed point in integers (shared::fixed), for a core without an FPU",
            Arithmetic::Q10H =>
                "q10h: fixed point in half-words (shared::fixed), the adapter in half the RAM",
        },
        sizes.code_flash,
        board.code.length,
        sizes.static_ram,
        board.ram.length,
        slot.origin,
        slot.length,
    );
    s.push_str(&format!(
        "the model's type, for a firmware of your own on the device crate (device/README.md):\n  type Model = {};\n",
        firmware.rust_type()
    ));
    s.push_str(&format!(
        "write the w* for the slot (a .bin and an Intel HEX):\n  meta-train export BLOB --board {}\n",
        board.name
    ));
    if let Some(chip) = board.probe_rs_chip {
        s.push_str(&format!(
            "flash the firmware and the w* (probe-rs):\n  probe-rs download --chip {chip} {}\n  \
             probe-rs download --chip {chip} --binary-format bin --base-address {:#x} wstar-slot-a.bin\n",
            elf.display(),
            slot.origin
        ));
    }
    if let Some(machine) = board.qemu_machine {
        s.push_str(&format!(
            "run it under QEMU (the link on stdio, the defmt log by semihosting):\n  \
             qemu-system-arm -machine {machine} -display none -monitor none -serial stdio \
             -semihosting-config enable=on,target=native -kernel {} \
             -device loader,file=wstar-slot-a.bin,addr={:#x}\n  \
             or: meta-train eval BLOB --tasks FILE.csv --on qemu-... (builds and boots it)\n",
            elf.display(),
            slot.origin
        ));
    }
    Ok(s)
}

/// A firmware's memory, from its ELF sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfSizes {
    /// Code in flash: vector table, text, read-only data and the initial values of `.data`.
    pub code_flash: u64,
    /// `.data`, `.bss` and `.uninit`.
    pub static_ram: u64,
    /// `.data` alone: statics whose initial values are copied out of flash at reset.
    pub initialised: u64,
}

/// The memory of a firmware ELF.
///
/// ```no_run
/// let elf = std::fs::read("tinyadapt-fw-mps2-an386").unwrap();
/// let sizes = meta_train::link::firmware::elf_sizes(&elf).unwrap();
/// println!("{} B of code flash, {} B of static RAM", sizes.code_flash, sizes.static_ram);
/// ```
pub fn elf_sizes(elf: &[u8]) -> Result<ElfSizes> {
    let file = object::File::parse(elf).map_err(|e| anyhow!("firmware ELF: {e}"))?;
    let size = |name: &str| file.section_by_name(name).map_or(0, |s| s.size());
    Ok(ElfSizes {
        code_flash: size(".vector_table") + size(".text") + size(".rodata") + size(".data"),
        static_ram: size(".data") + size(".bss") + size(".uninit"),
        initialised: size(".data"),
    })
}
