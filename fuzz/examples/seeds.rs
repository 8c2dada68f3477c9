//! Writes the seed corpora under `fuzz/corpus/<target>/` (replacing the files there), so the
//! committed seeds can be regenerated exactly:
//!
//! ```text
//! cd fuzz && cargo run --example seeds
//! ```
//!
//! With seed file names as arguments it writes only those seeds and leaves the other files
//! as they are (`cargo run --example seeds -- encode-body-7-1-2-3-dense-12-4.bin`).
//!
//! `wstar_blob`: the committed Meta-SGD sinusoid blob and broken copies of it (truncated,
//! bit-flipped, erased flash), the blob in a flash region and in an A/B slot, blobs
//! `shared::wstar::encode` writes for a few small models (an LSLR one among them), and a
//! classifier blob with a convolutional body (`encode_with_body`) for the body the target
//! loads.
//!
//! `link_frames`: a slot selector byte (bits 0-1 slot A, bits 2-3 slot B: 0 the blob in a
//! valid slot, 1 erased, 2 corrupt, 3 the bare blob without a slot header) followed by COBS
//! request frames, the way the host sends them: whole sessions and single requests, valid and
//! refused.

use std::fs;
use std::path::{Path, PathBuf};

use shared::body::{BodySpec, Views};
use shared::inner::AdaptMask;
use shared::link::{put_floats, Request, MAX_FRAME};
use shared::loss::Loss;
use shared::model::{Dense, Layers, Mlp1, Mlp2, Params, SinusoidNet};
use shared::report::StepLimit;
use shared::slots::slot_image;
use shared::wstar::{encode, encode_classifier, Algorithm, AlphaKind, BodyShape, HeadStart, Meta};

static BLOB: &[u8] = include_bytes!("../../tests/fixtures/metasgd-sinusoid-k10.bin");

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let only: Vec<String> = std::env::args().skip(1).collect();
    if !only.is_empty() {
        let mut left = only.clone();
        for (dir, seeds) in [("wstar_blob", wstar_seeds()), ("link_frames", link_seeds())] {
            for (name, bytes) in seeds {
                if let Some(i) = left.iter().position(|n| n == name) {
                    left.swap_remove(i);
                    let path = root.join(dir).join(name);
                    println!("{}: {} bytes", path.display(), bytes.len());
                    fs::write(path, bytes).unwrap();
                }
            }
        }
        assert!(left.is_empty(), "no such seeds: {left:?}");
        return;
    }
    write_all(&root.join("wstar_blob"), wstar_seeds());
    write_all(&root.join("link_frames"), link_seeds());
}

/// Replaces the files in `dir` with `seeds`.
fn write_all(dir: &Path, seeds: Vec<(&'static str, Vec<u8>)>) {
    fs::create_dir_all(dir).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::remove_file(path).unwrap();
        }
    }
    let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
    println!("{}: {} seeds, {} bytes", dir.display(), seeds.len(), total);
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

// ---- wstar_blob ----

/// Deterministic parameter values in [-0.5, 0.5].
fn theta(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|k| ((k * 37 + salt * 11) % 101) as f32 / 100.0 - 0.5)
        .collect()
}

/// A blob for model `M` with `O` outputs and the given meta tweaks.
fn blob_for<M: Layers<f32, I, O>, const I: usize, const O: usize>(
    loss: Loss,
    steps: u16,
    tweak: impl FnOnce(&mut Meta),
    alpha: f32,
) -> Vec<u8> {
    let mut meta = Meta::new::<M, I, O>(loss, steps);
    tweak(&mut meta);
    let alphas = vec![alpha; meta.alpha_len()];
    encode(
        &meta,
        &theta(M::PARAMS, steps as usize),
        &alphas,
        &[0.5; I],
        &[2.0; I],
        &[0.25; O],
        &[1.5; O],
    )
    .unwrap()
}

/// Samples as the `wstar_blob` target reads them after a blob: `(x, y)` f32 LE pairs.
fn sample_bytes(samples: &[(f32, f32)]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|(x, y)| x.to_le_bytes().into_iter().chain(y.to_le_bytes()))
        .collect()
}

/// Points of the sinusoid `a · sin(x − phase)`.
fn sinusoid(n: usize, a: f32, phase: f32) -> Vec<(f32, f32)> {
    (0..n)
        .map(|j| {
            let x = -5.0 + 10.0 * j as f32 / n.max(2) as f32;
            (x, a * (x - phase).sin())
        })
        .collect()
}

fn wstar_seeds() -> Vec<(&'static str, Vec<u8>)> {
    type Small = Mlp1<f32, 1, 4, 1>;
    type Classifier = Mlp1<f32, 2, 3, 2>;
    type Deep = Mlp2<f32, 1, 8, 8, 1>;

    let mut seeds = vec![("fixture-metasgd-sinusoid.bin", BLOB.to_vec())];
    seeds.push((
        "fixture-truncated-half.bin",
        BLOB[..BLOB.len() / 2].to_vec(),
    ));
    seeds.push(("fixture-header-only.bin", BLOB[..20].to_vec()));
    let mut flipped = BLOB.to_vec();
    flipped[BLOB.len() / 2] ^= 0x10;
    seeds.push(("fixture-bitflip-payload.bin", flipped));
    let mut flipped = BLOB.to_vec();
    flipped[9] ^= 0x01;
    seeds.push(("fixture-bitflip-signature.bin", flipped));
    seeds.push(("erased-ff-1k.bin", vec![0xFF; 1024]));
    seeds.push(("zeroed-64.bin", vec![0x00; 64]));
    // In a flash region: the blob, then erased flash; then the blob and samples after it.
    let mut region = BLOB.to_vec();
    region.resize(BLOB.len() + 256, 0xFF);
    seeds.push(("fixture-in-region.bin", region));
    let mut region = BLOB.to_vec();
    region.extend(sample_bytes(&sinusoid(10, 2.0, 0.5)));
    seeds.push(("fixture-then-10-samples.bin", region));
    seeds.push(("fixture-in-slot.bin", slot_image(BLOB, 7)));

    // Small models, written by `encode`.
    seeds.push((
        "encode-mlp1-1-4-1-maml.bin",
        blob_for::<Small, 1, 1>(Loss::Mse, 1, |_| {}, 0.01),
    ));
    seeds.push((
        "encode-mlp1-2-3-2-softmax-metasgd-anil.bin",
        blob_for::<Classifier, 2, 2>(
            Loss::SoftmaxCrossEntropy,
            2,
            |m| {
                m.algorithm = Algorithm::MetaSgd;
                m.alpha = AlphaKind::PerParameter;
                m.adapt = AdaptMask::head_only(2);
                m.trained_k = 5;
                m.loss_bound = 10.0;
                m.seed = 42;
            },
            0.05,
        ),
    ));
    seeds.push((
        "encode-mlp2-1-8-8-1-reptile.bin",
        blob_for::<Deep, 1, 1>(
            Loss::Mse,
            3,
            |m| {
                m.algorithm = Algorithm::Reptile;
                m.loss_bound = 100.0;
            },
            0.02,
        ),
    ));
    // Sinusoid-shaped blobs the adapter loads: MAML with samples after it, a huge step size
    // (the divergence guard undoes the step) and a tight loss bound (a step above it is undone).
    let mut maml = blob_for::<SinusoidNet, 1, 1>(Loss::Mse, 5, |_| {}, 0.01);
    maml.extend(sample_bytes(&sinusoid(5, 1.0, 0.0)));
    seeds.push(("encode-sinusoid-maml-then-5-samples.bin", maml));
    // LSLR (format version 2): one α per layer and step, read step by step.
    let mut lslr = blob_for::<SinusoidNet, 1, 1>(
        Loss::Mse,
        3,
        |m| {
            m.algorithm = Algorithm::Lslr;
            m.alpha = AlphaKind::PerLayerPerStep;
        },
        0.02,
    );
    lslr.extend(sample_bytes(&sinusoid(5, 2.0, 0.5)));
    seeds.push(("encode-sinusoid-lslr-then-5-samples.bin", lslr));
    let mut diverge = blob_for::<SinusoidNet, 1, 1>(Loss::Mse, 1, |_| {}, 1.0e30);
    diverge.extend(sample_bytes(&sinusoid(4, 3.0, 1.0)));
    seeds.push(("encode-sinusoid-huge-alpha.bin", diverge));
    seeds.push((
        "encode-sinusoid-metasgd-bound.bin",
        blob_for::<SinusoidNet, 1, 1>(
            Loss::Mse,
            1,
            |m| {
                m.algorithm = Algorithm::MetaSgd;
                m.alpha = AlphaKind::PerParameter;
                m.loss_bound = 1.0e-6;
            },
            0.5,
        ),
    ));
    // Values the checks refuse, under a valid CRC: a NaN in θ0, a zero scale.
    let meta = Meta::new::<Small, 1, 1>(Loss::Mse, 1);
    let mut nan = theta(Small::PARAMS, 1);
    nan[3] = f32::NAN;
    seeds.push((
        "encode-mlp1-nan-theta.bin",
        encode(&meta, &nan, &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap(),
    ));
    seeds.push((
        "encode-mlp1-zero-std.bin",
        encode(
            &meta,
            &theta(Small::PARAMS, 1),
            &[0.01],
            &[0.0],
            &[0.0],
            &[0.0],
            &[1.0],
        )
        .unwrap(),
    ));
    seeds.push((
        "encode-body-7-1-2-3-dense-12-4.bin",
        body_blob(HeadStart::Theta0),
    ));
    seeds.push((
        "encode-body-7-1-2-3-dense-12-4-prototypes.bin",
        body_blob(HeadStart::Prototypes),
    ));
    seeds.push((
        "encode-body-7-1-2-3-dense-12-4-shifted-views.bin",
        body_blob_viewing(HeadStart::Prototypes, Views::Shifted),
    ));
    seeds
}

/// An ANIL image classifier's blob: a `Dense<f32, 12, 4>` head on the body the `wstar_blob`
/// target loads (7×7×1 → 4×4×2 → 2×2×3), its adaptations starting as `start` says.
fn body_blob(start: HeadStart) -> Vec<u8> {
    body_blob_viewing(start, Views::Single)
}

/// [`body_blob`] whose features of an image are taken over `views`.
fn body_blob_viewing(start: HeadStart, views: Views) -> Vec<u8> {
    const BODY: BodySpec<3> = BodySpec {
        side: 7,
        channels: [1, 2, 3],
    };
    const F: usize = BODY.features();
    type Head = Dense<f32, F, 4>;
    let mut meta = Meta::new::<Head, F, 4>(Loss::SoftmaxCrossEntropy, 5);
    meta.algorithm = Algorithm::Anil;
    meta.trained_k = 5;
    let weights = theta(BODY.params(), 3);
    encode_classifier(
        &meta,
        &theta(Head::PARAMS, 2),
        &[0.1],
        [&[0.0; F], &[1.0; F], &[0.0; 4], &[1.0; 4]],
        (&BodyShape::of(&BODY), &weights),
        start,
        views,
    )
    .unwrap()
}

// ---- link_frames ----

/// Slot selector byte: `a` and `b` are 0 (valid slot), 1 (erased), 2 (corrupt), 3 (bare blob).
fn select(a: u8, b: u8) -> u8 {
    a | (b << 2)
}

/// A request as a COBS frame, delimiter included.
fn frame(req: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    postcard::to_slice_cobs(req, &mut buf).unwrap().to_vec()
}

fn push(x: f32, y: f32) -> Vec<u8> {
    let (mut xb, mut yb) = ([0u8; 4], [0u8; 4]);
    frame(&Request::Push {
        x: put_floats(&[x], &mut xb),
        y: put_floats(&[y], &mut yb),
    })
}

fn predict(x: f32) -> Vec<u8> {
    let mut xb = [0u8; 4];
    frame(&Request::Predict {
        x: put_floats(&[x], &mut xb),
    })
}

fn predict_many(xs: &[f32]) -> Vec<u8> {
    let mut buf = vec![0u8; 4 * xs.len()];
    frame(&Request::PredictMany {
        xs: put_floats(xs, &mut buf),
    })
}

fn adapt(steps: Option<u16>, limit: StepLimit) -> Vec<u8> {
    frame(&Request::Adapt { steps, limit })
}

fn read_params(offset: u32, count: u16) -> Vec<u8> {
    frame(&Request::ReadParams { offset, count })
}

/// A stream: the selector byte, then the frames.
fn stream(select: u8, frames: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut s = vec![select];
    for f in frames {
        s.extend(f);
    }
    s
}

/// The host's usual session: status, K samples, adapt, predict, read back, reset.
fn session() -> Vec<Vec<u8>> {
    let mut frames = vec![frame(&Request::Status)];
    frames.extend(sinusoid(10, 2.0, 0.5).into_iter().map(|(x, y)| push(x, y)));
    frames.extend([
        predict(0.5),
        adapt(Some(3), StepLimit::Unchecked),
        predict(0.5),
        predict_many(&[-4.0, -2.0, 0.0, 2.0, 4.0]),
        read_params(0, 96),
        read_params(1700, 61),
        frame(&Request::Memory),
        frame(&Request::Reset),
        adapt(None, StepLimit::Trained),
        frame(&Request::ClearSamples),
        frame(&Request::Rescan),
        frame(&Request::Status),
    ]);
    frames
}

fn link_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = vec![
        ("session-slot-a.bin", stream(select(0, 1), session())),
        ("session-slot-b.bin", stream(select(1, 0), session())),
        ("session-both-slots.bin", stream(select(0, 0), session())),
        (
            "session-no-blob-erased.bin",
            stream(select(1, 1), session()),
        ),
        (
            "session-no-blob-corrupt-bare.bin",
            stream(select(2, 3), session()),
        ),
        (
            "session-b-corrupt-a-valid.bin",
            stream(select(0, 2), session()),
        ),
    ];
    // Single requests, slot A serving.
    let a = select(0, 1);
    let singles: Vec<(&'static str, Vec<u8>)> = vec![
        ("req-status.bin", frame(&Request::Status)),
        ("req-push.bin", push(1.0, 0.8)),
        ("req-predict.bin", predict(-1.25)),
        ("req-predict-many.bin", predict_many(&[0.0, 1.0, 2.0])),
        ("req-adapt-trained.bin", adapt(None, StepLimit::Trained)),
        (
            "req-adapt-3-unchecked.bin",
            adapt(Some(3), StepLimit::Unchecked),
        ),
        ("req-read-params.bin", read_params(96, 96)),
        ("req-memory.bin", frame(&Request::Memory)),
        ("req-reset.bin", frame(&Request::Reset)),
        ("req-clear-samples.bin", frame(&Request::ClearSamples)),
        ("req-rescan.bin", frame(&Request::Rescan)),
    ];
    for (name, f) in singles {
        seeds.push((name, stream(a, [f])));
    }

    // Refusals: the device answers each with an error and goes on serving.
    let (mut x2, mut y0) = ([0u8; 8], [0u8; 0]);
    let wrong_len = frame(&Request::Push {
        x: put_floats(&[1.0, 2.0], &mut x2),
        y: put_floats(&[], &mut y0),
    });
    seeds.push((
        "refused-push-full-nan-length.bin",
        stream(
            a,
            (0..11).map(|j| push(j as f32 * 0.3, 0.1)).chain([
                push(f32::NAN, 1.0),
                push(1.0, f32::INFINITY),
                wrong_len,
            ]),
        ),
    ));
    seeds.push((
        "refused-adapt.bin",
        stream(
            a,
            [
                adapt(Some(1), StepLimit::Unchecked), // no samples
                push(0.5, 0.5),
                adapt(Some(3), StepLimit::Trained), // past the trained step
                adapt(Some(1000), StepLimit::Unchecked),
                adapt(None, StepLimit::Trained),
            ],
        ),
    ));
    let mut x2 = [0u8; 8];
    let predict_two = frame(&Request::Predict {
        x: put_floats(&[1.0, 2.0], &mut x2),
    });
    let mut odd = vec![0u8; 6];
    put_floats(&[1.0], &mut odd);
    let predict_many_odd = frame(&Request::PredictMany { xs: &odd });
    seeds.push((
        "refused-predict.bin",
        stream(
            a,
            [
                predict(f32::NAN),
                predict_two,
                predict_many(&[0.5; 97]), // more outputs than a frame holds
                predict_many_odd,
                read_params(1761, 1),
                read_params(0, 97),
                read_params(u32::MAX, 96),
            ],
        ),
    ));
    // Broken framing: garbage, an overlong frame, empty frames, a frame cut short.
    seeds.push((
        "frame-garbage.bin",
        stream(
            a,
            [
                vec![0x07, 0x13, 0xFE, 0x42, 0x01, 0x00],
                vec![0x02, 0xFF, 0x00],
                frame(&Request::Status),
            ],
        ),
    ));
    seeds.push((
        "frame-overlong.bin",
        stream(
            a,
            [
                vec![0x5A; 600],
                vec![0x00],
                vec![0x5A; 511],
                vec![0x00],
                frame(&Request::Status),
            ],
        ),
    ));
    seeds.push((
        "frame-empty-and-cut.bin",
        stream(
            a,
            [vec![0, 0, 0], frame(&Request::Status), {
                let mut f = frame(&Request::Memory);
                f.pop();
                f
            }],
        ),
    ));
    seeds
}
