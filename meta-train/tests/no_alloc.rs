//! The few-shot training loop allocates nothing once its buffers have grown: a meta-iteration
//! of the README's recipe (20-way within one alphabet, prototype start, distortions,
//! meta-batch 4 on two threads) is counted by a global allocator that sees every thread.
//! Its own test binary, so that no other test allocates while it counts.

use std::alloc::System;

use meta_train::model::head::OMNIGLOT_BODY;
use meta_train::tasks::omniglot::{Character, Image};
use meta_train::train::images::{FewShotCheckpoint, FewShotConfig, Trainer};
use meta_train::train::time_split::TimeSplit;
use shared::wstar::HeadStart;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Two alphabets of different sizes (so that episodes draw from groups of different lengths),
/// 20 drawings of each character.
fn pool() -> Vec<Character> {
    let sizes = [("Small", 24), ("Large", 31)];
    let mut state = 0x2545_F491u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    sizes
        .iter()
        .flat_map(|&(alphabet, n)| (0..n).map(move |c| (alphabet, c)))
        .map(|(alphabet, c)| Character {
            alphabet: alphabet.into(),
            name: format!("c{c}"),
            images: (0..20)
                .map(|d| Image {
                    file: format!("{d}.png"),
                    pixels: (0..OMNIGLOT_BODY.inputs())
                        .map(|_| f32::from(next() > 0.8))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

#[test]
fn a_meta_iteration_allocates_nothing_after_the_first() {
    let mut config = FewShotConfig::omniglot(20, 1);
    config.query = 2;
    config.meta_batch = 4;
    config.start = HeadStart::Prototypes;
    config.within_alphabet = true;
    config.decay_every = 3;
    assert!(config.augment);
    let pool = pool();
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    threads.install(|| {
        let mut trainer = Trainer::<20, 20>::new(FewShotCheckpoint::new(&config), &pool).unwrap();
        let split = TimeSplit::default();
        trainer.step(&split).unwrap();
        let region = Region::new(GLOBAL);
        let mut queries = 0;
        for _ in 0..12 {
            queries += trainer.step(&split).unwrap().queries;
        }
        let change = region.change();
        assert_eq!(queries, 12 * 4 * 20 * 2, "every episode was trained on");
        assert_eq!(
            (change.allocations, change.reallocations),
            (0, 0),
            "12 meta-iterations allocated {} bytes",
            change.bytes_allocated + change.bytes_reallocated.max(0) as usize
        );
        assert_eq!(trainer.checkpoint().iteration, 13);
    });
}
