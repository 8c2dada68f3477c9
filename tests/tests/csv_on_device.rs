//! A user's own CSV-trained models in the firmware built for them: `train --tasks FILE.csv`,
//! then `eval BLOB --tasks FILE.csv --on BOARD` on every emulated board and over a serial port
//! (the firmware's UART on a pseudo-terminal, opened as a board's USB-serial port is), each
//! next to the host simulation, bit for bit; and the errors of a wrong blob, an absent and a
//! silent port.

mod common;

use std::path::{Path, PathBuf};

use meta_train::link::firmware;
use meta_train::link::qemu::{Emulated, Flash, Qemu};
use meta_train::tasks::synthetic::{Family, FAMILIES};
use serde_json::Value;
use tinyadapt_tests::{meta_train, run};

fn write_tasks(f: &Family, path: &Path) {
    std::fs::write(path, f.csv_text()).unwrap();
}

/// Trains `f` on its task file in `dir`; returns the task file and the blob.
fn train(f: &Family, dir: &Path) -> (PathBuf, PathBuf) {
    let tasks = dir.join(format!("{}.csv", f.name));
    write_tasks(f, &tasks);
    let run_dir = dir.join(f.name);
    let alpha = if f.classes { "0.5" } else { "0.05" };
    let out = run(meta_train()
        .args(["train", "--quiet", "--eval-tasks", "0", "--tasks"])
        .arg(&tasks)
        .args(["--k", &f.k.to_string(), "--steps", "2", "--alpha", alpha])
        .args([
            "--algorithm",
            "fomaml",
            "--meta-batch",
            "8",
            "--iterations",
            "400",
        ])
        .arg("--run")
        .arg(&run_dir));
    assert!(out.status.success(), "training {} failed", f.name);
    (tasks, run_dir.join("wstar.bin"))
}

/// `eval BLOB --tasks FILE --on ON --json`.
fn eval_on(blob: &Path, tasks: &Path, on: &str) -> std::process::Output {
    run(meta_train()
        .arg("eval")
        .arg(blob)
        .arg("--tasks")
        .arg(tasks)
        .args(["--draws", "3", "--on", on, "--json"]))
}

/// Checks an on-device evaluation: bit-identical, the same metrics, adaptation helps, costs.
fn check(f: &Family, json: &Value, exact_instructions: bool) {
    let p = &json["parity"];
    assert!(p["runs"].as_u64().unwrap() >= 3, "{json}");
    assert_eq!(p["identical"], p["runs"], "{}: {json}", f.name);
    assert!(p["values"].as_u64().unwrap() > 100, "{json}");
    assert_eq!(json["on_device"]["cells"], json["on_host"]["cells"]);
    let cells = json["on_device"]["cells"].as_array().unwrap();
    let mean = |steps: u64| {
        cells.iter().find(|c| c["steps"] == steps).unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    if f.classes {
        assert!(mean(2) > mean(0) + 0.2, "{}: {json}", f.name);
    } else {
        assert!(mean(2) < mean(0), "{}: {json}", f.name);
    }
    assert_eq!(json["instructions"], exact_instructions);
    assert!(json["per_step"].as_u64().unwrap() > 1000, "{json}");
    assert!(json["adapter_bytes"].as_u64().unwrap() > 0);
    if exact_instructions {
        assert!(json["stack_peak"].as_u64().unwrap() > 0);
    }
}

#[test]
fn csv_models_of_three_shapes_adapt_in_their_firmware_on_every_emulated_board_bit_for_bit() {
    // Every shape on the first board, and one shape on each other board in turn, so every
    // shape runs on at least two cores (a shape is a firmware build: 8 here, not 18).
    let dir = tempfile::tempdir().unwrap();
    let trained: Vec<_> = FAMILIES.iter().map(|f| train(f, dir.path())).collect();
    for (i, on) in Emulated::ALL.into_iter().enumerate() {
        let shapes: Vec<usize> = if i == 0 {
            (0..FAMILIES.len()).collect()
        } else {
            vec![i % FAMILIES.len()]
        };
        for j in shapes {
            let (f, (tasks, blob)) = (&FAMILIES[j], &trained[j]);
            let out = eval_on(blob, tasks, on.name());
            assert!(out.status.success(), "{} on {}", f.name, on.name());
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            check(f, &json, true);
            let expected = format!("mlp-{}-40-40-{}-k", f.features, f.outputs);
            assert!(
                json["firmware"].as_str().unwrap().starts_with(&expected),
                "{json}"
            );
        }
    }
}

#[test]
fn the_serial_transport_reaches_the_firmware_on_a_pseudo_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let f = &FAMILIES[0];
    let (tasks, blob) = train(f, dir.path());
    let bytes = std::fs::read(&blob).unwrap();
    let fw = firmware::for_blob(&bytes, None).unwrap();
    let elf = firmware::build(Emulated::An386.board(), &fw).unwrap();
    let (_qemu, pty) = Qemu::boot_on_pty(Emulated::An386, &elf, Flash::Blob(&bytes)).unwrap();
    let port = pty.canonicalize().unwrap();
    let out = eval_on(&blob, &tasks, port.to_str().unwrap());
    assert!(out.status.success(), "eval over {}", port.display());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Ticks, not instructions: over a serial port the host cannot know the clock's relation.
    check(f, &json, false);
    assert!(json["device"].as_str().unwrap().contains("serial port"));

    // A blob of another shape than the firmware serves is refused, naming both.
    let (other_tasks, other_blob) = train(&FAMILIES[1], dir.path());
    let out = eval_on(&other_blob, &other_tasks, port.to_str().unwrap());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("serves a different model or w*") && err.contains("mlp-3-40-40-2-k10"),
        "{err}"
    );
}

#[test]
fn an_absent_or_silent_serial_port_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = &FAMILIES[2];
    let (tasks, blob) = train(f, dir.path());
    let out = eval_on(&blob, &tasks, "/dev/tinyadapt-absent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serial port /dev/tinyadapt-absent"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );

    // A terminal nobody answers on: the time-out names the port.
    let mut silent = std::process::Command::new("python3")
        .args([
            "-c",
            "import os,pty,sys,time\nm,s=pty.openpty()\nprint(os.ttyname(s),flush=True)\ntime.sleep(60)",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(silent.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let out = eval_on(&blob, &tasks, line.trim());
    silent.kill().ok();
    silent.wait().ok();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(line.trim()) && err.contains("no response within"),
        "{err}"
    );
}

#[test]
fn the_example_firmware_adapts_a_csv_model_from_its_flash_slot() {
    let dir = tempfile::tempdir().unwrap();
    // The example serves a 3-40-40-2 model trained with K = 10: the sensor family's.
    let (_, blob) = train(&FAMILIES[1], dir.path());
    let bytes = std::fs::read(&blob).unwrap();
    let elf = firmware::build_package(
        &firmware::firmware_dir().join("examples/sensor"),
        "tinyadapt-example-sensor",
        Emulated::An386.board().target,
        None,
        None,
    )
    .unwrap();
    let mut q = Qemu::boot(Emulated::An386, &elf, Flash::Blob(&bytes)).unwrap();
    let start = std::time::Instant::now();
    let logs = loop {
        let logs = q.logs().unwrap();
        if logs.iter().any(|l| l.contains("done")) || start.elapsed().as_secs() > 30 {
            break logs;
        }
        assert!(
            q.exited().unwrap().is_none(),
            "the example faulted: {logs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let text = logs.join("\n");
    assert!(text.contains("w* loaded"), "{text}");
    let adapted = logs
        .iter()
        .find(|l| l.contains("adapted: loss"))
        .expect("adapted");
    let losses: Vec<f32> = adapted
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(losses.len() == 2 && losses[1] < losses[0], "{adapted}");
    assert!(text.contains("reading 12: predicted"), "{text}");
}

#[test]
fn a_board_described_in_a_file_gets_its_firmware_and_serves_a_csv_model_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let f = &FAMILIES[1];
    let (tasks, blob) = train(f, dir.path());
    // The user's board: an AN386 whose firmware keeps to the first 512 KiB, w* right after.
    let package = firmware::firmware_dir().join("boards/mps2-an386");
    let board = |wstar: &str| {
        format!(
            "name = \"my-an386\"\ndescription = \"my AN386\"\ntarget = \"thumbv7em-none-eabihf\"\n\
             core_clock_hz = 25_000_000\npackage = {package:?}\n\
             code = {{ origin = 0x0, length = 0x8_0000 }}\n\
             ram = {{ origin = 0x2000_0000, length = 0x4_0000 }}\nwstar = {wstar}\n\
             qemu = {{ machine = \"mps2-an386\", cpu = \"cortex-m4\", icount_shift = 6 }}\n"
        )
    };
    let file = dir.path().join("my-an386.toml");
    std::fs::write(&file, board("{ origin = 0x8_0000, length = 0x8_0000 }")).unwrap();
    let out = eval_on(&blob, &tasks, file.to_str().unwrap());
    assert!(out.status.success(), "eval on the board file");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    check(f, &json, true);
    assert_eq!(json["device"], "the my-an386 firmware under QEMU");

    let out = run(meta_train()
        .arg("export")
        .arg(&blob)
        .arg("--board")
        .arg(&file)
        .arg("--out")
        .arg(dir.path()));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("at 0x00080000"));

    // A w* region that overlaps the code is refused before anything is built.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, board("{ origin = 0x7_0000, length = 0x8_0000 }")).unwrap();
    let out = eval_on(&blob, &tasks, bad.to_str().unwrap());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml: the code and w* regions overlap"),
        "{err}"
    );
}

#[test]
fn the_firmware_command_builds_a_csv_model_for_real_boards_on_their_hals() {
    // Real boards' packages (the nRF52840 DK on nrf52840-hal, the Pico's Cortex-M0+ on
    // rp2040-hal, the ESP32-C3's RISC-V on esp-hal; RTT logs): they cannot run here, but the
    // firmware for the user's blob must build and fit the chip.
    let dir = tempfile::tempdir().unwrap();
    let f = &FAMILIES[0];
    let (_, blob) = train(f, dir.path());
    for (board, description, chip) in [
        ("nrf52840-dk", "the Nordic nRF52840 DK", "nRF52840_xxAA"),
        ("rpi-pico", "the Raspberry Pi Pico", "RP2040"),
        (
            "esp32c3-devkitm",
            "the Espressif ESP32-C3-DevKitM-1",
            "esp32c3",
        ),
    ] {
        let out = run(meta_train()
            .arg("firmware")
            .arg(&blob)
            .args(["--board", board]));
        assert!(out.status.success(), "{board}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("firmware mlp-2-40-40-3-k10 for {description}")),
            "{text}"
        );
        let bytes = |what: &str| -> (u64, u64) {
            let line = text.lines().find(|l| l.contains(what)).expect(what);
            let after = &line[line.find(what).unwrap() + what.len()..];
            let mut n = after
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<u64>().unwrap());
            (n.next().unwrap(), n.next().unwrap())
        };
        let (code, flash) = bytes("code flash ");
        let (ram, board_ram) = bytes("static RAM ");
        assert!(code > 20_000 && code < flash, "{text}");
        assert!(ram > 10_000 && ram < board_ram, "{text}");
        assert!(
            text.contains(&format!("probe-rs download --chip {chip}")),
            "{text}"
        );
    }
}
