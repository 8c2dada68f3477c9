//! Parity: the same requests to two devices (a firmware and the host simulation of it),
//! their answers compared bit for bit ([`Transcript`]). One function, [`run_both`], for every
//! kind of model: what is run is a [`Workload`].

use anyhow::Result;
use serde::Serialize;

use super::client::{Link, Port, Transcript};

/// Something to run on a device over a link: one episode, one task.
pub trait Workload {
    /// What one run gives (its metric, its costs).
    type Out;
    /// Runs it on the device behind `link`.
    fn run<P: Port>(&mut self, link: &mut Link<P>) -> Result<Self::Out>;
}

/// How two devices compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Parity {
    /// Runs compared.
    pub runs: usize,
    /// Runs whose every answer was bit-identical.
    pub identical: usize,
    /// Responses compared.
    pub responses: usize,
    /// `f32` values among them (predictions, scores, parameters, losses).
    pub values: usize,
    /// The first run that differed, and the index of its first differing response.
    pub first_difference: Option<(usize, usize)>,
}

impl Parity {
    /// Every run identical (and at least one run).
    pub fn holds(&self) -> bool {
        self.runs > 0 && self.identical == self.runs
    }

    /// Counts one run's transcripts.
    pub fn add(&mut self, device: &Transcript, host: &Transcript) {
        match device.first_difference(host) {
            None => self.identical += 1,
            Some(at) => {
                self.first_difference.get_or_insert((self.runs, at));
            }
        }
        self.runs += 1;
        self.responses += device.responses;
        self.values += device.values;
    }

    /// The verdict, one line.
    pub fn verdict(&self) -> String {
        let mut s = format!(
            "parity with the host simulation: {}/{} runs bit-identical ({} responses, {} values compared): {}",
            self.identical,
            self.runs,
            self.responses,
            self.values,
            if self.holds() { "PASS" } else { "FAIL" }
        );
        if let Some((run, at)) = self.first_difference {
            s.push_str(&format!(" (first difference: run {run}, response {at})"));
        }
        s
    }
}

/// Runs `work` on `device` and on `host`, records both, and counts the comparison in
/// `parity`; returns both results (device first).
///
/// ```
/// use meta_train::link::parity::{run_both, Parity, Workload};
/// use meta_train::link::{Link, Loopback, Port};
/// use shared::catalogue::Firmware;
/// struct Status;
/// impl Workload for Status {
///     type Out = u16;
///     fn run<P: Port>(&mut self, link: &mut Link<P>) -> anyhow::Result<u16> {
///         link.reset().ok(); // refused: nothing flashed; the refusal is compared too
///         Ok(link.status()?.capacity)
///     }
/// }
/// let erased = [0xFFu8; 64];
/// let mut a = Link::new(Loopback::open(&Firmware::SINUSOID, [&erased, &erased])?);
/// let mut b = Link::new(Loopback::open(&Firmware::SINUSOID, [&erased, &erased])?);
/// let mut parity = Parity::default();
/// assert_eq!(run_both(&mut Status, &mut a, &mut b, &mut parity)?, (10, 10));
/// assert!(parity.holds() && parity.responses == 1);
/// # anyhow::Ok(())
/// ```
pub fn run_both<W: Workload, A: Port, B: Port>(
    work: &mut W,
    device: &mut Link<A>,
    host: &mut Link<B>,
    parity: &mut Parity,
) -> Result<(W::Out, W::Out)> {
    device.record();
    host.record();
    let on_device = work.run(device)?;
    let on_host = work.run(host)?;
    parity.add(&device.take_transcript(), &host.take_transcript());
    Ok((on_device, on_host))
}
