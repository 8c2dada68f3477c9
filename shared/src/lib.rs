//! `no_std` model math shared by the tinyadapt host trainer and the device runtime: one source
//! of truth for shapes, forward and backward passes, losses, the inner-loop rule and the `w*`
//! blob format.
//!
//! ```
//! use shared::model::{Mlp2, Params};
//! type Sinusoid = Mlp2<f32, 1, 40, 40, 1>;
//! assert_eq!(Sinusoid::PARAMS, 1761);
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod board;
#[cfg(feature = "board-file")]
pub mod board_file;
pub mod body;
pub mod catalogue;
pub mod fixed;
pub mod inner;
pub mod link;
pub mod loss;
pub mod math;
pub mod model;
pub mod report;
pub mod slots;
pub mod wstar;
