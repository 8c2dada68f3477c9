//! The one host client of the link protocol ([`shared::link`]): requests out, one response
//! frame back, over any [`Port`] (the firmware under QEMU, a serial port, or the device
//! runtime in-process). Refusals become one error type, [`Refused`].

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use device::{AdaptReport, StepLimit};
use shared::link::{
    floats, put_floats, LinkError, Memory, Request, Response, Status, MAX_FRAME, PARAMS_PER_FRAME,
    STAGE_PER_FRAME,
};

/// A byte stream to a device: what [`Link`] talks over.
pub trait Port: Read + Write {
    /// What the device is, for errors (`mps2-an386 under QEMU`, `/dev/ttyACM0`).
    fn name(&self) -> String;
    /// Sets how long one read may block before it returns `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
    /// Called when a read timed out: an error if the device is known to be gone (QEMU
    /// exited), with what it left behind.
    fn check_alive(&mut self) -> Result<()> {
        Ok(())
    }
    /// What to add to an error about a device that does not answer (its log, if the port
    /// has one).
    fn diagnose(&mut self) -> String {
        String::new()
    }
    /// A tick count the device reported, as instructions, when the port knows the exact
    /// relation (QEMU's `-icount`); `None` on hardware and in-process.
    fn instructions(&self, _ticks: u64) -> Option<u64> {
        None
    }
}

/// The device refused a request; it goes on serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub LinkError);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the device refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// A link to a device over `P`.
///
/// ```
/// use meta_train::link::{Link, Loopback};
/// use shared::catalogue::Firmware;
/// let erased = [0xFFu8; 64];
/// let mut link = Link::new(Loopback::open(&Firmware::SINUSOID, [&erased, &erased])?);
/// let status = link.status()?;
/// assert_eq!((status.inputs, status.capacity), (1, 10));
/// assert!(status.blob.is_err()); // nothing flashed
/// assert!(link.reset().is_err()); // refused, with the reason
/// # anyhow::Ok(())
/// ```
pub struct Link<P> {
    port: P,
    rx: Vec<u8>,
    transcript: Option<Transcript>,
    /// Most time one request may take before the device counts as hung.
    pub timeout: Duration,
}

impl<P: Port> Link<P> {
    /// A link over `port`, with a time-out of 60 s per request.
    pub fn new(port: P) -> Self {
        Self {
            port,
            rx: Vec::new(),
            transcript: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port, mutably.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// Sends raw bytes (for fault tests: garbage, truncated frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.port
            .write_all(bytes)
            .and_then(|()| self.port.flush())
            .with_context(|| format!("writing to {}", self.port.name()))
    }

    /// Sends `request` and waits for its response, decoded into `buf`.
    pub fn call<'b>(
        &mut self,
        request: &Request<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Response<'b>> {
        let mut frame = [0u8; MAX_FRAME];
        let bytes = postcard::to_slice_cobs(request, &mut frame)
            .context("request too large for a frame")?;
        self.send_raw(bytes)?;
        self.response(buf)
    }

    /// Waits for the next response frame, decoded into `buf`.
    pub fn response<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Response<'b>> {
        self.read_frame(buf)?;
        let response: Response<'b> = postcard::from_bytes_cobs(buf).map_err(|e| {
            anyhow!(
                "{} sent a frame that does not decode: {e} (is it a tinyadapt firmware?)",
                self.port.name()
            )
        })?;
        if let Some(t) = &mut self.transcript {
            t.record(&response);
        }
        Ok(response)
    }

    /// Starts recording what the device answers (see [`Transcript`]), or starts over.
    pub fn record(&mut self) {
        self.transcript = Some(Transcript::default());
    }

    /// What was recorded since [`Link::record`] (or the last take), and starts over.
    pub fn take_transcript(&mut self) -> Transcript {
        self.transcript
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn read_frame(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(end) = self.rx.iter().position(|&b| b == 0) {
                out.clear();
                out.extend(self.rx.drain(..=end));
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.hung(&format!("no response within {:?}", self.timeout)));
            }
            self.port
                .set_read_timeout(left.min(Duration::from_millis(200)))?;
            let mut chunk = [0u8; 1024];
            match self.port.read(&mut chunk) {
                Ok(0) => return Err(self.hung("the link closed")),
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.port.check_alive()?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("reading from {}", self.port.name()))
                }
            }
        }
    }

    fn hung(&mut self, what: &str) -> anyhow::Error {
        let more = self.port.diagnose();
        anyhow!("{}: {what}{more}", self.port.name())
    }

    /// Sends `request` and hands its response to `f`; a refusal is a [`Refused`] error and
    /// any other response than `f` takes is an error naming it.
    fn ask<T>(
        &mut self,
        request: &Request<'_>,
        f: impl FnOnce(Response<'_>) -> Option<T>,
    ) -> Result<T> {
        let mut buf = Vec::new();
        let response = self.call(request, &mut buf)?;
        if let Response::Error(e) = response {
            return Err(Refused(e).into());
        }
        let text = format!("{response:?}");
        f(response).ok_or_else(|| {
            anyhow!(
                "unexpected response from {} to {request:?}: {text}",
                self.port.name()
            )
        })
    }

    /// What the device serves and holds.
    pub fn status(&mut self) -> Result<Status> {
        self.ask(&Request::Status, |r| match r {
            Response::Status(s) => Some(s),
            _ => None,
        })
    }

    /// Checks both `w*` slots again and serves the newest valid one.
    pub fn rescan(&mut self) -> Result<Status> {
        self.ask(&Request::Rescan, |r| match r {
            Response::Status(s) => Some(s),
            _ => None,
        })
    }

    /// Stack use so far.
    pub fn memory(&mut self) -> Result<Memory> {
        self.ask(&Request::Memory, |r| match r {
            Response::Memory(m) => Some(m),
            _ => None,
        })
    }

    /// Drops the samples.
    pub fn clear(&mut self) -> Result<()> {
        self.ask(&Request::ClearSamples, |r| {
            matches!(r, Response::Cleared).then_some(())
        })
    }

    /// Back to `θ0`.
    pub fn reset(&mut self) -> Result<()> {
        self.ask(&Request::Reset, |r| {
            matches!(r, Response::Reset).then_some(())
        })
    }

    /// Adds a sample (inputs `x`, targets `y`, in the user's units); returns the samples held.
    pub fn push(&mut self, x: &[f32], y: &[f32]) -> Result<u16> {
        let (mut xb, mut yb) = (vec![0u8; 4 * x.len()], vec![0u8; 4 * y.len()]);
        let request = Request::Push {
            x: put_floats(x, &mut xb),
            y: put_floats(y, &mut yb),
        };
        self.ask(&request, |r| match r {
            Response::Pushed { samples } => Some(samples),
            _ => None,
        })
    }

    /// Adapts: the trained steps left (`None`) or `n` steps under `limit`; returns the report
    /// and the clock ticks it took.
    pub fn adapt(&mut self, steps: Option<u16>, limit: StepLimit) -> Result<(AdaptReport, u64)> {
        self.ask(&Request::Adapt { steps, limit }, |r| match r {
            Response::Adapted { report, ticks } => Some((report, ticks)),
            _ => None,
        })
    }

    /// The outputs for `x` (a classifier's logits), and the ticks they took.
    pub fn predict(&mut self, x: &[f32]) -> Result<(Vec<f32>, u64)> {
        let mut xb = vec![0u8; 4 * x.len()];
        let request = Request::Predict {
            x: put_floats(x, &mut xb),
        };
        self.ask(&request, |r| match r {
            Response::Prediction { y, ticks } => Some((floats(y).collect(), ticks)),
            _ => None,
        })
    }

    /// The outputs for each input of `xs` (`inputs` values each), back to back: as few round
    /// trips as the frames allow.
    pub fn predict_many(&mut self, xs: &[f32], inputs: usize, outputs: usize) -> Result<Vec<f32>> {
        if inputs == 0 || !xs.len().is_multiple_of(inputs) {
            bail!("{} values are not whole inputs of {inputs}", xs.len());
        }
        let per_frame = usize::from(PARAMS_PER_FRAME);
        let batch = (per_frame / inputs).min(per_frame / outputs.max(1)).max(1);
        let mut ys = Vec::with_capacity(xs.len() / inputs * outputs);
        for chunk in xs.chunks(batch * inputs) {
            let mut xb = vec![0u8; 4 * chunk.len()];
            let request = Request::PredictMany {
                xs: put_floats(chunk, &mut xb),
            };
            let y = self.ask(&request, |r| match r {
                Response::Predictions { ys, .. } => Some(floats(ys).collect::<Vec<_>>()),
                _ => None,
            })?;
            ys.extend(y);
        }
        Ok(ys)
    }

    /// The first `count` live parameters that adapt, in order.
    pub fn params(&mut self, count: usize) -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(count);
        while v.len() < count {
            let n = (count - v.len()).min(usize::from(PARAMS_PER_FRAME));
            let request = Request::ReadParams {
                offset: v.len() as u32,
                count: n as u16,
            };
            let values = self.ask(&request, |r| match r {
                Response::Params { values, .. } => Some(floats(values).collect::<Vec<_>>()),
                _ => None,
            })?;
            if values.is_empty() {
                bail!("{} sent no parameters at {}", self.port.name(), v.len());
            }
            v.extend(values);
        }
        Ok(v)
    }

    /// Stages a whole input (an image), frame by frame.
    pub fn stage(&mut self, values: &[f32]) -> Result<()> {
        for (k, part) in values.chunks(usize::from(STAGE_PER_FRAME)).enumerate() {
            let mut bytes = vec![0u8; 4 * part.len()];
            let request = Request::Stage {
                offset: (k * usize::from(STAGE_PER_FRAME)) as u16,
                values: put_floats(part, &mut bytes),
            };
            self.ask(&request, |r| match r {
                Response::Staged { .. } => Some(()),
                _ => None,
            })?;
        }
        Ok(())
    }

    /// Stages `input` and adds it as a sample of class `label`; returns the samples held and
    /// the ticks the push took.
    pub fn push_input(&mut self, input: &[f32], label: u16) -> Result<(u16, u64)> {
        self.stage(input)?;
        self.ask(&Request::PushStaged { label }, |r| match r {
            Response::PushedStaged { samples, ticks } => Some((samples, ticks)),
            _ => None,
        })
    }

    /// Stages `input` and classifies it: the label, every class's score, the ticks.
    pub fn classify_input(&mut self, input: &[f32]) -> Result<(u16, Vec<f32>, u64)> {
        self.stage(input)?;
        self.ask(&Request::ClassifyStaged, |r| match r {
            Response::Classified {
                label,
                scores,
                ticks,
            } => Some((label, floats(scores).collect(), ticks)),
            _ => None,
        })
    }

    /// A tick count the device reported, as instructions, where the port knows them.
    pub fn instructions(&self, ticks: u64) -> Option<u64> {
        self.port.instructions(ticks)
    }
}

/// The answers of a device that depend on its arithmetic, as bytes: every adaptation report,
/// prediction, score, label, parameter, sample count and refusal, in order, with the clock
/// ticks left out (they are the device's, not its results). Status and memory answers are
/// left out too: they describe the build (RAM, stack), which differs between a host and a
/// board. Two devices that agree bit for bit give equal transcripts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// Responses recorded.
    pub responses: usize,
    /// `f32` values among them.
    pub values: usize,
    bytes: Vec<u8>,
    /// Where each response starts in `bytes`.
    starts: Vec<usize>,
}

impl Transcript {
    fn record(&mut self, r: &Response<'_>) {
        let (kept, values) = match *r {
            Response::Status(_) | Response::Memory(_) => return,
            Response::Adapted { report, .. } => (Response::Adapted { report, ticks: 0 }, 2),
            Response::Prediction { y, .. } => (Response::Prediction { y, ticks: 0 }, y.len() / 4),
            Response::Predictions { ys, .. } => {
                (Response::Predictions { ys, ticks: 0 }, ys.len() / 4)
            }
            Response::PushedStaged { samples, .. } => {
                (Response::PushedStaged { samples, ticks: 0 }, 0)
            }
            Response::Classified { label, scores, .. } => (
                Response::Classified {
                    label,
                    scores,
                    ticks: 0,
                },
                scores.len() / 4,
            ),
            Response::Params { offset, values } => {
                (Response::Params { offset, values }, values.len() / 4)
            }
            ref other => (other.clone(), 0),
        };
        self.starts.push(self.bytes.len());
        // A decoded response always serialises again.
        if let Ok(b) = postcard::to_allocvec(&kept) {
            self.bytes.extend(b);
        }
        self.responses += 1;
        self.values += values;
    }

    /// The index of the first response in which `self` and `other` differ, if any.
    pub fn first_difference(&self, other: &Transcript) -> Option<usize> {
        (0..self.responses.max(other.responses)).find(|&i| self.part(i) != other.part(i))
    }

    /// Response `i`'s bytes.
    fn part(&self, i: usize) -> Option<&[u8]> {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.bytes.len());
        self.starts.get(i).map(|&s| &self.bytes[s..end])
    }
}
