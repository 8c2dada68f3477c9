//! A `w*` blob that carries a convolutional body (`FLAG_BODY`): what a user of
//! `encode_with_body` / `Blob::parse_on` relies on. The body comes back bit for bit, only the
//! right head on the right body loads it, and every kind of damage gets a typed error (never a
//! panic, never `Ok`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use shared::body::{BodySpec, LeBytes, Views, Weights, SHIFTS};
use shared::loss::Loss;
use shared::model::{Dense, Params};
use shared::wstar::{
    encode, encode_classifier, encode_starting, encode_with_body, in_region, signature,
    signature_of_shape, signature_on, signature_with_body, Algorithm, AlphaKind, Blob, BlobError,
    BodyShape, EncodeError, HeadStart, Meta, FLAG_BODY, FLAG_PROTOTYPES, FLAG_SHIFTED_VIEWS,
    HEADER_LEN,
};

/// A small body: 7×7×1 → 4×4×2 → 2×2×3, 12 features, 77 weights.
const SPEC: BodySpec<3> = BodySpec {
    side: 7,
    channels: [1, 2, 3],
};
const F: usize = SPEC.features();
const N: usize = 4;
type Head = Dense<f32, F, N>;
/// Weights and biases of the body.
const BODY_PARAMS: usize = 77;
/// f32 values of the head: θ0 (52), scalar α (1), x_mean and x_std (12 each), y_mean and
/// y_std (4 each). The body's weights are numbered after them.
const HEAD_VALUES: usize = 52 + 1 + 2 * 12 + 2 * 4;
/// postcard `BodyShape { side: 7, channels: [1, 2, 3] }`: varint side, varint length, varints.
const SHAPE_BYTES: [u8; 5] = [7, 3, 1, 2, 3];

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers.

fn meta() -> Meta {
    let mut meta = Meta::new::<Head, F, N>(Loss::SoftmaxCrossEntropy, 5);
    meta.algorithm = Algorithm::Anil;
    meta.trained_k = 5;
    meta.seed = 7;
    meta
}

fn theta() -> Vec<f32> {
    (0..Head::PARAMS)
        .map(|k| ((k * 29 % 53) as f32 - 26.0) / 40.0)
        .collect()
}

/// Body weights with awkward bit patterns (−0.0, subnormals, extremes) among ordinary ones:
/// all finite, so the blob is valid, and a lossy round trip would show.
fn weights() -> Vec<f32> {
    let mut w: Vec<f32> = (0..BODY_PARAMS)
        .map(|k| ((k * 37 % 101) as f32 - 50.0) / 120.0)
        .collect();
    w[1] = -0.0;
    w[2] = f32::from_bits(1); // smallest subnormal
    w[3] = -f32::from_bits(0x007F_FFFF); // largest negative subnormal
    w[4] = f32::MIN_POSITIVE;
    w[5] = 1.0e-30;
    w[BODY_PARAMS - 2] = f32::MAX;
    w[BODY_PARAMS - 1] = f32::MIN;
    w
}

fn x_norm() -> (Vec<f32>, Vec<f32>) {
    (
        (0..F).map(|i| i as f32 * 0.125).collect(),
        (0..F).map(|i| 1.0 + i as f32 * 0.5).collect(),
    )
}

const Y_MEAN: [f32; N] = [0.0, 0.25, -0.25, 0.5];
const Y_STD: [f32; N] = [1.0, 2.0, 0.5, 4.0];

fn encode_body(meta: &Meta, theta: &[f32], alpha: &[f32], w: &[f32]) -> Vec<u8> {
    let (xm, xs) = x_norm();
    encode_with_body(
        meta,
        theta,
        alpha,
        [&xm, &xs, &Y_MEAN, &Y_STD],
        Some((&BodyShape::of(&SPEC), w)),
    )
    .unwrap()
}

/// The body blob: head `Dense<f32, 12, 4>` on `SPEC`.
fn body_blob() -> Vec<u8> {
    encode_body(&meta(), &theta(), &[0.05], &weights())
}

/// The same head without a body.
fn head_blob() -> Vec<u8> {
    let (xm, xs) = x_norm();
    encode_with_body(
        &meta(),
        &theta(),
        &[0.05],
        [&xm, &xs, &Y_MEAN, &Y_STD],
        None,
    )
    .unwrap()
}

fn sig_on() -> u32 {
    signature_on::<Head, F, N, 3>(&SPEC)
}

fn sig_head() -> u32 {
    signature::<Head, F, N>()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// CRC-32/ISO-HDLC, bit by bit: an oracle independent of the `crc` crate.
fn crc32(chunks: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for chunk in chunks {
        for &b in *chunk {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
    }
    !c
}

/// Rewrites the header's payload length and CRC so a crafted blob passes those checks.
fn reseal(b: &mut [u8]) {
    let len = (b.len() - HEADER_LEN) as u32;
    b[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&[&b[4..16], &b[HEADER_LEN..]]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn set_flags(b: &mut [u8], flags: u16) {
    b[6..8].copy_from_slice(&flags.to_le_bytes());
}

fn set_signature(b: &mut [u8], sig: u32) {
    b[8..12].copy_from_slice(&sig.to_le_bytes());
}

/// Where the body record (postcard shape, then weights) starts in the body blob.
fn body_at(b: &[u8]) -> usize {
    b.len() - 4 * BODY_PARAMS - SHAPE_BYTES.len()
}

/// What the three entry points make of some bytes.
#[derive(Debug, PartialEq)]
struct Parsed {
    /// `Blob::parse_on::<Head, F, N, 3>(_, &SPEC)`.
    on: Result<(), BlobError>,
    /// `Blob::parse` (any model).
    any: Result<(), BlobError>,
    /// `Blob::parse_for::<Head, F, N>` (the head without a body).
    head: Result<(), BlobError>,
}

/// All three entry points, asserting none panics; an accepted blob is exercised.
fn parse_all(b: &[u8]) -> Parsed {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let on = Blob::parse_on::<Head, F, N, 3>(b, &SPEC).map(|blob| {
            let (shape, w) = blob.body().expect("parse_on gave a blob without a body");
            assert!(shape.is(&SPEC));
            assert_eq!(w.len(), SPEC.params());
            run_body(w);
            exercise(&blob);
        });
        let any = Blob::parse(b).map(|blob| exercise(&blob));
        let head = Blob::parse_for::<Head, F, N>(b).map(|blob| {
            assert!(blob.body().is_none(), "parse_for accepted a body blob");
            exercise(&blob);
        });
        if on.is_ok() {
            assert!(any.is_ok(), "parse_on accepted what parse refused: {any:?}");
        }
        Parsed { on, any, head }
    }));
    r.unwrap_or_else(|_| panic!("parsing panicked on {} bytes: {:02x?}", b.len(), b))
}

/// Every accessor over the ranges the meta (and body) declare must work on an accepted blob.
fn exercise(blob: &Blob<'_>) {
    let m = &blob.meta;
    for k in 0..m.params as usize {
        assert!(blob.theta0(k).is_finite());
        assert!(blob.step_alpha(0, k, 0).is_finite());
    }
    for i in 0..m.shape[0] as usize {
        assert!(blob.input_norm(i).1 > 0.0);
    }
    for o in 0..*m.shape.last().unwrap() as usize {
        assert!(blob.output_norm(o).1 > 0.0);
    }
    if let Some((shape, w)) = blob.body() {
        assert_eq!(w.len(), shape.params());
        let mut all = vec![0.0f32; w.len()];
        w.copy_to(0, &mut all);
        assert!(all.iter().all(|v| v.is_finite()));
    }
}

/// The image every forward pass here sees.
fn image() -> Vec<f32> {
    (0..SPEC.inputs())
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
        .collect()
}

/// The body's features of [`image`] with weights read from the blob in place.
fn run_body(w: LeBytes<'_>) -> Vec<f32> {
    let mut scratch = vec![0.0f32; SPEC.scratch_len()];
    SPEC.forward(&w, &image(), &mut scratch).unwrap().to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Round trip.

#[test]
fn body_blob_round_trips_bit_exact() {
    assert_eq!(SPEC.params(), BODY_PARAMS);
    assert_eq!(F, 12);
    assert_eq!(meta().arrays_len(), 4 * HEAD_VALUES);
    let b = body_blob();
    let w = weights();

    // Header: the body flag and a signature over head and body.
    assert_eq!(u16_at(&b, 6), FLAG_BODY);
    assert_eq!(FLAG_BODY, 1);
    let sig = u32_at(&b, 8);
    assert_eq!(sig, sig_on());
    assert_eq!(
        sig,
        signature_with_body([12, 4], Some(&BodyShape::of(&SPEC)))
    );
    assert_ne!(sig, sig_head(), "the body must be part of the signature");
    assert_eq!(signature_with_body([12, 4], None), sig_head());
    assert_eq!(signature_of_shape([12, 4]), sig_head());
    assert_eq!(u32_at(&b, 12) as usize, b.len() - HEADER_LEN);
    assert_eq!(u32_at(&b, 16), crc32(&[&b[4..16], &b[HEADER_LEN..]]));

    // Layout: the head-only blob's payload, then the postcard shape, then the weights LE.
    let head = head_blob();
    assert_eq!(b.len(), head.len() + SHAPE_BYTES.len() + 4 * BODY_PARAMS);
    assert_eq!(&b[HEADER_LEN..head.len()], &head[HEADER_LEN..]);
    let at = body_at(&b);
    assert_eq!(at, head.len());
    assert_eq!(&b[at..at + SHAPE_BYTES.len()], &SHAPE_BYTES);
    let stored: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&b[at + SHAPE_BYTES.len()..], &stored[..]);

    // parse_on: the head and the body, bit for bit.
    let blob = Blob::parse_on::<Head, F, N, 3>(&b, &SPEC).unwrap();
    assert_eq!(blob.meta, meta());
    assert_eq!(blob.signature, sig);
    for (k, &t) in theta().iter().enumerate() {
        assert_eq!(blob.theta0(k).to_bits(), t.to_bits());
    }
    assert_eq!(blob.alpha_len(), 1);
    assert_eq!(blob.step_alpha(0, 51, 0), 0.05);
    let (xm, xs) = x_norm();
    for i in 0..F {
        assert_eq!(blob.input_norm(i), (xm[i], xs[i]));
    }
    for o in 0..N {
        assert_eq!(blob.output_norm(o), (Y_MEAN[o], Y_STD[o]));
    }
    let (shape, lw) = blob.body().unwrap();
    assert_eq!(*shape, BodyShape::of(&SPEC));
    assert!(shape.is(&SPEC));
    assert_eq!((shape.side, &shape.channels[..]), (7, &[1u16, 2, 3][..]));
    assert_eq!(
        (shape.params(), shape.features()),
        (SPEC.params(), SPEC.features())
    );
    assert_eq!(Weights::<f32>::len(&lw), BODY_PARAMS);
    assert_eq!(lw.0, &stored[..], "weights are read in place, unchanged");
    let mut read = vec![0.0f32; BODY_PARAMS];
    lw.copy_to(0, &mut read);
    assert_eq!(bits(&read), bits(&w));
    for (k, want) in w.iter().enumerate() {
        let mut one = [0.0f32];
        lw.copy_to(k, &mut one);
        assert_eq!(one[0].to_bits(), want.to_bits(), "weight {k}");
    }
    // The features from the blob's bytes are the features from the weights themselves.
    let mut scratch = vec![0.0f32; SPEC.scratch_len()];
    let from_slice = SPEC
        .forward(&w[..], &image(), &mut scratch)
        .unwrap()
        .to_vec();
    let from_blob = run_body(lw);
    assert_eq!(from_blob.len(), F);
    assert_eq!(bits(&from_blob), bits(&from_slice));
    let mut head_params = Head::zeros();
    blob.load_theta0(&mut head_params);
    let mut flat = Vec::new();
    head_params.for_each(&mut |_, s| flat.extend_from_slice(s));
    assert_eq!(bits(&flat), bits(&theta()));

    // Blob::parse (any model) accepts it and sees the same body.
    let any = Blob::parse(&b).unwrap();
    assert_eq!(any.meta, meta());
    let (shape, lw) = any.body().unwrap();
    assert_eq!(*shape, BodyShape::of(&SPEC));
    assert_eq!(lw.0, &stored[..]);

    // From a flash region: the blob, then erased flash.
    let mut region = b.clone();
    region.resize(b.len() + 300, 0xFF);
    let cut = in_region(&region).unwrap();
    assert_eq!(cut, &b[..]);
    assert!(Blob::parse_on::<Head, F, N, 3>(cut, &SPEC).is_ok());
}

#[test]
fn a_blob_without_body_keeps_the_first_layout() {
    let head = head_blob();
    let (xm, xs) = x_norm();
    let old = encode(&meta(), &theta(), &[0.05], &xm, &xs, &Y_MEAN, &Y_STD).unwrap();
    assert_eq!(head, old, "encode_with_body(.., None) must be encode");
    assert_eq!(u16_at(&head, 6), 0);
    assert_eq!(u32_at(&head, 8), sig_head());
    let blob = Blob::parse_for::<Head, F, N>(&head).unwrap();
    assert!(blob.body().is_none());
    assert!(Blob::parse(&head).unwrap().body().is_none());
}

#[test]
fn the_deepest_body_round_trips() {
    // MAX_CONVS = 6 convolutions: 7 channel entries, the most a BodyShape holds.
    const DEEP: BodySpec<7> = BodySpec {
        side: 9,
        channels: [2, 1, 2, 1, 2, 1, 3],
    };
    const FD: usize = DEEP.features();
    type DeepHead = Dense<f32, FD, 2>;
    let meta = Meta::new::<DeepHead, FD, 2>(Loss::SoftmaxCrossEntropy, 1);
    let w: Vec<f32> = (0..DEEP.params()).map(|k| k as f32 * 0.01 - 0.3).collect();
    let b = encode_with_body(
        &meta,
        &[0.1; DeepHead::PARAMS],
        &[0.5],
        [&[0.0; FD], &[1.0; FD], &[0.0; 2], &[1.0; 2]],
        Some((&BodyShape::of(&DEEP), &w)),
    )
    .unwrap();
    let blob = Blob::parse_on::<DeepHead, FD, 2, 7>(&b, &DEEP).unwrap();
    let (shape, lw) = blob.body().unwrap();
    assert_eq!(shape.channels.len(), 7);
    assert_eq!(Weights::<f32>::len(&lw), DEEP.params());
    let mut scratch = vec![0.0f32; DEEP.scratch_len()];
    let f = DEEP
        .forward(&lw, &vec![0.5; DEEP.inputs()], &mut scratch)
        .unwrap();
    assert_eq!(f.len(), FD);
}

// ---------------------------------------------------------------------------------------------
// The right head on the right body, or nothing.

#[test]
fn a_head_only_reader_refuses_a_body_blob() {
    let b = body_blob();
    assert_eq!(
        Blob::parse_for::<Head, F, N>(&b).unwrap_err(),
        BlobError::SignatureMismatch {
            expected: sig_head(),
            found: sig_on()
        }
    );
}

#[test]
fn another_body_or_head_is_a_signature_mismatch() {
    let b = body_blob();
    let found = sig_on();
    fn check<const C: usize>(b: &[u8], spec: BodySpec<C>, found: u32) {
        assert_eq!(
            Blob::parse_on::<Head, F, N, C>(b, &spec).unwrap_err(),
            BlobError::SignatureMismatch {
                expected: signature_on::<Head, F, N, C>(&spec),
                found
            },
            "{spec:?}"
        );
    }
    // Other channels (one of them with the same weight count: [1, 2, 3] and [1, 3, 2]
    // differ), another input depth.
    check(
        b.as_slice(),
        BodySpec {
            side: 7,
            channels: [1, 2, 4],
        },
        found,
    );
    check(
        b.as_slice(),
        BodySpec {
            side: 7,
            channels: [1, 3, 3],
        },
        found,
    );
    check(
        b.as_slice(),
        BodySpec {
            side: 7,
            channels: [3, 2, 3],
        },
        found,
    );
    // Another side: 8×8 gives the same 12 features and the same 77 weights, so only the
    // signature can tell.
    let side8 = BodySpec {
        side: 8,
        channels: [1, 2, 3],
    };
    assert_eq!(
        (side8.params(), side8.features()),
        (SPEC.params(), SPEC.features())
    );
    check(b.as_slice(), side8, found);
    check(
        b.as_slice(),
        BodySpec {
            side: 6,
            channels: [1, 2, 3],
        },
        found,
    );
    // One convolution more or fewer.
    check(
        b.as_slice(),
        BodySpec {
            side: 7,
            channels: [1, 2, 3, 3],
        },
        found,
    );
    check(
        b.as_slice(),
        BodySpec {
            side: 7,
            channels: [1, 3],
        },
        found,
    );

    // Another head on the same body.
    assert_eq!(
        Blob::parse_on::<Dense<f32, F, 3>, F, 3, 3>(&b, &SPEC).unwrap_err(),
        BlobError::SignatureMismatch {
            expected: signature_on::<Dense<f32, F, 3>, F, 3, 3>(&SPEC),
            found
        }
    );
}

#[test]
fn a_head_only_blob_is_refused_by_parse_on() {
    let head = head_blob();
    assert_eq!(
        Blob::parse_on::<Head, F, N, 3>(&head, &SPEC).unwrap_err(),
        BlobError::SignatureMismatch {
            expected: sig_on(),
            found: sig_head()
        }
    );
    // Even with the header re-signed for head and body, a blob with no body is refused.
    let mut c = head.clone();
    set_signature(&mut c, sig_on());
    reseal(&mut c);
    let want = BlobError::SignatureMismatch {
        expected: sig_head(),
        found: sig_on(),
    };
    let p = parse_all(&c);
    assert_eq!(p.on, Err(want));
    assert_eq!(p.any, Err(want));
    assert_eq!(p.head, Err(want));
}

// ---------------------------------------------------------------------------------------------
// Damage without a reseal: truncations and bit flips.

#[test]
fn every_truncation_of_a_body_blob_is_refused() {
    let b = body_blob();
    let declared = (b.len() - HEADER_LEN) as u32;
    for len in 0..b.len() {
        let p = parse_all(&b[..len]);
        let want = if len < HEADER_LEN {
            BlobError::TooShort { len }
        } else {
            BlobError::LengthMismatch {
                declared,
                actual: len - HEADER_LEN,
            }
        };
        assert_eq!(p.on, Err(want), "truncated to {len}");
        assert_eq!(p.any, Err(want), "truncated to {len}");
        // The head-only reader stops at the signature once there is one.
        let want_head = if len < HEADER_LEN {
            want
        } else {
            BlobError::SignatureMismatch {
                expected: sig_head(),
                found: sig_on(),
            }
        };
        assert_eq!(p.head, Err(want_head), "truncated to {len}");
    }
}

#[test]
fn every_single_bit_flip_of_a_body_blob_is_refused_with_the_right_error() {
    let b = body_blob();
    let (sig, crc) = (sig_on(), u32_at(&b, 16));
    let declared = u32_at(&b, 12);
    for at in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[at] ^= 1 << bit;
            let p = parse_all(&c);
            let ctx = format!("byte {at} bit {bit}: {p:?}");
            let crc_err = BlobError::CrcMismatch {
                stored: u32_at(&c, 16),
                computed: crc32(&[&c[4..16], &c[HEADER_LEN..]]),
            };
            match at {
                0..=3 => {
                    assert_eq!(p.on, Err(BlobError::BadMagic), "{ctx}");
                    assert_eq!(p.any, p.on, "{ctx}");
                    assert_eq!(p.head, p.on, "{ctx}");
                }
                4..=5 => {
                    let want = BlobError::UnsupportedVersion {
                        found: u16_at(&c, 4),
                    };
                    assert_eq!(p.on, Err(want), "{ctx}");
                    assert_eq!(p.any, p.on, "{ctx}");
                    assert_eq!(p.head, p.on, "{ctx}");
                }
                8..=11 => {
                    let found = u32_at(&c, 8);
                    assert_eq!(
                        p.on,
                        Err(BlobError::SignatureMismatch {
                            expected: sig,
                            found
                        }),
                        "{ctx}"
                    );
                    assert_eq!(
                        p.head,
                        Err(BlobError::SignatureMismatch {
                            expected: sig_head(),
                            found
                        }),
                        "{ctx}"
                    );
                    // Without an expected signature the CRC (which covers it) catches it.
                    assert_eq!(p.any, Err(crc_err), "{ctx}");
                }
                12..=15 => {
                    let want = BlobError::LengthMismatch {
                        declared: u32_at(&c, 12),
                        actual: declared as usize,
                    };
                    assert_eq!(p.on, Err(want), "{ctx}");
                    assert_eq!(p.any, p.on, "{ctx}");
                }
                16..=19 => {
                    let want = BlobError::CrcMismatch {
                        stored: u32_at(&c, 16),
                        computed: crc,
                    };
                    assert_eq!(p.on, Err(want), "{ctx}");
                    assert_eq!(p.any, p.on, "{ctx}");
                }
                // Flags, meta, head arrays, body shape and body weights: the CRC is checked
                // before any of them is read, and CRC-32 catches every single-bit error.
                _ => {
                    assert!(
                        matches!(p.on, Err(BlobError::CrcMismatch { stored, computed })
                            if stored == crc && computed != crc),
                        "{ctx}"
                    );
                    assert_eq!(p.on, Err(crc_err), "{ctx}");
                    assert_eq!(p.any, p.on, "{ctx}");
                }
            }
            if !(0..=5).contains(&at) && !(8..=11).contains(&at) {
                assert_eq!(
                    p.head,
                    Err(BlobError::SignatureMismatch {
                        expected: sig_head(),
                        found: sig
                    }),
                    "{ctx}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damage under a valid CRC (resealed).

#[test]
fn unknown_flag_bits_are_refused() {
    let b = body_blob();
    for bit in 3..16 {
        let flags = FLAG_BODY | 1 << bit;
        let mut c = b.clone();
        set_flags(&mut c, flags);
        // Unsealed, the CRC (which covers the flags) stops it first.
        assert!(matches!(
            Blob::parse_on::<Head, F, N, 3>(&c, &SPEC),
            Err(BlobError::CrcMismatch { .. })
        ));
        reseal(&mut c);
        let want = BlobError::UnknownFlags { flags };
        let p = parse_all(&c);
        assert_eq!(p.on, Err(want), "bit {bit}");
        assert_eq!(p.any, Err(want), "bit {bit}");
    }
    // On a head-only blob too.
    let head = head_blob();
    for flags in [8u16, 0x8000, 0xFFFE] {
        let mut c = head.clone();
        set_flags(&mut c, flags);
        reseal(&mut c);
        let want = BlobError::UnknownFlags { flags };
        let p = parse_all(&c);
        assert_eq!(p.head, Err(want), "{flags:#x}");
        assert_eq!(p.any, Err(want), "{flags:#x}");
    }
    // All bits set, body or not.
    let mut c = b.clone();
    set_flags(&mut c, 0xFFFF);
    reseal(&mut c);
    assert_eq!(
        parse_all(&c).on,
        Err(BlobError::UnknownFlags { flags: 0xFFFF })
    );
}

#[test]
fn clearing_the_body_flag_is_refused() {
    let b = body_blob();
    let arrays = 4 * HEAD_VALUES;
    // The flag cleared, the header still signed for head and body: the meta alone (no body)
    // implies the head-only signature, which the header does not have.
    let mut c = b.clone();
    set_flags(&mut c, 0);
    reseal(&mut c);
    let p = parse_all(&c);
    let want = BlobError::SignatureMismatch {
        expected: sig_head(),
        found: sig_on(),
    };
    assert_eq!(p.on, Err(want));
    assert_eq!(p.any, Err(want));
    assert_eq!(p.head, Err(want));

    // Re-signed as a head-only blob: the body's bytes are then excess array bytes.
    set_signature(&mut c, sig_head());
    reseal(&mut c);
    let p = parse_all(&c);
    let want = BlobError::ArraysLength {
        expected: arrays,
        found: arrays + SHAPE_BYTES.len() + 4 * BODY_PARAMS,
    };
    assert_eq!(p.any, Err(want));
    assert_eq!(p.head, Err(want));
    assert_eq!(
        p.on,
        Err(BlobError::SignatureMismatch {
            expected: sig_on(),
            found: sig_head()
        })
    );
}

#[test]
fn setting_the_body_flag_on_a_head_only_blob_is_bad_body() {
    let head = head_blob();
    // Nothing follows the arrays, so there is no body record to decode.
    let mut c = head.clone();
    set_flags(&mut c, FLAG_BODY);
    reseal(&mut c);
    let p = parse_all(&c);
    assert_eq!(p.any, Err(BlobError::BadBody));
    assert_eq!(p.head, Err(BlobError::BadBody));
    assert_eq!(
        p.on,
        Err(BlobError::SignatureMismatch {
            expected: sig_on(),
            found: sig_head()
        })
    );
    // Signed for head and body as well: still no body.
    set_signature(&mut c, sig_on());
    reseal(&mut c);
    let p = parse_all(&c);
    assert_eq!(p.on, Err(BlobError::BadBody));
    assert_eq!(p.any, Err(BlobError::BadBody));
}

#[test]
fn non_finite_body_weights_are_refused_with_their_index() {
    for (k, v) in [
        (0usize, f32::NAN),
        (1, f32::INFINITY),
        (19, f32::NEG_INFINITY),
        (20, f32::NAN), // first weight of the second convolution
        (BODY_PARAMS - 1, f32::INFINITY),
        (BODY_PARAMS - 1, -f32::NAN),
    ] {
        let mut w = weights();
        w[k] = v;
        let b = encode_body(&meta(), &theta(), &[0.05], &w);
        let want = BlobError::NonFinite {
            index: HEAD_VALUES + k,
        };
        let p = parse_all(&b);
        assert_eq!(p.on, Err(want), "weight {k} = {v}");
        assert_eq!(p.any, Err(want), "weight {k} = {v}");
    }
    // Per-parameter α: 52 step sizes before the norms, so the body starts 51 values later.
    let mut m = meta();
    m.algorithm = Algorithm::MetaSgd;
    m.alpha = AlphaKind::PerParameter;
    let mut w = weights();
    w[7] = f32::NAN;
    let b = encode_body(&m, &theta(), &[0.05; 52], &w);
    let want = BlobError::NonFinite {
        index: 52 + 52 + 2 * F + 2 * N + 7,
    };
    assert_eq!(parse_all(&b).any, Err(want));
    assert!(Blob::parse_on::<Head, F, N, 3>(
        &encode_body(&m, &theta(), &[0.05; 52], &weights()),
        &SPEC
    )
    .is_ok());

    // The first bad value is reported: a head value before any body weight.
    let mut t = theta();
    t[51] = f32::NAN;
    let mut w = weights();
    w[0] = f32::NAN;
    let b = encode_body(&meta(), &t, &[0.05], &w);
    assert_eq!(parse_all(&b).on, Err(BlobError::NonFinite { index: 51 }));

    // The same through a resealed byte edit of the blob: weight 30 made +∞.
    let mut c = body_blob();
    let at = body_at(&c) + SHAPE_BYTES.len() + 4 * 30;
    c[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    reseal(&mut c);
    assert_eq!(
        parse_all(&c).on,
        Err(BlobError::NonFinite {
            index: HEAD_VALUES + 30
        })
    );
}

#[test]
fn body_weights_not_the_size_the_shape_implies_are_bad_body() {
    let b = body_blob();
    let shape_at = body_at(&b);
    let check = |c: &[u8], what: &str| {
        let p = parse_all(c);
        assert_eq!(p.on, Err(BlobError::BadBody), "{what}");
        assert_eq!(p.any, Err(BlobError::BadBody), "{what}");
    };
    // Weights missing or in excess, whole values or odd bytes.
    for cut in [1usize, 3, 4, 8, 4 * BODY_PARAMS - 1, 4 * BODY_PARAMS] {
        let mut c = b[..b.len() - cut].to_vec();
        reseal(&mut c);
        check(&c, &format!("{cut} bytes short"));
    }
    for extra in [1usize, 2, 4, 400] {
        let mut c = b.clone();
        c.extend(std::iter::repeat_n(0u8, extra));
        reseal(&mut c);
        check(&c, &format!("{extra} bytes extra"));
    }
    // The shape edited so it implies another number of weights than are stored.
    for (offset, v, what) in [
        (2usize, 2u8, "input channels 2"),
        (3, 1, "first conv 1 channel"),
        (4, 4, "second conv 4 channels"),
        (1, 2, "only two channel entries"),
    ] {
        let mut c = b.clone();
        c[shape_at + offset] = v;
        reseal(&mut c);
        check(&c, what);
    }
    // A shape record that does not decode: more channel entries than a BodyShape holds, a
    // varint that runs off the end, no record at all.
    let mut c = b.clone();
    c[shape_at + 1] = 8;
    reseal(&mut c);
    check(&c, "8 channel entries");
    let mut c = b[..shape_at + 1].to_vec();
    c.push(0x80);
    reseal(&mut c);
    check(&c, "unterminated varint");
    let mut c = b[..shape_at].to_vec();
    reseal(&mut c);
    check(&c, "no body record");

    // The side does not change the weight count: a shape edited to side 8 passes the size
    // check and is caught by the signature, which covers the side.
    let mut c = b.clone();
    c[shape_at] = 8;
    reseal(&mut c);
    let side8 = BodyShape::of(&BodySpec {
        side: 8,
        channels: [1, 2, 3],
    });
    let want = BlobError::SignatureMismatch {
        expected: signature_with_body([12, 4], Some(&side8)),
        found: sig_on(),
    };
    assert_eq!(parse_all(&c).any, Err(want));
    assert_eq!(parse_all(&c).on, Err(want));

    // With FLAG_BODY the head's arrays are cut out first: too few bytes for them is an
    // arrays error, not a body error.
    let meta_len = b.len() - HEADER_LEN - 4 * HEAD_VALUES - SHAPE_BYTES.len() - 4 * BODY_PARAMS;
    let mut c = b[..HEADER_LEN + meta_len + 10].to_vec();
    reseal(&mut c);
    let want = BlobError::ArraysLength {
        expected: 4 * HEAD_VALUES,
        found: 10,
    };
    assert_eq!(parse_all(&c).any, Err(want));
    assert_eq!(parse_all(&c).on, Err(want));
}

#[test]
fn degenerate_body_shapes_are_bad_body() {
    let (xm, xs) = x_norm();
    let shape = |side: u16, channels: &[u16]| BodyShape {
        side,
        channels: heapless::Vec::from_slice(channels).unwrap(),
    };
    for s in [
        shape(7, &[1, 0, 3]),
        shape(7, &[1, 2, 0]),
        shape(7, &[0, 2, 3]),
        shape(7, &[0]),
        shape(7, &[3]),
        shape(7, &[]),
        shape(0, &[1, 2, 3]),
    ] {
        // The writer refuses those whose features are not the head's 12 inputs; it writes the
        // rest (their weight counts agree), and the reader refuses those.
        let w = vec![0.25f32; s.params()];
        let Ok(b) = encode_with_body(
            &meta(),
            &theta(),
            &[0.05],
            [&xm, &xs, &Y_MEAN, &Y_STD],
            Some((&s, &w)),
        ) else {
            continue;
        };
        assert_eq!(
            u32_at(&b, 8),
            signature_with_body([12, 4], Some(&s)),
            "{s:?}"
        );
        let p = parse_all(&b);
        assert_eq!(p.any, Err(BlobError::BadBody), "{s:?}");
        assert_eq!(
            p.on,
            Err(BlobError::SignatureMismatch {
                expected: sig_on(),
                found: signature_with_body([12, 4], Some(&s))
            }),
            "{s:?}"
        );
    }
    // Under SPEC's own signature (so parse_on reaches the body): a zero channel, one entry.
    let b = body_blob();
    let shape_at = body_at(&b);
    for (offset, v, what) in [
        (3usize, 0u8, "zero channels"),
        (2, 0, "zero input channels"),
    ] {
        let mut c = b.clone();
        c[shape_at + offset] = v;
        reseal(&mut c);
        assert_eq!(parse_all(&c).on, Err(BlobError::BadBody), "{what}");
    }
    // One channel entry (no convolution) and no weights.
    let mut c = b[..shape_at].to_vec();
    c.extend([7, 1, 1]);
    reseal(&mut c);
    assert_eq!(parse_all(&c).on, Err(BlobError::BadBody));
    // Side 0 with the right weight count.
    let mut c = b.clone();
    c[shape_at] = 0;
    reseal(&mut c);
    assert_eq!(parse_all(&c).on, Err(BlobError::BadBody));
}

#[test]
fn encode_refuses_body_weights_of_the_wrong_length() {
    let (xm, xs) = x_norm();
    let shape = BodyShape::of(&SPEC);
    let enc = |theta: &[f32], w: &[f32]| {
        encode_with_body(
            &meta(),
            theta,
            &[0.05],
            [&xm, &xs, &Y_MEAN, &Y_STD],
            Some((&shape, w)),
        )
    };
    let w = weights();
    for found in [0usize, 1, BODY_PARAMS - 1, BODY_PARAMS + 1, 2 * BODY_PARAMS] {
        let mut w = w.clone();
        w.resize(found, 0.5);
        assert_eq!(
            enc(&theta(), &w),
            Err(EncodeError::WrongLength {
                what: "body",
                expected: BODY_PARAMS,
                found
            })
        );
    }
    // The head's arrays are checked first.
    assert_eq!(
        enc(&theta()[..51], &w[..3]),
        Err(EncodeError::WrongLength {
            what: "theta0",
            expected: 52,
            found: 51
        })
    );
    let e = enc(&theta(), &w[..3]).unwrap_err();
    assert!(e.to_string().contains("body"), "{e}");
}

/// A tiny deterministic generator (no `rand` dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn resealed_mutations_of_the_body_never_panic() {
    let b = body_blob();
    let shape_at = body_at(&b);
    // Every byte of the shape record and the first weights, and every flag value's low byte,
    // set to interesting values with length and CRC made valid.
    for at in (6..8).chain(shape_at..shape_at + SHAPE_BYTES.len() + 16) {
        for v in [0x00u8, 0x01, 0x02, 0x07, 0x7F, 0x80, 0xC0, 0xFE, 0xFF] {
            let mut c = b.clone();
            c[at] = v;
            reseal(&mut c);
            let p = parse_all(&c);
            // The body flag with any of the other known flags is still a valid body blob.
            let known_flags = at == 6 && v & !0x07 == 0 && v & 1 == 1;
            if c == b || known_flags {
                assert_eq!(p.on, Ok(()), "byte {at} = {v:#x}");
            } else if at >= shape_at + SHAPE_BYTES.len() {
                // A weight byte: the weight is still finite, or refused as such.
                assert!(
                    matches!(p.on, Ok(()) | Err(BlobError::NonFinite { .. })),
                    "byte {at} = {v:#x}: {p:?}"
                );
            } else {
                assert!(
                    p.on.is_err() && p.head.is_err(),
                    "byte {at} = {v:#x}: {p:?}"
                );
            }
        }
    }
    // Random damage to the body region, resizes and reseals.
    let mut rng = Lcg(0xB0D1);
    for round in 0..3000 {
        let mut c = b.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = shape_at + (rng.next() as usize) % (c.len() - shape_at);
            c[at] = rng.next() as u8;
        }
        match rng.next() % 4 {
            0 => c.truncate(shape_at + (rng.next() as usize) % (c.len() - shape_at + 1)),
            1 => c.extend((0..rng.next() % 40).map(|_| rng.next() as u8)),
            _ => {}
        }
        if round % 5 != 0 {
            reseal(&mut c);
        }
        let p = parse_all(&c);
        assert!(p.head.is_err(), "{p:?}");
    }
}

#[test]
fn a_prototype_start_is_carried_by_its_flag_and_covered_by_the_crc() {
    let (xm, xs) = x_norm();
    let norms: [&[f32]; 4] = [&xm, &xs, &Y_MEAN, &Y_STD];
    let body = Some((&BodyShape::of(&SPEC), &weights()[..]));
    let b = encode_starting(
        &meta(),
        &theta(),
        &[0.05],
        norms,
        body,
        HeadStart::Prototypes,
    )
    .unwrap();
    assert_eq!(u16_at(&b, 6), FLAG_BODY | FLAG_PROTOTYPES);
    assert_eq!(FLAG_PROTOTYPES, 2);
    let p = Blob::parse_on::<Head, F, N, 3>(&b, &SPEC).unwrap();
    assert_eq!(p.start, HeadStart::Prototypes);
    // Everything else is the plain body blob's, byte for byte.
    let plain = body_blob();
    assert_eq!(b[HEADER_LEN..], plain[HEADER_LEN..]);
    assert_eq!(Blob::parse(&plain).unwrap().start, HeadStart::Theta0);
    // The flag cleared without resealing: the CRC refuses it; resealed, it is a plain blob.
    let mut c = b.clone();
    set_flags(&mut c, FLAG_BODY);
    assert!(matches!(
        Blob::parse(&c),
        Err(BlobError::CrcMismatch { .. })
    ));
    reseal(&mut c);
    assert_eq!(c, plain);
    // Head-only blobs carry it too.
    let h = encode_starting(
        &meta(),
        &theta(),
        &[0.05],
        norms,
        None,
        HeadStart::Prototypes,
    )
    .unwrap();
    assert_eq!(u16_at(&h, 6), FLAG_PROTOTYPES);
    let p = Blob::parse_for::<Head, F, N>(&h).unwrap();
    assert_eq!(p.start, HeadStart::Prototypes);
}

#[test]
fn a_prototype_start_needs_a_softmax_classifier() {
    let mut m = meta();
    m.loss = Loss::Mse;
    let (xm, xs) = x_norm();
    let norms: [&[f32]; 4] = [&xm, &xs, &Y_MEAN, &Y_STD];
    assert_eq!(
        encode_starting(&m, &theta(), &[0.05], norms, None, HeadStart::Prototypes),
        Err(EncodeError::Prototypes)
    );
    // A regression blob whose flag was set (and the CRC resealed) is refused, typed.
    let mut c = encode_starting(&m, &theta(), &[0.05], norms, None, HeadStart::Theta0).unwrap();
    set_flags(&mut c, FLAG_PROTOTYPES);
    reseal(&mut c);
    let p = parse_all(&c);
    assert_eq!(p.any, Err(BlobError::BadPrototypes));
    assert_eq!(p.head, Err(BlobError::BadPrototypes));
    assert!(BlobError::BadPrototypes.to_string().contains("softmax"));
}

#[test]
fn new_errors_display_their_numbers() {
    let s = BlobError::UnknownFlags { flags: 0x0102 }.to_string();
    assert!(s.contains("0x0102"), "{s}");
    let s = BlobError::BadBody.to_string();
    assert!(s.contains("body"), "{s}");
}

/// A head whose inputs are not the body's features (5 inputs on a body with 12 features) is
/// refused by the writer, and by every reader when the bytes are built by hand.
#[test]
fn a_head_that_does_not_take_the_body_features_is_refused() {
    type Narrow = Dense<f32, 5, N>;
    let meta = Meta::new::<Narrow, 5, N>(Loss::SoftmaxCrossEntropy, 5);
    let norms: [&[f32]; 4] = [&[0.0; 5], &[1.0; 5], &Y_MEAN, &Y_STD];
    let theta = [0.1; Narrow::PARAMS];
    let written = encode_with_body(
        &meta,
        &theta,
        &[0.05],
        norms,
        Some((&BodyShape::of(&SPEC), &weights())),
    );
    assert!(
        matches!(
            written,
            Err(EncodeError::WrongLength {
                expected: 12,
                found: 5,
                ..
            })
        ),
        "{written:?}"
    );
    // By hand: the narrow head's blob, then SPEC's body record, signed and sealed.
    let mut b = encode(
        &meta,
        &theta,
        &[0.05],
        norms[0],
        norms[1],
        norms[2],
        norms[3],
    )
    .unwrap();
    b.extend_from_slice(&SHAPE_BYTES);
    b.extend(weights().iter().flat_map(|v| v.to_le_bytes()));
    set_flags(&mut b, FLAG_BODY);
    set_signature(
        &mut b,
        signature_with_body([5, N as u32], Some(&BodyShape::of(&SPEC))),
    );
    reseal(&mut b);
    assert_eq!(Blob::parse(&b).unwrap_err(), BlobError::BadBody);
    assert_eq!(
        Blob::parse_on::<Narrow, 5, N, 3>(&b, &SPEC).unwrap_err(),
        BlobError::BadBody
    );
}

// ---------------------------------------------------------------------------------------------
// Shifted views (test-time augmentation).

/// `image` moved by `(dx, dy)` pixels by hand, zeros moved in.
fn shifted(image: &[f32], (dx, dy): (i8, i8)) -> Vec<f32> {
    let side = SPEC.side as isize;
    let mut out = vec![0.0f32; image.len()];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x - isize::from(dx), y - isize::from(dy));
            if (0..side).contains(&sx) && (0..side).contains(&sy) {
                out[(y * side + x) as usize] = image[(sy * side + sx) as usize];
            }
        }
    }
    out
}

#[test]
fn a_shifted_view_is_the_forward_pass_of_the_moved_image() {
    let w = weights();
    let mut scratch = vec![0.0f32; SPEC.scratch_len()];
    for shift in [(0, 0), (1, 0), (0, -1), (2, 3), (-3, 2), (7, 0), (-7, -7)] {
        let by_hand = SPEC
            .forward(&w[..], &shifted(&image(), shift), &mut scratch)
            .unwrap()
            .to_vec();
        let view = SPEC
            .forward_shifted(&w[..], &image(), shift, &mut scratch)
            .unwrap()
            .to_vec();
        assert_eq!(bits(&view), bits(&by_hand), "shift {shift:?}");
    }
}

#[test]
fn shifted_views_are_the_mean_of_the_shifted_passes_in_a_fixed_order() {
    let w = weights();
    let mut scratch = vec![0.0f32; SPEC.scratch_len()];
    let mut sum = [0.0f32; F];
    for &shift in &SHIFTS {
        let f = SPEC
            .forward_shifted(&w[..], &image(), shift, &mut scratch)
            .unwrap();
        sum.iter_mut().zip(f).for_each(|(s, v)| *s += v);
    }
    let mean: Vec<f32> = sum
        .iter()
        .map(|s| s * (1.0 / SHIFTS.len() as f32))
        .collect();
    let mut got = vec![f32::NAN; F];
    SPEC.forward_views(&w[..], &image(), Views::Shifted, &mut scratch, &mut got)
        .unwrap();
    assert_eq!(bits(&got), bits(&mean));
    // One view is the plain forward pass, bit for bit.
    SPEC.forward_views(&w[..], &image(), Views::Single, &mut scratch, &mut got)
        .unwrap();
    let plain = SPEC.forward(&w[..], &image(), &mut scratch).unwrap();
    assert_eq!(bits(&got), bits(plain));
    // A wrong output size is a typed error, not a panic.
    let mut short = vec![0.0f32; F - 1];
    assert!(SPEC
        .forward_views(&w[..], &image(), Views::Shifted, &mut scratch, &mut short)
        .is_err());
}

#[test]
fn shifted_views_are_carried_by_their_flag_and_covered_by_the_crc() {
    let (xm, xs) = x_norm();
    let norms: [&[f32]; 4] = [&xm, &xs, &Y_MEAN, &Y_STD];
    let w = weights();
    let body = (&BodyShape::of(&SPEC), &w[..]);
    let one = encode_classifier(
        &meta(),
        &theta(),
        &[0.05],
        norms,
        body,
        HeadStart::Theta0,
        Views::Single,
    )
    .unwrap();
    assert_eq!(
        one,
        body_blob(),
        "one view is the plain body blob, byte for byte"
    );
    let b = encode_classifier(
        &meta(),
        &theta(),
        &[0.05],
        norms,
        body,
        HeadStart::Prototypes,
        Views::Shifted,
    )
    .unwrap();
    assert_eq!(
        u16_at(&b, 6),
        FLAG_BODY | FLAG_PROTOTYPES | FLAG_SHIFTED_VIEWS
    );
    let blob = Blob::parse_on::<Head, F, N, 3>(&b, &SPEC).unwrap();
    assert_eq!(
        (blob.views, blob.start),
        (Views::Shifted, HeadStart::Prototypes)
    );
    assert_eq!(Blob::parse(&one).unwrap().views, Views::Single);
    // Clearing the flag without resealing is caught by the CRC.
    let mut c = b.clone();
    set_flags(&mut c, FLAG_BODY | FLAG_PROTOTYPES);
    assert!(matches!(
        Blob::parse(&c),
        Err(BlobError::CrcMismatch { .. })
    ));
    // Views of an image need a body: the flag on a head-only blob is refused, typed.
    let mut h = head_blob();
    set_flags(&mut h, FLAG_SHIFTED_VIEWS);
    reseal(&mut h);
    let p = parse_all(&h);
    assert_eq!(p.any, Err(BlobError::BadBody));
    assert_eq!(p.head, Err(BlobError::BadBody));
}
