//! Host side of tinyadapt: meta-train `w*` on source tasks, evaluate it through the device
//! runtime on held-out tasks, talk to devices, and report.
//!
//! The modules are named for the concepts they hold:
//!
//! | module | what it holds |
//! |---|---|
//! | [`tasks`] | source and target task families: sinusoids, CSV files, Omniglot, episodes |
//! | [`model`] | the host's model types: the sinusoid net, the CSV shapes, the classifier head, the body on a batch of images |
//! | [`algo`] | the algorithms' meta-gradients (MAML, FOMAML, Meta-SGD, ANIL, Reptile) |
//! | [`train`] | the outer loops, the optimiser, checkpoints and the run's threads |
//! | [`eval`] | held-out evaluation through the device runtime, on the host and on a device |
//! | [`link`] | talking to a device: the client, loopback, QEMU, serial, firmware, parity |
//! | [`blob_spec`] | a dense `w*` as plain arrays, made with every check and read back |
//! | [`pytorch`] | PyTorch `state_dict`s (safetensors files) to `w*` and back |
//! | [`export`] | flash images of `w*` for a board's slots |
//! | [`report`] | tables, figures, blob inspection and standard output |
//! | [`bench`] | speed, FLOP counts and on-device costs |
//!
//! The `meta-train` command line (`src/main.rs` and `src/commands/`) is built on these.
#![warn(missing_docs)]

pub mod algo;
pub mod bench;
pub mod blob_spec;
pub mod eval;
pub mod export;
pub mod link;
pub mod model;
pub mod pytorch;
pub mod report;
pub mod run_dir;
pub mod tasks;
pub mod train;
