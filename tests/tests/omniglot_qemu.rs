//! The Omniglot image classifier firmwares under QEMU on the MPS2-AN386 (Cortex-M4F), driven
//! over its UART with images staged in parts:
//!
//! - parity: on 5-way episodes of real Omniglot images (`images_background_small2.zip`), half
//!   1-shot and half 5-shot, the firmware's adaptation reports, adapted head parameters, query
//!   labels and every score are bit-identical to `device::ImageClassifier` compiled for the
//!   host; the instruction counts, RAM and flash are printed;
//! - the same for the 20-way firmware on 20-way 1-shot episodes within one alphabet;
//! - faults: a head-only (sinusoid) `w*` is refused in `Status`; a staged image of the wrong
//!   length, out of order, partial, stale or with a NaN pixel, a label outside the classes and
//!   raw vectors too short for an image are refused with their typed errors; afterwards the
//!   firmware serves a whole episode bit-exactly and has not faulted.
//!
//! Needs `qemu-system-arm`, the thumbv7em target and the Omniglot data (`OMNIGLOT_DIR`, by
//! default `../shared/data/omniglot` from the repository).

use std::sync::OnceLock;
use std::time::Instant;

use device::PushErrorKind;
use meta_train::eval::images_on_device::{
    evaluate, evaluate_on, host_classifier, parity_episodes, report, ClassifierFirmware,
    EpisodeRun, OmniglotOnDevice, OnBoard, PIXELS,
};
use meta_train::link::parity::{run_both, Parity};
use meta_train::link::qemu::{Emulated, Flash, Qemu};
use meta_train::link::On;
use meta_train::tasks::episodes::Episode;
use meta_train::tasks::omniglot::Omniglot;
use meta_train::train::images::{FewShotCheckpoint, FewShotConfig};
use shared::body::{Views, SHIFTS};
use shared::catalogue::Arithmetic;
use shared::link::{put_floats, LinkError, Request, Response, Status, STAGE_PER_FRAME};
use shared::report::AdaptError;
use shared::wstar::{BlobError, HeadStart};

mod common;
use common::{boot_classifier, boot_omniglot, call, classifier_firmware};
use tinyadapt_tests::omniglot_dir;

/// Episodes compared bit for bit: half 1-shot, half 5-shot.
const EPISODES: u64 = 20;
/// Query images per class.
const QUERIES: usize = 2;
/// 20-way 1-shot episodes compared bit for bit (each 40 body passes in the firmware with
/// [`QUERIES_20`]: about 4 s).
const EPISODES_20: u64 = 4;
/// Query images per class in the 20-way episodes.
const QUERIES_20: usize = 1;

/// A real Meta-SGD `w*` for the sinusoid net: a head-only blob, no body.
const SINUSOID: &[u8] = include_bytes!("../fixtures/metasgd-sinusoid-k10.bin");

/// `images_background_small2`, loaded once.
fn omniglot() -> &'static Omniglot {
    static SET: OnceLock<Omniglot> = OnceLock::new();
    SET.get_or_init(|| {
        let p = omniglot_dir().join("images_background_small2.zip");
        Omniglot::load(&p).unwrap_or_else(|e| panic!("{}: {e:#} (set OMNIGLOT_DIR)", p.display()))
    })
}

/// A 5-way classifier `w*`: a He-initialised body and a zero head (parity needs real
/// arithmetic, not a trained model).
fn blob() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1))
            .blob::<5>()
            .expect("the classifier blob encodes")
    })
}

/// A 20-way classifier `w*` whose head starts from the class prototypes: the same
/// He-initialised body, and a head made non-trivial by the support set's class means (as
/// `a_prototype_started_head_matches_the_host_on_an386` does for 5 classes).
fn blob20() -> &'static [u8] {
    static BLOB: OnceLock<Vec<u8>> = OnceLock::new();
    BLOB.get_or_init(|| {
        let mut config = FewShotConfig::omniglot(20, 1);
        config.start = HeadStart::Prototypes;
        FewShotCheckpoint::new(&config)
            .blob::<20>()
            .expect("the classifier blob encodes")
    })
}

/// `count` parity episodes for `firmware`, `queries` query images per class.
fn episodes_for(
    firmware: ClassifierFirmware,
    count: u64,
    seed: u64,
    queries: usize,
) -> Vec<Episode> {
    parity_episodes(&omniglot().characters, count, seed, queries)
        .and_then(|p| p.for_firmware(firmware))
        .expect("episodes")
}

fn episodes(count: u64, seed: u64) -> Vec<Episode> {
    episodes_for(ClassifierFirmware::FIVE_WAY, count, seed, QUERIES)
}

fn status(q: &mut Qemu) -> Status {
    q.link()
        .status()
        .unwrap_or_else(|e| panic!("Status: {e:#}"))
}

/// Stages `values` from `offset` in one request.
fn stage(q: &mut Qemu, offset: u16, values: &[f32]) -> Response<'static> {
    let mut bytes = vec![0u8; 4 * values.len()];
    call(
        q,
        &Request::Stage {
            offset,
            values: put_floats(values, &mut bytes),
        },
    )
}

fn stage_error(filled: u16) -> Response<'static> {
    Response::Error(LinkError::Stage {
        filled,
        expected: PIXELS as u16,
    })
}

/// Fails if QEMU has exited: the firmware exits with code 1 on a panic or a HardFault.
fn not_faulted(q: &mut Qemu) {
    let exited = q.exited().expect("QEMU's status");
    assert!(
        exited.is_none(),
        "QEMU exited ({exited:?}); the firmware's log:\n  {}",
        q.logs().unwrap_or_default().join("\n  ")
    );
}

/// Fails unless the firmware serves a whole 5-shot episode bit-identically to the host.
fn still_serves(q: &mut Qemu) {
    let e = &episodes(2, 7)[1];
    let image = shared::slots::slot_image(blob(), 1);
    let (_, mut host) = host_classifier(&image, Arithmetic::F32).expect("the blob loads");
    let mut parity = Parity::default();
    run_both(&mut EpisodeRun(e), q.link(), &mut host, &mut parity)
        .unwrap_or_else(|e| panic!("no longer serving: {e:#}"));
    assert!(
        parity.holds(),
        "after the faults the firmware no longer matches the host: {}",
        parity.verdict()
    );
    not_faulted(q);
}

/// Boots the blob's firmware with `blob` flashed, runs `eps` in it and on the host, prints
/// the report, and fails unless every episode is bit-identical.
fn run_in_firmware(blob: &[u8], eps: &[Episode]) -> (Qemu, OmniglotOnDevice) {
    run_in_firmware_in(Arithmetic::F32, blob, eps)
}

/// [`run_in_firmware`] with the firmware's head in `arithmetic`.
fn run_in_firmware_in(
    arithmetic: Arithmetic,
    blob: &[u8],
    eps: &[Episode],
) -> (Qemu, OmniglotOnDevice) {
    let firmware = ClassifierFirmware::for_blob(blob)
        .and_then(|f| f.in_arithmetic(arithmetic))
        .expect("a classifier blob");
    let mut q = boot_classifier(firmware, Flash::Blob(blob));
    let at = OnBoard {
        name: q.board().name,
        elf: Some(classifier_firmware(firmware)),
        ram: Some(u64::from(q.board().ram.length)),
    };
    let r = evaluate_on(q.link(), &at, arithmetic, blob, eps, |_| {})
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("{}", report(&r));
    assert!(r.parity.holds(), "{}", r.parity.link.verdict());
    (q, r)
}

#[test]
fn omniglot_parity_on_an386() {
    let t = Instant::now();
    let eps = episodes(EPISODES, 0);
    let blob = blob();
    println!(
        "{} episodes and a {}-byte w* in {:.1?}",
        eps.len(),
        blob.len(),
        t.elapsed()
    );
    let (mut q, r) = run_in_firmware(blob, &eps);
    println!("in {:.1?}", t.elapsed());
    let p = &r.parity;
    assert_eq!((p.one_shot, p.five_shot), (10, 10));
    assert_eq!(p.queries, EPISODES as usize * 5 * QUERIES);
    // Every measurement was taken, and the RAM fits the board with room to spare.
    for i in [
        &r.adapt_one_shot,
        &r.adapt_five_shot,
        &r.per_push,
        &r.per_classification,
    ] {
        assert!(i.count > 0 && i.min > 0, "{i:?}");
    }
    let ram = r.ram().expect("the ELF's sizes");
    assert!(
        ram < r.board_ram.expect("an emulated board") / 2,
        "{ram} B of RAM"
    );
    not_faulted(&mut q);
}

#[test]
fn omniglot20_parity_on_an386() {
    let t = Instant::now();
    let firmware = ClassifierFirmware::TWENTY_WAY;
    let eps = episodes_for(firmware, EPISODES_20, 0, QUERIES_20);
    let blob = blob20();
    let (mut q, r) = run_in_firmware(blob, &eps);
    println!("{} 20-way episodes in {:.1?}", eps.len(), t.elapsed());
    let p = &r.parity;
    assert_eq!((p.way, p.link.runs), (20, EPISODES_20 as usize));
    assert_eq!((p.one_shot, p.five_shot), (EPISODES_20 as usize, 0));
    assert_eq!(p.queries, EPISODES_20 as usize * 20 * QUERIES_20);
    assert_eq!(p.params, EPISODES_20 as usize * firmware.params());
    assert_eq!(r.capacity, 20);
    for i in [&r.adapt_one_shot, &r.per_push, &r.per_classification] {
        assert!(i.count > 0 && i.min > 0, "{i:?}");
    }
    assert_eq!(r.adapt_five_shot.count, 0);
    // The class means of an untrained body beat chance (5%) within one alphabet: the 20 rows'
    // start took effect.
    assert!(r.accuracy > 0.1, "{}", r.accuracy);
    // Adaptation, inference of the body included, fits a 64 KiB part (the AN386 has more).
    let ram = r.ram().expect("the ELF's sizes");
    assert!(ram <= 64 * 1024, "{ram} B of RAM");
    not_faulted(&mut q);
}

#[test]
fn a_prototype_started_head_matches_the_host_on_an386() {
    // The same body with FLAG_PROTOTYPES: the firmware adds the class means to the head
    // before its steps, and must do it bit for bit as the host does.
    prototype_head_matches_the_host(Arithmetic::F32, 6);
}

#[test]
fn a_fixed_point_head_matches_the_host_on_an386() {
    // The head in q20 and in q10h (the firmwares for a core without an FPU), the body in f32:
    // the features are converted once per image, and the head adapts and classifies in
    // integers (its logits and prototype biases centred, beyond Q10H's ±32), bit for bit as
    // the host's simulation does.
    for arithmetic in [Arithmetic::Q20, Arithmetic::Q10H] {
        prototype_head_matches_the_host(arithmetic, 3);
    }
}

/// Runs `count` episodes of a prototype-started blob in the classifier firmware whose head
/// computes in `arithmetic`; fails unless they match the host and the start took effect.
fn prototype_head_matches_the_host(arithmetic: Arithmetic, count: u64) {
    let mut config = FewShotConfig::omniglot(5, 1);
    config.start = HeadStart::Prototypes;
    let blob = FewShotCheckpoint::new(&config)
        .blob::<5>()
        .expect("the classifier blob encodes");
    let (mut q, r) = run_in_firmware_in(arithmetic, &blob, &episodes(count, 3));
    let firmware = ClassifierFirmware::FIVE_WAY
        .in_arithmetic(arithmetic)
        .expect("it fits");
    assert_eq!(r.firmware, firmware.firmware.to_string());
    assert_eq!(r.parity.link.runs, count as usize);
    // Class means of an untrained body already beat chance (20%): the start took effect.
    assert!(r.accuracy > 0.3, "{}", r.accuracy);
    not_faulted(&mut q);
}

#[test]
fn shifted_views_match_the_host_on_an386() {
    // FLAG_SHIFTED_VIEWS: the firmware averages the body's features over the shifted views
    // of every image, pushed or classified, and must do it bit for bit as the host does.
    let mut config = FewShotConfig::omniglot(5, 1);
    config.start = HeadStart::Prototypes;
    let blob = FewShotCheckpoint::new(&config)
        .blob_viewing::<5>(Views::Shifted)
        .expect("the classifier blob encodes");
    let (mut q, r) = run_in_firmware(&blob, &episodes(2, 5));
    assert_eq!(r.parity.link.runs, 2);
    // One image in costs a body pass per view.
    let single = run_in_firmware(
        &FewShotCheckpoint::new(&config)
            .blob::<5>()
            .expect("encodes"),
        &episodes(1, 5),
    )
    .1;
    let ratio = r.per_classification.min as f64 / single.per_classification.min as f64;
    assert!(
        (SHIFTS.len() as f64 - 0.5..SHIFTS.len() as f64 + 0.5).contains(&ratio),
        "{ratio}"
    );
    not_faulted(&mut q);
}

#[test]
fn omniglot_faults_on_an386() {
    // A head-only blob: refused in Status, and requests that need one get the reason.
    let mut q = boot_omniglot(Flash::Blob(SINUSOID));
    let s = status(&mut q);
    assert!(
        matches!(s.blob, Err(BlobError::SignatureMismatch { .. })),
        "{s:?}"
    );
    assert_eq!(s.slot, None);
    assert_eq!(
        (s.inputs, s.features, s.outputs, s.capacity),
        (784, 128, 5, 25)
    );
    assert_eq!(
        call(&mut q, &Request::PushStaged { label: 0 }),
        Response::Error(LinkError::NoBlob(s.blob.unwrap_err()))
    );
    not_faulted(&mut q);
    drop(q);

    let mut q = boot_omniglot(Flash::Blob(blob()));
    let s = status(&mut q);
    assert!(s.blob.is_ok(), "{s:?}");
    assert_eq!(s.body_params, 23_296);
    assert_eq!(s.params, 128 * 5 + 5);
    let e = &episodes(1, 3)[0];
    let image = &e.support[0].0;
    let part = usize::from(STAGE_PER_FRAME);

    // Out of order: a part that does not continue the stage.
    assert_eq!(stage(&mut q, 112, &image[..part]), stage_error(0));
    // A partial value.
    let r = call(
        &mut q,
        &Request::Stage {
            offset: 0,
            values: &[0u8; 5],
        },
    );
    assert_eq!(r, stage_error(0));
    // Past the image's end.
    assert_eq!(
        stage(&mut q, 0, &image[..part]),
        Response::Staged { filled: 112 }
    );
    let over = vec![0.5f32; 100];
    for k in 1..7 {
        let at = k * part;
        assert_eq!(
            stage(&mut q, at as u16, &image[at..at + part]),
            Response::Staged {
                filled: (at + part) as u16
            }
        );
    }
    assert_eq!(stage(&mut q, 784, &over), stage_error(784));
    // A partial stage is refused, and consumed.
    assert_eq!(
        stage(&mut q, 0, &image[..part]),
        Response::Staged { filled: 112 }
    );
    assert_eq!(status(&mut q).staged, 112);
    assert_eq!(
        call(&mut q, &Request::PushStaged { label: 0 }),
        stage_error(112)
    );
    assert_eq!(status(&mut q).staged, 0);
    // A stale stage: a used image cannot be used again.
    q.link().stage(image).unwrap();
    let mut buf = Vec::new();
    let first = q.call(&Request::ClassifyStaged, &mut buf).unwrap();
    assert!(matches!(first, Response::Classified { .. }), "{first:?}");
    assert_eq!(call(&mut q, &Request::ClassifyStaged), stage_error(0));
    // A NaN pixel.
    let mut nan = image.clone();
    nan[400] = f32::NAN;
    q.link().stage(&nan).unwrap();
    assert_eq!(
        call(&mut q, &Request::PushStaged { label: 1 }),
        Response::Error(LinkError::Push(PushErrorKind::NonFinite))
    );
    q.link().stage(&nan).unwrap();
    assert_eq!(
        call(&mut q, &Request::ClassifyStaged),
        Response::Error(LinkError::Adapt(AdaptError::NonFiniteInput))
    );
    // A label outside the classes.
    q.link().stage(image).unwrap();
    assert_eq!(
        call(&mut q, &Request::PushStaged { label: 5 }),
        Response::Error(LinkError::Push(PushErrorKind::Shape))
    );
    // Raw vectors cannot carry an image.
    let (mut xb, mut yb) = ([0u8; 4], [0u8; 20]);
    let push = Request::Push {
        x: put_floats(&[0.5], &mut xb),
        y: put_floats(&[1.0, 0.0, 0.0, 0.0, 0.0], &mut yb),
    };
    assert_eq!(
        call(&mut q, &push),
        Response::Error(LinkError::Length {
            expected: 784,
            found: 1
        })
    );
    let predict = Request::Predict { x: &xb };
    assert_eq!(
        call(&mut q, &predict),
        Response::Error(LinkError::Length {
            expected: 784,
            found: 1
        })
    );
    // Nothing was taken.
    assert_eq!(status(&mut q).samples, 0);
    not_faulted(&mut q);
    still_serves(&mut q);
}

#[test]
fn the_omniglot_evaluation_runs_over_a_serial_port() {
    // The classifier firmware's UART on a pseudo-terminal, opened like a board's port.
    let firmware = ClassifierFirmware::FIVE_WAY;
    let (_qemu, pty) = Qemu::boot_on_pty(
        Emulated::An386,
        classifier_firmware(firmware),
        Flash::Blob(blob()),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let port = pty.canonicalize().expect("the terminal's path");
    let on = On::Serial(port.to_str().expect("a UTF-8 path").into());
    let episodes = parity_episodes(&omniglot().characters, 2, 0, 1).expect("episodes");
    let r = evaluate(&on, Arithmetic::F32, None, blob(), &episodes, |_| {})
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("{}", report(&r));
    assert!(r.parity.holds(), "{}", r.parity.link.verdict());
    assert_eq!((r.parity.one_shot, r.parity.five_shot), (1, 1));
    // No ELF and no board description at hand: sizes unknown, ticks rather than instructions.
    assert_eq!(
        (r.code_flash, r.board_ram, r.instructions),
        (None, None, false)
    );
    assert!(r.per_classification.count > 0);
}
