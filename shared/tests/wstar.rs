//! The `w*` blob: a pinned golden encoding, the documented header, and a typed error (never a
//! panic, never `Ok`) for every kind of damage.

use std::panic::{catch_unwind, AssertUnwindSafe};

use shared::inner::AdaptMask;
use shared::loss::Loss;
use shared::model::{Dense, Layers, Mlp1, Mlp2, Params};
use shared::wstar::{
    encode, signature, signature_of_shape, Algorithm, AlphaKind, Blob, BlobError, EncodeError,
    Meta, FORMAT_VERSION, HEADER_LEN, MAGIC,
};

type Net = Mlp1<f32, 1, 2, 1>;

const THETA: [f32; 7] = [0.5, -1.0, 0.25, 0.0, 2.0, -0.75, 0.125];
const ALPHA: [f32; 7] = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07];

/// The golden blob: `Mlp1<f32, 1, 2, 1>`, Meta-SGD, per-parameter α, every Meta field set.
const GOLDEN_HEX: &str = "\
5441572a\
0100\
0000\
9a5c1577\
60000000\
661d963b\
030102010700020105020a00008040ef9bafcdf8acd19101\
0000003f000080bf0000803e0000000000000040000040bf0000003e\
0ad7233c0ad7a33c8fc2f53c0ad7233dcdcc4c3d8fc2753d295c8f3d\
0000c03f00000040000040c00000003f";

fn golden_meta() -> Meta {
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 5);
    meta.algorithm = Algorithm::MetaSgd;
    meta.alpha = AlphaKind::PerParameter;
    meta.adapt = AdaptMask(0b10);
    meta.trained_k = 10;
    meta.loss_bound = 4.0;
    meta.seed = 0x0123_4567_89AB_CDEF;
    meta
}

fn golden() -> Vec<u8> {
    encode(
        &golden_meta(),
        &THETA,
        &ALPHA,
        &[1.5],
        &[2.0],
        &[-3.0],
        &[0.5],
    )
    .unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
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

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Rewrites the header's payload length and CRC so a crafted payload passes those checks.
fn reseal(b: &mut [u8]) {
    let len = (b.len() - HEADER_LEN) as u32;
    b[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&[&b[4..16], &b[HEADER_LEN..]]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
}

fn parse_net(b: &[u8]) -> Result<Blob<'_>, BlobError> {
    Blob::parse_for::<Net, 1, 1>(b)
}

/// Both entry points, asserting neither panics; returns `(parse_for, parse)`.
fn parse_both(b: &[u8]) -> (Result<(), BlobError>, Result<(), BlobError>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let typed = parse_net(b).map(|blob| exercise(&blob));
        let any = Blob::parse(b).map(|blob| exercise(&blob));
        (typed, any)
    }));
    match r {
        Ok(r) => r,
        Err(_) => panic!("parsing panicked on {} bytes: {:02x?}", b.len(), b),
    }
}

/// Every accessor over the ranges the meta declares must work on an accepted blob.
fn exercise(blob: &Blob<'_>) {
    let m = &blob.meta;
    for k in 0..m.params as usize {
        assert!(blob.theta0(k).is_finite());
        assert!(blob.step_alpha(0, k, 0).is_finite());
    }
    for k in 0..blob.alpha_len() {
        assert!(blob.alpha(k).is_finite());
    }
    let (i, o) = (m.shape[0] as usize, *m.shape.last().unwrap() as usize);
    for i in 0..i {
        assert!(blob.input_norm(i).1 > 0.0);
    }
    for o in 0..o {
        assert!(blob.output_norm(o).1 > 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Golden bytes and the documented layout.

/// Fails unless `b` is the pinned `hex`, printing the bytes to re-pin with.
fn assert_pinned(b: &[u8], hex: &str) {
    assert_eq!(
        b,
        unhex(hex),
        "the w* encoding changed: bump FORMAT_VERSION/SCHEMA deliberately and re-pin. Now: {}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
}

#[test]
fn golden_blob_bytes_are_pinned() {
    assert_pinned(&golden(), GOLDEN_HEX);
}

#[test]
fn golden_header_decodes_as_documented() {
    let b = unhex(GOLDEN_HEX);
    assert_eq!(b.len(), 116);
    assert_eq!(&b[0..4], b"TAW*");
    assert_eq!(MAGIC, *b"TAW*");
    // Written in the oldest version that holds it: no per-step α, so version 1.
    assert_eq!(u16_at(&b, 4), 1);
    assert_eq!(FORMAT_VERSION, 2);
    assert_eq!(u16_at(&b, 6), 0, "flags are reserved, 0");
    let sig = u32_at(&b, 8);
    assert_eq!(sig, signature_of_shape([1, 2, 1]));
    assert_eq!(sig, signature::<Net, 1, 1>());
    assert_eq!(sig, 0x7715_5c9a);
    assert_eq!(u32_at(&b, 12) as usize, b.len() - HEADER_LEN);
    assert_eq!(HEADER_LEN, 20);
    let crc = u32_at(&b, 16);
    assert_eq!(crc, crc32(&[&b[4..16], &b[20..]]));
    assert_eq!(crc, 0x3b96_1d66);

    // Payload: postcard Meta (varints, f32 LE), then the f32 LE arrays in place.
    let p = &b[HEADER_LEN..];
    #[rustfmt::skip]
    let meta_bytes: [u8; 24] = [
        3, 1, 2, 1,       // shape: len 3, widths 1 2 1
        7,                // params
        0,                // loss: Mse
        2,                // algorithm: MetaSgd
        1,                // alpha: PerParameter
        5,                // steps
        2,                // adapt mask 0b10
        10,               // trained_k
        0x00, 0x00, 0x80, 0x40, // loss_bound 4.0f32
        0xef, 0x9b, 0xaf, 0xcd, 0xf8, 0xac, 0xd1, 0x91, 0x01, // seed varint
    ];
    assert_eq!(&p[..24], &meta_bytes);
    let arrays: Vec<f32> = p[24..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut want = THETA.to_vec();
    want.extend(ALPHA);
    want.extend([1.5, 2.0, -3.0, 0.5]);
    assert_eq!(arrays, want);
    assert_eq!(golden_meta().arrays_len(), 72);

    // And it parses back to what was written.
    let blob = parse_net(&b).unwrap();
    assert_eq!(blob.meta, golden_meta());
    assert_eq!(blob.signature, sig);
    assert_eq!(blob.alpha_len(), 7);
    for k in 0..7 {
        assert_eq!(blob.theta0(k), THETA[k]);
        assert_eq!(blob.alpha(k), ALPHA[k]);
        assert_eq!(blob.step_alpha(k / 4, k, 3), ALPHA[k]);
    }
    assert_eq!(blob.input_norm(0), (1.5, 2.0));
    assert_eq!(blob.output_norm(0), (-3.0, 0.5));
    let mut net = Net::zeros();
    blob.load_theta0(&mut net);
    let mut flat = Vec::new();
    net.for_each(&mut |_, s| flat.extend_from_slice(s));
    assert_eq!(flat, THETA);
    assert_eq!(Blob::parse(&b).unwrap().meta, golden_meta());
}

/// The golden LSLR blob: `Mlp1<f32, 1, 2, 1>`, 3 trained steps, one α per layer and step.
const GOLDEN_LSLR_HEX: &str = "\
5441572a\
0200\
0000\
9a5c1577\
58000000\
3e40b509\
030102010700050203ffffffff0f050000807f00\
0000003f000080bf0000803e0000000000000040000040bf0000003e\
0000003f0000803e0000003e000000bf0000803f00000040\
000000000000803f000000000000803f";

const LSLR_ALPHA: [f32; 6] = [0.5, 0.25, 0.125, -0.5, 1.0, 2.0];

fn golden_lslr() -> Vec<u8> {
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 3);
    (meta.algorithm, meta.alpha) = (Algorithm::Lslr, AlphaKind::PerLayerPerStep);
    meta.trained_k = 5;
    encode(&meta, &THETA, &LSLR_ALPHA, &[0.0], &[1.0], &[0.0], &[1.0]).unwrap()
}

#[test]
fn lslr_blob_bytes_are_pinned_as_version_2() {
    let b = golden_lslr();
    assert_pinned(&b, GOLDEN_LSLR_HEX);
    assert_eq!(u16_at(&b, 4), 2, "per-step α needs format version 2");
    // The same signature as any 1-2-1 blob: the schema did not change, only the version.
    assert_eq!(u32_at(&b, 8), signature_of_shape([1, 2, 1]));
    #[rustfmt::skip]
    let meta_bytes: [u8; 16] = [
        3, 1, 2, 1,       // shape: len 3, widths 1 2 1
        7,                // params
        0,                // loss: Mse
        5,                // algorithm: Lslr
        2,                // alpha: PerLayerPerStep
        3,                // steps
        0xff, 0xff, 0xff, 0xff, 0x0f, // adapt mask: all (u32::MAX varint)
        5,                // trained_k
        0x00,             // (loss_bound's first byte follows)
    ];
    let p = &b[HEADER_LEN..];
    assert_eq!(&p[..15], &meta_bytes[..15]);
    let blob = parse_net(&b).unwrap();
    assert_eq!(blob.alpha_len(), 6);
    // Step by step, layer by layer; past the trained steps, the last step's.
    for (layer, k, step, want) in [
        (0, 0, 0, 0.5),
        (1, 5, 0, 0.25),
        (0, 3, 1, 0.125),
        (1, 6, 1, -0.5),
        (0, 1, 2, 1.0),
        (1, 4, 2, 2.0),
        (1, 4, 9, 2.0),
    ] {
        assert_eq!(
            blob.step_alpha(layer, k, step),
            want,
            "layer {layer} step {step}"
        );
    }
}

#[test]
fn a_version_header_that_does_not_hold_its_meta_is_bad_meta() {
    // An LSLR record under a version-1 header (re-sealed with a valid CRC), and a version-1
    // record under a version-2 header: both refused, neither read.
    let reseal = |mut b: Vec<u8>, version: u16| {
        b[4..6].copy_from_slice(&version.to_le_bytes());
        let crc = crc32(&[&b[4..16], &b[HEADER_LEN..]]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    };
    assert_eq!(
        parse_net(&reseal(golden_lslr(), 1)).unwrap_err(),
        BlobError::BadMeta
    );
    assert_eq!(
        parse_net(&reseal(golden(), 2)).unwrap_err(),
        BlobError::BadMeta
    );
    // Per-step α with no trained step has nothing to read.
    let mut meta = Meta::new::<Net, 1, 1>(Loss::Mse, 0);
    (meta.algorithm, meta.alpha) = (Algorithm::Lslr, AlphaKind::PerLayerPerStep);
    let b = encode(&meta, &THETA, &[], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    assert_eq!(parse_net(&b).unwrap_err(), BlobError::BadMeta);
}

#[test]
fn scalar_alpha_applies_to_every_parameter() {
    let meta = Meta::new::<Net, 1, 1>(Loss::SoftmaxCrossEntropy, 3);
    assert_eq!(meta.alpha, AlphaKind::Scalar);
    assert_eq!(meta.alpha_len(), 1);
    assert_eq!(meta.loss_bound, f32::INFINITY);
    let b = encode(&meta, &THETA, &[0.125], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    let blob = parse_net(&b).unwrap();
    assert_eq!(blob.alpha_len(), 1);
    for (layer, k) in [(0, 0), (0, 3), (1, 6)] {
        assert_eq!(blob.step_alpha(layer, k, 2), 0.125);
    }
    assert_eq!(blob.meta.loss, Loss::SoftmaxCrossEntropy);
}

fn blob_for<M: Layers<f32, I, O>, const I: usize, const O: usize>(alpha: AlphaKind) -> Vec<u8> {
    let mut meta = Meta::new::<M, I, O>(Loss::Mse, 2);
    meta.alpha = alpha;
    let theta: Vec<f32> = (0..M::PARAMS).map(|k| (k as f32 * 0.1).sin()).collect();
    let alpha = vec![0.01; meta.alpha_len()];
    let (xm, xs) = (vec![0.5; I], vec![2.0; I]);
    let (ym, ys) = (vec![-0.5; O], vec![3.0; O]);
    encode(&meta, &theta, &alpha, &xm, &xs, &ym, &ys).unwrap()
}

#[test]
fn larger_models_round_trip() {
    type Sinusoid = Mlp2<f32, 1, 40, 40, 1>;
    let b = blob_for::<Sinusoid, 1, 1>(AlphaKind::PerParameter);
    let blob = Blob::parse_for::<Sinusoid, 1, 1>(&b).unwrap();
    assert_eq!(&blob.meta.shape[..], &[1, 40, 40, 1]);
    assert_eq!(blob.meta.params, 1761);
    assert_eq!(blob.alpha_len(), 1761);
    assert_eq!(blob.theta0(1760), (1760.0f32 * 0.1).sin());
    let mut net = Sinusoid::zeros();
    blob.load_theta0(&mut net);
    assert_eq!(net.rest.rest.b[0], (1760.0f32 * 0.1).sin());

    type Classifier = Mlp1<f32, 3, 8, 4>;
    let b = blob_for::<Classifier, 3, 4>(AlphaKind::Scalar);
    let blob = Blob::parse_for::<Classifier, 3, 4>(&b).unwrap();
    assert_eq!(&blob.meta.shape[..], &[3, 8, 4]);
    assert_eq!(blob.input_norm(2), (0.5, 2.0));
    assert_eq!(blob.output_norm(3), (-0.5, 3.0));
}

// ---------------------------------------------------------------------------------------------
// Damage: every kind gets its typed error.

#[test]
fn every_truncation_is_too_short_or_a_length_mismatch() {
    let b = golden();
    assert_eq!(parse_net(&[]).unwrap_err(), BlobError::TooShort { len: 0 });
    assert_eq!(
        Blob::parse(&[]).unwrap_err(),
        BlobError::TooShort { len: 0 }
    );
    for len in 0..b.len() {
        let want = if len < HEADER_LEN {
            BlobError::TooShort { len }
        } else {
            BlobError::LengthMismatch {
                declared: 96,
                actual: len - HEADER_LEN,
            }
        };
        let (typed, any) = parse_both(&b[..len]);
        assert_eq!(typed, Err(want), "truncated to {len}");
        assert_eq!(any, Err(want), "truncated to {len}");
    }
}

#[test]
fn trailing_bytes_are_a_length_mismatch() {
    let b = golden();
    for extra in [1usize, 3, 4, 100, 4096 - 116] {
        for fill in [0x00u8, 0xFF] {
            let mut long = b.clone();
            long.resize(b.len() + extra, fill);
            let want = BlobError::LengthMismatch {
                declared: 96,
                actual: 96 + extra,
            };
            assert_eq!(
                parse_both(&long),
                (Err(want), Err(want)),
                "+{extra} × {fill:#x}"
            );
        }
    }
}

#[test]
fn erased_flash_is_reported_as_erased() {
    for len in [1usize, 2, 19, 20, 21, 64, 116, 1000, 4096] {
        let b = vec![0xFFu8; len];
        let (typed, any) = parse_both(&b);
        assert_eq!(typed, Err(BlobError::Erased), "{len} bytes of 0xFF");
        assert_eq!(any, Err(BlobError::Erased), "{len} bytes of 0xFF");
    }
    // Erased header over leftover data is still "nothing flashed".
    let mut b = golden();
    b[..HEADER_LEN].fill(0xFF);
    assert_eq!(parse_net(&b).unwrap_err(), BlobError::Erased);
    // But one programmed byte in the header is garbage, not erased flash.
    let mut b = vec![0xFFu8; 4096];
    b[19] = 0xFE;
    assert_eq!(parse_net(&b).unwrap_err(), BlobError::BadMagic);
    let mut b = vec![0xFFu8; 10];
    b[9] = 0;
    assert_eq!(parse_net(&b).unwrap_err(), BlobError::TooShort { len: 10 });
    // All zeros (a zero-filled buffer) is not erased flash either.
    assert_eq!(parse_net(&[0u8; 4096]).unwrap_err(), BlobError::BadMagic);
}

#[test]
fn each_header_field_corrupted_gives_its_error() {
    let b = golden();
    let (sig, crc) = (u32_at(&b, 8), u32_at(&b, 16));
    let computed_ne = |e: BlobError| match e {
        BlobError::CrcMismatch { stored, computed } => {
            assert_eq!(stored, crc);
            assert_ne!(computed, crc);
        }
        e => panic!("expected CrcMismatch, got {e:?}"),
    };

    for at in 0..4 {
        let mut c = b.clone();
        c[at] ^= 0x20;
        assert_eq!(
            parse_both(&c),
            (Err(BlobError::BadMagic), Err(BlobError::BadMagic))
        );
    }
    for (version, bytes) in [
        (0u16, [0, 0]),
        (3, [3, 0]),
        (257, [1, 1]),
        (0xFFFF, [0xFF, 0xFF]),
    ] {
        let mut c = b.clone();
        c[4..6].copy_from_slice(&bytes);
        let want = BlobError::UnsupportedVersion { found: version };
        assert_eq!(parse_both(&c), (Err(want), Err(want)));
    }
    for at in [6, 7] {
        let mut c = b.clone();
        c[at] = 1;
        let (typed, any) = parse_both(&c);
        computed_ne(typed.unwrap_err());
        computed_ne(any.unwrap_err());
    }
    for at in 8..12 {
        let mut c = b.clone();
        c[at] ^= 0x81;
        let found = u32_at(&c, 8);
        assert_eq!(
            parse_net(&c).unwrap_err(),
            BlobError::SignatureMismatch {
                expected: sig,
                found
            }
        );
        // Without an expected signature the CRC (which covers it) catches it.
        computed_ne(Blob::parse(&c).unwrap_err());
    }
    for at in 12..16 {
        let mut c = b.clone();
        c[at] ^= 0x01;
        let declared = u32_at(&c, 12);
        let want = BlobError::LengthMismatch {
            declared,
            actual: 96,
        };
        assert_eq!(parse_both(&c), (Err(want), Err(want)));
    }
    for at in 16..20 {
        let mut c = b.clone();
        c[at] ^= 0x10;
        let want = BlobError::CrcMismatch {
            stored: u32_at(&c, 16),
            computed: crc,
        };
        assert_eq!(parse_both(&c), (Err(want), Err(want)));
    }
}

/// The error a single bit flip at byte `at` must give.
fn check_bit_flip(b: &[u8], at: usize, bit: u8, sig: u32, crc: u32) {
    let mut c = b.to_vec();
    c[at] ^= 1 << bit;
    let (typed, any) = parse_both(&c);
    let (typed, any) = (typed.unwrap_err(), any.unwrap_err());
    let ctx = format!("byte {at} bit {bit}: {typed:?} / {any:?}");
    match at {
        0..=3 => assert!(typed == BlobError::BadMagic && any == typed, "{ctx}"),
        4..=5 => assert!(
            matches!(typed, BlobError::UnsupportedVersion { found } if found == u16_at(&c, 4))
                && any == typed,
            "{ctx}"
        ),
        8..=11 => {
            assert_eq!(
                typed,
                BlobError::SignatureMismatch {
                    expected: sig,
                    found: u32_at(&c, 8)
                },
                "{ctx}"
            );
            assert!(
                matches!(any, BlobError::CrcMismatch { stored, .. } if stored == crc),
                "{ctx}"
            );
        }
        12..=15 => assert!(
            matches!(typed, BlobError::LengthMismatch { declared, .. } if declared == u32_at(&c, 12))
                && any == typed,
            "{ctx}"
        ),
        16..=19 => assert!(
            typed
                == BlobError::CrcMismatch {
                    stored: u32_at(&c, 16),
                    computed: crc
                }
                && any == typed,
            "{ctx}"
        ),
        // Flags and payload: only the CRC can tell, and CRC-32 catches every single-bit error.
        _ => {
            assert!(
                matches!(typed, BlobError::CrcMismatch { stored, computed } if stored == crc && computed != crc),
                "{ctx}"
            );
            assert_eq!(any, typed, "{ctx}");
        }
    }
}

#[test]
fn every_single_bit_flip_is_refused_with_the_right_error() {
    let b = golden();
    let (sig, crc) = (u32_at(&b, 8), u32_at(&b, 16));
    for at in 0..b.len() {
        for bit in 0..8 {
            check_bit_flip(&b, at, bit, sig, crc);
        }
    }
}

#[test]
fn every_single_bit_flip_of_a_classifier_blob_is_refused() {
    type Classifier = Mlp1<f32, 3, 8, 4>;
    let b = blob_for::<Classifier, 3, 4>(AlphaKind::PerParameter);
    let expected = signature::<Classifier, 3, 4>();
    let crc = u32_at(&b, 16);
    assert!(Blob::parse_for::<Classifier, 3, 4>(&b).is_ok());
    for at in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[at] ^= 1 << bit;
            let r = catch_unwind(|| Blob::parse_for::<Classifier, 3, 4>(&c).map(|_| ()));
            let e = r.unwrap_or_else(|_| panic!("panic at byte {at} bit {bit}"));
            match e {
                Err(BlobError::CrcMismatch { stored, .. }) if at >= HEADER_LEN => {
                    assert_eq!(stored, crc)
                }
                Err(BlobError::SignatureMismatch { expected: e, .. }) if (8..12).contains(&at) => {
                    assert_eq!(e, expected)
                }
                Err(_) if at < HEADER_LEN => {}
                other => panic!("byte {at} bit {bit}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_blob_for_another_model_is_a_signature_mismatch() {
    let b = golden();
    let found = signature::<Net, 1, 1>();
    fn check<M: Layers<f32, I, O>, const I: usize, const O: usize>(b: &[u8], found: u32) {
        assert_eq!(
            Blob::parse_for::<M, I, O>(b).unwrap_err(),
            BlobError::SignatureMismatch {
                expected: signature::<M, I, O>(),
                found
            }
        );
    }
    check::<Mlp1<f32, 1, 3, 1>, 1, 1>(&b, found);
    check::<Mlp1<f32, 2, 2, 1>, 2, 1>(&b, found);
    check::<Mlp1<f32, 1, 2, 2>, 1, 2>(&b, found);
    check::<Dense<f32, 1, 1>, 1, 1>(&b, found);
    check::<Mlp2<f32, 1, 2, 2, 1>, 1, 1>(&b, found);

    // Every distinct shape has its own signature (hidden widths included).
    let sigs = [
        signature::<Dense<f32, 1, 1>, 1, 1>(),
        signature::<Mlp1<f32, 1, 2, 1>, 1, 1>(),
        signature::<Mlp1<f32, 1, 3, 1>, 1, 1>(),
        signature::<Mlp2<f32, 1, 2, 3, 1>, 1, 1>(),
        signature::<Mlp2<f32, 1, 3, 2, 1>, 1, 1>(),
        signature::<Mlp2<f32, 1, 40, 40, 1>, 1, 1>(),
        signature::<Mlp2<f32, 1, 40, 41, 1>, 1, 1>(),
    ];
    for i in 0..sigs.len() {
        for j in 0..i {
            assert_ne!(sigs[i], sigs[j], "models {i} and {j} share a signature");
        }
    }
    assert_eq!(
        signature::<Mlp2<f32, 1, 40, 40, 1>, 1, 1>(),
        signature_of_shape([1, 40, 40, 1])
    );
}

#[test]
fn non_finite_values_with_a_valid_crc_are_refused_with_their_index() {
    let meta = golden_meta();
    let (p, a) = (7usize, 7usize);
    let enc = |theta: &[f32], alpha: &[f32], xm: f32, xs: f32, ym: f32, ys: f32| {
        encode(&meta, theta, alpha, &[xm], &[xs], &[ym], &[ys]).unwrap()
    };
    let nonfinite = |b: &[u8]| {
        let (typed, any) = parse_both(b);
        assert_eq!(typed, any);
        typed.unwrap_err()
    };
    for (k, v) in [
        (0usize, f32::NAN),
        (3, f32::INFINITY),
        (6, f32::NEG_INFINITY),
    ] {
        let mut theta = THETA;
        theta[k] = v;
        let b = enc(&theta, &ALPHA, 1.5, 2.0, -3.0, 0.5);
        assert_eq!(nonfinite(&b), BlobError::NonFinite { index: k });
    }
    let mut alpha = ALPHA;
    alpha[4] = f32::NAN;
    assert_eq!(
        nonfinite(&enc(&THETA, &alpha, 1.5, 2.0, -3.0, 0.5)),
        BlobError::NonFinite { index: p + 4 }
    );
    // Normalisation: x_mean, x_std, y_mean, y_std follow θ0 and α.
    let base = p + a;
    for (b, index) in [
        (enc(&THETA, &ALPHA, f32::NAN, 2.0, -3.0, 0.5), base),
        (enc(&THETA, &ALPHA, 1.5, 0.0, -3.0, 0.5), base + 1),
        (enc(&THETA, &ALPHA, 1.5, -0.0, -3.0, 0.5), base + 1),
        (enc(&THETA, &ALPHA, 1.5, -2.0, -3.0, 0.5), base + 1),
        (enc(&THETA, &ALPHA, 1.5, f32::INFINITY, -3.0, 0.5), base + 1),
        (enc(&THETA, &ALPHA, 1.5, 2.0, f32::INFINITY, 0.5), base + 2),
        (enc(&THETA, &ALPHA, 1.5, 2.0, -3.0, 0.0), base + 3),
        (enc(&THETA, &ALPHA, 1.5, 2.0, -3.0, -1e-30), base + 3),
    ] {
        assert_eq!(
            nonfinite(&b),
            BlobError::NonFinite { index },
            "index {index}"
        );
    }
    // The first bad value is the one reported.
    let mut theta = THETA;
    theta[5] = f32::NAN;
    assert_eq!(
        nonfinite(&enc(&theta, &ALPHA, 1.5, 0.0, -3.0, 0.5)),
        BlobError::NonFinite { index: 5 }
    );
    // Negative means are fine; tiny positive scales are fine.
    assert!(parse_net(&enc(&THETA, &ALPHA, -1e30, 1e-30, -3.0, 1e-30)).is_ok());

    // A NaN loss bound is a bad meta; an infinite one means "no bound".
    let mut m = golden_meta();
    m.loss_bound = f32::NAN;
    let b = encode(&m, &THETA, &ALPHA, &[1.5], &[2.0], &[-3.0], &[0.5]).unwrap();
    assert_eq!(nonfinite(&b), BlobError::BadMeta);
    m.loss_bound = f32::INFINITY;
    let b = encode(&m, &THETA, &ALPHA, &[1.5], &[2.0], &[-3.0], &[0.5]).unwrap();
    assert_eq!(parse_net(&b).unwrap().meta.loss_bound, f32::INFINITY);
}

#[test]
fn encode_refuses_arrays_of_the_wrong_length() {
    let meta = golden_meta();
    let ok = [1.0f32];
    let wrong = |what: &'static str, expected: usize, found: usize| EncodeError::WrongLength {
        what,
        expected,
        found,
    };
    assert_eq!(
        encode(&meta, &THETA[..6], &ALPHA, &ok, &ok, &ok, &ok),
        Err(wrong("theta0", 7, 6))
    );
    assert_eq!(
        encode(&meta, &[0.0; 8], &ALPHA, &ok, &ok, &ok, &ok),
        Err(wrong("theta0", 7, 8))
    );
    assert_eq!(
        encode(&meta, &THETA, &[0.1], &ok, &ok, &ok, &ok),
        Err(wrong("alpha", 7, 1)),
        "per-parameter α needs one value per parameter"
    );
    let scalar = Meta::new::<Net, 1, 1>(Loss::Mse, 1);
    assert_eq!(
        encode(&scalar, &THETA, &ALPHA, &ok, &ok, &ok, &ok),
        Err(wrong("alpha", 1, 7))
    );
    assert_eq!(
        encode(&meta, &THETA, &ALPHA, &[], &ok, &ok, &ok),
        Err(wrong("x_mean", 1, 0))
    );
    assert_eq!(
        encode(&meta, &THETA, &ALPHA, &ok, &[1.0, 1.0], &ok, &ok),
        Err(wrong("x_std", 1, 2))
    );
    assert_eq!(
        encode(&meta, &THETA, &ALPHA, &ok, &ok, &[], &ok),
        Err(wrong("y_mean", 1, 0))
    );
    assert_eq!(
        encode(&meta, &THETA, &ALPHA, &ok, &ok, &ok, &[1.0, 2.0, 3.0]),
        Err(wrong("y_std", 1, 3))
    );
}

// ---------------------------------------------------------------------------------------------
// Payloads that pass length and CRC but are still wrong.

#[test]
fn sealed_but_inconsistent_payloads_get_typed_errors() {
    let b = golden();
    let meta_len = 24;

    // Arrays one value short.
    let mut c = b[..b.len() - 4].to_vec();
    reseal(&mut c);
    let want = BlobError::ArraysLength {
        expected: 72,
        found: 68,
    };
    assert_eq!(parse_both(&c), (Err(want), Err(want)));

    // The meta claims 8 parameters (one more θ0 and α each): arrays too short for it.
    let mut c = b.clone();
    assert_eq!(c[HEADER_LEN + 4], 7);
    c[HEADER_LEN + 4] = 8;
    reseal(&mut c);
    let want = BlobError::ArraysLength {
        expected: 80,
        found: 72,
    };
    assert_eq!(parse_both(&c), (Err(want), Err(want)));

    // A consistent blob whose meta has the right shape but not this model's parameter count.
    let mut m = golden_meta();
    m.params = 8;
    let b8 = encode(&m, &[0.0; 8], &[0.0; 8], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    assert_eq!(parse_net(&b8).unwrap_err(), BlobError::ModelMismatch);
    assert_eq!(Blob::parse(&b8).unwrap().meta.params, 8);

    // Shape list longer than its capacity, an unknown enum tag, no meta at all.
    for (at, v) in [(0usize, 200u8), (0, 18), (5, 7), (6, 9), (7, 2)] {
        let mut c = b.clone();
        c[HEADER_LEN + at] = v;
        reseal(&mut c);
        let (typed, any) = parse_both(&c);
        assert_eq!(typed, Err(BlobError::BadMeta), "payload[{at}] = {v}");
        assert_eq!(any, Err(BlobError::BadMeta), "payload[{at}] = {v}");
    }
    let mut c = b[..HEADER_LEN].to_vec();
    reseal(&mut c);
    assert_eq!(
        parse_both(&c),
        (Err(BlobError::BadMeta), Err(BlobError::BadMeta))
    );
    let mut c = b[..HEADER_LEN + meta_len - 3].to_vec();
    reseal(&mut c);
    assert_eq!(
        parse_both(&c),
        (Err(BlobError::BadMeta), Err(BlobError::BadMeta))
    );

    // The header signature disagrees with the meta's shape.
    let mut c = b.clone();
    let other = signature_of_shape([1, 3, 1]);
    c[8..12].copy_from_slice(&other.to_le_bytes());
    reseal(&mut c);
    assert_eq!(
        Blob::parse(&c).unwrap_err(),
        BlobError::SignatureMismatch {
            expected: signature_of_shape([1, 2, 1]),
            found: other
        }
    );
    assert_eq!(
        parse_net(&c).unwrap_err(),
        BlobError::SignatureMismatch {
            expected: signature::<Net, 1, 1>(),
            found: other
        }
    );

    // A meta with fewer than two widths describes no model.
    let mut m = golden_meta();
    m.shape.truncate(1);
    m.params = 0;
    m.alpha = AlphaKind::Scalar;
    let c = encode(&m, &[], &[0.1], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
    assert!(matches!(
        parse_both(&c),
        (
            Err(BlobError::SignatureMismatch { .. }),
            Err(BlobError::SignatureMismatch { .. })
        )
    ));
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
fn resealed_mutations_never_panic() {
    let b = golden();
    // Every payload byte set to interesting values, with length and CRC made valid, so the
    // meta decoder and the size and value checks see them.
    for at in HEADER_LEN..b.len() {
        for v in [0x00u8, 0x01, 0x07, 0x7F, 0x80, 0xC0, 0xFE, 0xFF] {
            let mut c = b.clone();
            c[at] = v;
            reseal(&mut c);
            let (typed, _) = parse_both(&c);
            if c == b {
                assert!(typed.is_ok());
            }
        }
    }
    // Random multi-byte damage, resizes and reseals.
    let mut rng = Lcg(0x5EED);
    for round in 0..3000 {
        let mut c = b.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = HEADER_LEN + (rng.next() as usize) % (c.len() - HEADER_LEN);
            c[at] = rng.next() as u8;
        }
        match rng.next() % 4 {
            0 => c.truncate(HEADER_LEN + (rng.next() as usize) % (c.len() - HEADER_LEN + 1)),
            1 => c.extend((0..rng.next() % 40).map(|_| rng.next() as u8)),
            _ => {}
        }
        if round % 5 != 0 {
            reseal(&mut c);
        }
        let _ = parse_both(&c);
    }
}

#[test]
fn errors_display_their_numbers() {
    let cases: [(BlobError, &str); 6] = [
        (BlobError::TooShort { len: 7 }, "7"),
        (BlobError::UnsupportedVersion { found: 9 }, "9"),
        (
            BlobError::SignatureMismatch {
                expected: 0xdead_beef,
                found: 1,
            },
            "0xdeadbeef",
        ),
        (
            BlobError::LengthMismatch {
                declared: 96,
                actual: 95,
            },
            "95",
        ),
        (
            BlobError::CrcMismatch {
                stored: 0x1234_5678,
                computed: 0,
            },
            "0x12345678",
        ),
        (BlobError::NonFinite { index: 42 }, "42"),
    ];
    for (e, needle) in cases {
        let s = e.to_string();
        assert!(s.contains(needle), "{e:?} displays as {s:?}");
    }
    let e = EncodeError::WrongLength {
        what: "alpha",
        expected: 7,
        found: 1,
    };
    assert!(e.to_string().contains("alpha"));
}
