//! The device runtime in-process: a [`LinkServer`] of the `device` crate, fed the link's bytes
//! directly. This is the host simulation of a firmware, for any model the host has compiled:
//! the same server, model type and capacity as the firmware ([`Loopback::open`] takes the
//! firmware's catalogue entry), so the two agree bit for bit.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use device::server::{LinkServer, Served, Untimed};
use device::Adapter;
use shared::body::OMNIGLOT_BODY;
use shared::catalogue::{Arithmetic, Firmware, Model};
use shared::fixed::{Q10H, Q20};
use shared::link::MAX_FRAME;
use shared::math::Real;

use super::client::Port;
use crate::eval::images::OmniglotClassifier;
use crate::model::CsvNet;

/// A server, whatever it serves.
trait Feed {
    fn feed_byte(&mut self, byte: u8, out: &mut [u8; MAX_FRAME]) -> Option<usize>;
}

impl<'w, T: Served<'w>, const X: usize> Feed for LinkServer<'w, T, X> {
    fn feed_byte(&mut self, byte: u8, out: &mut [u8; MAX_FRAME]) -> Option<usize> {
        self.feed(byte, out, &mut Untimed).map(<[u8]>::len)
    }
}

/// The device runtime behind a [`Port`], in this process.
pub struct Loopback<'w> {
    name: String,
    server: Box<dyn Feed + 'w>,
    out: VecDeque<u8>,
}

/// Capacities the host simulates for the dense models: the firmware's `K` must be one.
pub const CAPACITIES: [u16; 6] = [1, 2, 5, 10, 20, 32];

/// Calls `$body` with `const $K: usize` bound to `$k` when it is one of [`CAPACITIES`].
macro_rules! with_capacity {
    ($k:expr, $K:ident => $body:expr) => {
        match $k {
            1 => { const $K: usize = 1; $body }
            2 => { const $K: usize = 2; $body }
            5 => { const $K: usize = 5; $body }
            10 => { const $K: usize = 10; $body }
            20 => { const $K: usize = 20; $body }
            32 => { const $K: usize = 32; $body }
            k => bail!("the host simulates dense firmware with a capacity of {CAPACITIES:?} samples, not {k}"),
        }
    };
}

impl<'w> Loopback<'w> {
    /// The server of `firmware`, serving the newest valid `w*` of `slots` (slot images, see
    /// `shared::slots::slot_image`), as the firmware does at boot.
    pub fn open(firmware: &Firmware, slots: [&'w [u8]; 2]) -> Result<Self> {
        let k = firmware.capacity;
        let server: Box<dyn Feed + 'w> = match firmware.model {
            Model::Mlp2 {
                inputs,
                hidden: [40, 40],
                outputs,
            } => crate::with_csv_shape!(usize::from(inputs), usize::from(outputs), I, O => {
                with_capacity!(k, K => Ok(match firmware.arithmetic {
                    Arithmetic::F32 => adapter::<CsvNet<I, O>, f32, I, O, K>(slots),
                    Arithmetic::Q20 => adapter::<CsvNet<I, O, Q20>, Q20, I, O, K>(slots),
                    Arithmetic::Q10H => adapter::<CsvNet<I, O, Q10H>, Q10H, I, O, K>(slots),
                }))
            })?,
            Model::Omniglot { ways } => {
                let a = firmware.arithmetic;
                match (ways, k) {
                    (5, 5) => classifier_in::<5, 5>(a, slots),
                    (5, 25) => classifier_in::<5, 25>(a, slots),
                    (20, 20) => classifier_in::<20, 20>(a, slots),
                    _ => bail!(
                        "the host has no simulation of the firmware {firmware}: it simulates the \
                         omniglot-5way-k5, omniglot-5way-k25 and omniglot-20way-k20 classifiers"
                    ),
                }
            }
            _ => bail!(
                "the host has no simulation of the firmware {firmware}: it simulates I-40-40-O \
                 networks of the compiled CSV shapes with {CAPACITIES:?} samples, and the \
                 omniglot-5way-k5, omniglot-5way-k25 and omniglot-20way-k20 classifiers"
            ),
        };
        Ok(Self {
            name: format!("the host simulation of {firmware}"),
            server,
            out: VecDeque::new(),
        })
    }
}

fn adapter<'w, M, T: Real + 'w, const I: usize, const O: usize, const K: usize>(
    slots: [&'w [u8]; 2],
) -> Box<dyn Feed + 'w>
where
    M: shared::model::Layers<T, I, O> + 'w,
{
    let mut s = Box::new(LinkServer::<Adapter<'w, M, I, O, K, T>, I>::unloaded(
        Adapter::UNLOADED,
    ));
    s.load_slots(slots);
    s
}

fn classifier_in<'w, const N: usize, const K: usize>(
    arithmetic: Arithmetic,
    slots: [&'w [u8]; 2],
) -> Box<dyn Feed + 'w> {
    match arithmetic {
        Arithmetic::F32 => classifier::<N, K, f32>(slots),
        Arithmetic::Q20 => classifier::<N, K, Q20>(slots),
        Arithmetic::Q10H => classifier::<N, K, Q10H>(slots),
    }
}

fn classifier<'w, const N: usize, const K: usize, T: Real + 'w>(
    slots: [&'w [u8]; 2],
) -> Box<dyn Feed + 'w> {
    let mut s = Box::new(LinkServer::<
        OmniglotClassifier<'w, N, K, T>,
        { OMNIGLOT_BODY.inputs() },
    >::unloaded(OmniglotClassifier::unloaded(OMNIGLOT_BODY)));
    s.load_slots(slots);
    s
}

impl Write for Loopback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut frame = [0u8; MAX_FRAME];
        for &b in buf {
            if let Some(n) = self.server.feed_byte(b, &mut frame) {
                self.out.extend(&frame[..n]);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Loopback<'_> {
    /// The responses so far; with none pending, the link reads as closed (the server answers
    /// each request as its last byte is written, so a missing answer is never late).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.out.len());
        for (b, v) in buf.iter_mut().zip(self.out.drain(..n)) {
            *b = v;
        }
        Ok(n)
    }
}

impl Port for Loopback<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}
