//! The firmware under QEMU, on every emulated board (MPS2-AN386, Cortex-M4F with an FPU;
//! MPS2-AN505, Cortex-M33 with an FPU, in the secure state; LM3S6965EVB, Cortex-M3 with soft
//! float), driven over its UART like a host drives a board:
//!
//! - parity: on 50 held-out sinusoid tasks (K = 10) the firmware's predictions, adapted
//!   parameters and adaptation reports are bit-identical to the `device` crate compiled for the
//!   host (the sinusoid firmware's server in-process, `sinusoid_on_device::host_sim`); so are
//!   the fixed-point firmware's, and both firmwares' with an LSLR `w*` (α per layer and step);
//! - faults: a blank, missing, foreign or corrupt `w*`; truncated, garbage and overlong frames;
//!   NaN, out-of-range, wrongly sized and surplus samples; adaptation with no samples or past the trained
//!   steps. Each is answered with the typed refusal the link promises, and afterwards the
//!   firmware still serves (bit-identically to the host) and has not faulted: a panic or
//!   HardFault ends QEMU with exit code 1, and a hang fails the request after 30 s.
//!
//! Needs `qemu-system-arm` and the boards' Rust targets; the firmware is built once per board.

use std::time::Instant;

use device::{AdaptError, PushErrorKind, StepLimit};
use meta_train::eval::images_on_device::ClassifierFirmware;
use meta_train::eval::sinusoid_on_device::{check_serving, host_sim, DeviceTrace, TaskRun};
use meta_train::eval::{held_out, EvalConfig};
use meta_train::link::parity::{run_both, Parity};
mod common;

use common::{boot, boot_in, call, next_response, sinusoid_in, FIRMWARE_K};
use meta_train::link::qemu::{Emulated, Flash, Qemu};
use shared::catalogue::{Arithmetic, Firmware};
use shared::link::{put_floats, LinkError, Request, Response, Status, MAX_FRAME};
use shared::loss::Loss;
use shared::model::{Mlp1, Params, SinusoidNet};
use shared::slots::slot_image;
use shared::wstar::{encode, signature, Blob, BlobError, Meta};

/// A real Meta-SGD `w*` for the sinusoid net, trained for one inner step.
const BLOB: &[u8] = include_bytes!("../fixtures/metasgd-sinusoid-k10.bin");
/// A real LSLR `w*` for the sinusoid net (format version 2): five trained inner steps, one
/// learned step size per layer and step.
const LSLR: &[u8] = include_bytes!("../fixtures/lslr-sinusoid-k10.bin");
fn status(q: &mut Qemu) -> Status {
    match call(q, &Request::Status) {
        Response::Status(s) => s,
        r => panic!("Status answered {r:?}"),
    }
}

/// Pushes the sample `(x, y)`, each as many floats as given.
fn push(q: &mut Qemu, x: &[f32], y: &[f32]) -> Response<'static> {
    let (mut xb, mut yb) = ([0u8; 16], [0u8; 16]);
    let req = Request::Push {
        x: put_floats(x, &mut xb),
        y: put_floats(y, &mut yb),
    };
    call(q, &req)
}

/// The request as the frame the host sends: COBS-encoded, delimiter last.
fn frame(req: &Request<'_>) -> Vec<u8> {
    postcard::to_allocvec_cobs(req).expect("a request encodes")
}

/// Whether `bytes` (a frame, delimiter included) decodes as a request, exactly as the
/// firmware's `postcard` decodes it.
fn decodes(bytes: &[u8]) -> bool {
    let mut copy = bytes.to_vec();
    postcard::from_bytes_cobs::<Request<'_>>(&mut copy).is_ok()
}

/// Fails if QEMU has exited: the firmware exits with code 1 on a panic or a HardFault.
fn not_faulted(q: &mut Qemu) {
    let exited = q.exited().expect("QEMU's status");
    assert!(
        exited.is_none(),
        "{}: QEMU exited ({exited:?}); the firmware's log:\n  {}",
        q.board().name,
        q.logs().unwrap_or_default().join("\n  ")
    );
}

/// Fails unless the sinusoid firmware serves the fixture `w*` bit-identically to the host
/// simulation (a whole held-out task: clear, reset, push, adapt, predict, read the
/// parameters) and has not faulted.
fn still_serves(q: &mut Qemu) {
    still_serves_as(q, &Firmware::SINUSOID);
}

/// [`still_serves`] for a firmware built as `firmware`.
fn still_serves_as(q: &mut Qemu, firmware: &Firmware) {
    let name = q.board().name;
    let cfg = EvalConfig {
        tasks: 1,
        seed: 11,
        test_points: 3,
    };
    let image = slot_image(BLOB, 1);
    let mut sim = host_sim(firmware, &image).expect("the fixture loads");
    let mut parity = Parity::default();
    let mut task = TaskRun(held_out(&cfg, 0, FIRMWARE_K));
    let (on_device, on_host) = run_both(&mut task, q.link(), &mut sim, &mut parity)
        .unwrap_or_else(|e| panic!("{name}: no longer serving: {e:#}"));
    assert!(
        parity.holds(),
        "{name}: after the fault the firmware no longer matches the host: {}",
        difference(&on_device, &on_host)
    );
    not_faulted(q);
}

/// Where two traces differ, in words.
fn difference(device: &DeviceTrace, host: &DeviceTrace) -> String {
    let prediction = device
        .predictions
        .iter()
        .zip(&host.predictions)
        .position(|(a, b)| a != b);
    let params = device
        .params
        .iter()
        .zip(&host.params)
        .filter(|(a, b)| a != b)
        .count();
    format!(
        "{} vs {} predictions, first differing at {prediction:?}; {params} of {} parameters \
         differ; reports on the device {:?}, on the host {:?}",
        device.predictions.len(),
        host.predictions.len(),
        device.params.len(),
        device.reports,
        host.reports
    )
}

/// Deterministic pseudo-random bytes (xorshift64*), none of them zero.
struct NonZeroBytes(u64);

impl NonZeroBytes {
    fn next(&mut self) -> u8 {
        loop {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let b = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
            if b != 0 {
                return b;
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next()).collect()
    }
}

#[test]
fn fifty_held_out_tasks_are_bit_identical_to_the_host_simulation() {
    let cfg = EvalConfig {
        tasks: 50,
        seed: 7,
        test_points: 20,
    };
    let theta0 = Blob::parse_for::<SinusoidNet, 1, 1>(BLOB).expect("the fixture parses");
    let theta0: Vec<u32> = (0..<SinusoidNet>::PARAMS)
        .map(|k| theta0.theta0(k).to_bits())
        .collect();
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        check_serving(q.link()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let image = slot_image(BLOB, 1);
        let mut sim = host_sim(&Firmware::SINUSOID, &image).expect("the fixture loads");
        let start = Instant::now();
        let (mut moved, mut guarded) = (0, 0);
        let mut parity = Parity::default();
        for i in 0..cfg.tasks {
            let mut task = TaskRun(held_out(&cfg, i, FIRMWARE_K));
            let (on_device, on_host) = run_both(&mut task, q.link(), &mut sim, &mut parity)
                .unwrap_or_else(|e| panic!("{name}: task {i}: {e:#}"));
            // One single prediction (for its instruction count), then the batches.
            assert_eq!(on_device.predictions.len(), 1 + 4 * cfg.test_points);
            assert_eq!(on_device.params.len(), <SinusoidNet>::PARAMS);
            assert!(
                parity.holds(),
                "{name}: task {i} is not bit-identical to the host simulation: {}",
                difference(&on_device, &on_host)
            );
            // The timing call of no step, then the trained step ran on the device: the
            // parameters left θ0.
            assert_eq!(on_device.reports[0].steps, 0, "{name}: task {i}");
            assert_eq!(on_device.reports[1].steps, 1, "{name}: task {i}");
            moved += usize::from(on_device.params != theta0);
            guarded += usize::from(on_device.reports.iter().any(|r| r.cause.is_some()));
        }
        assert_eq!(moved, cfg.tasks, "{name}: adaptation moved every task");
        not_faulted(&mut q);
        eprintln!(
            "{name}: {} tasks bit-identical ({} predictions and {} parameters each; the guard \
             stopped {guarded}) in {:.1?}",
            cfg.tasks,
            4 * cfg.test_points,
            <SinusoidNet>::PARAMS,
            start.elapsed()
        );
    }
}

/// Runs `cfg`'s held-out tasks on `q` (booted with `blob` as `firmware`) and on its host
/// simulation; fails unless every task is bit-identical, and hands `check` each device trace.
fn tasks_match_the_host(
    q: &mut Qemu,
    firmware: &Firmware,
    blob: &[u8],
    cfg: &EvalConfig,
    mut check: impl FnMut(&DeviceTrace),
) {
    let name = q.board().name;
    let image = slot_image(blob, 1);
    let mut sim = host_sim(firmware, &image).expect("the blob loads");
    let mut parity = Parity::default();
    for i in 0..cfg.tasks {
        let mut task = TaskRun(held_out(cfg, i, FIRMWARE_K));
        let (on_device, on_host) = run_both(&mut task, q.link(), &mut sim, &mut parity)
            .unwrap_or_else(|e| panic!("{name} {firmware}: task {i}: {e:#}"));
        assert!(
            parity.holds(),
            "{name} {firmware}: task {i} differs from the host simulation: {}",
            difference(&on_device, &on_host)
        );
        check(&on_device);
    }
}

#[test]
fn a_per_layer_per_step_wstar_is_bit_identical_on_every_board_in_every_arithmetic() {
    // The firmware reads each step's α for each layer from flash, as the host does.
    let cfg = EvalConfig {
        tasks: 4,
        seed: 5,
        test_points: 10,
    };
    let steps = Blob::parse_for::<SinusoidNet, 1, 1>(LSLR)
        .expect("the fixture parses")
        .meta
        .steps;
    assert_eq!(steps, 5);
    for on in Emulated::ALL {
        let name = on.board().name;
        for arithmetic in Arithmetic::ALL {
            let firmware = sinusoid_in(arithmetic);
            let mut q = boot_in(on, arithmetic, Flash::Blob(LSLR));
            tasks_match_the_host(&mut q, &firmware, LSLR, &cfg, |on_device| {
                // After the timing call of no step, the five trained steps, taken as one and
                // then four (EVAL_STEPS 1, 5).
                let trained: u16 = on_device.reports[..3].iter().map(|r| r.steps).sum();
                assert_eq!(trained, steps, "{name} {firmware}: {:?}", on_device.reports);
            });
            not_faulted(&mut q);
        }
    }
}

#[test]
fn the_fixed_point_firmwares_are_bit_identical_to_their_host_simulation_and_survive_faults() {
    let cfg = EvalConfig {
        tasks: 20,
        seed: 7,
        test_points: 20,
    };
    // A w* whose θ0 leaves Q20's ±128 (and Q10H's ±32): the f32 firmware would serve it,
    // these refuse it.
    type Net = SinusoidNet;
    let meta = Meta::new::<Net, 1, 1>(Loss::Mse, 1);
    let mut theta = vec![0.01f32; <Net>::PARAMS];
    theta[5] = 300.0;
    let wide = encode(&meta, &theta, &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).expect("encodes");
    let out_of_range = Response::Error(LinkError::Push(PushErrorKind::OutOfRange));
    for arithmetic in [Arithmetic::Q20, Arithmetic::Q10H] {
        let firmware = sinusoid_in(arithmetic);
        // Targets whose squared errors (about y² before adapting) average within the format's
        // range, ±128 in Q20 and ±32 in Q10H, and targets beyond it, inside the samples'
        // accepted range (MAX_NORMALISED's 64 in Q20; Q10H refuses a sample beyond ±32,
        // which f32 and Q20 take).
        let (fits, beyond) = match arithmetic {
            Arithmetic::Q10H => (5.0, 30.0),
            _ => (10.0, 60.0),
        };
        for on in Emulated::ALL {
            let name = format!("{} {firmware}", on.board().name);
            let mut q = boot_in(on, arithmetic, Flash::Blob(BLOB));
            tasks_match_the_host(&mut q, &firmware, BLOB, &cfg, |_| {});
            // Samples the checks refuse as in f32.
            let non_finite = Response::Error(LinkError::Push(PushErrorKind::NonFinite));
            assert_eq!(push(&mut q, &[f32::NAN], &[1.0]), non_finite, "{name}");
            assert_eq!(push(&mut q, &[1e6], &[1.0]), out_of_range, "{name}");
            if arithmetic == Arithmetic::Q10H {
                assert_eq!(push(&mut q, &[40.0], &[1.0]), out_of_range, "{name}");
            }
            let adapt = Request::Adapt {
                steps: Some(1000),
                limit: StepLimit::Unchecked,
            };
            for edge in [fits, beyond] {
                assert_eq!(call(&mut q, &Request::ClearSamples), Response::Cleared);
                assert_eq!(call(&mut q, &Request::Reset), Response::Reset);
                for k in 0..FIRMWARE_K {
                    let x = k as f32 - 4.5;
                    let y = if k % 2 == 0 { edge } else { -edge };
                    assert_eq!(
                        push(&mut q, &[x], &[y]),
                        Response::Pushed {
                            samples: k as u16 + 1
                        },
                        "{name}"
                    );
                }
                // A thousand unchecked steps of the Meta-SGD w*'s large step sizes: whatever
                // saturates, the answer is a report with a finite loss (the guard undoes a
                // saturated step); a loss beyond the range from the start is the typed
                // refusal to adapt. Either way the firmware goes on serving.
                match call(&mut q, &adapt) {
                    Response::Adapted { report, .. } if edge == fits => {
                        assert!(report.loss_after.is_finite(), "{name}: {report:?}")
                    }
                    Response::Error(LinkError::Adapt(e)) if edge == beyond => {
                        assert_eq!(e, AdaptError::NonFiniteLoss, "{name}")
                    }
                    r => panic!("{name}: targets ±{edge}: Adapt answered {r:?}"),
                }
            }
            still_serves_as(&mut q, &firmware);
            drop(q);
            let mut q = boot_in(on, arithmetic, Flash::Blob(&wide));
            assert_eq!(
                status(&mut q).blob,
                Err(BlobError::OutOfRange { index: 5 }),
                "{name}"
            );
            not_faulted(&mut q);
        }
    }
}

#[test]
fn an_erased_or_missing_wstar_is_reported_by_every_request() {
    let erased = vec![0xFF; 4096];
    for on in Emulated::ALL {
        for (what, flash) in [
            ("erased", Flash::Slots([Some(&erased), Some(&erased)])),
            ("nothing flashed", Flash::Nothing),
        ] {
            let name = on.board().name;
            let mut q = boot(on, flash);
            let s = status(&mut q);
            assert_eq!(s.blob, Err(BlobError::Erased), "{name}, {what}");
            assert_eq!((s.capacity, s.samples), (FIRMWARE_K as u16, 0));

            let r = push(&mut q, &[0.5], &[1.0]);
            assert_eq!(
                r,
                Response::Error(LinkError::NoBlob(BlobError::Erased)),
                "{name}, {what}"
            );
            let Response::Error(e) = r else {
                unreachable!()
            };
            assert!(
                e.to_string().contains("no w* flashed"),
                "{name}, {what}: {e}"
            );
            let mut xb = [0u8; 4];
            for req in [
                Request::ClearSamples,
                Request::Reset,
                Request::Adapt {
                    steps: None,
                    limit: StepLimit::Trained,
                },
                Request::Predict {
                    x: put_floats(&[0.5], &mut xb),
                },
                Request::ReadParams {
                    offset: 0,
                    count: 1,
                },
            ] {
                assert_eq!(
                    call(&mut q, &req),
                    Response::Error(LinkError::NoBlob(BlobError::Erased)),
                    "{name}, {what}: {req:?}"
                );
            }
            // What needs no blob still works.
            match call(&mut q, &Request::Memory) {
                Response::Memory(m) => assert!(
                    0 < m.stack_peak && m.stack_peak <= m.stack_size,
                    "{name}, {what}: {m:?}"
                ),
                r => panic!("{name}, {what}: Memory answered {r:?}"),
            }
            assert_eq!(status(&mut q).blob, Err(BlobError::Erased));
            not_faulted(&mut q);
        }
    }
}

#[test]
fn a_wstar_for_another_model_shape_is_refused() {
    type Other = Mlp1<f32, 1, 8, 1>;
    let meta = Meta::new::<Other, 1, 1>(Loss::Mse, 1);
    let theta: Vec<f32> = (0..Other::PARAMS)
        .map(|k| ((k * 37 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let other = encode(&meta, &theta, &[0.05], &[0.0], &[1.0], &[0.0], &[1.0]).expect("encodes");
    let refused = BlobError::SignatureMismatch {
        expected: signature::<SinusoidNet, 1, 1>(),
        found: signature::<Other, 1, 1>(),
    };
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(&other));
        assert_eq!(status(&mut q).blob, Err(refused), "{name}");
        assert_eq!(
            push(&mut q, &[0.5], &[1.0]),
            Response::Error(LinkError::NoBlob(refused)),
            "{name}"
        );
        assert_eq!(status(&mut q).blob, Err(refused), "{name}");
        not_faulted(&mut q);
    }
}

#[test]
fn a_flipped_bit_in_the_wstar_fails_its_crc() {
    let mut corrupt = BLOB.to_vec();
    corrupt[100] ^= 1 << 3;
    let refused = Blob::parse_for::<SinusoidNet, 1, 1>(&corrupt).expect_err("corrupt");
    let stored = u32::from_le_bytes(BLOB[16..20].try_into().expect("4 bytes"));
    assert!(
        matches!(refused, BlobError::CrcMismatch { stored: s, computed } if s == stored && computed != stored),
        "{refused:?}"
    );
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(&corrupt));
        assert_eq!(status(&mut q).blob, Err(refused), "{name}");
        let mut xb = [0u8; 4];
        let predict = Request::Predict {
            x: put_floats(&[0.5], &mut xb),
        };
        assert_eq!(
            call(&mut q, &predict),
            Response::Error(LinkError::NoBlob(refused)),
            "{name}"
        );
        not_faulted(&mut q);
    }
}

#[test]
fn a_truncated_frame_is_refused_and_the_next_request_served() {
    let (mut xb, mut yb) = ([0u8; 4], [0u8; 4]);
    let whole = frame(&Request::Push {
        x: put_floats(&[1.25], &mut xb),
        y: put_floats(&[-0.75], &mut yb),
    });
    let mut truncated = whole[..whole.len() / 2].to_vec();
    truncated.push(0);
    assert!(!decodes(&truncated), "the truncated frame must not decode");
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        q.send_raw(&truncated).expect("send");
        assert_eq!(
            next_response(&mut q),
            Response::Error(LinkError::Frame),
            "{name}"
        );
        // Nothing of the half frame was taken.
        assert_eq!(status(&mut q).samples, 0, "{name}");
        // The whole frame, sent the same raw way, is taken.
        q.send_raw(&whole).expect("send");
        assert_eq!(
            next_response(&mut q),
            Response::Pushed { samples: 1 },
            "{name}"
        );
        still_serves(&mut q);
    }
}

#[test]
fn garbage_and_overlong_frames_are_refused_and_the_next_request_served() {
    let mut random = NonZeroBytes(0x9E37_79B9_7F4A_7C15);
    // Garbage of many lengths that does not decode as a request (checked with the firmware's
    // own decoder, so the expectation holds whatever the bytes).
    let mut garbage = Vec::new();
    while garbage.len() < 20 {
        let len = 1 + usize::from(random.next()) % 300;
        let mut g = random.take(len);
        g.push(0);
        if !decodes(&g) {
            garbage.push(g);
        }
    }
    let mut overlong = random.take(MAX_FRAME + 100);
    overlong.push(0);
    // The largest frame that fits (MAX_FRAME bytes with its delimiter), and one byte over.
    let mut largest = vec![0xFF; MAX_FRAME - 1];
    largest.push(0);
    assert!(!decodes(&largest));
    let mut one_over = vec![0xFF; MAX_FRAME];
    one_over.push(0);
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        for (i, g) in garbage.iter().enumerate() {
            q.send_raw(g).expect("send");
            assert_eq!(
                next_response(&mut q),
                Response::Error(LinkError::Frame),
                "{name}: garbage frame {i} ({} bytes)",
                g.len()
            );
        }
        q.send_raw(&overlong).expect("send");
        assert_eq!(
            next_response(&mut q),
            Response::Error(LinkError::TooLong),
            "{name}: {} bytes",
            overlong.len()
        );
        q.send_raw(&largest).expect("send");
        assert_eq!(
            next_response(&mut q),
            Response::Error(LinkError::Frame),
            "{name}: {} bytes",
            largest.len()
        );
        q.send_raw(&one_over).expect("send");
        assert_eq!(
            next_response(&mut q),
            Response::Error(LinkError::TooLong),
            "{name}: {} bytes",
            one_over.len()
        );
        // Lone delimiters are empty frames: no answer, so the next answer is Status's.
        q.send_raw(&[0, 0, 0]).expect("send");
        assert_eq!(status(&mut q).blob, Ok(signature::<SinusoidNet, 1, 1>()));
        still_serves(&mut q);
    }
}

#[test]
fn nan_and_wrongly_sized_samples_are_refused() {
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        let non_finite = Response::Error(LinkError::Push(PushErrorKind::NonFinite));
        assert_eq!(push(&mut q, &[f32::NAN], &[1.0]), non_finite, "{name}");
        assert_eq!(push(&mut q, &[0.5], &[f32::NAN]), non_finite, "{name}");
        assert_eq!(push(&mut q, &[f32::INFINITY], &[1.0]), non_finite, "{name}");
        // A glitched reading far outside the training data (the sinusoid w* stores identity
        // normalisation): refused too.
        assert_eq!(
            push(&mut q, &[1e6], &[1.0]),
            Response::Error(LinkError::Push(PushErrorKind::OutOfRange)),
            "{name}"
        );
        assert_eq!(
            push(&mut q, &[0.5, 0.25], &[1.0]),
            Response::Error(LinkError::Length {
                expected: 1,
                found: 2
            }),
            "{name}"
        );
        assert_eq!(
            push(&mut q, &[0.5], &[]),
            Response::Error(LinkError::Length {
                expected: 1,
                found: 0
            }),
            "{name}"
        );
        let mut xb = [0u8; 8];
        let predict = Request::Predict {
            x: put_floats(&[0.5, 0.25], &mut xb),
        };
        assert_eq!(
            call(&mut q, &predict),
            Response::Error(LinkError::Length {
                expected: 1,
                found: 2
            }),
            "{name}"
        );
        let predict = Request::Predict {
            x: put_floats(&[f32::NAN], &mut xb),
        };
        assert_eq!(
            call(&mut q, &predict),
            Response::Error(LinkError::Adapt(AdaptError::NonFiniteInput)),
            "{name}"
        );
        assert_eq!(
            status(&mut q).samples,
            0,
            "{name}: no refused sample was taken"
        );
        still_serves(&mut q);
    }
}

#[test]
fn a_sample_beyond_capacity_is_refused() {
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        assert_eq!(status(&mut q).capacity, FIRMWARE_K as u16);
        for k in 1..=FIRMWARE_K {
            let x = k as f32 / 4.0 - 1.0;
            assert_eq!(
                push(&mut q, &[x], &[x.sin()]),
                Response::Pushed { samples: k as u16 },
                "{name}"
            );
        }
        assert_eq!(
            push(&mut q, &[0.5], &[0.5]),
            Response::Error(LinkError::Push(PushErrorKind::Full)),
            "{name}"
        );
        assert_eq!(status(&mut q).samples, FIRMWARE_K as u16, "{name}");
        // A full buffer adapts.
        match call(
            &mut q,
            &Request::Adapt {
                steps: None,
                limit: StepLimit::Trained,
            },
        ) {
            Response::Adapted { report, .. } => assert_eq!(report.steps, 1, "{name}"),
            r => panic!("{name}: Adapt answered {r:?}"),
        }
        assert_eq!(call(&mut q, &Request::ClearSamples), Response::Cleared);
        assert_eq!(
            push(&mut q, &[0.5], &[0.5]),
            Response::Pushed { samples: 1 },
            "{name}: room again after ClearSamples"
        );
        still_serves(&mut q);
    }
}

#[test]
fn adapting_with_no_samples_or_past_the_trained_steps_is_refused() {
    let trained = Blob::parse(BLOB).expect("the fixture parses").meta.steps;
    assert_eq!(trained, 1, "the fixture is trained for one inner step");
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot(on, Flash::Blob(BLOB));
        for steps in [None, Some(1)] {
            for limit in [StepLimit::Trained, StepLimit::Unchecked] {
                assert_eq!(
                    call(&mut q, &Request::Adapt { steps, limit }),
                    Response::Error(LinkError::Adapt(AdaptError::NoSamples)),
                    "{name}: {steps:?} {limit:?}"
                );
            }
        }
        for k in 0..FIRMWARE_K {
            let x = k as f32 / 2.0 - 2.5;
            assert_eq!(
                push(&mut q, &[x], &[2.0 * x.sin()]),
                Response::Pushed {
                    samples: k as u16 + 1
                }
            );
        }
        let past = Response::Error(LinkError::Adapt(AdaptError::TooManySteps {
            requested: 5,
            allowed: trained,
        }));
        let five = Request::Adapt {
            steps: Some(5),
            limit: StepLimit::Trained,
        };
        assert_eq!(call(&mut q, &five), past, "{name}");
        assert_eq!(status(&mut q).steps_since_reset, 0, "{name}: nothing ran");
        // The trained step runs; one more is past them.
        match call(
            &mut q,
            &Request::Adapt {
                steps: None,
                limit: StepLimit::Trained,
            },
        ) {
            Response::Adapted { report, .. } => assert_eq!(report.steps, trained, "{name}"),
            r => panic!("{name}: Adapt answered {r:?}"),
        }
        assert_eq!(
            call(
                &mut q,
                &Request::Adapt {
                    steps: Some(1),
                    limit: StepLimit::Trained,
                }
            ),
            Response::Error(LinkError::Adapt(AdaptError::TooManySteps {
                requested: u32::from(trained) + 1,
                allowed: trained,
            })),
            "{name}"
        );
        assert_eq!(
            status(&mut q).steps_since_reset,
            u32::from(trained),
            "{name}"
        );
        // After a reset the count starts again.
        assert_eq!(call(&mut q, &Request::Reset), Response::Reset);
        assert_eq!(call(&mut q, &five), past, "{name}");
        still_serves(&mut q);
    }
}

#[test]
fn the_servers_start_in_zeroed_ram_not_in_a_flash_image() {
    // A server with no w* is all zero bytes, so its `static` is in `.bss`: `.data` would
    // cost its whole size twice, in RAM and again in flash for the initial image.
    let elfs = Emulated::ALL
        .iter()
        .map(|&on| (on.board().name.to_string(), common::firmware(on)))
        .chain(ClassifierFirmware::ALL.map(|f| {
            (
                format!("mps2-an386 {:?}", f.firmware),
                common::classifier_firmware(f),
            )
        }));
    for (name, elf) in elfs {
        let sizes = meta_train::link::firmware::elf_sizes(&std::fs::read(elf).unwrap()).unwrap();
        assert!(sizes.initialised < 1024, "{name}: {sizes:?}");
        assert!(
            sizes.static_ram > 20_000,
            "{name}: the server is not counted: {sizes:?}"
        );
    }
}

#[test]
fn the_sinusoid_evaluation_runs_over_a_serial_port() {
    // The path a board on a USB-serial port takes: the firmware's UART on a pseudo-terminal,
    // opened like /dev/ttyACM0; every answer compared with the host simulation.
    let (_qemu, pty) = Qemu::boot_on_pty(
        Emulated::An386,
        common::firmware(Emulated::An386),
        Flash::Blob(BLOB),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let port = pty.canonicalize().expect("the terminal's path");
    let port = port.to_str().expect("a UTF-8 path");
    let cfg = EvalConfig {
        tasks: 3,
        seed: 5,
        test_points: 10,
    };
    let on = meta_train::link::On::Serial(port.into());
    let (r, logs) =
        meta_train::eval::sinusoid_on_device::evaluate(&on, Arithmetic::F32, None, BLOB, &cfg)
            .unwrap_or_else(|e| panic!("{e:#}"));
    println!("{}", meta_train::eval::sinusoid_on_device::report(&r, &cfg));
    assert!(r.parity.holds(), "{}", r.parity.verdict());
    assert_eq!(r.parity.runs, 2 * cfg.tasks);
    assert_eq!(r.board, port);
    // Over a serial port the host cannot turn ticks into instructions, and has no log.
    assert!(!r.cost.instructions && r.cost.per_prediction.is_some());
    assert!(logs.is_empty());
}
