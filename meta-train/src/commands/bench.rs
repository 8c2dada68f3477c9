//! `meta-train bench`: speed (meta-iterations per second, GFLOP/s, peak memory) and, with
//! `--quality`, post-adaptation error of the paper's setups on 600 held-out tasks; with
//! `--device`, the on-device costs; with `--omniglot`, the nearest-neighbour baselines.

use std::time::Instant;

use anyhow::Result;
use meta_train::algo::{parse_algorithm, Algo};
use meta_train::bench::{
    build, clock_ghz, convolution_kernels, device, fewshot, flops, guard, paper_config,
    peak_memory_mib,
};
use meta_train::eval::{self, EvalConfig, EVAL_STEPS};
use meta_train::link::qemu::Emulated;
use meta_train::model::{SinusoidNet, SINUSOID_NET};
use meta_train::run_dir::RunDir;
use meta_train::say;
use meta_train::tasks::episodes::{nn_accuracy_with, EpisodeSpec, NnRule, Pools, Sampler, Split};
use meta_train::tasks::Stream;
use meta_train::train::time_split::Phase;
use meta_train::train::{train, Progress, TrainConfig};
use shared::catalogue::Arithmetic;

/// Options of `bench`: what to benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Meta-iterations timed per algorithm.
    #[arg(long, default_value_t = 3000)]
    pub iterations: u64,
    /// Also train MAML and Meta-SGD with the paper's setup and evaluate them.
    #[arg(long)]
    pub quality: bool,
    /// Meta-iterations of the quality runs.
    #[arg(long, default_value_t = 70_000)]
    pub quality_iterations: u64,
    /// Held-out tasks of the quality runs.
    #[arg(long, default_value_t = 600)]
    pub tasks: usize,
    /// An algorithm to time, repeatable (default: maml, fomaml and metasgd).
    #[arg(long = "algorithm", value_parser = parse_algorithm)]
    pub algorithms: Vec<Algo>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead: the on-device costs of the MAML sinusoid adaptation on every emulated board
    /// (instructions, flash, RAM), as a Markdown table.
    #[arg(long)]
    pub device: bool,
    /// Instead: few-shot baselines on Omniglot from the folder holding
    /// images_background_small1.zip and images_background_small2.zip (600 episodes each).
    #[arg(long, value_name = "DIR")]
    pub omniglot: Option<std::path::PathBuf>,
    /// Instead: the speed of few-shot image training, the README's Omniglot recipe for
    /// `--iterations` meta-iterations, with the split of its time.
    #[arg(long)]
    pub fewshot: bool,
    /// The folder holding images_background_small1.zip and images_background_small2.zip
    /// (for `--fewshot`).
    #[arg(long, default_value = "../shared/data/omniglot")]
    pub data: std::path::PathBuf,
}

/// Pixel nearest-neighbour accuracy on the Omniglot setups, for both splits: each learns from
/// one small background set and is evaluated on the other's alphabets it lacks.
fn omniglot_baselines(dir: &std::path::Path, episodes: u64) -> Result<()> {
    for split in Split::ALL {
        let pools = Pools::load(dir, split, 0)?;
        say!(
            "Omniglot, 28x28, learning from {}: {} evaluation characters ({}); {episodes} episodes each, 15 queries per class",
            split.background(),
            pools.eval.len(),
            pools.eval_alphabets().join(", ")
        );
        baselines_on(&pools, episodes)?;
    }
    Ok(())
}

/// The pixel nearest-neighbour table of `pools`' evaluation characters.
fn baselines_on(pools: &Pools, episodes: u64) -> Result<()> {
    say!("| setup | pixel NN (nearest image) | pixel NN (nearest class mean) |\n|---|---:|---:|");
    for (what, spec, within) in [
        ("5-way 1-shot", EpisodeSpec::new(5, 1), false),
        ("5-way 5-shot", EpisodeSpec::new(5, 5), false),
        (
            "20-way 1-shot within one alphabet",
            EpisodeSpec::new(20, 1),
            true,
        ),
        (
            "20-way 1-shot across alphabets",
            EpisodeSpec::new(20, 1),
            false,
        ),
    ] {
        let s = if within {
            Sampler::within_alphabet(&pools.eval, spec)?
        } else {
            Sampler::across(&pools.eval, spec)?
        };
        let acc = |rule| nn_accuracy_with(s.episodes(0, Stream::Eval, episodes), rule);
        let ((m1, c1), (m2, c2)) = (acc(NnRule::NearestImage), acc(NnRule::NearestClassMean));
        say!(
            "| {what} | {:.1}% ± {:.1} | {:.1}% ± {:.1} |",
            100.0 * m1,
            100.0 * c1,
            100.0 * m2,
            100.0 * c2
        );
    }
    Ok(())
}

/// `measure` of every emulated board in every arithmetic (f32, q20, q10h), in that order per
/// board.
fn every_board_in_every_arithmetic(
    measure: impl Fn(Emulated, Arithmetic) -> Result<device::BoardCost>,
) -> Result<Vec<device::BoardCost>> {
    Emulated::ALL
        .iter()
        .flat_map(|&on| Arithmetic::ALL.map(|a| (on, a)))
        .map(|(on, a)| measure(on, a))
        .collect()
}

/// `bench --fewshot`: the README's Omniglot recipe, timed, and where its time went.
fn fewshot_speed(a: &BenchArgs, threads: usize, ghz: Option<f64>) -> Result<()> {
    let (isa, per_cycle) = convolution_kernels();
    let peak = ghz.map(|g| g * per_cycle * threads as f64);
    say!("convolution kernels: {isa} (picked at run time)");
    let config = fewshot::readme_recipe(a.iterations);
    say!(
        "setup: Omniglot, the README's recipe: {}-way {}-shot within one alphabet, {} queries per class, meta-batch {} ({} images per meta-iteration), prototype start, {} second-order inner steps of the head, distortions; meta-validation every {} iterations ({} episodes); {} iterations\n",
        config.way, config.shot, config.query, config.meta_batch,
        config.meta_batch * config.way * (config.shot + config.query),
        config.steps, config.val_every, config.val_episodes, config.iterations
    );
    let t = fewshot::measure(&a.data, config)?;
    let gflops = t.body_flops_per_s() / 1e9;
    say!("meta-it/s   images/s   body GFLOP/s   of peak   wall s");
    say!(
        "{:>9.1}  {:>9.0}  {:>12.1}  {:>8}  {:>6.1}",
        t.iterations_per_s(),
        t.iterations_per_s() * t.images_per_iteration() as f64,
        gflops,
        peak.map_or("-".into(), |p| format!("{:.1}%", 100.0 * gflops / p)),
        t.seconds
    );
    if let Some(p) = peak {
        say!("peak: {p:.1} GFLOP/s nominal ({isa}: {per_cycle} f32 FLOP/cycle/core, no FMA); GFLOP/s counts the body's forward and backward only");
    }
    let available = t.seconds * threads as f64;
    say!(
        "\ntime split ({threads} thread(s) × {:.1} s wall = {available:.1} thread-seconds)",
        t.seconds
    );
    say!("| phase | thread-s | share |\n|---|---:|---:|");
    for phase in Phase::ALL {
        let s = t.split.seconds(phase);
        say!(
            "| {} | {s:.2} | {:.1}% |",
            phase.name(),
            100.0 * s / available
        );
    }
    let idle = (available - t.split.total()).max(0.0);
    say!(
        "| idle (threads waiting) | {idle:.2} | {:.1}% |",
        100.0 * idle / available
    );
    if let Some(m) = peak_memory_mib() {
        say!("peak memory (VmHWM): {m:.1} MiB");
    }
    Ok(())
}

/// Runs the benchmark and prints its tables.
pub fn run(a: &BenchArgs) -> Result<()> {
    if let Some(dir) = &a.omniglot {
        return omniglot_baselines(dir, 600);
    }
    if a.device {
        let blob = device::maml_blob(1000)?;
        let rows = every_board_in_every_arithmetic(|on, a| device::measure(on, a, &blob))?;
        say!("MAML sinusoid w* (1-40-40-1, 1,761 parameters, K = 10), firmware under QEMU with -icount (exact instruction counts)");
        say!("{}", device::table(&rows).trim_end());
        let dir = tempfile::tempdir()?;
        let (tasks, blob) = device::csv_blob(dir.path(), 300)?;
        let rows =
            every_board_in_every_arithmetic(|on, a| device::measure_csv(on, a, &tasks, &blob))?;
        let f = device::CSV_FAMILY;
        say!(
            "\nCSV classifier w* ({}-40-40-{}, the synthetic {} family: {} features, {} classes; FOMAML, K = 10), parity checked",
            f.features,
            f.outputs,
            f.name,
            f.features,
            f.outputs
        );
        say!("{}", device::table(&rows).trim_end());
        return Ok(());
    }
    super::threads(a.threads)?;
    let threads = rayon::current_num_threads();
    let (isa, per_cycle) = build();
    let ghz = clock_ghz();
    let peak = ghz.map(|g| g * per_cycle * threads as f64);
    say!(
        "build: {isa}; {threads} thread(s); clock {}",
        ghz.map_or("unknown".into(), |g| format!("{g:.2} GHz"))
    );
    if a.fewshot {
        return fewshot_speed(a, threads, ghz);
    }
    say!("setup: sinusoid, {SINUSOID_NET}, K = 10, 1 inner step, meta-batch 25; {} iterations each\n", a.iterations);
    say!("algorithm   meta-it/s   ms/it   MFLOP/it   GFLOP/s   of peak");
    let widths = [1usize, 40, 40, 1];
    let dir = tempfile::tempdir()?;
    let algorithms = if a.algorithms.is_empty() {
        vec![Algo::Maml, Algo::Fomaml, Algo::MetaSgd]
    } else {
        a.algorithms.clone()
    };
    for algo in algorithms {
        let cfg = paper_config(algo, a.iterations);
        let run = RunDir::create(dir.path().join(format!("{algo:?}")))?;
        let t = train::<SinusoidNet, 10>(&cfg, &run, false, Progress::Quiet)?;
        let f = flops::meta_iteration(&widths, 10, 1, 25, algo.second_order(), algo.learns_alpha())
            as f64;
        let gflops = f * t.iterations_per_s / 1e9;
        say!(
            "{:<10}  {:>9.0}  {:>6.3}  {:>9.2}  {:>8.2}  {}",
            format!("{algo:?}").to_lowercase(),
            t.iterations_per_s,
            1e3 / t.iterations_per_s,
            f / 1e6,
            gflops,
            peak.map_or("-".into(), |p| format!("{:>6.1}%", 100.0 * gflops / p))
        );
    }
    if let Some(p) = peak {
        say!("peak: {p:.1} GFLOP/s nominal ({per_cycle} f32 FLOP/cycle/core at the build's vector width, no FMA)");
    }
    if let Some(m) = peak_memory_mib() {
        say!("peak memory (VmHWM): {m:.1} MiB");
    }
    if a.quality {
        let ecfg = EvalConfig {
            tasks: a.tasks,
            seed: 0,
            test_points: 100,
        };
        let mut maml_at = Vec::new();
        for algo in [Algo::Maml, Algo::MetaSgd] {
            let cfg = paper_config(algo, a.quality_iterations);
            let run = RunDir::create(dir.path().join(format!("quality-{algo:?}")))?;
            let start = Instant::now();
            let t = train::<SinusoidNet, 10>(&cfg, &run, false, Progress::Bar)?;
            let secs = start.elapsed().as_secs_f64();
            let results = eval::evaluate_sinusoid(&t.blob, &ecfg)?;
            say!(
                "\n{algo:?}: {} iterations in {secs:.1} s; {} held-out tasks, {} target-test points each",
                cfg.iterations, ecfg.tasks, ecfg.test_points
            );
            say!("{}", eval::table(&results).trim_end());
            let val = EvalConfig { seed: 1, ..ecfg };
            say!(
                "extra steps on {} validation tasks (seed 1): retries of an extra step that raises the loss, at half the length each (0: the guard stops), and doublings an extra step may grow to (the device: {} retries, {} doublings)",
                val.tasks,
                ::device::BACKTRACKS,
                ::device::GROWTH
            );
            say!("{}", guard::table(&t.blob, &val)?.trim_end());
            if algo == Algo::Maml {
                maml_at.push(results[1].clone());
            }
        }
        // One model per K, as the MAML paper trains them (on the validation tasks the K = 5
        // and K = 10 models tie at K = 5: docs/results.md).
        let cfg = TrainConfig {
            k: 5,
            ..paper_config(Algo::Maml, a.quality_iterations)
        };
        let run = RunDir::create(dir.path().join("quality-maml-k5"))?;
        let t = train::<SinusoidNet, 5>(&cfg, &run, false, Progress::Bar)?;
        let results = eval::evaluate_sinusoid(&t.blob, &ecfg)?;
        say!(
            "\nMaml trained with K = 5: {} iterations; the same held-out tasks",
            cfg.iterations
        );
        say!("{}", eval::table(&results).trim_end());
        maml_at.insert(0, results[0].clone());
        say!("\nMAML, one model per K (mean MSE after 1 / 10 steps, tasks diverged):");
        for r in &maml_at {
            let at = |steps| {
                &r.cells[EVAL_STEPS
                    .iter()
                    .position(|&e| e == steps)
                    .expect("in EVAL_STEPS")]
            };
            say!(
                "  K = {:>2}: {:.4} / {:.4}, {} diverged",
                r.k,
                at(1).mean,
                at(10).mean,
                at(10).diverged
            );
        }
    }
    Ok(())
}
