//! Distinct random indices drawn into a reused buffer: what `rand::seq::index::sample` draws,
//! the same values from the same generator, without allocating a vector on every call.
//!
//! Episodes are drawn tens of thousands of times per training run, each drawing its classes
//! and then each class's images, and the training loop allocates nothing
//! ([`crate::train::images`]). `rand` 0.8 has no sampling into a caller's buffer, so its
//! choice between Floyd's algorithm and a partial Fisher-Yates shuffle, and both algorithms,
//! are followed here call for call; a test checks the results against `rand` over many sizes
//! and seeds, so an episode is the same as with `rand` itself.
//!
//! ```
//! use meta_train::tasks::index_sample::IndexSampler;
//! use rand::SeedableRng;
//! let mut s = IndexSampler::default();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
//! let drawn = s.sample(&mut rng, 20, 6).to_vec();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
//! assert_eq!(drawn, rand::seq::index::sample(&mut rng, 20, 6).into_vec());
//! ```

use rand::Rng;

/// A reusable buffer of drawn indices.
#[derive(Clone, Debug, Default)]
pub struct IndexSampler {
    buf: Vec<usize>,
}

impl IndexSampler {
    /// A sampler that never allocates for lengths up to `length`.
    pub fn with_capacity(length: usize) -> Self {
        Self {
            buf: Vec::with_capacity(length),
        }
    }

    /// `amount` distinct indices in `0..length`, in random order, as
    /// `rand::seq::index::sample(rng, length, amount)` gives them. Allocates only when the
    /// buffer must grow (at most `length` entries). Panics if `amount > length`, as `rand`
    /// does, or if `length` exceeds `u32::MAX` (which `rand` samples with another algorithm).
    pub fn sample<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        length: usize,
        amount: usize,
    ) -> &[usize] {
        assert!(
            amount <= length,
            "`amount` of samples must be less than or equal to `length`"
        );
        let length = u32::try_from(length).expect("at most u32::MAX indices");
        let amount = amount as u32;
        // rand 0.8's choice (rand PR 479), for lengths below 500,000; above 162 samples rand
        // may use a rejection sampler, which drawing an episode never asks for.
        let (n, k) = (length as f32, amount as f32);
        let inplace = if amount < 163 {
            amount > 11 && n < (10.0 + 1.6 * k) * k
        } else {
            assert!(n < 270.0 * k, "rand would use its rejection sampler here");
            true
        };
        self.buf.clear();
        if inplace {
            self.inplace(rng, length, amount);
        } else {
            self.floyd(rng, length, amount);
        }
        &self.buf
    }

    /// Floyd's algorithm, shuffled as it goes below 50 samples and afterwards above.
    fn floyd<R: Rng + ?Sized>(&mut self, rng: &mut R, length: u32, amount: u32) {
        let shuffle_as_it_goes = amount < 50;
        for j in length - amount..length {
            let t = rng.gen_range(0..=j) as usize;
            if shuffle_as_it_goes {
                if let Some(pos) = self.buf.iter().position(|&x| x == t) {
                    self.buf.insert(pos, j as usize);
                    continue;
                }
            } else if self.buf.contains(&t) {
                self.buf.push(j as usize);
                continue;
            }
            self.buf.push(t);
        }
        if !shuffle_as_it_goes {
            for i in (1..amount).rev() {
                self.buf.swap(i as usize, rng.gen_range(0..=i) as usize);
            }
        }
    }

    /// The first `amount` steps of a Fisher-Yates shuffle of `0..length`.
    fn inplace<R: Rng + ?Sized>(&mut self, rng: &mut R, length: u32, amount: u32) {
        self.buf.extend(0..length as usize);
        for i in 0..amount {
            let j = rng.gen_range(i..length);
            self.buf.swap(i as usize, j as usize);
        }
        self.buf.truncate(amount as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_what_rand_draws() {
        let mut s = IndexSampler::default();
        // Both of rand's algorithms and both Floyd variants: the episode sizes (20 of ~100
        // classes, 3 to 20 of 20 images) and around every switch point.
        for length in [1, 5, 11, 12, 20, 21, 60, 100, 118, 250, 659, 840, 900, 3000] {
            for amount in [0, 1, 2, 3, 5, 6, 11, 12, 15, 20, 40, 49, 50, 60, 163, 200] {
                if amount > length || (amount >= 163 && length >= 270 * amount) {
                    continue;
                }
                for seed in 0..4 {
                    let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                    let mut b = a.clone();
                    let ours = s.sample(&mut a, length, amount).to_vec();
                    let theirs = rand::seq::index::sample(&mut b, length, amount).into_vec();
                    assert_eq!(
                        ours, theirs,
                        "length {length}, amount {amount}, seed {seed}"
                    );
                    assert_eq!(
                        a.gen::<u64>(),
                        b.gen::<u64>(),
                        "the generators stay in step"
                    );
                }
            }
        }
    }
}
