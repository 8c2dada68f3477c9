//! `meta-train`: meta-train `w*` on the host, evaluate it through the device runtime, inspect
//! blobs, and benchmark. This file parses the command line and makes one call per command;
//! each command lives in `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use commands::{bench, blob, eval, pytorch, train, train_fewshot};

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
    Train(train::TrainArgs),
    /// Meta-train the Omniglot few-shot classifier (convolutional body, ANIL head) from the
    /// small background split and evaluate it on alphabets it never saw.
    TrainFewshot(train_fewshot::FewShotArgs),
    /// Evaluate a w* blob on held-out tasks, adapting with the device runtime.
    Eval(eval::EvalArgs),
    /// Show what a w* blob holds: header, shape, inner loop, α, sizes, device RAM.
    Inspect(blob::InspectArgs),
    /// Write what flashing a w* blob needs for a board: the .bin for its w* region, the same
    /// bytes as Intel HEX at the region's address, and the probe-rs command.
    Export(blob::ExportArgs),
    /// Build the firmware for a w* blob's model (its shape and sample capacity decide the
    /// firmware's types) for a board; print the ELF, its code flash and RAM, and how to flash
    /// it and the w*.
    Firmware(blob::FirmwareArgs),
    /// Make a w* blob from a PyTorch MLP's state_dict saved as safetensors (nn.Sequential of
    /// Linear and ReLU, plain or in learn2learn's MAML or MetaSGD) and the inner loop's
    /// settings.
    Import(pytorch::ImportArgs),
    /// Write a dense w* blob's θ0 (and Meta-SGD's α as lrs.N) as a PyTorch state_dict in a
    /// safetensors file.
    StateDict(pytorch::StateDictArgs),
    /// Measure meta-iterations per second, GFLOP/s and peak memory; with --quality, the
    /// post-adaptation error of MAML and Meta-SGD trained with the paper's setup.
    Bench(bench::BenchArgs),
}

/// A user error (a missing file, a corrupt blob, a device that does not answer) prints its
/// message and its causes, never a backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    let done = match Cli::parse().command {
        Command::Train(a) => train::run(a),
        Command::TrainFewshot(a) => train_fewshot::run(&a),
        Command::Eval(a) => eval::run(a),
        Command::Inspect(a) => blob::inspect(a),
        Command::Export(a) => blob::export(a),
        Command::Firmware(a) => blob::firmware(a),
        Command::Import(a) => pytorch::import(a),
        Command::StateDict(a) => pytorch::state_dict(a),
        Command::Bench(a) => bench::run(&a),
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
