//! What the benchmarks measure with: the paper's sinusoid setup, exact FLOP counts
//! ([`flops`]), the build's nominal peak, the clock, peak memory, the on-device costs
//! ([`device`]), the guard's extra steps ([`guard`]) and few-shot image training's speed
//! ([`fewshot`]). `meta-train bench` prints them.

pub mod device;
pub mod fewshot;
pub mod flops;
pub mod guard;

use crate::algo::Algo;
use crate::model::SINUSOID_NET;
use crate::train::TrainConfig;

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
        loss_bound: None,
    }
}

/// Which instruction set this binary was compiled for, and its nominal f32 peak per cycle per
/// core when multiplies and adds issue on two ports (Rust never fuses them into FMAs).
pub fn build() -> (&'static str, f64) {
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

/// The instruction set the trainer's convolution kernels ([`crate::model::body`]) run with on
/// this machine (they are picked at run time, whatever the build), and its nominal f32 peak
/// per cycle per core without FMA.
pub fn convolution_kernels() -> (&'static str, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return ("AVX-512", 32.0);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return ("AVX2", 16.0);
        }
        ("SSE2", 8.0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    ("portable", 8.0)
}

/// Nominal clock in GHz from /proc/cpuinfo's model name ("@ 2.80GHz") or "cpu MHz".
pub fn clock_ghz() -> Option<f64> {
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
