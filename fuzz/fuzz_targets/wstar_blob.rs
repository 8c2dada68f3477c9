//! Fuzzes the `w*` blob decoder (`shared::wstar`) and the device adapter that loads it.
//!
//! On arbitrary bytes: `Blob::parse`, `Blob::parse_for::<SinusoidNet, 1, 1>`, `in_region`
//! then `parse_for` on its result, `shared::slots::slot_blob` (a slot header, then the blob)
//! and `Adapter::<SinusoidNet, 1, 1, 10>::new`. A blob that
//! loads is exercised: its arrays are read, samples taken from the input bytes are pushed,
//! three unchecked inner steps run, and the adapter predicts. Nothing may panic.
//!
//! The CRC stops almost every mutation of a blob at the header check, so each input is also
//! decoded a second time with its header rebuilt (magic, version, signature of the shape its
//! meta declares, length and CRC recomputed): that lets the fuzzer reach the meta decoder, the
//! size and value checks and the adapter with payloads it invents.
#![no_main]

use device::{AdaptError, Adapter, Sample, StepLimit};
use libfuzzer_sys::fuzz_target;
use shared::model::{Params, SinusoidNet};
use shared::wstar::{self, Blob, Meta, FORMAT_VERSION, HEADER_LEN, MAGIC};

type Net = SinusoidNet;
/// The sinusoid firmware's adapter: 1 input, 1 output, K = 10.
const K: usize = 10;
type A<'w> = Adapter<'w, Net, 1, 1, K>;

fuzz_target!(|data: &[u8]| {
    decode(data);
    if data.len() >= HEADER_LEN {
        let fixed = repair(data);
        if fixed != data {
            decode(&fixed);
        }
    }
});

fn decode(data: &[u8]) {
    // Whatever model the blob describes.
    let any = Blob::parse(data);
    if let Ok(blob) = &any {
        read_arrays(blob);
    }
    // The sinusoid net's blob: a stricter check of the same bytes.
    let sinusoid = Blob::parse_for::<Net, 1, 1>(data);
    if let Ok(blob) = &sinusoid {
        assert!(
            any.is_ok(),
            "parse_for accepted a blob parse refused: {any:?}"
        );
        assert_eq!(blob.meta.params as usize, Net::PARAMS);
        read_arrays(blob);
    }
    // A flash region: the blob at its start, cut to its declared length.
    if let Ok(b) = wstar::in_region(data) {
        assert!(b.len() >= HEADER_LEN && b.len() <= data.len());
        assert_eq!(b, &data[..b.len()]);
        let _ = Blob::parse_for::<Net, 1, 1>(b);
        if let Ok(a) = A::new(b) {
            // The bytes after the blob are the samples.
            exercise(a, &data[b.len()..]);
        }
    }
    // A flash slot (slot header, then the blob), as the device's A/B slots hold it.
    if let Ok((_, b)) = shared::slots::slot_blob::<Net, 1, 1>(data) {
        assert!(Blob::parse_for::<Net, 1, 1>(b).is_ok());
    }
    // The bytes as the whole blob.
    let adapter = A::new(data);
    assert_eq!(
        adapter.is_ok(),
        sinusoid.is_ok(),
        "Adapter::new and parse_for disagree"
    );
    if let Ok(a) = adapter {
        exercise(a, &data[data.len().saturating_sub(48)..]);
    }
}

/// Reads every value the accessors expose for the model the blob describes.
fn read_arrays(blob: &Blob<'_>) {
    let params = blob.meta.params as usize;
    let mut sum = 0.0f32;
    for k in 0..params {
        sum += blob.theta0(k) + blob.alpha(k);
    }
    for k in 0..blob.alpha_len() {
        assert!(blob.alpha(k).is_finite());
    }
    let (inputs, outputs) = (
        *blob.meta.shape.first().unwrap() as usize,
        *blob.meta.shape.last().unwrap() as usize,
    );
    for i in 0..inputs {
        let (mean, std) = blob.input_norm(i);
        assert!(mean.is_finite() && std.is_finite() && std > 0.0);
    }
    for i in 0..outputs {
        let (mean, std) = blob.output_norm(i);
        assert!(mean.is_finite() && std.is_finite() && std > 0.0);
    }
    std::hint::black_box(sum);
}

/// Samples `(x, y)` from `bytes`, 8 bytes each (f32 LE); a couple of fixed ones when there are
/// too few bytes.
fn samples(bytes: &[u8]) -> impl Iterator<Item = Sample<1, 1>> + '_ {
    let f = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    let fixed = [(-1.5f32, 0.5f32), (0.25, -2.0), (3.0, 1.0)];
    let from_bytes = bytes.chunks_exact(8).map(move |c| (f(&c[..4]), f(&c[4..])));
    let fallback = (bytes.len() < 16).then_some(fixed).into_iter().flatten();
    from_bytes
        .chain(fallback)
        .take(K + 2)
        .map(|(x, y)| Sample { x: [x], y: [y] })
}

fn bits(s: &Sample<1, 1>) -> (u32, u32) {
    (s.x[0].to_bits(), s.y[0].to_bits())
}

fn exercise(mut a: A<'_>, bytes: &[u8]) {
    let blob = a.blob().expect("a loaded adapter holds its blob");
    read_arrays(blob);
    let trained = blob.meta.steps;
    let _ = blob.theta0(Net::PARAMS - 1);
    let _ = blob.alpha(Net::PARAMS - 1);
    let _ = blob.input_norm(0);
    let _ = blob.output_norm(0);
    assert!(a.is_empty());
    assert_eq!(
        a.adapt_steps(3, StepLimit::Unchecked),
        Err(AdaptError::NoSamples)
    );
    let probe = bytes
        .get(..4)
        .map_or(0.5, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let _ = a.predict(&[probe]);

    for s in samples(bytes) {
        let before = a.len();
        match a.push(s) {
            Ok(()) => assert_eq!(a.len(), before + 1),
            // Handed back unchanged (compared bit for bit: it may hold a NaN).
            Err(e) => {
                assert_eq!(a.len(), before);
                assert_eq!(bits(&e.sample), bits(&s));
            }
        }
    }
    assert!(a.len() <= K);

    let steps_before = a.steps_since_reset();
    match a.adapt_steps(3, StepLimit::Unchecked) {
        Ok(r) => {
            assert!(r.steps <= 3);
            assert_eq!(r.undone.is_some(), r.cause.is_some());
            assert_eq!(a.steps_since_reset(), steps_before + u32::from(r.steps));
        }
        Err(e) => assert_eq!(a.steps_since_reset(), steps_before, "{e:?}"),
    }
    let _ = a.predict(&[probe]);
    let _ = a.predict(&[0.0]);

    // The trained steps left (none, after three), then past them only when asked.
    let _ = a.adapt();
    let r = a.adapt_steps(1, StepLimit::Trained);
    if a.steps_since_reset() >= u32::from(trained) {
        assert!(r.is_err());
    }

    a.reset();
    assert_eq!(a.steps_since_reset(), 0);
    let _ = a.adapt();
    let _ = a.predict(&[probe]);
    a.clear_samples();
    assert!(a.is_empty());
    assert_eq!(
        a.adapt_steps(1, StepLimit::Unchecked),
        Err(AdaptError::NoSamples)
    );
}

/// `data` with its header rebuilt so it passes the header checks: magic, version, the
/// signature of the shape its meta declares (when the meta decodes), payload length and CRC.
fn repair(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b[..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    if let Ok((meta, _)) = postcard::take_from_bytes::<Meta>(&b[HEADER_LEN..]) {
        let sig = wstar::signature_of_shape(meta.shape.iter().copied());
        b[8..12].copy_from_slice(&sig.to_le_bytes());
    }
    let len = (b.len() - HEADER_LEN) as u32;
    b[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&[&b[4..16], &b[HEADER_LEN..]]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// CRC-32/ISO-HDLC, as the blob header uses.
fn crc32(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    !crc
}
