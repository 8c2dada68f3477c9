//! The tinyadapt firmware, for any board: it serves the `device` runtime over the board's UART.
//!
//! At reset it picks the newest valid `w*` of the two slots in the board's flash region
//! (written there separately from the firmware; see `shared::slots`), then answers [`shared::link`] requests forever: push samples, adapt, predict,
//! reset, read parameters and memory use. Every refusal is a typed reply; nothing a host sends
//! stops it. A board package is `main` calling [`run`] with its UART, its
//! [`shared::board::Board`] and the server: [`sinusoid`] (the MAML sinusoid adapter),
//! [`omniglot`] (the 5-way Omniglot image classifier, its body in the `w*` slot) or
//! [`omniglot20`] (the 20-way one).
//!
//! `defmt` logs leave by semihosting (feature `semihosting`, QEMU) or RTT (feature `rtt`, a
//! debug probe). Under semihosting a panic or a fault ends QEMU with exit code 1 so a test sees
//! it; on hardware it resets the MCU.
#![no_std]

pub mod clock;
mod fault;
pub mod stack;
pub mod uart;

#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "semihosting")]
use defmt_semihosting as _;

use device::server::{LinkServer, Platform, Served, Server};
use device::ImageClassifier;
use shared::board::Board;
use shared::body::OMNIGLOT_BODY;
use shared::link::{Memory, FIRMWARE_K, MAX_FRAME};
use shared::model::SinusoidNet;
use static_cell::{ConstStaticCell, StaticCell};

/// The sinusoid firmware's server: the MAML sinusoid net, one input, one output,
/// [`FIRMWARE_K`] samples.
pub type FirmwareServer = Server<'static, SinusoidNet, 1, 1, FIRMWARE_K>;

/// An Omniglot classifier: [`OMNIGLOT_BODY`] (28×28 images, 128 features) under an `N`-way
/// head adapted on up to `K` support images.
pub type OmniglotClassifierOf<const N: usize, const K: usize> = ImageClassifier<
    'static,
    5,
    { OMNIGLOT_BODY.features() },
    N,
    K,
    { OMNIGLOT_BODY.scratch_len() },
>;

/// The server of an [`OmniglotClassifierOf`]: the classifier and a stage for one image.
pub type OmniglotServerOf<const N: usize, const K: usize> =
    LinkServer<'static, OmniglotClassifierOf<N, K>, { OMNIGLOT_BODY.inputs() }>;

/// The Omniglot firmware's classifier: 5-way, up to 25 support images (5-shot).
pub type OmniglotClassifier = OmniglotClassifierOf<5, 25>;

/// The Omniglot firmware's server.
pub type OmniglotServer = OmniglotServerOf<5, 25>;

/// The 20-way Omniglot firmware's classifier: 20-way, up to 20 support images (1-shot).
pub type Omniglot20Classifier = OmniglotClassifierOf<20, 20>;

/// The 20-way Omniglot firmware's server.
pub type Omniglot20Server = OmniglotServerOf<20, 20>;

/// The sinusoid server lives in a `static`, never on the stack.
static SINUSOID: ConstStaticCell<FirmwareServer> = ConstStaticCell::new(FirmwareServer::UNLOADED);

/// The Omniglot servers are built in place at boot, in `.bss`: a constant server is not all
/// zeros (the classifier's body description, the refusal reasons), so a constant would put
/// its 43 KB (5-way) or 60 KB (20-way) in `.data`, in flash too. A firmware links only the
/// one it serves.
static OMNIGLOT: StaticCell<OmniglotServer> = StaticCell::new();

/// The 20-way server (see [`OMNIGLOT`]).
static OMNIGLOT20: StaticCell<Omniglot20Server> = StaticCell::new();

/// The sinusoid server (call once).
pub fn sinusoid() -> &'static mut FirmwareServer {
    SINUSOID.take()
}

/// The 5-way Omniglot server (call once).
pub fn omniglot() -> &'static mut OmniglotServer {
    unloaded_classifier(&OMNIGLOT)
}

/// The 20-way Omniglot server (call once).
pub fn omniglot20() -> &'static mut Omniglot20Server {
    unloaded_classifier(&OMNIGLOT20)
}

/// An Omniglot server with no `w*`, built in place in `cell` (the cell panics if it was
/// taken before: each server is taken once, at boot).
fn unloaded_classifier<const N: usize, const K: usize>(
    cell: &'static StaticCell<OmniglotServerOf<N, K>>,
) -> &'static mut OmniglotServerOf<N, K> {
    cell.init_with(|| LinkServer::unloaded(ImageClassifier::unloaded(OMNIGLOT_BODY)))
}

/// A byte-wide serial port.
pub trait Serial {
    /// Waits for a byte.
    fn read(&mut self) -> u8;
    /// Sends a byte (waits while the transmitter is full).
    fn write(&mut self, byte: u8);
}

struct OnBoard {
    clock: clock::Clock,
}

impl Platform for OnBoard {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        self.clock.measure(f)
    }

    fn memory(&self) -> Memory {
        stack::memory()
    }
}

/// Serves the `w*` in `board`'s region over `uart` with `server`, forever.
pub fn run<T: Served<'static>, const X: usize>(
    mut uart: impl Serial,
    board: &Board,
    server: &'static mut LinkServer<'static, T, X>,
) -> ! {
    let cp = cortex_m::Peripherals::take().expect("peripherals are taken once, here");
    let mut platform = OnBoard {
        clock: clock::Clock::start(cp.SYST),
    };
    // Refused slots are logged here and reported by Status; requests that need a blob get
    // the reason when no slot serves.
    let selection = server.load_slots([slot(board, 0), slot(board, 1)]);
    for (i, why) in selection.refused.iter().enumerate() {
        if let Some(e) = why {
            defmt::warn!("{=str}: w* slot {=usize} refused: {}", board.name, i, e);
        }
    }
    match selection.live {
        Some(i) => defmt::info!(
            "{=str}: serving w* slot {=usize} (generation {=u32}) at {=u32:#010x}, {=u16} inputs, adapter {=u32} B RAM",
            board.name,
            i,
            selection.generation,
            board.slot(i).origin,
            server.status().inputs,
            server.status().adapter_bytes
        ),
        None => defmt::warn!("{=str}: no usable w* in either slot", board.name),
    }
    let mut out = [0u8; MAX_FRAME];
    loop {
        let byte = uart.read();
        if let Some(frame) = server.feed(byte, &mut out, &mut platform) {
            for &b in frame {
                uart.write(b);
            }
        }
    }
}

/// `w*` slot `i` of `board`'s flash.
fn slot(board: &Board, i: usize) -> &'static [u8] {
    let r = board.slot(i);
    // SAFETY: the slot is memory-mapped flash of the board, readable for its whole length and
    // not part of any Rust object. It is written only by a flasher (or debugger) from outside,
    // after which the firmware is reset or told to `Rescan`.
    unsafe { core::slice::from_raw_parts(r.origin as usize as *const u8, r.length as usize) }
}
