//! Two `w*` slots under QEMU, on every emulated board: the firmware serves the newest slot
//! whose blob passes every check and falls back to the other, says why it refused a slot, and
//! survives bit flips injected into the active slot's flash through the debug port (QEMU's GDB
//! stub, what a probe is on hardware) without a fault or a hang.

use std::time::Instant;

use meta_train::eval::sinusoid_on_device::{host_sim, TaskRun};
use meta_train::eval::{held_out, EvalConfig};
use meta_train::link::parity::{run_both, Parity};
mod common;

use common::{boot, FIRMWARE_K};
use meta_train::link::qemu::{Emulated, Flash, Qemu};
use rand::{Rng, SeedableRng};
use shared::catalogue::Firmware;
use shared::link::{Request, Response, Status};
use shared::model::SinusoidNet;
use shared::slots::{select, slot_image, SLOT_HEADER_LEN};
use shared::wstar::BlobError;

/// A real Meta-SGD `w*` for the sinusoid net.
const BLOB: &[u8] = include_bytes!("../fixtures/metasgd-sinusoid-k10.bin");

fn boot_slots(on: Emulated, a: Option<&[u8]>, b: Option<&[u8]>) -> Qemu {
    boot(on, Flash::Slots([a, b]))
}

fn status_after(q: &mut Qemu, req: &Request<'_>) -> Status {
    let mut buf = Vec::new();
    match q.call(req, &mut buf).unwrap_or_else(|e| panic!("{e:#}")) {
        Response::Status(s) => s,
        r => panic!("{req:?}: expected Status, got {r:?}"),
    }
}

/// One held-out task run on the device must match the host simulation bit for bit.
fn serves_bit_exactly(q: &mut Qemu, task: usize) {
    let cfg = EvalConfig {
        tasks: task + 1,
        seed: 11,
        test_points: 8,
    };
    let image = shared::slots::slot_image(BLOB, 1);
    let mut parity = Parity::default();
    run_both(
        &mut TaskRun(held_out(&cfg, task, FIRMWARE_K)),
        q.link(),
        &mut host_sim(&Firmware::SINUSOID, &image).unwrap(),
        &mut parity,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        parity.holds(),
        "task {task} differs from the host simulation: {}",
        parity.verdict()
    );
    assert!(
        q.exited().unwrap().is_none(),
        "QEMU exited: the firmware faulted"
    );
}

#[test]
fn a_corrupt_newer_slot_is_refused_and_the_older_one_serves() {
    let a = slot_image(BLOB, 1);
    let mut b = slot_image(BLOB, 2);
    b[SLOT_HEADER_LEN + 500] ^= 0x04; // one bit of B's payload
    for on in Emulated::ALL {
        let mut q = boot_slots(on, Some(&a), Some(&b));
        let s = status_after(&mut q, &Request::Status);
        assert_eq!(
            (s.slot, s.generation),
            (Some(0), 1),
            "{}: A serves",
            on.board().name
        );
        assert!(s.blob.is_ok());
        assert!(
            matches!(s.refused[1], Some(BlobError::CrcMismatch { .. })),
            "{}: B refused for its CRC, got {:?}",
            on.board().name,
            s.refused
        );
        assert_eq!(s.refused[0], None);
        serves_bit_exactly(&mut q, 0);
    }
}

#[test]
fn the_newest_valid_slot_serves_and_an_update_is_picked_up_by_rescan() {
    for on in Emulated::ALL {
        // B is newer and valid: it serves.
        let mut q = boot_slots(on, Some(&slot_image(BLOB, 3)), Some(&slot_image(BLOB, 4)));
        let s = status_after(&mut q, &Request::Status);
        assert_eq!(
            (s.slot, s.generation, s.refused),
            (Some(1), 4, [None, None])
        );
        // An update written to the inactive slot A with a higher generation, then Rescan.
        let slot_a = on.board().slot(0).origin;
        q.write_memory(slot_a, &slot_image(BLOB, 5)).unwrap();
        let s = status_after(&mut q, &Request::Rescan);
        assert_eq!((s.slot, s.generation), (Some(0), 5), "{}", on.board().name);
        // A bad update (erased header) in A: B serves again and A's refusal is reported.
        q.write_memory(slot_a, &[0xFF; SLOT_HEADER_LEN]).unwrap();
        let s = status_after(&mut q, &Request::Rescan);
        assert_eq!((s.slot, s.generation), (Some(1), 4));
        assert_eq!(s.refused[0], Some(BlobError::Erased));
        serves_bit_exactly(&mut q, 1);
        // Both slots bad: nothing serves, and every request says why.
        q.write_memory(on.board().slot(1).origin, b"junk").unwrap();
        let s = status_after(&mut q, &Request::Rescan);
        assert_eq!(s.slot, None);
        assert_eq!(
            s.refused,
            [Some(BlobError::Erased), Some(BlobError::BadMagic)]
        );
        let mut buf = Vec::new();
        let r = q.call(&Request::Reset, &mut buf).unwrap();
        assert!(
            matches!(
                r,
                Response::Error(shared::link::LinkError::NoBlob(BlobError::Erased))
            ),
            "{r:?}"
        );
    }
}

/// 2,000 seeded single-bit flips of the active slot (slot header and blob), each written into
/// the board's flash through the debug port and followed by `Rescan`: every one is refused
/// with the error the host's checker gives for the same bytes, the older slot serves, and the
/// firmware never faults or hangs. Every 250th flip a whole task is served bit-exactly.
#[test]
fn two_thousand_bit_flips_in_the_active_slot_fall_back_to_the_other() {
    const FLIPS: usize = 2_000;
    let a = slot_image(BLOB, 1);
    let b = slot_image(BLOB, 2);
    for on in Emulated::ALL {
        let name = on.board().name;
        let mut q = boot_slots(on, Some(&a), Some(&b));
        assert_eq!(status_after(&mut q, &Request::Status).slot, Some(1));
        let base = on.board().slot(1).origin;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
        let start = Instant::now();
        let mut errors = std::collections::BTreeMap::<String, usize>::new();
        for n in 0..FLIPS {
            let bit = rng.gen_range(0..8 * b.len());
            let (byte, mask) = (bit / 8, 1u8 << (bit % 8));
            let mut flipped = b.clone();
            flipped[byte] ^= mask;
            let want = select::<SinusoidNet, 1, 1>([&a, &flipped]);
            q.write_memory(base + byte as u32, &[flipped[byte]])
                .unwrap();
            let s = status_after(&mut q, &Request::Rescan);
            assert_eq!(
                s.slot,
                Some(0),
                "{name}: flip {n} (byte {byte}, mask {mask:#04x}): A must serve"
            );
            assert_eq!(
                s.refused, want.refused,
                "{name}: flip {n} (byte {byte}, mask {mask:#04x})"
            );
            let why = s.refused[1]
                .unwrap_or_else(|| panic!("{name}: flip {n} at byte {byte} was not detected"));
            *errors
                .entry(
                    format!("{why:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap()
                        .to_string(),
                )
                .or_default() += 1;
            // Restore B.
            q.write_memory(base + byte as u32, &[b[byte]]).unwrap();
            if n % 250 == 249 {
                assert_eq!(status_after(&mut q, &Request::Rescan).slot, Some(1));
                serves_bit_exactly(&mut q, n / 250);
            }
        }
        println!(
            "{name}: {FLIPS} flips in {:.1} s, refused as {errors:?}",
            start.elapsed().as_secs_f64()
        );
        assert!(q.exited().unwrap().is_none());
    }
}
