//! Fuzzes the `w*` blob decoder (`shared::wstar`) and the device adapter that loads it.
//!
//! On arbitrary bytes: `Blob::parse`, `Blob::parse_for::<SinusoidNet, 1, 1>`, `in_region`
//! then `parse_for` and `parse_on` on its result, `shared::slots::slot_blob` (a slot header,
//! then the blob) and `Adapter::<SinusoidNet, 1, 1, 10>::new`. A blob that
//! loads is exercised: its arrays are read, samples taken from the input bytes are pushed,
//! three unchecked inner steps run, and the adapter predicts. Nothing may panic.
//!
//! The same bytes as a blob with a convolutional body (`FLAG_BODY`): `Blob::parse_on` for a
//! `Dense<f32, 12, 4>` head on a small body (`BODY`), and `device::ImageClassifier::load`,
//! which must agree with it. When the blob loads, the body runs forward on a fixed image with
//! the weights read from the blob in place (`LeBytes`): the features must be `BODY.features()`
//! values, none negative (ReLU), and the classifier's features must be those bit for bit.
//! Whenever `Blob::parse` finds a body, its weights are as many as its shape implies, finite.
//!
//! The CRC stops almost every mutation of a blob at the header check, so each input is also
//! decoded a second time with its header rebuilt (magic, version, signature of the shape its
//! meta declares, and of its body when the body flag is set and the body shape decodes,
//! length and CRC recomputed): that lets the fuzzer reach the meta and body decoders, the
//! size and value checks and the adapter with payloads it invents.
#![no_main]

use device::{AdaptError, Adapter, ImageClassifier, Sample, StepLimit};
use libfuzzer_sys::fuzz_target;
use shared::body::{BodySpec, Views, Weights};
use shared::model::{Dense, Params, SinusoidNet};
use shared::wstar::{self, Blob, BodyShape, Meta, FLAG_BODY, FORMAT_VERSION, HEADER_LEN, MAGIC};

type Net = SinusoidNet;
/// The sinusoid firmware's adapter: 1 input, 1 output, K = 10.
const K: usize = 10;
type A<'w> = Adapter<'w, Net, 1, 1, K>;

/// A small image classifier's body: 7×7×1 → 4×4×2 → 2×2×3 (12 features, 77 weights).
const BODY: BodySpec<3> = BodySpec {
    side: 7,
    channels: [1, 2, 3],
};
const FEATURES: usize = BODY.features();
/// Its classes, and the support images its head adapts on.
const CLASSES: usize = 4;
const SHOTS: usize = 4;
type Head = Dense<f32, FEATURES, CLASSES>;
type Classifier<'w> = ImageClassifier<'w, 3, FEATURES, CLASSES, SHOTS, { BODY.scratch_len() }>;

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
        assert!(blob.body().is_none(), "parse_for accepted a body");
        read_arrays(blob);
    }
    // The classifier's blob: the head on the body.
    let on = Blob::parse_on::<Head, FEATURES, CLASSES, 3>(data, &BODY);
    if let Ok(blob) = &on {
        assert!(
            any.is_ok(),
            "parse_on accepted a blob parse refused: {any:?}"
        );
        assert!(sinusoid.is_err(), "parse_for and parse_on both accepted");
        assert_eq!(blob.meta.params as usize, Head::PARAMS);
        read_arrays(blob);
        run_body(blob, data);
    }
    let mut classifier = Classifier::unloaded(BODY);
    assert_eq!(
        classifier.load(data).is_ok(),
        on.is_ok(),
        "ImageClassifier::load and parse_on disagree"
    );
    if let Ok(blob) = &on {
        let image = image(data);
        let features = classifier
            .features(&image)
            .expect("a loaded classifier runs");
        let direct = body_features(blob, &image);
        assert!(
            features
                .iter()
                .map(|v| v.to_bits())
                .eq(direct.iter().map(|v| v.to_bits())),
            "the classifier's features are not the body's"
        );
        let _ = classifier.classify(&image);
    }
    // A flash region: the blob at its start, cut to its declared length.
    if let Ok(b) = wstar::in_region(data) {
        assert!(b.len() >= HEADER_LEN && b.len() <= data.len());
        assert_eq!(b, &data[..b.len()]);
        let _ = Blob::parse_for::<Net, 1, 1>(b);
        if let Ok(blob) = Blob::parse_on::<Head, FEATURES, CLASSES, 3>(b, &BODY) {
            // The bytes after the blob are the image.
            run_body(&blob, &data[b.len()..]);
        }
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

/// The fixed image the body sees: a gradient, or values from the input bytes (finite ones, so
/// the classifier takes them) when there are enough.
fn image(data: &[u8]) -> [f32; BODY.inputs()] {
    let mut image: [f32; BODY.inputs()] =
        core::array::from_fn(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0);
    let tail = &data[data.len().saturating_sub(4 * BODY.inputs())..];
    if tail.len() == 4 * BODY.inputs() {
        for (v, c) in image.iter_mut().zip(tail.chunks_exact(4)) {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if x.is_finite() {
                *v = x;
            }
        }
    }
    image
}

/// The body's features of `image` with the blob's weights, read in place, over the views the
/// blob asks for (one view: the plain forward pass, bit for bit).
fn body_features(blob: &Blob<'_>, image: &[f32]) -> [f32; FEATURES] {
    let (_, weights) = blob.body().expect("parse_on gave a blob without a body");
    let mut scratch = [0.0f32; BODY.scratch_len()];
    let mut out = [0.0; FEATURES];
    BODY.forward_views(&weights, image, blob.views, &mut scratch, &mut out)
        .expect("the body refused weights parse_on accepted");
    if blob.views == Views::Single {
        let f = BODY
            .forward(&weights, image, &mut scratch)
            .expect("the body refused weights parse_on accepted");
        let same = |(a, b): (&f32, &f32)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        assert!(
            f.iter().zip(&out).all(same),
            "one view is not the forward pass"
        );
    }
    out
}

/// Checks the body of a blob `parse_on` accepted, and runs it forward on a fixed image and
/// on one taken from the input bytes.
fn run_body(blob: &Blob<'_>, data: &[u8]) {
    let (shape, weights) = blob.body().expect("parse_on gave a blob without a body");
    assert!(shape.is(&BODY), "parse_on accepted another body: {shape:?}");
    assert_eq!(*shape, BodyShape::of(&BODY));
    assert_eq!(Weights::<f32>::len(&weights), BODY.params());
    for image in [image(&[]), image(data)] {
        let f = body_features(blob, &image);
        // ReLU: nothing below zero (NaN passes through, as documented).
        assert!(
            f.iter().all(|v| v.is_nan() || *v >= 0.0),
            "negative feature: {f:?}"
        );
    }
}

/// Reads every value the accessors expose for the model the blob describes, and its body.
fn read_arrays(blob: &Blob<'_>) {
    let params = blob.meta.params as usize;
    let mut sum = 0.0f32;
    for k in 0..params {
        sum += blob.theta0(k) + blob.step_alpha(0, k, 0);
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
    if let Some((shape, weights)) = blob.body() {
        assert!(shape.channels.len() >= 2 && shape.channels.iter().all(|&c| c > 0));
        assert!(shape.side > 0);
        assert_eq!(Weights::<f32>::len(&weights), shape.params());
        assert_eq!(weights.0.len(), 4 * shape.params());
        for c in weights.0.chunks_exact(4) {
            let w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            assert!(w.is_finite());
            sum += w;
        }
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
    let _ = blob.step_alpha(Net::LAYERS - 1, Net::PARAMS - 1, usize::from(trained));
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
/// signature of the shape its meta declares (when the meta decodes) and of the body shape
/// after the arrays (when the body flag is set and it decodes), payload length and CRC.
fn repair(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b[..4].copy_from_slice(&MAGIC);
    b[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let flags = u16::from_le_bytes([b[6], b[7]]);
    if let Ok((meta, arrays)) = postcard::take_from_bytes::<Meta>(&b[HEADER_LEN..]) {
        let body = arrays
            .get(meta.arrays_len()..)
            .filter(|_| flags & FLAG_BODY != 0)
            .and_then(|rest| postcard::take_from_bytes::<BodyShape>(rest).ok())
            .map(|(shape, _)| shape);
        let sig = wstar::signature_with_body(meta.shape.iter().copied(), body.as_ref());
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
