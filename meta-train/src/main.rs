//! `meta-train`: meta-train `w*` on the host, evaluate it through the device runtime, inspect
//! blobs, and benchmark.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use meta_train::algo::Algo;
use meta_train::csv_train;
use meta_train::eval::csv::{self, CsvEvalConfig};
use meta_train::eval::csv_on_device;
use meta_train::eval::{self, EvalConfig, KResult};
#[cfg(feature = "plot")]
use meta_train::figures;
use meta_train::link::firmware;
use meta_train::link::qemu::{self, Emulated, Flash, Qemu};
use meta_train::link::On;
use meta_train::model::{SinusoidNet, SINUSOID_NET};
use meta_train::run_dir::{self, RunDir};
use meta_train::tasks::csv::CsvTasks;
use meta_train::train::{train, Progress, TrainConfig, Trained};
use meta_train::{bench, export, on_device, say, with_k};
use shared::catalogue::Firmware;
use shared::wstar::Blob;

/// Meta-train few-shot learners on the host; adapt them on microcontrollers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Meta-train w* on source tasks into a run folder, then evaluate it on held-out tasks.
    Train(TrainArgs),
    /// Meta-train the Omniglot few-shot classifier (convolutional body, ANIL head) from the
    /// small background split and evaluate it on alphabets it never saw.
    TrainFewshot(meta_train::fewshot::run::FewShotArgs),
    /// Evaluate a w* blob on held-out tasks, adapting with the device runtime.
    Eval(EvalArgs),
    /// Show what a w* blob holds: header, shape, inner loop, α, sizes, device RAM.
    Inspect {
        /// The blob.
        blob: PathBuf,
    },
    /// Write what flashing a w* blob needs for a board: the .bin for its w* region, the same
    /// bytes as Intel HEX at the region's address, and the probe-rs command.
    Export {
        /// The blob.
        blob: PathBuf,
        /// Board: mps2-an386, lm3s6965evb (QEMU), nrf52840-dk, or a board file (FILE.toml).
        #[arg(long, value_parser = target_arg)]
        board: firmware::Target,
        /// Slot: a or b. An update goes to the slot not serving, with a higher generation.
        #[arg(long, default_value = "a", value_parser = ["a", "b"])]
        slot: String,
        /// Generation: the device serves the newest valid slot.
        #[arg(long, default_value_t = 1)]
        generation: u32,
        /// Folder for the files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Build the firmware for a w* blob's model (its shape and sample capacity decide the
    /// firmware's types) for a board; print the ELF, its code flash and RAM, and how to flash
    /// it and the w*.
    Firmware {
        /// The blob.
        blob: PathBuf,
        /// Board: mps2-an386, lm3s6965evb, or a board file (FILE.toml) naming its package.
        #[arg(long, value_parser = target_arg)]
        board: firmware::Target,
        /// Samples the device holds (default: the smallest of 1, 2, 5, 10, 20, 32 that holds the
        /// K the w* was trained with; the host simulates those).
        #[arg(long)]
        k: Option<u16>,
    },
    /// Measure meta-iterations per second, GFLOP/s and peak memory; with --quality, the
    /// post-adaptation error of MAML and Meta-SGD trained with the paper's setup.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Task family of the source tasks.
    #[arg(long, default_value = "sinusoid")]
    family: String,
    /// Meta-train on your own tasks instead: a CSV file of regression or classification tasks
    /// (one per value of its `task` column). The model is FEATURES-40-40-OUTPUTS.
    #[arg(long, conflicts_with = "family")]
    tasks: Option<PathBuf>,
    /// With --tasks: the fraction of the file's tasks held out from meta-training for the
    /// evaluation (the last ones in order of first appearance; at least one when above 0).
    #[arg(long, default_value_t = 0.2, requires = "tasks")]
    holdout: f64,
    /// With --tasks: support sets drawn per held-out task in the evaluation.
    #[arg(long, default_value_t = 10, requires = "tasks")]
    draws: usize,
    /// Meta-learning algorithm: maml, fomaml, metasgd, anil or reptile.
    #[arg(long, value_parser = meta_train::algo::parse_algorithm, default_value = "maml")]
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
    /// Run folder (default: runs/<family>-<algorithm>-k<K>-seed<seed>, or
    /// runs/csv-<file name>-<algorithm>-k<K>-seed<seed> with --tasks).
    #[arg(long, visible_alias = "run")]
    out: Option<PathBuf>,
    /// Continue from the run folder's last checkpoint.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Held-out tasks for the evaluation after training (0: skip it). With --tasks, any
    /// other value evaluates the file's held-out tasks.
    #[arg(long, default_value_t = 600)]
    eval_tasks: usize,
    /// Then flash w* into a board and evaluate there too, next to the host simulation, with
    /// the parity verdict: qemu-an386 or qemu-lm3s6965 (the firmware for the w* is built and
    /// booted under QEMU), or a serial port (/dev/ttyACM0, COM3) of a board flashed with it.
    #[arg(long, value_parser = on_arg)]
    on: Option<On>,
    /// Held-out tasks of the on-device evaluation (the first of the host's).
    #[arg(long, default_value_t = 100)]
    device_tasks: usize,
}

#[derive(Args)]
struct EvalArgs {
    /// The w* blob.
    blob: PathBuf,
    /// Held-out tasks: how many to draw, or, for a w* trained on CSV tasks, the CSV file that
    /// holds them (write ./600 for a file called 600).
    #[arg(long, default_value = "600", value_parser = tasks_arg)]
    tasks: TasksArg,
    /// With --tasks FILE.csv: the fraction of the file's tasks held out in training (the last
    /// ones in order of first appearance); 1 evaluates on every task of a file of new tasks.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// With --tasks FILE.csv: support sets drawn per held-out task.
    #[arg(long, default_value_t = 10)]
    draws: usize,
    /// Seed of the held-out tasks (drawn from the evaluation stream, never a training task).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Target-test points per task.
    #[arg(long, default_value_t = 100)]
    test_points: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write a figure: MSE against steps, and example tasks before and after adaptation.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Run every adaptation and prediction in the firmware on a board instead of the host, and
    /// compare each task bit for bit with the host simulation: qemu-an386 or qemu-lm3s6965
    /// (built and booted under QEMU), or a serial port (/dev/ttyACM0, COM3) of a board
    /// flashed with the firmware `meta-train firmware` builds for the w*, and the w*.
    #[arg(long, value_parser = on_arg)]
    on: Option<On>,
    /// Firmware ELF for --on (default: build the board's firmware from this source tree).
    #[arg(long, requires = "on")]
    firmware: Option<PathBuf>,
    /// With --on: print the firmware's defmt log, decoded.
    #[arg(long, requires = "on")]
    logs: bool,
    /// For an image classifier w*: evaluate on your own episode instead, a folder
    /// (support/CLASS/*.png, query/CLASS/*.png) or a CSV file (split,label,f0,f1,…).
    #[arg(long)]
    episode: Option<PathBuf>,
    /// For an image classifier w*: the folder with the Omniglot zips.
    #[arg(long, default_value = "../shared/data/omniglot")]
    omniglot: PathBuf,
}

/// `eval --tasks`: a number of held-out tasks to draw, or a file of CSV tasks.
#[derive(Clone, Debug)]
enum TasksArg {
    Count(usize),
    File(PathBuf),
}

fn tasks_arg(s: &str) -> Result<TasksArg, String> {
    Ok(s.parse()
        .map_or_else(|_| TasksArg::File(s.into()), TasksArg::Count))
}

fn target_arg(s: &str) -> Result<firmware::Target, String> {
    firmware::Target::parse(s).map_err(|e| format!("{e:#}"))
}

fn on_arg(s: &str) -> Result<On, String> {
    On::parse(s).map_err(|e| e.to_string())
}

/// The emulated board `on` names; the sinusoid and Omniglot evaluations run under QEMU.
fn emulated(on: &On) -> Result<Emulated> {
    match on {
        On::Qemu(e) => Ok(*e),
        On::Serial(p) => anyhow::bail!(
            "--on {p}: the sinusoid and Omniglot evaluations run on an emulated board (qemu-an386, qemu-lm3s6965); a serial port serves CSV-task blobs (--tasks FILE.csv)"
        ),
        On::Board(t) => anyhow::bail!(
            "--on {}: the sinusoid and Omniglot evaluations run on qemu-an386 or qemu-lm3s6965; a board file serves CSV-task blobs (--tasks FILE.csv)",
            t.file.as_deref().unwrap_or(std::path::Path::new(t.board.name)).display()
        ),
    }
}

fn threads(n: Option<usize>) -> Result<()> {
    if let Some(t) = n {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    Ok(())
}

fn read_blob(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read w* blob {}", path.display()))?;
    Blob::parse_for::<SinusoidNet, 1, 1>(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(bytes)
}

fn evaluate_both(blob: &[u8], cfg: &EvalConfig) -> Result<Vec<KResult>> {
    Ok(vec![
        eval::evaluate::<SinusoidNet, 5>(blob, cfg)?,
        eval::evaluate::<SinusoidNet, 10>(blob, cfg)?,
    ])
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

fn run_train(a: TrainArgs) -> Result<()> {
    threads(a.threads)?;
    if let Some(file) = &a.tasks {
        return run_train_csv(&a, file);
    }
    if let Some(on) = &a.on {
        // Fail before training, not after it: the emulator and the firmware come first.
        let on = emulated(on)?;
        qemu::ensure_qemu()?;
        firmware::build(on.board(), &Firmware::SINUSOID)?;
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
        let results = evaluate_both(&trained.blob, &cfg)?;
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
        let on = emulated(on)?;
        let cfg = EvalConfig {
            tasks: a.device_tasks,
            seed: a.seed,
            test_points: 100,
        };
        say!(
            "\nflashing {} into w* slot A at {:#010x} of the {} and evaluating on the device",
            run_dir::WSTAR,
            on.board().slot(0).origin,
            on.board().description
        );
        let (r, _) = run_on_device(on, None, &trained.blob, &cfg)?;
        run.write_atomic(
            &format!("eval-{}.json", on.board().name),
            serde_json::to_string_pretty(&r)?.as_bytes(),
        )?;
        say!("{}", on_device::report(&r, &cfg).trim_end());
        if !r.parity.holds() {
            anyhow::bail!("the device and the host simulation disagree");
        }
    }
    Ok(())
}

fn run_eval(a: EvalArgs) -> Result<()> {
    threads(a.threads)?;
    let bytes = std::fs::read(&a.blob)
        .with_context(|| format!("cannot read w* blob {}", a.blob.display()))?;
    let parsed = Blob::parse(&bytes).ok();
    let tasks = match &a.tasks {
        TasksArg::File(file) => return run_eval_csv(&bytes, file, &a),
        TasksArg::Count(n) => *n,
    };
    if parsed.as_ref().is_some_and(|b| b.body().is_some()) {
        if let Some(on) = &a.on {
            return run_fewshot_on_device(emulated(on)?, &bytes, tasks, &a);
        }
        return meta_train::fewshot::run::eval_blob(
            &bytes,
            &a.omniglot,
            a.episode.as_deref(),
            a.seed,
            tasks as u64,
        );
    }
    if let Some(b) = parsed.filter(|b| b.meta.shape != [1, 40, 40, 1]) {
        let widths: Vec<String> = b.meta.shape.iter().map(u32::to_string).collect();
        anyhow::bail!(
            "{}: a {} model, not the sinusoid net: evaluate it on its CSV tasks with --tasks FILE.csv",
            a.blob.display(),
            widths.join("-")
        );
    }
    let blob = read_blob(&a.blob)?;
    let cfg = EvalConfig {
        tasks,
        seed: a.seed,
        test_points: a.test_points,
    };
    if let Some(on) = &a.on {
        let on = emulated(on)?;
        let (r, logs) = run_on_device(on, a.firmware.as_deref(), &blob, &cfg)?;
        if a.logs {
            for line in logs {
                eprintln!("[{}] {line}", on.board().name);
            }
        }
        if a.json {
            say!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            say!("{}", on_device::report(&r, &cfg).trim_end());
        }
        return if r.parity.holds() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "the device and the host simulation disagree"
            ))
        };
    }
    let results = evaluate_both(&blob, &cfg)?;
    if let Some(path) = &a.plot {
        #[cfg(feature = "plot")]
        figures::eval_figure(path, &blob, &cfg, &results)?;
        #[cfg(not(feature = "plot"))]
        anyhow::bail!(
            "--plot {}: this meta-train is built without the plot feature",
            path.display()
        );
    }
    if a.json {
        say!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        say!(
            "{} held-out tasks, {} target-test points each, adapted on the device runtime",
            cfg.tasks,
            cfg.test_points
        );
        say!("{}", eval::table(&results).trim_end());
        if let Some(path) = &a.plot {
            say!("figure: {}", path.display());
        }
    }
    Ok(())
}

/// `train --tasks FILE.csv`: meta-trains on the file's tasks, then evaluates on its held-out
/// tasks through the device runtime.
fn run_train_csv(a: &TrainArgs, file: &Path) -> Result<()> {
    let tasks = CsvTasks::load(file)?;
    csv_train::check_shape(&tasks)?;
    let (inputs, outputs) = csv_train::dims(&tasks);
    let config = TrainConfig {
        family: csv_train::FAMILY.into(),
        model: csv_train::model_name(inputs, outputs),
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
    if let Some(On::Qemu(_)) = &a.on {
        // Fail before training, not after it.
        qemu::ensure_qemu()?;
    }
    let run = RunDir::create(out)?;
    let trained = csv_train::train_csv(&config, file, a.holdout, &run, a.resume, progress(a))?;
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
            let r = csv_on_device::evaluate(on, None, &trained.blob, &tasks, &cfg)?;
            run.write_atomic(
                "eval-on-device.json",
                serde_json::to_string_pretty(&r)?.as_bytes(),
            )?;
            say!("\n{}", csv_on_device::report(&r).trim_end());
            if !r.parity.holds() {
                anyhow::bail!("the device and the host simulation disagree");
            }
        }
    }
    Ok(())
}

/// `eval BLOB --tasks FILE.csv`: the held-out tasks of the file, adapted through the device
/// runtime.
fn run_eval_csv(blob: &[u8], file: &Path, a: &EvalArgs) -> Result<()> {
    if a.plot.is_some() || a.episode.is_some() {
        anyhow::bail!(
            "--plot and --episode are for the sinusoid and image blobs, not with --tasks FILE.csv"
        );
    }
    let tasks = CsvTasks::load(file)?;
    let cfg = CsvEvalConfig {
        holdout: a.holdout,
        draws: a.draws,
        seed: a.seed,
    };
    if let Some(on) = &a.on {
        let r = csv_on_device::evaluate(on, a.firmware.as_deref(), blob, &tasks, &cfg)
            .with_context(|| format!("evaluating {}", a.blob.display()))?;
        if a.json {
            say!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            say!("{}", csv_on_device::report(&r).trim_end());
        }
        if !r.parity.holds() {
            anyhow::bail!("the device and the host simulation disagree");
        }
        return Ok(());
    }
    let r = csv::evaluate_csv(blob, &tasks, &cfg)
        .with_context(|| format!("evaluating {}", a.blob.display()))?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        say!("{}", csv::table(&r).trim_end());
    }
    Ok(())
}

/// `eval CLASSIFIER_BLOB --on qemu-an386`: Omniglot episodes from the evaluation alphabets in
/// the classifier firmware, each compared bit for bit with the device runtime on the host.
fn run_fewshot_on_device(on: Emulated, blob: &[u8], tasks: usize, a: &EvalArgs) -> Result<()> {
    use meta_train::fewshot::on_device;
    use meta_train::tasks::episodes::Pools;
    use meta_train::tasks::omniglot::Omniglot;
    if on != Emulated::An386 {
        anyhow::bail!(
            "the Omniglot classifier firmware is built for qemu-an386 (its 256 KiB of RAM)"
        );
    }
    qemu::ensure_qemu()?;
    let small1 = Omniglot::load(a.omniglot.join("images_background_small1.zip"))?;
    let small2 = Omniglot::load(a.omniglot.join("images_background_small2.zip"))?;
    let pools = Pools::from_small(&small1, &small2, 0.2, a.seed);
    let episodes = on_device::parity_episodes(&pools.eval, tasks as u64, a.seed, 15)?;
    let bar = indicatif::ProgressBar::new(episodes.len() as u64);
    let r = on_device::evaluate(blob, &episodes, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if a.json {
        say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        say!("{}", on_device::report(&r).trim_end());
    }
    if r.parity.holds() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "the device and the host simulation disagree"
        ))
    }
}

/// Boots the board's firmware with `blob` flashed and evaluates on it; also returns the
/// firmware's decoded log.
fn run_on_device(
    on: Emulated,
    firmware: Option<&Path>,
    blob: &[u8],
    cfg: &EvalConfig,
) -> Result<(on_device::OnDevice, Vec<String>)> {
    qemu::ensure_qemu()?;
    let elf = match firmware {
        Some(p) => p.to_path_buf(),
        None => firmware::build(on.board(), &Firmware::SINUSOID)?,
    };
    let mut device = Qemu::boot(on, &elf, Flash::Blob(blob))?;
    let bar = indicatif::ProgressBar::new(2 * cfg.tasks as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {pos}/{len} tasks [{elapsed}<{eta}]",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("on {}", on.board().name));
    let r = on_device::evaluate(device.link(), on.board().name, blob, cfg, |n| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    Ok((r, device.logs()?))
}

/// A user error (a missing file, a corrupt blob, a device that does not answer) prints its
/// message and its causes, never a backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => run_train(a),
        Command::TrainFewshot(a) => meta_train::fewshot::run::run(&a),
        Command::Eval(a) => run_eval(a),
        Command::Inspect { blob } => {
            let bytes = std::fs::read(&blob)
                .with_context(|| format!("cannot read w* blob {}", blob.display()))?;
            let parsed =
                Blob::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", blob.display()))?;
            say!("file          {}", blob.display());
            say!(
                "{}",
                meta_train::inspect::report(&parsed, bytes.len()).trim_end()
            );
            Ok(())
        }
        Command::Export {
            blob,
            board,
            slot,
            generation,
            out,
        } => {
            let bytes = std::fs::read(&blob)
                .with_context(|| format!("cannot read w* blob {}", blob.display()))?;
            let slot = usize::from(slot == "b");
            let board = board.board;
            let e = export::export(&bytes, board, slot, generation, &out)
                .with_context(|| format!("{}", blob.display()))?;
            say!("{}", export::instructions(board, &e).trim_end());
            Ok(())
        }
        Command::Firmware { blob, board, k } => {
            let bytes = std::fs::read(&blob)
                .with_context(|| format!("cannot read w* blob {}", blob.display()))?;
            let fw = firmware::for_blob(&bytes, k).with_context(|| blob.display().to_string())?;
            let elf = firmware::build_for(&board, &fw)?;
            say!("{}", firmware::describe(board.board, &fw, &elf)?.trim_end());
            Ok(())
        }
        Command::Bench(a) => bench::run(&a),
    }
}
