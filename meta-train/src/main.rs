//! `meta-train`: meta-train `w*` on the host, evaluate it through the device runtime, inspect
//! blobs, and benchmark.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use meta_train::algo::Algo;
use meta_train::model::{SinusoidNet, SINUSOID_NET};
use meta_train::run_dir::{self, RunDir};
use meta_train::train::{train, Progress, TrainConfig};
use meta_train::with_k;

/// Meta-train few-shot learners on the host; adapt them on microcontrollers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Meta-train w* on source tasks, write a run folder, then evaluate on held-out tasks.
    Train(TrainArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Task family of the source tasks.
    #[arg(long, default_value = "sinusoid")]
    family: String,
    /// Meta-learning algorithm.
    #[arg(long, value_enum, default_value_t = Algo::Maml)]
    algorithm: Algo,
    /// Support (and query) samples per task, K.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Inner gradient steps.
    #[arg(long, default_value_t = 1)]
    steps: usize,
    /// Inner step size α (Meta-SGD: its initial value).
    #[arg(long, default_value_t = 0.01)]
    alpha: f32,
    /// Tasks per meta-batch.
    #[arg(long, default_value_t = 25)]
    meta_batch: usize,
    /// Meta-iterations.
    #[arg(long, default_value_t = 70_000)]
    iterations: u64,
    /// Adam learning rate of the outer loop.
    #[arg(long, default_value_t = 1e-3)]
    meta_lr: f32,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Iterations per metrics row.
    #[arg(long, default_value_t = 100)]
    log_every: u64,
    /// Iterations per checkpoint.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Run folder (default: runs/<family>-<algorithm>-k<K>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(a) => {
            if let Some(t) = a.threads {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build_global()?;
            }
            let config = TrainConfig {
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
            };
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
            let progress = if a.quiet {
                Progress::Quiet
            } else {
                Progress::Bar
            };
            let trained =
                with_k!(a.k, K => train::<SinusoidNet, K>(&config, &run, a.resume, progress))?;
            eprintln!(
                "trained {} iterations at {:.0} it/s; w* in {}",
                trained.checkpoint.iteration,
                trained.iterations_per_s,
                run.path(run_dir::WSTAR).display()
            );
            Ok(())
        }
    }
}
