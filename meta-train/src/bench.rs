//! `meta-train bench`: speed (meta-iterations per second, GFLOP/s, peak memory) and, with
//! `--quality`, post-adaptation error of the paper's setups on 600 held-out tasks.

use std::time::Instant;

use anyhow::Result;

use crate::algo::Algo;
use crate::eval::{self, EvalConfig};
use crate::flops;
use crate::model::{SinusoidNet, SINUSOID_NET};
use crate::run_dir::RunDir;
use crate::say;
use crate::train::{train, Progress, TrainConfig};

/// What to benchmark.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct BenchArgs {
    /// Meta-iterations timed per algorithm.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3000))]
    pub iterations: u64,
    /// Also train MAML and Meta-SGD with the paper's setup and evaluate them.
    #[cfg_attr(feature = "cli", arg(long))]
    pub quality: bool,
    /// Meta-iterations of the quality runs.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 70_000))]
    pub quality_iterations: u64,
    /// Held-out tasks of the quality runs.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 600))]
    pub tasks: usize,
    /// An algorithm to time, repeatable (default: maml, fomaml and metasgd).
    #[cfg_attr(feature = "cli", arg(long = "algorithm", value_parser = crate::algo::parse_algorithm))]
    pub algorithms: Vec<Algo>,
    /// Worker threads (default: one per core).
    #[cfg_attr(feature = "cli", arg(long))]
    pub threads: Option<usize>,
    /// Instead: the on-device costs of the MAML sinusoid adaptation on both emulated boards
    /// (instructions, flash, RAM), as a Markdown table.
    #[cfg_attr(feature = "cli", arg(long))]
    pub device: bool,
    /// Instead: few-shot baselines on Omniglot from the folder holding
    /// images_background_small1.zip and images_background_small2.zip (600 episodes each).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub omniglot: Option<std::path::PathBuf>,
}

/// Pixel nearest-neighbour accuracy on the Omniglot setups: evaluation alphabets are
/// those of small2 that small1 (the meta-training data) lacks.
fn omniglot_baselines(dir: &std::path::Path, episodes: u64) -> Result<()> {
    use crate::tasks::episodes::{nn_accuracy_with, EpisodeSpec, NnRule, Pools, Sampler};
    use crate::tasks::omniglot::Omniglot;
    use crate::tasks::Stream;
    let small1 = Omniglot::load(dir.join("images_background_small1.zip"))?;
    let small2 = Omniglot::load(dir.join("images_background_small2.zip"))?;
    let pools = Pools::from_small(&small1, &small2, 0.2, 0);
    say!(
        "Omniglot, 28x28: {} evaluation characters ({}); {episodes} episodes each, 15 queries per class",
        pools.eval.len(),
        small2.alphabets_missing_from(&small1).alphabets().join(", ")
    );
    say!("| setup | pixel NN (nearest image) | pixel NN (nearest class mean) |\n|---|---:|---:|");
    for (what, spec, within) in [
        ("5-way 1-shot", EpisodeSpec::new(5, 1), false),
        ("5-way 5-shot", EpisodeSpec::new(5, 5), false),
        (
            "20-way 1-shot within one alphabet",
            EpisodeSpec::new(20, 1),
            true,
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

/// The paper's sinusoid setup for `algorithm`.
pub fn paper_config(algorithm: Algo, iterations: u64) -> TrainConfig {
    TrainConfig {
        family: "sinusoid".into(),
        model: SINUSOID_NET.into(),
        algorithm,
        k: 10,
        steps: 1,
        alpha: 0.01,
        meta_batch: 25,
        iterations,
        meta_lr: 1e-3,
        seed: 0,
        log_every: 1000,
        checkpoint_every: iterations,
    }
}

/// Which instruction set this binary was compiled for, and its nominal f32 peak per cycle per
/// core when multiplies and adds issue on two ports (Rust never fuses them into FMAs).
fn build() -> (&'static str, f64) {
    if cfg!(target_feature = "avx512f") {
        ("x86-64 with AVX-512 (e.g. -C target-cpu=native)", 32.0)
    } else if cfg!(target_feature = "avx2") {
        ("x86-64-v3: AVX2 (-C target-cpu=x86-64-v3)", 16.0)
    } else if cfg!(target_arch = "x86_64") {
        ("portable x86-64 (SSE2)", 8.0)
    } else {
        ("portable", 8.0)
    }
}

/// Nominal clock in GHz from /proc/cpuinfo's model name ("@ 2.80GHz") or "cpu MHz".
fn clock_ghz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let from_name = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| {
            let at = l.rfind('@')?;
            l[at + 1..]
                .trim()
                .trim_end_matches("GHz")
                .trim()
                .parse()
                .ok()
        });
    from_name.or_else(|| {
        let l = info.lines().find(|l| l.starts_with("cpu MHz"))?;
        l.split(':')
            .nth(1)?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|mhz| mhz / 1000.0)
    })
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_memory_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the benchmark and prints its tables.
pub fn run(a: &BenchArgs) -> Result<()> {
    if let Some(dir) = &a.omniglot {
        return omniglot_baselines(dir, 600);
    }
    if a.device {
        let blob = crate::device_bench::maml_blob(1000)?;
        let rows = crate::link::qemu::Emulated::ALL
            .iter()
            .map(|&on| crate::device_bench::measure(on, &blob))
            .collect::<Result<Vec<_>>>()?;
        say!("MAML sinusoid w* (1-40-40-1, 1,761 parameters, K = 10), firmware under QEMU with -icount (exact instruction counts)");
        say!("{}", crate::device_bench::table(&rows).trim_end());
        return Ok(());
    }
    if let Some(t) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let threads = rayon::current_num_threads();
    let (isa, per_cycle) = build();
    let ghz = clock_ghz();
    let peak = ghz.map(|g| g * per_cycle * threads as f64);
    say!(
        "build: {isa}; {threads} thread(s); clock {}",
        ghz.map_or("unknown".into(), |g| format!("{g:.2} GHz"))
    );
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
        for algo in [Algo::Maml, Algo::MetaSgd] {
            let cfg = paper_config(algo, a.quality_iterations);
            let run = RunDir::create(dir.path().join(format!("quality-{algo:?}")))?;
            let start = Instant::now();
            let t = train::<SinusoidNet, 10>(&cfg, &run, false, Progress::Bar)?;
            let secs = start.elapsed().as_secs_f64();
            let ecfg = EvalConfig {
                tasks: a.tasks,
                seed: 0,
                test_points: 100,
            };
            let results = vec![
                eval::evaluate::<SinusoidNet, 5>(&t.blob, &ecfg)?,
                eval::evaluate::<SinusoidNet, 10>(&t.blob, &ecfg)?,
            ];
            say!(
                "\n{algo:?}: {} iterations in {secs:.1} s; {} held-out tasks, {} target-test points each",
                cfg.iterations, ecfg.tasks, ecfg.test_points
            );
            say!("{}", eval::table(&results).trim_end());
        }
    }
    Ok(())
}
