//! The link server on the host: one server type serves an adapter or an image classifier; an
//! image arrives staged in parts, and every stage rule, wrong length, NaN and bad label gets
//! its typed refusal. The answers are the bits the models give when called directly.

use device::server::{LinkServer, Platform, Server};
use device::{Adapter, ImageClassifier, PushErrorKind, Sample, StepLimit};
use shared::body::BodySpec;
use shared::link::{
    floats, put_floats, LinkError, Memory, Request, Response, Status, MAX_FRAME, STAGE_PER_FRAME,
};
use shared::loss::Loss;
use shared::model::{Dense, Mlp1, Params};
use shared::report::AdaptError;
use shared::slots::slot_image;
use shared::wstar::{encode, encode_with_body, BlobError, BodyShape, Meta};

/// A 16×16 body: 16×16×1 → 8×8×4 → 4×4×4 → 2×2×8 = 32 features.
const BODY: BodySpec<4> = BodySpec {
    side: 16,
    channels: [1, 4, 4, 8],
};
const PIXELS: usize = BODY.inputs();
const F: usize = BODY.features();
type Head = Dense<f32, F, 3>;
type Classifier = ImageClassifier<'static, 4, F, 3, 6, { BODY.scratch_len() }>;
type ClassifierServer = LinkServer<'static, Classifier, PIXELS>;

/// A board without a clock.
struct Host;

impl Platform for Host {
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        (f(), 7)
    }
    fn memory(&self) -> Memory {
        Memory {
            stack_peak: 0,
            stack_size: 0,
        }
    }
}

fn classifier_blob() -> &'static [u8] {
    let meta = Meta::new::<Head, F, 3>(Loss::SoftmaxCrossEntropy, 3);
    let theta: Vec<f32> = (0..Head::PARAMS)
        .map(|k| ((k * 29 % 17) as f32 - 8.0) / 50.0)
        .collect();
    let body: Vec<f32> = (0..BODY.params())
        .map(|k| ((k * 13 % 11) as f32 - 5.0) / 12.0)
        .collect();
    let blob = encode_with_body(
        &meta,
        &theta,
        &[0.2],
        [&[0.0; F], &[1.0; F], &[0.0; 3], &[1.0; 3]],
        Some((&BodyShape::of(&BODY), &body)),
    )
    .unwrap();
    Box::leak(blob.into_boxed_slice())
}

type Net = Mlp1<f32, 2, 8, 3>;

fn mlp_blob(loss: Loss) -> &'static [u8] {
    let meta = Meta::new::<Net, 2, 3>(loss, 2);
    let theta: Vec<f32> = (0..Net::PARAMS)
        .map(|k| ((k * 37 % 23) as f32 - 11.0) / 40.0)
        .collect();
    let blob = encode(
        &meta,
        &theta,
        &[0.3],
        &[0.0; 2],
        &[1.0; 2],
        &[0.0; 3],
        &[1.0; 3],
    )
    .unwrap();
    Box::leak(blob.into_boxed_slice())
}

/// A slot holding `blob` (generation 1), leaked for the server's `'static` lifetime.
fn slot(blob: &[u8]) -> &'static [u8] {
    Box::leak(slot_image(blob, 1).into_boxed_slice())
}

const ERASED: &[u8] = &[0xFF; 64];

fn image(seed: usize) -> Vec<f32> {
    (0..PIXELS)
        .map(|i| ((i * 7 + seed * 31) % 19) as f32 / 19.0)
        .collect()
}

/// Sends `req` byte by byte; returns the one response frame.
fn ask<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
    req: &Request<'_>,
) -> Vec<u8> {
    let mut frame = [0u8; MAX_FRAME];
    let bytes = postcard::to_slice_cobs(req, &mut frame).expect("the request fits a frame");
    let mut out = [0u8; MAX_FRAME];
    let mut answers = Vec::new();
    for &b in bytes.iter() {
        if let Some(r) = s.feed(b, &mut out, &mut Host) {
            answers.push(r.to_vec());
        }
    }
    assert_eq!(answers.len(), 1, "one response per request");
    answers.pop().unwrap()
}

fn decode(frame: &mut [u8]) -> Response<'_> {
    postcard::from_bytes_cobs(frame).expect("the response decodes")
}

fn stage<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
    offset: usize,
    values: &[f32],
) -> Result<u16, LinkError> {
    let mut bytes = vec![0u8; 4 * values.len()];
    let req = Request::Stage {
        offset: offset as u16,
        values: put_floats(values, &mut bytes),
    };
    match decode(&mut ask(s, &req)) {
        Response::Staged { filled } => Ok(filled),
        Response::Error(e) => Err(e),
        r => panic!("Stage answered {r:?}"),
    }
}

/// Stages all of `x` in [`STAGE_PER_FRAME`]-value parts.
fn stage_all<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
    x: &[f32],
) {
    let part = usize::from(STAGE_PER_FRAME);
    for (k, chunk) in x.chunks(part).enumerate() {
        assert_eq!(
            stage(s, k * part, chunk),
            Ok((k * part + chunk.len()) as u16)
        );
    }
}

/// A `Response` with no borrowed bytes, or the error.
fn plain<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
    req: &Request<'_>,
) -> Response<'static> {
    match decode(&mut ask(s, req)) {
        Response::Error(e) => Response::Error(e),
        Response::Pushed { samples } => Response::Pushed { samples },
        Response::PushedStaged { samples, ticks } => Response::PushedStaged { samples, ticks },
        Response::Adapted { report, ticks } => Response::Adapted { report, ticks },
        Response::Cleared => Response::Cleared,
        Response::Reset => Response::Reset,
        Response::Status(st) => Response::Status(st),
        r => panic!("unexpected {r:?}"),
    }
}

fn classified<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
) -> Result<(u16, Vec<u32>), LinkError> {
    match decode(&mut ask(s, &Request::ClassifyStaged)) {
        Response::Classified { label, scores, .. } => {
            Ok((label, floats(scores).map(f32::to_bits).collect()))
        }
        Response::Error(e) => Err(e),
        r => panic!("ClassifyStaged answered {r:?}"),
    }
}

fn params<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
    n: usize,
) -> Vec<u32> {
    let mut v = Vec::new();
    while v.len() < n {
        let count = (n - v.len()).min(96);
        let req = Request::ReadParams {
            offset: v.len() as u32,
            count: count as u16,
        };
        match decode(&mut ask(s, &req)) {
            Response::Params { values, .. } => v.extend(floats(values).map(f32::to_bits)),
            r => panic!("ReadParams answered {r:?}"),
        }
    }
    v
}

fn status<T: device::server::Served<'static>, const X: usize>(
    s: &mut LinkServer<'static, T, X>,
) -> Status {
    match plain(s, &Request::Status) {
        Response::Status(st) => st,
        r => panic!("{r:?}"),
    }
}

fn classifier_server(slots: [&'static [u8]; 2]) -> Box<ClassifierServer> {
    let mut s = Box::new(ClassifierServer::unloaded(Classifier::unloaded(BODY)));
    s.load_slots(slots);
    s
}

#[test]
fn the_served_classifier_gives_the_classifiers_own_bits() {
    let blob = classifier_blob();
    let mut s = classifier_server([slot(blob), ERASED]);
    let st = status(&mut s);
    assert!(st.blob.is_ok(), "{st:?}");
    assert_eq!(
        (st.inputs, st.features, st.outputs, st.capacity, st.params),
        (PIXELS as u16, F as u16, 3, 6, Head::PARAMS as u32)
    );
    assert_eq!(st.body_params, BODY.params() as u32);
    assert_eq!(st.adapter_bytes, Classifier::RAM_BYTES as u32);

    let mut direct = Box::new(Classifier::unloaded(BODY));
    direct.load(blob).unwrap();
    for k in 0..6 {
        let x = image(k);
        stage_all(&mut s, &x);
        assert_eq!(
            plain(
                &mut s,
                &Request::PushStaged {
                    label: (k % 3) as u16
                }
            ),
            Response::PushedStaged {
                samples: k as u16 + 1,
                ticks: 7
            }
        );
        direct.push(&x, k % 3).unwrap();
    }
    let adapt = Request::Adapt {
        steps: None,
        limit: StepLimit::Trained,
    };
    let Response::Adapted { report, .. } = plain(&mut s, &adapt) else {
        panic!("no adaptation")
    };
    assert_eq!(report, direct.adapt().unwrap());
    let mut want = Vec::new();
    direct
        .head()
        .params()
        .for_each(&mut |_, v| want.extend(v.iter().map(|p| p.to_bits())));
    assert_eq!(params(&mut s, Head::PARAMS), want);
    for k in 10..14 {
        let x = image(k);
        stage_all(&mut s, &x);
        let c = direct.classify(&x).unwrap();
        let bits: Vec<u32> = c.scores.iter().map(|v| v.to_bits()).collect();
        assert_eq!(classified(&mut s), Ok((c.label as u16, bits)));
    }
}

#[test]
fn every_stage_fault_is_a_typed_refusal() {
    let mut s = classifier_server([slot(classifier_blob()), ERASED]);
    let x = image(1);
    let part = usize::from(STAGE_PER_FRAME);
    let stage_error = |filled: u16| LinkError::Stage {
        filled,
        expected: PIXELS as u16,
    };
    let refused = |filled: u16| Err(stage_error(filled));
    // Out of order, partial values, past the end: refused, the stage unchanged.
    assert_eq!(stage(&mut s, part, &x[..part]), refused(0));
    assert_eq!(stage(&mut s, 0, &x[..part]), Ok(part as u16));
    let bytes = [0u8; 7];
    let odd = Request::Stage {
        offset: part as u16,
        values: &bytes[..],
    };
    assert_eq!(
        plain(&mut s, &odd),
        Response::Error(stage_error(part as u16))
    );
    assert_eq!(stage(&mut s, 2 * part, &x[..part]), refused(part as u16));
    assert_eq!(stage(&mut s, part, &x[part..2 * part]), Ok(2 * part as u16));
    assert_eq!(stage(&mut s, 2 * part, &x[2 * part..]), Ok(PIXELS as u16));
    assert_eq!(stage(&mut s, PIXELS, &[0.5]), refused(PIXELS as u16));
    assert_eq!(status(&mut s).staged, PIXELS as u16);
    // Restarting at 0 over a complete stage: the half-restaged image is not used.
    assert_eq!(stage(&mut s, 0, &x[..part]), Ok(part as u16));
    assert_eq!(
        plain(&mut s, &Request::PushStaged { label: 0 }),
        Response::Error(stage_error(part as u16))
    );
    // Every use empties the stage, successful or not.
    assert_eq!(status(&mut s).staged, 0);
    assert_eq!(classified(&mut s), Err(stage_error(0)));
    stage_all(&mut s, &x);
    assert!(classified(&mut s).is_ok());
    assert_eq!(classified(&mut s), Err(stage_error(0)));
    // A NaN pixel, a label outside the classes.
    let mut nan = x.clone();
    nan[100] = f32::NAN;
    stage_all(&mut s, &nan);
    assert_eq!(
        plain(&mut s, &Request::PushStaged { label: 0 }),
        Response::Error(LinkError::Push(PushErrorKind::NonFinite))
    );
    stage_all(&mut s, &nan);
    assert_eq!(
        classified(&mut s),
        Err(LinkError::Adapt(AdaptError::NonFiniteInput))
    );
    stage_all(&mut s, &x);
    assert_eq!(
        plain(&mut s, &Request::PushStaged { label: 3 }),
        Response::Error(LinkError::Push(PushErrorKind::Shape))
    );
    // Raw vectors cannot carry an image.
    let (mut xb, mut yb) = ([0u8; 8], [0u8; 12]);
    let push = Request::Push {
        x: put_floats(&[0.5, 0.5], &mut xb),
        y: put_floats(&[1.0, 0.0, 0.0], &mut yb),
    };
    let short = LinkError::Length {
        expected: PIXELS as u16,
        found: 2,
    };
    assert_eq!(plain(&mut s, &push), Response::Error(short));
    assert_eq!(
        plain(&mut s, &Request::Predict { x: &xb }),
        Response::Error(short)
    );
    assert_eq!(status(&mut s).samples, 0);
    // Rescan drops the stage.
    assert_eq!(stage(&mut s, 0, &x[..part]), Ok(part as u16));
    assert!(matches!(
        plain(&mut s, &Request::Rescan),
        Response::Status(st) if st.staged == 0 && st.blob.is_ok()
    ));
}

#[test]
fn a_head_only_blob_is_refused_by_the_classifier_and_a_body_blob_by_the_adapter() {
    let head_only = mlp_blob(Loss::SoftmaxCrossEntropy);
    let mut s = classifier_server([slot(head_only), ERASED]);
    let st = status(&mut s);
    assert!(
        matches!(st.refused[0], Some(BlobError::SignatureMismatch { .. })),
        "{st:?}"
    );
    assert_eq!((st.slot, st.body_params), (None, 0));
    assert_eq!(
        plain(&mut s, &Request::PushStaged { label: 0 }),
        Response::Error(LinkError::NoBlob(st.refused[0].unwrap()))
    );
    // Both slots: the classifier blob in B serves.
    let mut s = classifier_server([slot(head_only), slot(classifier_blob())]);
    assert_eq!(status(&mut s).slot, Some(1));

    let a = Server::<Net, 2, 3, 4>::new([slot(classifier_blob()), ERASED]);
    assert!(matches!(
        a.status().refused[0],
        Some(BlobError::SignatureMismatch { .. })
    ));
}

#[test]
fn an_adapter_takes_staged_inputs_too() {
    let blob = mlp_blob(Loss::SoftmaxCrossEntropy);
    let mut s = Server::<Net, 2, 3, 4>::new([slot(blob), ERASED]);
    let st = status(&mut s);
    assert_eq!((st.inputs, st.features, st.body_params), (2, 2, 0));
    let mut direct = Adapter::<Net, 2, 3, 4>::new(blob).unwrap();
    let points = [([1.0, 0.5], 0), ([-1.0, 0.2], 1), ([0.3, -1.5], 2)];
    for (k, (x, c)) in points.into_iter().enumerate() {
        assert_eq!(stage(&mut s, 0, &x), Ok(2));
        assert_eq!(
            plain(&mut s, &Request::PushStaged { label: c as u16 }),
            Response::PushedStaged {
                samples: k as u16 + 1,
                ticks: 7
            }
        );
        let mut y = [0.0; 3];
        y[c] = 1.0;
        direct.push(Sample { x, y }).unwrap();
    }
    // A raw push is the same sample as a staged one.
    let (mut xb, mut yb) = ([0u8; 8], [0u8; 12]);
    let push = Request::Push {
        x: put_floats(&[0.1, 0.1], &mut xb),
        y: put_floats(&[0.0, 1.0, 0.0], &mut yb),
    };
    assert_eq!(plain(&mut s, &push), Response::Pushed { samples: 4 });
    direct
        .push(Sample {
            x: [0.1, 0.1],
            y: [0.0, 1.0, 0.0],
        })
        .unwrap();
    let adapt = Request::Adapt {
        steps: None,
        limit: StepLimit::Trained,
    };
    let Response::Adapted { report, .. } = plain(&mut s, &adapt) else {
        panic!("no adaptation")
    };
    assert_eq!(report, direct.adapt().unwrap());
    let x = [0.7f32, -0.2];
    assert_eq!(stage(&mut s, 0, &x), Ok(2));
    let c = direct.classify(&x).unwrap();
    let bits: Vec<u32> = c.scores.iter().map(|v| v.to_bits()).collect();
    assert_eq!(classified(&mut s), Ok((c.label as u16, bits)));

    // A regressor refuses to classify.
    let mut r = Server::<Net, 2, 3, 4>::new([slot(mlp_blob(Loss::Mse)), ERASED]);
    assert_eq!(stage(&mut r, 0, &x), Ok(2));
    assert_eq!(
        classified(&mut r),
        Err(LinkError::Adapt(AdaptError::NotAClassifier))
    );
}
