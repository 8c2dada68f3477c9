//! How a run's threads share out each meta-batch and hand each other its running mean.
//!
//! Every value of the mean meta-gradient must be summed in task order, so that the result does
//! not depend on the thread count. Each thread therefore holds one contiguous range of the
//! meta-batch's tasks, keeps their gradients in its own cache, and adds them to the running
//! mean when its turn comes, in thread order. Only the running mean and the parameters cross
//! between cores; a task's gradient never does.
//!
//! The ranges are claimed task by task, from both ends of the gaps between the threads' home
//! positions, so a faster (or less disturbed) core takes more tasks while every range stays
//! contiguous.
//!
//! ```
//! use meta_train::train::relay::Relay;
//! let relay = Relay::new(2, 5, 0, ());
//! let first: Vec<usize> = relay.claims(0).collect();
//! let second: Vec<usize> = relay.claims(1).collect();
//! // The first thread took everything from the bottom, the second found nothing left.
//! assert_eq!((first, second), (vec![0, 1, 2, 3, 4], vec![]));
//! ```

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crossbeam_utils::Backoff;

/// The turns, the claims and the baton `B` (the running mean and the parameters) of a run on
/// `threads` threads.
pub struct Relay<B> {
    threads: usize,
    /// `iteration · threads + t` while thread `t` adds its tasks of `iteration`; reaching
    /// `iteration · threads` also publishes that iteration's parameters.
    turn: AtomicU64,
    /// Set when the run stops early (an error on the last thread, a panic on any other), so
    /// that no thread waits for ever.
    abort: AtomicBool,
    /// Where each thread starts claiming: `homes[t]`.
    homes: Vec<usize>,
    /// The unclaimed tasks between `homes[s]` and `homes[s + 1]`.
    gaps: Vec<Gap>,
    baton: Mutex<B>,
}

/// The thread that stopped the run did so with an error of its own, or panicked.
#[derive(Debug)]
pub struct Aborted;

impl<B> Relay<B> {
    /// A relay for `threads` threads (at least one) sharing meta-batches of `meta_batch` tasks,
    /// starting at `iteration`, whose parameters are already in `baton`.
    pub fn new(threads: usize, meta_batch: usize, iteration: u64, baton: B) -> Self {
        let threads = threads.max(1);
        let homes: Vec<usize> = if threads == 1 {
            vec![0, meta_batch]
        } else {
            (0..threads)
                .map(|t| meta_batch * t / (threads - 1))
                .collect()
        };
        let gaps = homes.windows(2).map(|h| Gap::new(h[0], h[1])).collect();
        Self {
            threads,
            turn: AtomicU64::new(iteration * threads as u64),
            abort: AtomicBool::new(false),
            homes,
            gaps,
            baton: Mutex::new(baton),
        }
    }

    /// The thread count.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Thread `t`'s tasks of the current meta-batch, claimed one at a time as the iterator
    /// goes, alternately above and below its home position.
    pub fn claims(&self, t: usize) -> Claims<'_> {
        let home = self.homes[t];
        Claims {
            below: t.checked_sub(1).and_then(|s| self.gaps.get(s)),
            above: if self.threads == 1 || t + 1 < self.threads {
                self.gaps.get(t)
            } else {
                None
            },
            range: home..home,
            up_next: true,
        }
    }

    /// Waits until iteration `it`'s parameters are in the baton.
    pub fn wait_for_params(&self, it: u64) -> Result<(), Aborted> {
        self.wait(it * self.threads as u64)
    }

    /// Waits until thread `t` may add its tasks of iteration `it` to the baton.
    pub fn wait_for_turn(&self, it: u64, t: usize) -> Result<(), Aborted> {
        self.wait(it * self.threads as u64 + t as u64)
    }

    /// Thread `t` has added its tasks of iteration `it`: the next thread's turn. The last
    /// thread calls [`Relay::publish`] instead.
    pub fn done(&self, it: u64, t: usize) {
        self.pass(it * self.threads as u64 + t as u64 + 1);
    }

    /// The parameters of iteration `it` are in the baton: opens its meta-batch to claims.
    pub fn publish(&self, it: u64) {
        for (g, h) in self.gaps.iter().zip(self.homes.windows(2)) {
            g.reset(h[0], h[1]);
        }
        self.pass(it * self.threads as u64);
    }

    /// The baton.
    pub fn lock(&self) -> MutexGuard<'_, B> {
        self.baton.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Aborts the run when dropped: `always`, or only if the thread is panicking.
    pub fn guard(&self, always: bool) -> AbortGuard<'_, B> {
        AbortGuard {
            relay: self,
            always,
        }
    }

    /// Waits for `turn` to reach `want`. Turns come within microseconds, so the thread spins,
    /// then yields its core rather than sleeping: waking a sleeping thread costs more than the
    /// wait.
    fn wait(&self, want: u64) -> Result<(), Aborted> {
        let backoff = Backoff::new();
        while self.turn.load(Ordering::Acquire) < want {
            if self.abort.load(Ordering::Acquire) {
                return Err(Aborted);
            }
            backoff.snooze();
        }
        Ok(())
    }

    fn pass(&self, to: u64) {
        self.turn.store(to, Ordering::Release);
    }
}

/// Sets the relay's abort flag when dropped (see [`Relay::guard`]).
pub struct AbortGuard<'a, B> {
    relay: &'a Relay<B>,
    always: bool,
}

impl<B> Drop for AbortGuard<'_, B> {
    fn drop(&mut self) {
        if self.always || std::thread::panicking() {
            self.relay.abort.store(true, Ordering::Release);
        }
    }
}

/// Unclaimed tasks `lo..hi`, packed in one atomic: the thread below takes `lo`, the thread
/// above takes `hi − 1`.
struct Gap(AtomicU64);

impl Gap {
    fn pack(lo: usize, hi: usize) -> u64 {
        (lo as u64) | ((hi as u64) << 32)
    }

    fn new(lo: usize, hi: usize) -> Self {
        Self(AtomicU64::new(Self::pack(lo, hi)))
    }

    fn reset(&self, lo: usize, hi: usize) {
        self.0.store(Self::pack(lo, hi), Ordering::Relaxed);
    }

    /// Claims the lowest task left (`from_top` false) or the highest.
    fn take(&self, from_top: bool) -> Option<usize> {
        let mut v = self.0.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = ((v & 0xffff_ffff) as usize, (v >> 32) as usize);
            if lo >= hi {
                return None;
            }
            let (next, task) = if from_top {
                (Self::pack(lo, hi - 1), hi - 1)
            } else {
                (Self::pack(lo + 1, hi), lo)
            };
            match self
                .0
                .compare_exchange_weak(v, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(task),
                Err(now) => v = now,
            }
        }
    }
}

/// A thread's claims on the current meta-batch (see [`Relay::claims`]).
pub struct Claims<'a> {
    below: Option<&'a Gap>,
    above: Option<&'a Gap>,
    range: Range<usize>,
    up_next: bool,
}

impl Claims<'_> {
    /// The tasks claimed so far: one contiguous range.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
}

impl Iterator for Claims<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        for _ in 0..2 {
            let up = self.up_next;
            self.up_next = !up;
            let (gap, from_top) = if up {
                (self.above, false)
            } else {
                (self.below, true)
            };
            if let Some(j) = gap.and_then(|g| g.take(from_top)) {
                if up {
                    self.range.end = j + 1;
                } else {
                    self.range.start = j;
                }
                return Some(j);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task is claimed exactly once, each thread's claims form one contiguous range,
    /// and the ranges come in thread order, however the claims interleave.
    #[test]
    fn claims_cover_the_batch_in_contiguous_ranges_in_thread_order() {
        for threads in 1..=5 {
            for mb in [1, 2, 3, 7, 25] {
                let relay = Relay::new(threads, mb, 0, ());
                for pattern in 0..8u32 {
                    relay.publish(0);
                    let mut claims: Vec<Claims> = (0..threads).map(|t| relay.claims(t)).collect();
                    let mut got = vec![Vec::new(); threads];
                    let mut live = vec![true; threads];
                    let mut step = pattern;
                    while live.iter().any(|&l| l) {
                        // A fixed but uneven interleaving of the threads.
                        step = step.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let t = (step >> 16) as usize % threads;
                        if !live[t] {
                            continue;
                        }
                        match claims[t].next() {
                            Some(j) => got[t].push(j),
                            None => live[t] = false,
                        }
                    }
                    let mut next = 0;
                    for (t, c) in claims.iter().enumerate() {
                        let r = c.range();
                        let mut mine = got[t].clone();
                        mine.sort_unstable();
                        assert_eq!(
                            mine,
                            r.clone().collect::<Vec<_>>(),
                            "{threads} threads, {mb} tasks"
                        );
                        assert_eq!(
                            r.start, next,
                            "{threads} threads, {mb} tasks: a gap or an overlap"
                        );
                        next = r.end;
                    }
                    assert_eq!(next, mb);
                }
            }
        }
    }

    #[test]
    fn a_waiting_thread_stops_when_the_run_aborts() {
        let relay = Relay::new(2, 4, 0, ());
        assert!(relay.wait_for_params(0).is_ok());
        drop(relay.guard(true));
        assert!(relay.wait_for_turn(0, 1).is_err());
    }
}
