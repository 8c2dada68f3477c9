//! Source and target task families, and the seeded random streams they are drawn from.

pub mod augment;
pub mod csv;
pub mod episode_dir;
pub mod episodes;
pub mod index_sample;
pub mod omniglot;
pub mod sinusoid;
pub mod synthetic;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Which stream a random generator serves. Training and evaluation draw from different
/// streams, so held-out tasks are never training tasks for the same seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Meta-training tasks.
    Train = 1,
    /// Held-out evaluation tasks.
    Eval = 2,
    /// Parameter initialisation.
    Init = 3,
}

/// A generator for item `index` (iteration, task…) of `stream` under `seed`: independent of
/// every other item, so runs are reproducible whatever the thread count, and resumable.
///
/// ```
/// use meta_train::tasks::{rng_for, Stream};
/// use rand::Rng;
/// let a: u64 = rng_for(7, Stream::Train, 3).gen();
/// assert_eq!(a, rng_for(7, Stream::Train, 3).gen::<u64>());
/// assert_ne!(a, rng_for(7, Stream::Eval, 3).gen::<u64>());
/// ```
pub fn rng_for(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng.set_word_pos(u128::from(index) << 20);
    rng
}
