//! The models the CLI can train, by name. Shapes are compile-time constants on the device, so
//! each supported shape is one concrete type here.

pub use shared::model::SinusoidNet;

/// Name of [`SinusoidNet`] in configs and on the command line.
pub const SINUSOID_NET: &str = "mlp-1-40-40-1";

/// Support-set sizes (K) the trainer and evaluator are compiled for.
pub const SUPPORTED_K: [usize; 5] = [1, 2, 5, 10, 20];

/// Calls `$body` with `const $K: usize` bound to the runtime value `$k`, for each value in
/// [`SUPPORTED_K`]; other values give an error naming the supported ones.
#[macro_export]
macro_rules! with_k {
    ($k:expr, $K:ident => $body:expr) => {
        match $k {
            1 => {
                const $K: usize = 1;
                $body
            }
            2 => {
                const $K: usize = 2;
                $body
            }
            5 => {
                const $K: usize = 5;
                $body
            }
            10 => {
                const $K: usize = 10;
                $body
            }
            20 => {
                const $K: usize = 20;
                $body
            }
            other => Err(anyhow::anyhow!(
                "K = {other} is not supported: K must be one of {:?}",
                $crate::model::SUPPORTED_K
            )),
        }
    };
}
