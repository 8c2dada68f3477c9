//! Fuzzes the device's link server (`device::server::Server`): bytes in, response frames out.
//!
//! The server serves the newest valid `w*` of two flash slots (A/B, see `shared::slots`). The
//! first input byte picks what each slot holds: the committed sinusoid `w*` in a slot image
//! padded with erased flash to 64 KiB, erased flash (no blob), that slot image with a bit of
//! the blob flipped (CRC mismatch), or the bare blob without a slot header. Every other byte
//! goes through `Server::feed`. Every response frame must decode on the host as a
//! `shared::link::Response`, and every non-empty frame the host sends must get exactly one
//! response, at its delimiter. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use device::server::{Server, Untimed};
use libfuzzer_sys::fuzz_target;
use shared::catalogue::Firmware;
use shared::link::{Response, MAX_FRAME};

/// Samples the sinusoid firmware holds.
const FIRMWARE_K: usize = Firmware::SINUSOID.capacity as usize;
use shared::model::SinusoidNet;
use shared::slots::slot_image;

/// The committed Meta-SGD sinusoid `w*` (1-40-40-1).
static BLOB: &[u8] = include_bytes!("../../tests/fixtures/metasgd-sinusoid-k10.bin");
/// The size of a `w*` flash slot.
const REGION: usize = 64 * 1024;
/// Erased flash: nothing flashed.
static ERASED: [u8; 4096] = [0xFF; 4096];

/// What a slot holds: `(bytes, whether its blob is valid)`.
fn slot(kind: u8, generation: u32) -> (&'static [u8], bool) {
    static VALID: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    static CORRUPT: OnceLock<Vec<u8>> = OnceLock::new();
    // The blob in a slot image, then erased flash to the end of the slot.
    let padded = |generation| {
        let mut r = slot_image(BLOB, generation);
        r.resize(REGION, 0xFF);
        r
    };
    match kind % 4 {
        0 => {
            let v = VALID.get_or_init(|| [padded(1), padded(2)]);
            (&v[(generation as usize - 1) % 2], true)
        }
        1 => (&ERASED, false),
        2 => {
            let c = CORRUPT.get_or_init(|| {
                let mut r = slot_image(BLOB, 3);
                let mid = r.len() / 2;
                r[mid] ^= 0x10;
                r
            });
            (c, false)
        }
        _ => (BLOB, false),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&select, bytes)) = data.split_first() else {
        return;
    };
    let (a, a_valid) = slot(select, 1);
    let (b, b_valid) = slot(select >> 2, 2);
    let loads = a_valid || b_valid;
    let mut server = Server::<SinusoidNet, 1, 1, FIRMWARE_K>::new([a, b]);
    assert_eq!(server.adapter().blob().is_some(), loads);

    let mut out = [0u8; MAX_FRAME];
    let mut copy = [0u8; MAX_FRAME];
    // Bytes of the host's current frame (0: at a frame boundary).
    let mut in_frame = 0usize;
    for &b in bytes {
        let expect_response = b == 0 && in_frame > 0;
        in_frame = if b == 0 { 0 } else { in_frame + 1 };
        let frame = server.feed(b, &mut out, &mut Untimed);
        assert_eq!(
            frame.is_some(),
            expect_response,
            "one response per non-empty frame, at its delimiter (byte {b:#04x})"
        );
        let Some(frame) = frame else { continue };
        let n = frame.len();
        assert!(n > 1, "empty response frame");
        assert_eq!(frame[n - 1], 0, "response frame without its delimiter");
        assert!(
            !frame[..n - 1].contains(&0),
            "zero byte inside a response frame"
        );
        copy[..n].copy_from_slice(frame);
        let decoded = postcard::from_bytes_cobs::<Response<'_>>(&mut copy[..n]);
        assert!(
            decoded.is_ok(),
            "response frame {:02x?} does not decode: {decoded:?}",
            &out[..n]
        );
    }
    // The status stays consistent with the region whatever was sent.
    let status = server.status();
    assert_eq!(status.blob.is_ok(), loads);
    // The newest valid slot serves (B's generation is the higher).
    let serving = if b_valid {
        Some(1)
    } else if a_valid {
        Some(0)
    } else {
        None
    };
    assert_eq!(status.slot, serving);
    assert!(usize::from(status.samples) <= FIRMWARE_K);
});
