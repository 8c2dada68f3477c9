//! The commands on a w* blob file: `inspect` (what it holds), `export` (flash images for a
//! board's slot) and `firmware` (the firmware that serves its model, built for a board).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use meta_train::export;
use meta_train::link::firmware;
use meta_train::report::inspect;
use meta_train::say;
use shared::wstar::Blob;

use super::{read_blob_file, target_arg};

/// Options of `inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The blob.
    pub blob: PathBuf,
}

/// Runs `inspect`.
pub fn inspect(a: InspectArgs) -> Result<()> {
    let bytes = read_blob_file(&a.blob)?;
    let parsed = Blob::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.blob.display()))?;
    say!("file          {}", a.blob.display());
    say!("{}", inspect::report(&parsed, bytes.len()).trim_end());
    Ok(())
}

/// Options of `export`.
#[derive(Args)]
pub struct ExportArgs {
    /// The blob.
    pub blob: PathBuf,
    /// Board: mps2-an386, mps2-an505, lm3s6965evb, netduinoplus2, nrf51822-xxac, riscv32-virt (QEMU), nrf52840-dk, rpi-pico, esp32c3-devkitm, or a board file (FILE.toml).
    #[arg(long, value_parser = target_arg)]
    pub board: firmware::Target,
    /// Slot: a or b. An update goes to the slot not serving, with a higher generation.
    #[arg(long, default_value = "a", value_parser = ["a", "b"])]
    pub slot: String,
    /// Generation: the device serves the newest valid slot.
    #[arg(long, default_value_t = 1)]
    pub generation: u32,
    /// Folder for the files.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

/// Runs `export`.
pub fn export(a: ExportArgs) -> Result<()> {
    let bytes = read_blob_file(&a.blob)?;
    let slot = usize::from(a.slot == "b");
    let board = a.board.board;
    let e = export::export(&bytes, board, slot, a.generation, &a.out)
        .with_context(|| format!("{}", a.blob.display()))?;
    say!("{}", export::instructions(board, &e).trim_end());
    Ok(())
}

/// Options of `firmware`.
#[derive(Args)]
pub struct FirmwareArgs {
    /// The blob.
    pub blob: PathBuf,
    /// Board: mps2-an386, mps2-an505, lm3s6965evb, netduinoplus2, nrf51822-xxac, riscv32-virt, nrf52840-dk, rpi-pico, esp32c3-devkitm, or a board file (FILE.toml) naming its package.
    #[arg(long, value_parser = target_arg)]
    pub board: firmware::Target,
    /// Samples the device holds (default: the smallest of 1, 2, 5, 10, 20, 32 that holds the
    /// K the w* was trained with; the host simulates those).
    #[arg(long)]
    pub k: Option<u16>,
    /// What the firmware computes in: f32, q20 (fixed point, for a core without an FPU) or
    /// q10h (fixed point in half-words: the adapter in half the RAM).
    #[arg(long, default_value = "f32", value_parser = super::arithmetic_arg)]
    pub arithmetic: shared::catalogue::Arithmetic,
}

/// Runs `firmware`.
pub fn firmware(a: FirmwareArgs) -> Result<()> {
    let bytes = read_blob_file(&a.blob)?;
    let fw = firmware::for_blob(&bytes, a.k)
        .and_then(|f| {
            f.in_arithmetic(a.arithmetic)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .with_context(|| a.blob.display().to_string())?;
    let elf = firmware::build_for(&a.board, &fw)?;
    say!(
        "{}",
        firmware::describe(a.board.board, &fw, &elf)?.trim_end()
    );
    Ok(())
}
