//! Host side of tinyadapt: meta-train `w*` on source tasks, evaluate it through the device
//! runtime on held-out tasks, and inspect blobs.
#![warn(missing_docs)]

pub mod algo;
pub mod bench;
pub mod csv_train;
pub mod device_bench;
pub mod eval;
pub mod export;
pub mod fewshot;
#[cfg(feature = "plot")]
pub mod figures;
pub mod flops;
pub mod inspect;
pub mod link;
pub mod model;
pub mod on_device;
pub mod optim;
pub mod output;
#[cfg(feature = "plot")]
pub mod plot;
pub mod relay;
pub mod run_dir;
pub mod tasks;
pub mod train;
