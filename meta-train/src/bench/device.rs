//! `meta-train bench --device`: what the MAML sinusoid adaptation (K = 10) and a CSV
//! classifier's cost on each emulated board, in `f32` and in fixed point (`q20`):
//! instructions per inner step and per prediction
//! (counted under QEMU's `-icount`, so the same on every run), instructions per FLOP, code
//! flash, static RAM, the stack's high-water mark, and RAM in all against the board's.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use shared::catalogue::{Arithmetic, Firmware};

use std::path::Path;

use crate::algo::Algo;
use crate::bench::flops;
use crate::bench::paper_config;
use crate::eval::csv::CsvEvalConfig;
use crate::eval::csv_on_device;
use crate::eval::sinusoid_on_device::{self, run_task};
use crate::eval::{self, EvalConfig};
use crate::link::firmware::{self, elf_sizes, ElfSizes};
use crate::link::qemu::{Emulated, Flash, Qemu};
use crate::model::SinusoidNet;
use crate::run_dir::RunDir;
use crate::tasks::csv::CsvTasks;
use crate::tasks::synthetic::{Family, FAMILIES};
use crate::train::{self, train, Progress, TrainConfig};

/// One board's figures.
#[derive(Clone, Debug, Serialize)]
pub struct BoardCost {
    /// Board name.
    pub board: String,
    /// The firmware's arithmetic (`f32`, `q20`).
    pub arithmetic: String,
    /// Instructions of one inner step with K = 10.
    pub per_step: u64,
    /// Instructions of one prediction.
    pub per_prediction: u64,
    /// FLOPs of one inner step.
    pub flop_per_step: u64,
    /// Code in flash: vector table, text, read-only data and the initial values of `.data`.
    pub code_flash: u64,
    /// `.data`, `.bss` and `.uninit`.
    pub static_ram: u64,
    /// Stack high-water mark after the measured runs.
    pub stack_peak: u64,
    /// The board's RAM.
    pub board_ram: u64,
    /// The two runs gave the same counts.
    pub repeatable: bool,
}

impl BoardCost {
    /// Instructions per FLOP of the inner step.
    pub fn per_flop(&self) -> f64 {
        self.per_step as f64 / self.flop_per_step as f64
    }

    /// Static RAM plus the stack's high-water mark.
    pub fn ram(&self) -> u64 {
        self.static_ram + self.stack_peak
    }
}

/// One boot of `fw`: (instructions per step, per prediction, stack peak).
fn run_once(on: Emulated, fw: &Firmware, elf: &Path, blob: &[u8]) -> Result<(u64, u64, u64)> {
    let mut qemu = Qemu::boot(on, elf, Flash::Blob(blob))?;
    sinusoid_on_device::check_serving(qemu.link())?;
    let cfg = EvalConfig {
        tasks: 1,
        seed: 0,
        test_points: 10,
    };
    let task = eval::held_out(&cfg, 0, 10);
    let trace = run_task(qemu.link(), &task)?;
    // The benchmark's task is checked against the host simulation too.
    let image = shared::slots::slot_image(blob, 1);
    let host = run_task(&mut sinusoid_on_device::host_sim(fw, &image)?, &task)?;
    if host.predictions != trace.predictions || host.params != trace.params {
        bail!(
            "the {fw} firmware on {} differs from the host simulation",
            on.name()
        );
    }
    let cost = sinusoid_on_device::cost_of(qemu.link(), &trace);
    let (Some(step), Some(pred)) = (cost.per_step, cost.per_prediction) else {
        bail!("the guard stopped the benchmark task before its 4th step; no per-step count");
    };
    let memory = sinusoid_on_device::memory(qemu.link())?;
    Ok((step, pred, u64::from(memory.stack_peak)))
}

/// Measures `on` with a MAML sinusoid `w*` (K = 10) in `arithmetic`.
pub fn measure(on: Emulated, arithmetic: Arithmetic, blob: &[u8]) -> Result<BoardCost> {
    let fw = Firmware::SINUSOID
        .in_arithmetic(arithmetic)
        .map_err(|e| anyhow!("{e}"))?;
    let elf = firmware::build(on.board(), &fw)?;
    let ElfSizes {
        code_flash,
        static_ram,
        ..
    } = elf_sizes(&std::fs::read(&elf)?)?;
    let first = run_once(on, &fw, &elf, blob)?;
    let second = run_once(on, &fw, &elf, blob)?;
    Ok(BoardCost {
        board: on.board().name.into(),
        arithmetic: arithmetic.to_string(),
        per_step: first.0,
        per_prediction: first.1,
        flop_per_step: flops::inner_step(&[1, 40, 40, 1], 10),
        code_flash,
        static_ram,
        stack_peak: first.2,
        board_ram: u64::from(on.board().ram.length),
        repeatable: first == second,
    })
}

/// The CSV classifier measured: the synthetic gestures family (2 features, 3 classes, a
/// 2-40-40-3 net), K = 10.
pub const CSV_FAMILY: &Family = &FAMILIES[0];

/// K of the CSV classifier.
const CSV_K: usize = 10;

/// A short deterministic FOMAML run of the CSV classifier (2 inner steps) on its task file,
/// written into `dir`: the task file and the blob.
pub fn csv_blob(dir: &Path, iterations: u64) -> Result<(CsvTasks, Vec<u8>)> {
    let file = dir.join(format!("{}.csv", CSV_FAMILY.name));
    std::fs::write(&file, CSV_FAMILY.csv_text())?;
    let config = TrainConfig {
        family: train::csv::FAMILY.into(),
        model: train::csv::model_name(CSV_FAMILY.features, CSV_FAMILY.outputs),
        algorithm: Algo::Fomaml,
        k: CSV_K,
        steps: 2,
        alpha: 0.5,
        meta_batch: 8,
        ..paper_config(Algo::Fomaml, iterations)
    };
    let run = RunDir::create(dir.join("csv"))?;
    let trained = train::csv::train_csv(&config, &file, 0.2, &run, false, Progress::Quiet)?;
    Ok((CsvTasks::load(&file)?, trained.blob))
}

/// One boot of the CSV firmware: (instructions per step, per prediction, stack peak).
fn run_csv_once(
    on: Emulated,
    elf: &Path,
    fw: &shared::catalogue::Firmware,
    tasks: &CsvTasks,
    blob: &[u8],
) -> Result<(u64, u64, u64)> {
    let mut qemu = Qemu::boot(on, elf, Flash::Blob(blob))?;
    let cfg = CsvEvalConfig {
        holdout: 0.2,
        draws: 1,
        seed: 0,
    };
    let r = csv_on_device::evaluate_on(qemu.link(), fw, blob, tasks, &cfg, |_, _| {})?;
    if r.parity.identical != r.parity.runs {
        bail!(
            "the CSV firmware on {} differs from the host simulation",
            on.name()
        );
    }
    let (Some(step), Some(pred)) = (r.per_step, r.per_prediction) else {
        bail!("no per-step count for the CSV classifier on {}", on.name());
    };
    Ok((step, pred, u64::from(r.stack_peak)))
}

/// Measures `on` with the CSV classifier `blob` on `tasks` in `arithmetic`.
pub fn measure_csv(
    on: Emulated,
    arithmetic: Arithmetic,
    tasks: &CsvTasks,
    blob: &[u8],
) -> Result<BoardCost> {
    let fw = firmware::for_blob(blob, None)?
        .in_arithmetic(arithmetic)
        .map_err(|e| anyhow!("{e}"))?;
    let elf = firmware::build(on.board(), &fw)?;
    let ElfSizes {
        code_flash,
        static_ram,
        ..
    } = elf_sizes(&std::fs::read(&elf)?)?;
    let first = run_csv_once(on, &elf, &fw, tasks, blob)?;
    let second = run_csv_once(on, &elf, &fw, tasks, blob)?;
    Ok(BoardCost {
        board: on.board().name.into(),
        arithmetic: arithmetic.to_string(),
        per_step: first.0,
        per_prediction: first.1,
        flop_per_step: flops::inner_step(&[CSV_FAMILY.features, 40, 40, CSV_FAMILY.outputs], CSV_K),
        code_flash,
        static_ram,
        stack_peak: first.2,
        board_ram: u64::from(on.board().ram.length),
        repeatable: first == second,
    })
}

/// A short deterministic MAML run: instruction counts need a real `w*`, not a good one.
pub fn maml_blob(iterations: u64) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let run = RunDir::create(dir.path().join("maml"))?;
    Ok(train::<SinusoidNet, 10>(
        &paper_config(Algo::Maml, iterations),
        &run,
        false,
        Progress::Quiet,
    )?
    .blob)
}

/// The figures as a Markdown table.
pub fn table(rows: &[BoardCost]) -> String {
    let mut s = String::from(
        "| board | arithmetic | instructions / inner step | instructions / prediction | FLOP / step | instructions / FLOP | code flash | static RAM | stack peak | RAM in all | repeatable |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {} B | {} B | {} B | {} B of {} KiB | {} |\n",
            r.board,
            r.arithmetic,
            r.per_step,
            r.per_prediction,
            r.flop_per_step,
            r.per_flop(),
            r.code_flash,
            r.static_ram,
            r.stack_peak,
            r.ram(),
            r.board_ram / 1024,
            if r.repeatable { "yes" } else { "NO" }
        ));
    }
    s
}
