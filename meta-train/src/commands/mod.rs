//! The `meta-train` commands, one module each: its options (clap) and the calls into the
//! library that carry it out. `main.rs` parses the command line and makes one call here.

pub mod bench;
pub mod blob;
pub mod eval;
pub mod pytorch;
pub mod train;
pub mod train_fewshot;

use std::path::Path;

use anyhow::{Context, Result};
use meta_train::link::firmware;
use meta_train::link::On;

/// Parses `--board`: a known board's name or a board file.
fn target_arg(s: &str) -> Result<firmware::Target, String> {
    firmware::Target::parse(s).map_err(|e| format!("{e:#}"))
}

/// Parses `--on`: an emulated board, a board file or a serial port.
fn on_arg(s: &str) -> Result<On, String> {
    On::parse(s).map_err(|e| e.to_string())
}

/// Parses `--arithmetic`: `f32`, `q20` or `q10h`.
fn arithmetic_arg(s: &str) -> Result<shared::catalogue::Arithmetic, String> {
    s.parse()
        .map_err(|e: shared::catalogue::CatalogueError| e.to_string())
}

/// Sets the worker threads of the rayon pool (default: one per core).
fn threads(n: Option<usize>) -> Result<()> {
    if let Some(t) = n {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    Ok(())
}

/// The bytes of the w* blob at `path`, with the path in the error.
fn read_blob_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read w* blob {}", path.display()))
}

/// The command's verdict on a parity check: an error (a non-zero exit) on any differing bit.
fn parity_verdict(holds: bool) -> Result<()> {
    if holds {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the device and the host simulation disagree"
        ))
    }
}
