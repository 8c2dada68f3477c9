//! The firmware under QEMU: build it, boot it with a `w*` in its flash region, talk to it over
//! its UART (a Unix socket here, a serial port on hardware), and decode its `defmt` logs.
//!
//! QEMU runs with `-icount shift=N,align=off,sleep=off`: every instruction takes `2^N` ns of
//! virtual time, so the SysTick ticks the firmware reports convert to an exact, repeatable
//! instruction count (see [`Qemu::instructions`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use shared::board::{Board, LM3S6965EVB, MPS2_AN386};
use shared::link::{Request, Response, MAX_FRAME};

/// The emulated boards, as `--on` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Emulated {
    /// Arm MPS2-AN386, Cortex-M4F.
    #[value(name = "qemu-an386")]
    An386,
    /// TI LM3S6965EVB, Cortex-M3, 64 KiB RAM.
    #[value(name = "qemu-lm3s6965")]
    Lm3s6965,
}

impl Emulated {
    /// Both boards.
    pub const ALL: [Emulated; 2] = [Emulated::An386, Emulated::Lm3s6965];

    /// The board.
    pub fn board(self) -> &'static Board {
        match self {
            Emulated::An386 => &MPS2_AN386,
            Emulated::Lm3s6965 => &LM3S6965EVB,
        }
    }

    fn cpu(self) -> &'static str {
        match self {
            Emulated::An386 => "cortex-m4",
            Emulated::Lm3s6965 => "cortex-m3",
        }
    }
}

/// The firmware workspace in this source tree.
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../device/firmware")
}

/// Checks that `qemu-system-arm` runs, with the command that installs it when it does not.
pub fn check_qemu() -> Result<()> {
    match Command::new("qemu-system-arm").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "qemu-system-arm not found: install it with `sudo apt-get install -y qemu-system-arm` (./check.sh does this)"
        ),
    }
}

/// Adds the board's Rust target with `rustup target add` when it is missing (the toolchain
/// file names `stable` only, so a fresh machine has no thumb targets).
fn ensure_target(target: &str) -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        return Ok(()); // no rustup: the toolchain is managed otherwise; cargo will tell
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    eprintln!("adding the Rust target {target} (rustup target add {target})");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("`rustup target add {target}` failed; the firmware cannot be built without it");
    }
    Ok(())
}

/// Which firmware a board runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// The MAML sinusoid adapter (`Server<SinusoidNet, 1, 1, FIRMWARE_K>`): both boards.
    Sinusoid,
    /// The 5-way Omniglot image classifier (its body in the `w*` slot, up to 25 support
    /// images): the AN386 only (it needs about 48 KB of RAM and a 95 KB `w*`).
    Omniglot,
    /// The 20-way Omniglot image classifier (the same body, up to 20 support images: 20-way
    /// 1-shot): the AN386 only (about 68 KB of RAM and a 105 KB `w*`).
    Omniglot20,
}

impl Firmware {
    /// The firmware's binary (ELF) name for `board`, if that board has it.
    pub fn binary(self, board: &Board) -> Option<String> {
        let classifier = board.name == MPS2_AN386.name;
        match self {
            Firmware::Sinusoid => Some(format!("tinyadapt-fw-{}", board.name)),
            Firmware::Omniglot if classifier => {
                Some(format!("tinyadapt-fw-{}-omniglot", board.name))
            }
            Firmware::Omniglot20 if classifier => {
                Some(format!("tinyadapt-fw-{}-omniglot20", board.name))
            }
            Firmware::Omniglot | Firmware::Omniglot20 => None,
        }
    }
}

/// Builds the board's sinusoid firmware (release) if needed and returns its ELF.
pub fn build_firmware(on: Emulated) -> Result<PathBuf> {
    build_firmware_of(on, Firmware::Sinusoid)
}

/// Builds `firmware` for the board (release) if needed and returns its ELF.
pub fn build_firmware_of(on: Emulated, firmware: Firmware) -> Result<PathBuf> {
    let board = on.board();
    let Some(bin) = firmware.binary(board) else {
        bail!("there is no {firmware:?} firmware for {}", board.name);
    };
    ensure_target(board.target)?;
    let dir = firmware_dir();
    let package = dir.join("boards").join(board.name);
    let target_dir = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&package)
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            &bin,
            "--target-dir",
        ])
        .arg(&target_dir);
    // The host build's settings must not leak into the firmware build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().with_context(|| {
        format!(
            "cannot run cargo to build the firmware in {}",
            package.display()
        )
    })?;
    if !status.success() {
        bail!(
            "building the {} firmware failed (cargo build --release --bin {bin} in {})",
            board.name,
            package.display()
        );
    }
    let elf = target_dir.join(board.target).join("release").join(&bin);
    if !elf.exists() {
        bail!("the firmware build left no ELF at {}", elf.display());
    }
    Ok(elf)
}

/// What to put in the board's `w*` slots before boot.
pub enum Flash<'a> {
    /// Nothing: both slots read as never-written memory.
    Nothing,
    /// This blob in slot A, generation 1 (what `meta-train export` writes by default).
    Blob(&'a [u8]),
    /// These raw bytes at the start of each slot (`None`: leave it blank).
    Slots([Option<&'a [u8]>; 2]),
}

/// A running firmware under QEMU.
pub struct Qemu {
    on: Emulated,
    elf: Vec<u8>,
    child: Child,
    link: UnixStream,
    log: Arc<Mutex<Vec<u8>>>,
    log_thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
    rx: Vec<u8>,
    debugger: Option<Debugger>,
    /// Most time one request may take before the firmware counts as hung.
    pub timeout: Duration,
}

impl Qemu {
    /// Boots the firmware `elf` on the board with `flash` in its `w*` region.
    pub fn boot(on: Emulated, elf: &Path, flash: Flash<'_>) -> Result<Self> {
        let board = on.board();
        let machine = board
            .qemu_machine
            .ok_or_else(|| anyhow!("{} is not emulated", board.name))?;
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("uart.sock");
        let gdb = dir.path().join("gdb.sock");
        let mut cmd = Command::new("qemu-system-arm");
        cmd.args(["-machine", machine, "-cpu", on.cpu()])
            .args(["-display", "none", "-monitor", "none", "-nodefaults"])
            .arg("-icount")
            .arg(format!(
                "shift={},align=off,sleep=off",
                board.qemu_icount_shift
            ))
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-serial")
            .arg(format!("unix:{},server=on,wait=on", socket.display()))
            // The debugger port: what a probe is on hardware; tests write flash through it.
            .arg("-gdb")
            .arg(format!("unix:{},server=on,wait=off", gdb.display()))
            .arg("-kernel")
            .arg(elf);
        let slots = match flash {
            Flash::Nothing => [None, None],
            Flash::Blob(b) => [Some(shared::slots::slot_image(b, 1)), None],
            Flash::Slots([a, b]) => [a.map(<[u8]>::to_vec), b.map(<[u8]>::to_vec)],
        };
        for (i, bytes) in slots.iter().enumerate() {
            let Some(bytes) = bytes else { continue };
            let slot = board.slot(i);
            if bytes.len() > slot.length as usize {
                bail!(
                    "{} bytes do not fit the {}-byte w* slot of {}",
                    bytes.len(),
                    slot.length,
                    board.name
                );
            }
            let file = dir.path().join(format!("slot{i}.bin"));
            std::fs::write(&file, bytes)?;
            cmd.arg("-device").arg(format!(
                "loader,file={},addr={:#x}",
                file.display(),
                slot.origin
            ));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "qemu-system-arm not found: install it with `sudo apt-get install -y qemu-system-arm`"
            ),
            Err(e) => return Err(e).context("cannot start qemu-system-arm"),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let sink = Arc::clone(&log);
        let log_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("log lock").extend_from_slice(&buf[..n]);
            }
        });
        let start = Instant::now();
        let link = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    if let Some(status) = child.try_wait()? {
                        let mut err = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            e.read_to_string(&mut err).ok();
                        }
                        bail!("qemu-system-arm exited at start ({status}): {}", err.trim());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e).context("QEMU's UART socket never came up"),
            }
        };
        Ok(Self {
            on,
            elf: std::fs::read(elf)?,
            child,
            link,
            log,
            log_thread: Some(log_thread),
            _dir: dir,
            rx: Vec::new(),
            debugger: Some(Debugger::Unconnected(gdb)),
            timeout: Duration::from_secs(60),
        })
    }

    /// The board.
    pub fn board(&self) -> &'static Board {
        self.on.board()
    }

    /// Sends raw bytes down the link (for fault tests: garbage, truncated frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.link
            .write_all(bytes)
            .context("writing to the firmware's UART")
    }

    /// Sends `request` and waits for the response frame, decoded into `buf`.
    pub fn call<'b>(
        &mut self,
        request: &Request<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Response<'b>> {
        let mut frame = [0u8; MAX_FRAME];
        let bytes = postcard::to_slice_cobs(request, &mut frame)
            .context("request too large for a frame")?;
        self.send_raw(bytes)?;
        self.response(buf)
    }

    /// Waits for the next response frame, decoded into `buf`.
    pub fn response<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Response<'b>> {
        self.read_frame(buf)?;
        postcard::from_bytes_cobs(buf)
            .map_err(|e| anyhow!("the firmware sent a frame that does not decode: {e}"))
    }

    fn read_frame(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(end) = self.rx.iter().position(|&b| b == 0) {
                out.clear();
                out.extend(self.rx.drain(..=end));
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("{}", self.hang_report("no response within the timeout"));
            }
            self.link
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))?;
            let mut chunk = [0u8; 1024];
            match self.link.read(&mut chunk) {
                Ok(0) => bail!("{}", self.hang_report("the firmware's UART closed")),
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Some(status) = self.child.try_wait()? {
                        bail!("{}", self.hang_report(&format!("QEMU exited ({status})")));
                    }
                }
                Err(e) => return Err(e).context("reading the firmware's UART"),
            }
        }
    }

    fn hang_report(&mut self, what: &str) -> String {
        let logs = self.logs().unwrap_or_default().join("\n  ");
        format!("{} firmware: {what}; its log:\n  {logs}", self.board().name)
    }

    /// A measured tick count as instructions: each instruction takes `2^shift` ns of virtual
    /// time, longer than a tick, so rounding recovers the exact count.
    pub fn instructions(&self, ticks: u64) -> u64 {
        let b = self.board();
        let tick_ns = 1e9 / f64::from(b.core_clock_hz);
        (ticks as f64 * tick_ns / f64::from(1u32 << b.qemu_icount_shift)).round() as u64
    }

    /// Writes `bytes` at `addr` of the board's memory, flash included, as a debug probe does
    /// (QEMU's GDB stub): the firmware is halted for the write and then resumes.
    pub fn write_memory(&mut self, addr: u32, bytes: &[u8]) -> Result<()> {
        let d = self
            .debugger
            .take()
            .expect("the debugger is always put back");
        let mut stream = match d {
            Debugger::Unconnected(path) => {
                let s = UnixStream::connect(&path).context("QEMU's GDB stub")?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                // A new connection halts the CPU.
                s
            }
            Debugger::Running(mut s) => {
                // Interrupt, and read the stop reply.
                s.write_all(&[0x03])?;
                gdb_reply(&mut s)?;
                s
            }
        };
        for (k, chunk) in bytes.chunks(1024).enumerate() {
            let at = addr + (k * 1024) as u32;
            let hex: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
            gdb_send(&mut stream, &format!("M{at:x},{:x}:{hex}", chunk.len()))?;
            let r = gdb_reply(&mut stream)?;
            if r != "OK" {
                bail!("the GDB stub refused to write {at:#x}: {r}");
            }
        }
        // Continue: no reply until the next stop.
        gdb_send(&mut stream, "c")?;
        self.debugger = Some(Debugger::Running(stream));
        Ok(())
    }

    /// Whether QEMU has exited, and how (a fault or panic exits with code 1).
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The firmware's `defmt` log so far, decoded, one line per message.
    pub fn logs(&self) -> Result<Vec<String>> {
        let table = defmt_decoder::Table::parse(&self.elf)?
            .ok_or_else(|| anyhow!("the firmware ELF has no defmt table"))?;
        let bytes = self.log.lock().expect("log lock").clone();
        let mut decoder = table.new_stream_decoder();
        decoder.received(&bytes);
        let mut lines = Vec::new();
        loop {
            match decoder.decode() {
                Ok(frame) => lines.push(format!(
                    "{} {}",
                    frame.level().map_or("", |l| l.as_str()),
                    frame.display_message()
                )),
                Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                Err(defmt_decoder::DecodeError::Malformed) => {
                    lines.push("(malformed defmt frame)".into());
                    if table.encoding().can_recover() {
                        continue;
                    }
                    break;
                }
            }
        }
        Ok(lines)
    }
}

/// QEMU's GDB stub, reached on first use.
enum Debugger {
    Unconnected(PathBuf),
    Running(UnixStream),
}

/// Sends a GDB remote-protocol packet and waits for its acknowledgement.
fn gdb_send(s: &mut UnixStream, data: &str) -> Result<()> {
    let sum = data.bytes().fold(0u8, u8::wrapping_add);
    s.write_all(format!("${data}#{sum:02x}").as_bytes())?;
    let mut ack = [0u8; 1];
    loop {
        s.read_exact(&mut ack)
            .context("GDB stub: no acknowledgement")?;
        match ack[0] {
            b'+' => return Ok(()),
            b'-' => s.write_all(format!("${data}#{sum:02x}").as_bytes())?,
            _ => {}
        }
    }
}

/// Reads one GDB remote-protocol reply packet and acknowledges it.
fn gdb_reply(s: &mut UnixStream) -> Result<String> {
    let mut byte = [0u8; 1];
    loop {
        s.read_exact(&mut byte).context("GDB stub: no reply")?;
        if byte[0] == b'$' {
            break;
        }
    }
    let mut data = Vec::new();
    loop {
        s.read_exact(&mut byte)?;
        if byte[0] == b'#' {
            break;
        }
        data.push(byte[0]);
    }
    let mut sum = [0u8; 2];
    s.read_exact(&mut sum)?;
    s.write_all(b"+")?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.log_thread.take() {
            let _ = t.join();
        }
    }
}
