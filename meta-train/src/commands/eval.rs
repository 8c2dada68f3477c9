//! `meta-train eval`: a w* blob on held-out tasks, adapted through the device runtime on the
//! host or, with `--on`, in the firmware on a board next to the host simulation: sinusoid
//! tasks, the tasks of a CSV file, Omniglot episodes, or the user's own episode.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use meta_train::eval::csv::{self, CsvEvalConfig};
use meta_train::eval::{
    self, csv_on_device, images, images_on_device, sinusoid_on_device, EvalConfig,
};
use meta_train::link::qemu::Emulated;
use meta_train::link::On;
use meta_train::model::head::OMNIGLOT_BODY;
use meta_train::model::SinusoidNet;
#[cfg(feature = "plot")]
use meta_train::report::figures;
use meta_train::run_dir;
use meta_train::say;
use meta_train::tasks::csv::CsvTasks;
use meta_train::tasks::episode_dir::UserEpisode;
use meta_train::tasks::episodes::{Pools, Split};
use meta_train::train::images::FewShotConfig;
use shared::catalogue::Arithmetic;
use shared::wstar::Blob;

use super::{arithmetic_arg, on_arg, parity_verdict, read_blob_file, threads};

/// Options of `eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The w* blob.
    pub blob: PathBuf,
    /// Held-out tasks: how many to draw, or, for a w* trained on CSV tasks, the CSV file that
    /// holds them (write ./600 for a file called 600).
    #[arg(long, default_value = "600", value_parser = tasks_arg)]
    pub tasks: TasksArg,
    /// With --tasks FILE.csv: the fraction of the file's tasks held out in training (the last
    /// ones in order of first appearance); 1 evaluates on every task of a file of new tasks.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// With --tasks FILE.csv: support sets drawn per held-out task.
    #[arg(long, default_value_t = 10)]
    pub draws: usize,
    /// Seed of the held-out tasks (drawn from the evaluation stream, never a training task).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Target-test points per task.
    #[arg(long, default_value_t = 100)]
    pub test_points: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a figure: MSE against steps, and example tasks before and after adaptation.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run every adaptation and prediction in the firmware on a board instead of the host, and
    /// compare each task bit for bit with the host simulation: qemu-an386, qemu-an505, qemu-lm3s6965, qemu-netduinoplus2, qemu-nrf51 or qemu-riscv32
    /// (built and booted under QEMU), or a serial port (/dev/ttyACM0, COM3) of a board
    /// flashed with the firmware `meta-train firmware` builds for the w*, and the w*.
    #[arg(long, value_parser = on_arg)]
    pub on: Option<On>,
    /// Firmware ELF for --on (default: build the board's firmware from this source tree).
    #[arg(long, requires = "on")]
    pub firmware: Option<PathBuf>,
    /// With --on: print the firmware's defmt log, decoded.
    #[arg(long, requires = "on")]
    pub logs: bool,
    /// For an image classifier w*: evaluate on your own episode instead, a folder
    /// (support/CLASS/*.png, query/CLASS/*.png) or a CSV file (split,label,f0,f1,…).
    #[arg(long)]
    pub episode: Option<PathBuf>,
    /// The arithmetic the adapter computes in: f32, q20 (fixed point, the firmware for a core
    /// without an FPU) or q10h (fixed point in half-words, the adapter in half the RAM).
    /// With a fixed point the table of f32 on the same tasks comes first, and the
    /// ratio of the two after; for an image classifier (whose head adapts in it, the body
    /// staying in f32) a column next to f32 with the share of queries labelled alike.
    #[arg(long, default_value = "f32", value_parser = arithmetic_arg)]
    pub arithmetic: Arithmetic,
    /// For an image classifier w*: the folder with the Omniglot zips.
    #[arg(long, default_value = "../shared/data/omniglot")]
    pub omniglot: PathBuf,
    /// For an image classifier w*: the background set it learned from, small1 or small2 (its
    /// evaluation alphabets are the other set's new ones). Default: the split in the
    /// config.json of the run folder holding the blob, else small1.
    #[arg(long)]
    pub split: Option<Split>,
    /// For an image classifier w* in its run folder: evaluate on the run's meta-validation
    /// characters (held out from the training alphabets) instead of the new alphabets, the
    /// data to choose settings on.
    #[arg(long)]
    pub validation: bool,
}

/// `eval --tasks`: a number of held-out tasks to draw, or a file of CSV tasks.
#[derive(Clone, Debug)]
pub enum TasksArg {
    Count(usize),
    File(PathBuf),
}

fn tasks_arg(s: &str) -> Result<TasksArg, String> {
    Ok(s.parse()
        .map_or_else(|_| TasksArg::File(s.into()), TasksArg::Count))
}

/// The sinusoid blob at `path`, checked to be one.
fn read_sinusoid_blob(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_blob_file(path)?;
    Blob::parse_for::<SinusoidNet, 1, 1>(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// Runs `eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    threads(a.threads)?;
    let bytes = std::fs::read(&a.blob)
        .with_context(|| format!("cannot read w* blob {}", a.blob.display()))?;
    let parsed = Blob::parse(&bytes).ok();
    let tasks = match &a.tasks {
        TasksArg::File(file) => return run_csv(&bytes, file, &a),
        TasksArg::Count(n) => *n,
    };
    if parsed.as_ref().is_some_and(|b| b.body().is_some()) {
        if let Some(on) = &a.on {
            return run_images_on_device(on, &bytes, tasks, &a);
        }
        return eval_images(&bytes, &a, tasks as u64);
    }
    if let Some(b) = parsed.filter(|b| b.meta.shape != [1, 40, 40, 1]) {
        let widths: Vec<String> = b.meta.shape.iter().map(u32::to_string).collect();
        anyhow::bail!(
            "{}: a {} model, not the sinusoid net: evaluate it on its CSV tasks with --tasks FILE.csv",
            a.blob.display(),
            widths.join("-")
        );
    }
    let blob = read_sinusoid_blob(&a.blob)?;
    let cfg = EvalConfig {
        tasks,
        seed: a.seed,
        test_points: a.test_points,
    };
    if let Some(on) = &a.on {
        let (r, logs) =
            sinusoid_on_device::evaluate(on, a.arithmetic, a.firmware.as_deref(), &blob, &cfg)?;
        if a.logs {
            for line in logs {
                eprintln!("[{}] {line}", r.board);
            }
        }
        if a.json {
            say!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            say!("{}", sinusoid_on_device::report(&r, &cfg).trim_end());
        }
        return parity_verdict(r.parity.holds());
    }
    let results = eval::evaluate_sinusoid_in(&blob, &cfg, a.arithmetic)?;
    let float = match a.arithmetic {
        Arithmetic::F32 => None,
        _ => Some(eval::evaluate_sinusoid(&blob, &cfg)?),
    };
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
        if let Some(float) = &float {
            say!("f32:\n{}", eval::table(float).trim_end());
            say!("{}:", a.arithmetic);
        }
        say!("{}", eval::table(&results).trim_end());
        if let Some(float) = &float {
            say!(
                "{} / f32 mean MSE: {}",
                a.arithmetic,
                eval::ratios(&results, float)
            );
        }
        if let Some(path) = &a.plot {
            say!("figure: {}", path.display());
        }
    }
    Ok(())
}

/// `eval BLOB --tasks FILE.csv`: the held-out tasks of the file, adapted through the device
/// runtime.
fn run_csv(blob: &[u8], file: &Path, a: &EvalArgs) -> Result<()> {
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
        let r =
            csv_on_device::evaluate(on, a.arithmetic, a.firmware.as_deref(), blob, &tasks, &cfg)
                .with_context(|| format!("evaluating {}", a.blob.display()))?;
        if a.json {
            say!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            say!("{}", csv_on_device::report(&r).trim_end());
        }
        parity_verdict(r.parity.holds())?;
        return Ok(());
    }
    let r = csv::evaluate_csv_in(blob, &tasks, &cfg, a.arithmetic)
        .with_context(|| format!("evaluating {}", a.blob.display()))?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        if a.arithmetic != Arithmetic::F32 {
            let f = csv::evaluate_csv(blob, &tasks, &cfg)?;
            say!("f32:\n{}\n{}:", csv::table(&f).trim_end(), a.arithmetic);
        }
        say!("{}", csv::table(&r).trim_end());
    }
    Ok(())
}

/// `eval CLASSIFIER_BLOB --on qemu-an386`: Omniglot episodes from the evaluation alphabets in
/// the classifier firmware, each compared bit for bit with the device runtime on the host.
fn run_images_on_device(on: &On, blob: &[u8], tasks: usize, a: &EvalArgs) -> Result<()> {
    if *on == On::Qemu(Emulated::Lm3s6965) {
        anyhow::bail!(
            "the Omniglot classifier firmware needs more RAM than the LM3S6965's 64 KiB: use qemu-an386"
        );
    }
    let pools = omniglot_pools(a)?;
    let episodes = images_on_device::parity_episodes(&pools.eval, tasks as u64, a.seed, 15)?;
    let bar = indicatif::ProgressBar::new(episodes.len() as u64);
    let r = images_on_device::evaluate(
        on,
        a.arithmetic,
        a.firmware.as_deref(),
        blob,
        &episodes,
        |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    if a.json {
        say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        say!("{}", images_on_device::report(&r).trim_end());
    }
    parity_verdict(r.parity.holds())
}

/// The config of the few-shot run whose folder holds `blob` (its `config.json`; runs from
/// before there were two splits learned from small1); `None` when there is no such file or it
/// is not a few-shot run's.
fn run_config(blob: &Path) -> Option<FewShotConfig> {
    let config = blob.parent()?.join(run_dir::CONFIG);
    let text = std::fs::read_to_string(config).ok()?;
    serde_json::from_str(&text).ok()
}

/// The Omniglot pools `eval` uses for an image classifier: `--split`, or the split of the run
/// folder holding the blob (a `--split` that contradicts it is an error: its evaluation
/// alphabets would be ones the classifier learned from). With `--validation`, the evaluation
/// pool is the run's meta-validation characters and their rotations (drawn with the run's
/// seed, as in training).
fn omniglot_pools(a: &EvalArgs) -> Result<Pools> {
    let run = run_config(&a.blob);
    let split = match (a.split, run.as_ref().map(|c| c.split)) {
        (Some(asked), Some(run)) if asked != run => anyhow::bail!(
            "--split {asked}: {} was trained on {} ({} beside it); its evaluation alphabets are those of --split {run}",
            a.blob.display(),
            run.background(),
            run_dir::CONFIG
        ),
        (asked, run) => asked.or(run).unwrap_or_default(),
    };
    if !a.validation {
        return Pools::load(&a.omniglot, split, a.seed);
    }
    let Some(run) = run else {
        anyhow::bail!(
            "--validation: no few-shot run's {} beside {} to say which characters it held out",
            run_dir::CONFIG,
            a.blob.display()
        );
    };
    // With their rotations as classes of their own, as training validates on them: 20-way
    // episodes within one alphabet need more than a fifth of its characters.
    let pools = Pools::load(&a.omniglot, split, run.seed)?.with_rotations();
    Ok(Pools {
        eval: pools.val.clone(),
        ..pools
    })
}

/// `eval` on a classifier blob: the user's own episode (a folder or CSV, see
/// [`crate::tasks::episode_dir`]) when given, else `episodes` of each Omniglot evaluation
/// setup drawn with `--seed`; the head adapts in `--arithmetic` (the setups: next to `f32`).
fn eval_images(blob: &[u8], a: &EvalArgs, episodes: u64) -> Result<()> {
    let (seed, arithmetic) = (a.seed, a.arithmetic);
    let Some(path) = a.episode.as_deref() else {
        let pools = omniglot_pools(a)?;
        println!(
            "{} episodes per setup on the {} characters of {} ({})",
            episodes,
            pools.eval.len(),
            if a.validation {
                "meta-validation (rotations included), held out from the training alphabets"
            } else {
                "alphabets never seen in training"
            },
            pools.eval_alphabets().join(", ")
        );
        println!(
            "{}",
            images::table(&images::evaluate(
                blob,
                &pools.eval,
                seed,
                episodes,
                arithmetic
            )?)
        );
        return Ok(());
    };
    let user = UserEpisode::load(path)?;
    let parsed = shared::wstar::Blob::parse(blob).map_err(|e| anyhow::anyhow!("{e}"))?;
    let way = parsed.meta.shape.last().copied().unwrap_or(0) as usize;
    if user.features() != OMNIGLOT_BODY.inputs() {
        anyhow::bail!(
            "{}: samples have {} values; this w* classifies {}x{} images ({} values)",
            path.display(),
            user.features(),
            OMNIGLOT_BODY.side,
            OMNIGLOT_BODY.side,
            OMNIGLOT_BODY.inputs()
        );
    }
    if user.n_way() > way {
        anyhow::bail!(
            "{}: {} classes; this w* has {way}",
            path.display(),
            user.n_way()
        );
    }
    let support = user.episode.support.len();
    let one = std::slice::from_ref(&user.episode);
    let result = match (way, support) {
        (5, 0..=5) => images::run_episodes::<5, 5>(blob, one, arithmetic),
        (5, 6..=25) => images::run_episodes::<5, 25>(blob, one, arithmetic),
        (20, 0..=20) => images::run_episodes::<20, 20>(blob, one, arithmetic),
        (20, 21..=100) => images::run_episodes::<20, 100>(blob, one, arithmetic),
        _ => anyhow::bail!(
            "{}: {support} support samples; at most {} for a {way}-way w*",
            path.display(),
            5 * way
        ),
    }?;
    let r = &result[0];
    println!(
        "{}: {} classes, {} support, {} query samples; adapted on the device runtime ({arithmetic})",
        user.source,
        user.n_way(),
        support,
        user.episode.query.len()
    );
    println!("{:<24} {:>8} {:>8}", "class", "queries", "correct");
    for (c, name) in user.classes.iter().enumerate() {
        let mine: Vec<_> = user
            .episode
            .query
            .iter()
            .zip(&r.labels)
            .filter(|((_, l), _)| *l == c)
            .collect();
        let ok = mine.iter().filter(|((_, l), got)| *l == **got).count();
        println!("{name:<24} {:>8} {:>8}", mine.len(), ok);
    }
    println!(
        "accuracy {:.1}% ({} queries)",
        100.0 * r.accuracy,
        user.episode.query.len()
    );
    Ok(())
}
