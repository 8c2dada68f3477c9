//! `meta-train train`: meta-train w* on source tasks (the sinusoid family or a CSV file of
//! the user's tasks) into a run folder, evaluate it on held-out tasks through the device
//! runtime, and, with `--on`, on a board next to the host simulation.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use meta_train::algo::{parse_algorithm, Algo};
use meta_train::eval::csv::{self, CsvEvalConfig};
use meta_train::eval::{self, csv_on_device, sinusoid_on_device, EvalConfig};
use meta_train::link::firmware;
use meta_train::link::qemu;
use meta_train::link::On;
use meta_train::model::{SinusoidNet, SINUSOID_NET};
#[cfg(feature = "plot")]
use meta_train::report::figures;
use meta_train::run_dir::{self, RunDir};
use meta_train::tasks::csv::CsvTasks;
use meta_train::train::{self as training, train, Progress, TrainConfig, Trained};
use meta_train::{say, with_k};
use shared::catalogue::{Arithmetic, Firmware};

use super::{on_arg, parity_verdict, threads};

/// Options of `train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Task family of the source tasks.
    #[arg(long, default_value = "sinusoid")]
    pub family: String,
    /// Meta-train on your own tasks instead: a CSV file of regression or classification tasks
    /// (one per value of its `task` column). The model is FEATURES-40-40-OUTPUTS.
    #[arg(long, conflicts_with = "family")]
    pub tasks: Option<PathBuf>,
    /// With --tasks: the fraction of the file's tasks held out from meta-training for the
    /// evaluation (the last ones in order of first appearance; at least one when above 0).
    #[arg(long, default_value_t = 0.2, requires = "tasks")]
    pub holdout: f64,
    /// With --tasks: support sets drawn per held-out task in the evaluation.
    #[arg(long, default_value_t = 10, requires = "tasks")]
    pub draws: usize,
    /// Meta-learning algorithm: maml, fomaml, metasgd, anil, reptile, or lslr (MAML with a
    /// learned step size per layer and inner step, MAML++'s LSLR).
    #[arg(long, value_parser = parse_algorithm, default_value = "maml")]
    pub algorithm: Algo,
    /// Support (and query) samples per task, K.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Inner gradient steps.
    #[arg(long, default_value_t = 1)]
    pub steps: usize,
    /// Inner step size α (Meta-SGD and LSLR: its initial value).
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f32,
    /// Bound on the loss of the support set after an inner step, written to w*: the device's
    /// guard undoes a step above it and stops adapting, and training's inner loop does the
    /// same, so an exploding task cannot swamp a meta-batch (learned step sizes, lslr, need
    /// one; default: none, only non-finite losses are undone).
    #[arg(long)]
    pub loss_bound: Option<f32>,
    /// Tasks per meta-batch.
    #[arg(long, default_value_t = 25)]
    pub meta_batch: usize,
    /// Meta-iterations.
    #[arg(long, default_value_t = 70_000)]
    pub iterations: u64,
    /// Adam learning rate of the outer loop.
    #[arg(long, default_value_t = 1e-3)]
    pub meta_lr: f32,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: one per core). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Iterations per metrics row.
    #[arg(long, default_value_t = 100)]
    pub log_every: u64,
    /// Iterations per checkpoint.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every: u64,
    /// Run folder (default: runs/<family>-<algorithm>-k<K>-seed<seed>, or
    /// runs/csv-<file name>-<algorithm>-k<K>-seed<seed> with --tasks).
    #[arg(long, visible_alias = "run")]
    pub out: Option<PathBuf>,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Held-out tasks for the evaluation after training (0: skip it). With --tasks, any
    /// other value evaluates the file's held-out tasks.
    #[arg(long, default_value_t = 600)]
    pub eval_tasks: usize,
    /// Then flash w* into a board and evaluate there too, next to the host simulation, with
    /// the parity verdict: qemu-an386, qemu-an505, qemu-lm3s6965, qemu-netduinoplus2, qemu-nrf51 or qemu-riscv32 (the firmware for the w* is built and
    /// booted under QEMU), or a serial port (/dev/ttyACM0, COM3) of a board flashed with it.
    #[arg(long, value_parser = on_arg)]
    pub on: Option<On>,
    /// Held-out tasks of the on-device evaluation (the first of the host's).
    #[arg(long, default_value_t = 100)]
    pub device_tasks: usize,
}

/// The config of `train`'s flags (the sinusoid family unless replaced).
fn train_config(a: &TrainArgs) -> TrainConfig {
    TrainConfig {
        family: a.family.clone(),
        model: SINUSOID_NET.into(),
        algorithm: a.algorithm,
        k: a.k,
        steps: a.steps,
        alpha: a.alpha,
        meta_batch: a.meta_batch,
        iterations: a.iterations,
        meta_lr: a.meta_lr,
        seed: a.seed,
        log_every: a.log_every,
        checkpoint_every: a.checkpoint_every,
        loss_bound: a.loss_bound,
    }
}

fn progress(a: &TrainArgs) -> Progress {
    if a.quiet {
        Progress::Quiet
    } else {
        Progress::Bar
    }
}

/// Draws the learning curve and says what the run wrote.
fn report_trained(run: &RunDir, trained: &Trained) -> Result<()> {
    #[cfg(feature = "plot")]
    figures::learning_curve(run, &trained.checkpoint)?;
    say!(
        "trained {} meta-iterations of {:?} ({:.0} it/s); run folder {}",
        trained.checkpoint.iteration,
        trained.checkpoint.config.algorithm,
        trained.iterations_per_s,
        run.root().display()
    );
    say!(
        "w* blob: {} ({} bytes)",
        run.path(run_dir::WSTAR).display(),
        trained.blob.len()
    );
    Ok(())
}

/// Runs `train`.
pub fn run(a: TrainArgs) -> Result<()> {
    threads(a.threads)?;
    if let Some(file) = &a.tasks {
        return run_csv(&a, file);
    }
    if let Some(on) = &a.on {
        // Fail before training, not after it: the emulator and the firmware come first.
        if let Some(target) = on.emulated() {
            qemu::ensure_qemu(target.board)?;
            firmware::build_for(&target, &Firmware::SINUSOID)?;
        }
    }
    let config = train_config(&a);
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(
            format!(
                "runs/{}-{:?}-k{}-seed{}",
                a.family, a.algorithm, a.k, a.seed
            )
            .to_lowercase(),
        )
    });
    let run = RunDir::create(out)?;
    let trained =
        with_k!(a.k, K => train::<SinusoidNet, K>(&config, &run, a.resume, progress(&a)))?;
    report_trained(&run, &trained)?;
    if a.eval_tasks > 0 {
        let cfg = EvalConfig {
            tasks: a.eval_tasks,
            seed: a.seed,
            test_points: 100,
        };
        let results = eval::evaluate_sinusoid(&trained.blob, &cfg)?;
        run.write_atomic(
            "eval.json",
            serde_json::to_string_pretty(&results)?.as_bytes(),
        )?;
        say!(
            "\nheld-out evaluation on the device runtime: {} tasks, {} target-test points each",
            cfg.tasks,
            cfg.test_points
        );
        say!("{}", eval::table(&results).trim_end());
    }
    if let Some(on) = &a.on {
        let cfg = EvalConfig {
            tasks: a.device_tasks,
            seed: a.seed,
            test_points: 100,
        };
        let board = on.emulated().map(|t| t.board);
        match (board, on) {
            (Some(b), _) => say!(
                "\nflashing {} into w* slot A at {:#010x} of the {} and evaluating on the device",
                run_dir::WSTAR,
                b.slot(0).origin,
                b.description
            ),
            (None, On::Serial(path)) => say!(
                "\nevaluating on the board at {path} (flashed with the sinusoid firmware and {})",
                run_dir::WSTAR
            ),
            (None, _) => {}
        }
        let (r, _) = sinusoid_on_device::evaluate(on, Arithmetic::F32, None, &trained.blob, &cfg)?;
        run.write_atomic(
            &format!("eval-{}.json", board.map_or("serial", |b| b.name)),
            serde_json::to_string_pretty(&r)?.as_bytes(),
        )?;
        say!("{}", sinusoid_on_device::report(&r, &cfg).trim_end());
        parity_verdict(r.parity.holds())?;
    }
    Ok(())
}

/// `train --tasks FILE.csv`: meta-trains on the file's tasks, then evaluates on its held-out
/// tasks through the device runtime.
fn run_csv(a: &TrainArgs, file: &Path) -> Result<()> {
    let tasks = CsvTasks::load(file)?;
    training::csv::check_shape(&tasks)?;
    let (inputs, outputs) = training::csv::dims(&tasks);
    let config = TrainConfig {
        family: training::csv::FAMILY.into(),
        model: training::csv::model_name(inputs, outputs),
        ..train_config(a)
    };
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = file
            .file_stem()
            .map_or("tasks".into(), |s| s.to_string_lossy());
        PathBuf::from(
            format!("runs/csv-{stem}-{:?}-k{}-seed{}", a.algorithm, a.k, a.seed).to_lowercase(),
        )
    });
    if let Some(On::Qemu(e)) = &a.on {
        // Fail before training, not after it.
        qemu::ensure_qemu(e.board())?;
    }
    let run = RunDir::create(out)?;
    let trained = training::csv::train_csv(&config, file, a.holdout, &run, a.resume, progress(a))?;
    report_trained(&run, &trained)?;
    if a.eval_tasks > 0 && a.holdout > 0.0 {
        let cfg = CsvEvalConfig {
            holdout: a.holdout,
            draws: a.draws,
            seed: a.seed,
        };
        let r = csv::evaluate_csv(&trained.blob, &tasks, &cfg)?;
        run.write_atomic("eval.json", serde_json::to_string_pretty(&r)?.as_bytes())?;
        say!("\n{}", csv::table(&r).trim_end());
        if let Some(on) = &a.on {
            let r =
                csv_on_device::evaluate(on, Arithmetic::F32, None, &trained.blob, &tasks, &cfg)?;
            run.write_atomic(
                "eval-on-device.json",
                serde_json::to_string_pretty(&r)?.as_bytes(),
            )?;
            say!("\n{}", csv_on_device::report(&r).trim_end());
            parity_verdict(r.parity.holds())?;
        }
    }
    Ok(())
}
