//! The tinyadapt device runtime: `no_std`, no heap, no panics on bad input.
//!
//! Load `w*` from flash bytes, push the K target-train samples the device sees, adapt with the
//! inner loop `w*` was meta-trained for, predict, and reset to `w*` whenever you like.
//!
//! ```
//! use device::{Adapter, Sample, StepLimit};
//! use shared::model::{Mlp1, Params};
//! use shared::wstar::{encode, Meta};
//! type Net = Mlp1<f32, 1, 8, 1>;
//! # let meta = Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 3);
//! # let theta: Vec<f32> = (0..Net::PARAMS).map(|k| ((k * 37 % 11) as f32 - 5.0) / 10.0).collect();
//! # let flash = encode(&meta, &theta, &[0.05], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
//! // `flash` holds a w* blob for a 1-8-1 net trained for 3 inner steps.
//! let mut adapter = Adapter::<Net, 1, 1, 5>::new(&flash).unwrap();
//! for x in [-1.0f32, -0.5, 0.0, 0.5, 1.0] {
//!     adapter.push(Sample { x: [x], y: [2.0 * x] }).unwrap();
//! }
//! let report = adapter.adapt().unwrap();
//! assert!(report.loss_after < report.loss_before);
//! assert_eq!(report.steps, 3);
//! let y = adapter.predict(&[0.25]).unwrap();
//! assert!(y[0].is_finite());
//! // More steps than w* was trained for are refused unless asked for explicitly.
//! assert!(adapter.adapt_steps(1, StepLimit::Trained).is_err());
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adapter;
mod classifier;
mod error;
pub mod server;

pub use adapter::{
    AdaptReport, Adapter, Classified, ExtraSteps, Guard, Sample, StepLimit, BACKTRACKS, GROWTH,
};
pub use classifier::ImageClassifier;
pub use error::{AdaptError, PushError, PushErrorKind};
pub use shared::wstar::BlobError;

// What a firmware author needs besides the runtime, so that `device` is the one crate to add:
// the model types and fixed point, the boards, the `w*` slots and blob, the link protocol and the catalogue.
pub use shared::model::{Mlp1, Mlp2};
pub use shared::{board, body, catalogue, fixed, link, slots, wstar};
