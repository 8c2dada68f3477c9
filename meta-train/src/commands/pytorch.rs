//! The commands between PyTorch and `w*`: `import` (a state_dict saved as safetensors becomes
//! a blob) and `state-dict` (a dense blob becomes such a file again).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use meta_train::blob_spec::BlobSpec;
use meta_train::link::{firmware, Loopback};
use meta_train::pytorch::{self, ImportOptions, Layout};
use meta_train::report::inspect;
use meta_train::run_dir::write_atomic;
use meta_train::say;
use shared::wstar::{Algorithm, Blob};

use super::read_blob_file;

/// Options of `import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The state_dict, as `safetensors.torch.save_file(model.state_dict(), FILE)` writes it:
    /// an nn.Sequential of Linear and ReLU, plain or in learn2learn's MAML or MetaSGD.
    pub file: PathBuf,
    /// Where to write the w* blob.
    #[arg(long)]
    pub out: PathBuf,
    /// Inner steps the device runs (default: the file's tinyadapt.steps metadata).
    #[arg(long)]
    pub steps: Option<u16>,
    /// Samples per task (K) the model was meta-trained with; the firmware holds at least as
    /// many (default: the file's metadata).
    #[arg(long)]
    pub k: Option<u16>,
    /// The inner step size α (learn2learn MAML's lr); Meta-SGD's lrs.N in the file are α.
    #[arg(long)]
    pub alpha: Option<f32>,
    /// The algorithm it was trained with: maml, fomaml, metasgd, anil (adapts the last layer
    /// only) or reptile (default: metasgd when the file has lrs.N, maml otherwise).
    #[arg(long, value_parser = |s: &str| s.parse::<Algorithm>().map_err(|e| e.to_string()))]
    pub algorithm: Option<Algorithm>,
    /// The task loss: mse or cross-entropy (a classifier; default: mse).
    #[arg(long, value_parser = |s: &str| pytorch::parse_loss(s).map_err(|e| e.to_string()))]
    pub loss: Option<shared::loss::Loss>,
    /// The Linear layers' names in order, input first (hidden1,hidden2,out), for a module
    /// whose layers are not numbered as in nn.Sequential.
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Per-input means the device subtracts before the model (default: 0).
    #[arg(long, value_delimiter = ',', requires = "x_std")]
    pub x_mean: Option<Vec<f32>>,
    /// Per-input standard deviations the device divides by (default: 1).
    #[arg(long, value_delimiter = ',', requires = "x_mean")]
    pub x_std: Option<Vec<f32>>,
    /// Per-output means of the targets (default: 0).
    #[arg(long, value_delimiter = ',', requires = "y_std")]
    pub y_mean: Option<Vec<f32>>,
    /// Per-output standard deviations of the targets (default: 1).
    #[arg(long, value_delimiter = ',', requires = "y_mean")]
    pub y_std: Option<Vec<f32>>,
    /// Undo a step whose loss on the samples rises above this (default: only non-finite).
    #[arg(long)]
    pub loss_bound: Option<f32>,
    /// Seed recorded in the blob.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs `import`.
pub fn import(a: ImportArgs) -> Result<()> {
    let file =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let opts = ImportOptions {
        layers: a.layers,
        steps: a.steps,
        k: a.k,
        alpha: a.alpha,
        algorithm: a.algorithm,
        loss: a.loss,
        x_norm: a.x_mean.zip(a.x_std),
        y_norm: a.y_mean.zip(a.y_std),
        loss_bound: a.loss_bound,
        seed: a.seed,
    };
    let spec = pytorch::import(&file, &opts).with_context(|| a.file.display().to_string())?;
    let bytes = spec
        .encode()
        .with_context(|| a.file.display().to_string())?;
    write_atomic(&a.out, &bytes)?;
    let blob = Blob::parse(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    say!("imported {} into {}", a.file.display(), a.out.display());
    say!("{}", inspect::report(&blob, bytes.len()).trim_end());
    let fw = firmware::for_blob(&bytes, None)?;
    say!(
        "firmware      {fw} (`meta-train firmware {} --board BOARD` builds it)",
        a.out.display()
    );
    let slot = shared::slots::slot_image(&bytes, 1);
    if let Err(e) = Loopback::open(&fw, [&slot, &[]]) {
        say!("note          {e}: `eval` and Python's simulate() refuse it");
    }
    Ok(())
}

/// Options of `state-dict`.
#[derive(Args)]
pub struct StateDictArgs {
    /// The w* blob (a dense model).
    pub blob: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Key layout: sequential (0.weight, …, for nn.Sequential.load_state_dict) or learn2learn
    /// (module.0.weight, …, for MAML or MetaSGD). Per-parameter α is written as lrs.N.
    #[arg(long, default_value = "sequential")]
    pub layout: Layout,
}

/// Runs `state-dict`.
pub fn state_dict(a: StateDictArgs) -> Result<()> {
    let bytes = read_blob_file(&a.blob)?;
    let spec = BlobSpec::of(&bytes).with_context(|| a.blob.display().to_string())?;
    let file = pytorch::state_dict(&spec, a.layout)?;
    write_atomic(&a.out, &file)?;
    say!(
        "wrote {} ({} model, {} layout, {} bytes): load it with \
         safetensors.torch.load_file; `meta-train import` reads it back to the same w*",
        a.out.display(),
        spec.shape_name(),
        a.layout,
        file.len()
    );
    Ok(())
}
