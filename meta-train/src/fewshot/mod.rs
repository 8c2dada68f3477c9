//! Few-shot classification: a convolutional body (`shared::body`) under a dense softmax head,
//! meta-trained on N-way K-shot episodes with ANIL (the inner loop adapts only the head), so
//! that a device keeps the body in flash and adapts the head in RAM.

pub mod augment;
pub mod eval;
pub mod head;
pub mod on_device;
pub mod run;
pub mod train;

use shared::model::Dense;

pub use shared::body::OMNIGLOT_BODY;

/// Features the body gives the head.
pub const FEATURES: usize = OMNIGLOT_BODY.features();

/// The head of an `N`-way classifier.
pub type Head<const N: usize> = Dense<f32, FEATURES, N>;

/// Calls `$body` with `const $N: usize` (ways) and `const $K: usize` (support samples, also
/// the query chunk) bound for the supported episode shapes `(way, shot)`.
#[macro_export]
macro_rules! with_episode_shape {
    ($way:expr, $shot:expr, $N:ident, $K:ident => $body:expr) => {
        match ($way, $shot) {
            (5, 1) => {
                const $N: usize = 5;
                const $K: usize = 5;
                $body
            }
            (5, 5) => {
                const $N: usize = 5;
                const $K: usize = 25;
                $body
            }
            (20, 1) => {
                const $N: usize = 20;
                const $K: usize = 20;
                $body
            }
            (20, 5) => {
                const $N: usize = 20;
                const $K: usize = 100;
                $body
            }
            (40, 1) => {
                const $N: usize = 40;
                const $K: usize = 40;
                $body
            }
            (w, s) => Err(anyhow::anyhow!(
                "{w}-way {s}-shot is not supported: use 5-way 1- or 5-shot, 20-way 1- or \
                 5-shot, or (to train) 40-way 1-shot"
            )),
        }
    };
}
