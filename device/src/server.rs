//! Serving the link: bytes from the UART in, one response frame per request out.
//!
//! [`Server`] owns the adapter and answers every [`Request`] with a [`Response`]; nothing a
//! host sends (a garbage or overlong frame, a wrong vector length, a NaN, a full buffer, no
//! blob at all) stops it from answering the next one. It is target-agnostic: the firmware
//! feeds it UART bytes, the host tests feed it byte slices.
//!
//! ```
//! use device::server::{Platform, Server};
//! use shared::link::{Memory, Request, Response, MAX_FRAME};
//! type Net = shared::model::Mlp1<f32, 1, 4, 1>;
//! struct Host;
//! impl Platform for Host {
//!     fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) { (f(), 0) }
//!     fn memory(&self) -> Memory { Memory { stack_peak: 0, stack_size: 0 } }
//! }
//! let erased = [0xFFu8; 256]; // nothing flashed in either slot
//! let mut server = Server::<Net, 1, 1, 4>::new([&erased, &erased]);
//! let mut frame = [0u8; MAX_FRAME];
//! let bytes = postcard::to_slice_cobs(&Request::Status, &mut frame).unwrap();
//! let mut reply = [0u8; MAX_FRAME];
//! let mut answered = 0;
//! for &b in bytes.iter() {
//!     if let Some(out) = server.feed(b, &mut reply, &mut Host) {
//!         let mut copy = out.to_vec();
//!         let r: Response = postcard::from_bytes_cobs(&mut copy).unwrap();
//!         assert!(matches!(r, Response::Status(s) if s.blob.is_err()));
//!         answered += 1;
//!     }
//! }
//! assert_eq!(answered, 1);
//! ```

use postcard::accumulator::{CobsAccumulator, FeedResult};
use shared::link::{
    floats, put_floats, LinkError, Memory, Request, Response, Status, MAX_FRAME, PARAMS_PER_FRAME,
};
use shared::model::Layers;
use shared::slots::{select, slot_blob, Selection};
use shared::wstar::BlobError;

use crate::adapter::{Adapter, Sample};

/// What the server needs from the board.
pub trait Platform {
    /// Runs `f` and returns its result with the core clock ticks it took (under QEMU's
    /// `-icount`, a deterministic count that converts to instructions; see
    /// `shared::board::Board::qemu_icount_shift`). A board without a clock returns 0 ticks.
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64);
    /// Stack use so far.
    fn memory(&self) -> Memory;
}

/// The adapter behind the link, or why there is none.
pub struct Server<'w, M, const I: usize, const O: usize, const K: usize>
where
    M: Layers<f32, I, O>,
{
    adapter: Adapter<'w, M, I, O, K>,
    /// The two `w*` slots.
    slots: [&'w [u8]; 2],
    /// Which slot serves, and why the others were refused.
    selection: Selection,
    rx: CobsAccumulator<MAX_FRAME>,
    /// Bytes of the current frame seen so far (0: at a frame boundary).
    pending: usize,
    /// Dropping the rest of an overlong frame.
    skipping: bool,
}

impl<'w, M, const I: usize, const O: usize, const K: usize> Server<'w, M, I, O, K>
where
    M: Layers<f32, I, O>,
{
    /// A server with no `w*` loaded, as a constant: a firmware keeps it in a `static` and
    /// calls [`Server::load`], so the adapter is never built on the stack.
    pub const UNLOADED: Self = Self {
        adapter: Adapter::UNLOADED,
        slots: [&[], &[]],
        // Its bytes are zero like the rest, so a `static` holding this constant goes to `.bss`
        // and costs no flash.
        selection: Selection {
            live: None,
            generation: 0,
            refused: [None, None],
        },
        rx: CobsAccumulator::new(),
        pending: 0,
        skipping: false,
    };

    /// Serves the newest valid `w*` of the two `slots` (see [`shared::slots`]).
    pub fn new(slots: [&'w [u8]; 2]) -> Self {
        let mut s = Self::UNLOADED;
        s.load_slots(slots);
        s
    }

    /// Checks both slots and loads the newest valid blob, in place; the samples are dropped.
    /// Returns which slot serves and why the others were refused.
    pub fn load_slots(&mut self, slots: [&'w [u8]; 2]) -> Selection {
        self.slots = slots;
        self.selection = load(&mut self.adapter, slots);
        self.selection
    }

    /// The adapter.
    pub fn adapter(&self) -> &Adapter<'w, M, I, O, K> {
        &self.adapter
    }

    /// What [`Request::Status`] answers.
    pub fn status(&self) -> Status {
        status_of(&self.adapter, &self.selection)
    }

    /// Takes one byte from the link; at the end of a frame, answers into `out` and returns
    /// the response frame to send. Empty frames (a lone delimiter) are ignored.
    pub fn feed<'o>(
        &mut self,
        byte: u8,
        out: &'o mut [u8; MAX_FRAME],
        board: &mut impl Platform,
    ) -> Option<&'o [u8]> {
        if self.skipping {
            if byte == 0 {
                self.skipping = false;
                return Some(encode(&Response::Error(LinkError::TooLong), out));
            }
            return None;
        }
        if byte == 0 && self.pending == 0 {
            return None;
        }
        self.pending += 1;
        let response = match self.rx.feed_ref::<Request<'_>>(&[byte]) {
            FeedResult::Consumed => return None,
            FeedResult::OverFull(_) => {
                self.pending = 0;
                if byte != 0 {
                    self.skipping = true;
                    return None;
                }
                Response::Error(LinkError::TooLong)
            }
            FeedResult::DeserError(_) => {
                self.pending = 0;
                Response::Error(LinkError::Frame)
            }
            FeedResult::Success { data, .. } => {
                self.pending = 0;
                let mut scratch = [0u8; 4 * PARAMS_PER_FRAME as usize];
                if matches!(data, Request::Rescan) {
                    self.selection = load(&mut self.adapter, self.slots);
                }
                let r = answer(
                    &mut self.adapter,
                    &self.selection,
                    data,
                    &mut scratch,
                    board,
                );
                return Some(encode(&r, out));
            }
        };
        Some(encode(&response, out))
    }
}

/// Answers one request. `scratch` holds the floats a response carries.
fn answer<'s, M, const I: usize, const O: usize, const K: usize>(
    a: &mut Adapter<'_, M, I, O, K>,
    selection: &Selection,
    request: Request<'_>,
    scratch: &'s mut [u8],
    board: &mut impl Platform,
) -> Response<'s>
where
    M: Layers<f32, I, O>,
{
    match request {
        Request::Status | Request::Rescan => Response::Status(status_of(a, selection)),
        Request::Memory => Response::Memory(board.memory()),
        _ if a.blob().is_none() => Response::Error(LinkError::NoBlob(why_none(selection))),
        Request::Push { x, y } => {
            let (Some(x), Some(y)) = (array::<I>(x), array::<O>(y)) else {
                return Response::Error(length_error(x.len(), y.len(), I, O));
            };
            match a.push(Sample { x, y }) {
                Ok(()) => Response::Pushed {
                    samples: a.len() as u16,
                },
                Err(e) => Response::Error(LinkError::Push(e.kind)),
            }
        }
        Request::ClearSamples => {
            a.clear_samples();
            Response::Cleared
        }
        Request::Reset => {
            a.reset();
            Response::Reset
        }
        Request::Adapt { steps, limit } => {
            let (r, ticks) = board.measure(|| match steps {
                None => a.adapt(),
                Some(n) => a.adapt_steps(n, limit),
            });
            match r {
                Ok(report) => Response::Adapted { report, ticks },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::Predict { x } => {
            let Some(x) = array::<I>(x) else {
                return Response::Error(LinkError::Length {
                    expected: I as u16,
                    found: (x.len() / 4) as u16,
                });
            };
            let (r, ticks) = board.measure(|| a.predict(&x));
            match r {
                Ok(y) => Response::Prediction {
                    y: put_floats(&y, scratch),
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::PredictMany { xs } => {
            let n = xs.len() / (4 * I).max(1);
            if xs.len() != 4 * I * n || 4 * O * n > scratch.len() {
                return Response::Error(LinkError::Batch {
                    max: (scratch.len() / (4 * O).max(1)) as u16,
                });
            }
            let (r, ticks) = board.measure(|| {
                for (k, xb) in xs.chunks_exact(4 * I).enumerate() {
                    let x = array::<I>(xb).unwrap_or([f32::NAN; I]);
                    let y = a.predict(&x)?;
                    put_floats(&y, &mut scratch[4 * O * k..4 * O * (k + 1)]);
                }
                Ok(())
            });
            match r {
                Ok(()) => Response::Predictions {
                    ys: &scratch[..4 * O * n],
                    ticks,
                },
                Err(e) => Response::Error(LinkError::Adapt(e)),
            }
        }
        Request::ReadParams { offset, count } => {
            let end = offset as usize + count as usize;
            if count > PARAMS_PER_FRAME || end > M::PARAMS {
                return Response::Error(LinkError::Range {
                    params: M::PARAMS as u32,
                });
            }
            let mut k = 0usize;
            let mut n = 0usize;
            a.params().for_each(&mut |_, s| {
                for v in s {
                    if k >= offset as usize && k < end {
                        scratch[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
                        n += 1;
                    }
                    k += 1;
                }
            });
            Response::Params {
                offset,
                values: &scratch[..4 * n],
            }
        }
    }
}

/// Loads the newest valid blob of `slots` into `adapter`, in place.
fn load<'w, M, const I: usize, const O: usize, const K: usize>(
    adapter: &mut Adapter<'w, M, I, O, K>,
    slots: [&'w [u8]; 2],
) -> Selection
where
    M: Layers<f32, I, O>,
{
    let mut selection = select::<M, I, O>(slots);
    let loaded = match selection.live {
        Some(i) => slot_blob::<M, I, O>(slots[i]).and_then(|(_, b)| adapter.load(b)),
        None => Err(BlobError::Erased),
    };
    if let (Err(e), Some(i)) = (loaded, selection.live) {
        // Checked a moment ago; only a change under our feet gets here.
        selection.refused[i] = Some(e);
        selection.live = None;
    }
    if selection.live.is_none() {
        adapter.unload();
    }
    selection
}

/// Why no slot serves: slot A's reason (the primary slot), else B's.
fn why_none(s: &Selection) -> BlobError {
    s.refused[0].or(s.refused[1]).unwrap_or(BlobError::Erased)
}

fn status_of<M, const I: usize, const O: usize, const K: usize>(
    a: &Adapter<'_, M, I, O, K>,
    selection: &Selection,
) -> Status
where
    M: Layers<f32, I, O>,
{
    Status {
        blob: match a.blob() {
            Some(b) => Ok(b.signature),
            None => Err(why_none(selection)),
        },
        slot: selection.live.map(|i| i as u8),
        generation: selection.generation,
        refused: selection.refused,
        inputs: I as u16,
        outputs: O as u16,
        capacity: K as u16,
        samples: a.len() as u16,
        params: M::PARAMS as u32,
        steps_since_reset: a.steps_since_reset(),
        adapter_bytes: Adapter::<M, I, O, K>::RAM_BYTES as u32,
    }
}

/// `bytes` as exactly `N` floats.
fn array<const N: usize>(bytes: &[u8]) -> Option<[f32; N]> {
    if bytes.len() != 4 * N {
        return None;
    }
    let mut a = [0.0; N];
    for (v, f) in a.iter_mut().zip(floats(bytes)) {
        *v = f;
    }
    Some(a)
}

fn length_error(x_bytes: usize, y_bytes: usize, i: usize, o: usize) -> LinkError {
    let (expected, found) = if x_bytes != 4 * i {
        (i, x_bytes / 4)
    } else {
        (o, y_bytes / 4)
    };
    LinkError::Length {
        expected: expected as u16,
        found: found as u16,
    }
}

/// Encodes `r` as a COBS frame in `out`. Every response fits [`MAX_FRAME`] by construction;
/// should one not, the device still answers, with [`LinkError::TooLong`].
fn encode<'o>(r: &Response<'_>, out: &'o mut [u8; MAX_FRAME]) -> &'o [u8] {
    let n = match postcard::to_slice_cobs(r, out) {
        Ok(f) => f.len(),
        Err(_) => postcard::to_slice_cobs(&Response::Error(LinkError::TooLong), out)
            .map_or(0, |f| f.len()),
    };
    &out[..n]
}
