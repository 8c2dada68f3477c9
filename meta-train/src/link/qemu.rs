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
use shared::board::{
    Board, LM3S6965EVB, MPS2_AN386, MPS2_AN505, NETDUINOPLUS2, NRF51822_XXAC, RISCV32_VIRT,
};
use shared::link::{Request, Response};

use super::client::{Link, Port};

/// The emulated boards, as `--on` names them (`qemu-an386`, `qemu-an505`, `qemu-lm3s6965`,
/// `qemu-netduinoplus2`, `qemu-nrf51`, `qemu-riscv32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulated {
    /// Arm MPS2-AN386, Cortex-M4F.
    An386,
    /// Arm MPS2-AN505, Cortex-M33 with FPU.
    An505,
    /// TI LM3S6965EVB, Cortex-M3, 64 KiB RAM.
    Lm3s6965,
    /// Netduino Plus 2, STM32F405 Cortex-M4F, its firmware on `stm32f4xx-hal`.
    Netduinoplus2,
    /// nRF51822-xxAC, Cortex-M0 without an FPU, on QEMU's `microbit` machine.
    Nrf51,
    /// RISC-V RV32IMAC without an FPU, on QEMU's `virt` machine.
    Riscv32,
}

impl Emulated {
    /// Every emulated board.
    pub const ALL: [Emulated; 6] = [
        Emulated::An386,
        Emulated::An505,
        Emulated::Lm3s6965,
        Emulated::Netduinoplus2,
        Emulated::Nrf51,
        Emulated::Riscv32,
    ];

    /// The name `--on` takes.
    pub fn name(self) -> &'static str {
        match self {
            Emulated::An386 => "qemu-an386",
            Emulated::An505 => "qemu-an505",
            Emulated::Lm3s6965 => "qemu-lm3s6965",
            Emulated::Netduinoplus2 => "qemu-netduinoplus2",
            Emulated::Nrf51 => "qemu-nrf51",
            Emulated::Riscv32 => "qemu-riscv32",
        }
    }

    /// The board `--on NAME` names.
    ///
    /// ```
    /// use meta_train::link::qemu::Emulated;
    /// assert_eq!(Emulated::by_name("qemu-lm3s6965"), Some(Emulated::Lm3s6965));
    /// assert_eq!(Emulated::by_name("lm3s6965"), None);
    /// ```
    pub fn by_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The board.
    pub fn board(self) -> &'static Board {
        match self {
            Emulated::An386 => &MPS2_AN386,
            Emulated::An505 => &MPS2_AN505,
            Emulated::Lm3s6965 => &LM3S6965EVB,
            Emulated::Netduinoplus2 => &NETDUINOPLUS2,
            Emulated::Nrf51 => &NRF51822_XXAC,
            Emulated::Riscv32 => &RISCV32_VIRT,
        }
    }
}

/// The QEMU system emulator for `board`'s core, and the Debian package that has it.
///
/// ```
/// use meta_train::link::qemu::{emulator, Emulated};
/// assert_eq!(emulator(Emulated::An386.board()), ("qemu-system-arm", "qemu-system-arm"));
/// assert_eq!(emulator(Emulated::Riscv32.board()), ("qemu-system-riscv32", "qemu-system-misc"));
/// ```
pub fn emulator(board: &Board) -> (&'static str, &'static str) {
    if board.target.starts_with("riscv32") {
        ("qemu-system-riscv32", "qemu-system-misc")
    } else {
        ("qemu-system-arm", "qemu-system-arm")
    }
}

/// Checks that QEMU for `board` runs; on a machine without it that has `apt-get`, installs
/// it first (as `./check.sh` does, with `sudo` unless root), saying so.
pub fn ensure_qemu(board: &Board) -> Result<()> {
    let (program, package) = emulator(board);
    let missing =
        format!("{program} not found: install it with `sudo apt-get install -y {package}`");
    let runs = || {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs() {
        return Ok(());
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!("{missing}");
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let (apt, pre): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else {
        ("sudo", &["apt-get"])
    };
    for args in [&["update", "-qq"][..], &["install", "-y", "-qq", package]] {
        let words: Vec<&str> = pre.iter().chain(args).copied().collect();
        eprintln!("{program} is missing: running {apt} {}", words.join(" "));
        let ok = Command::new(apt)
            .args(pre)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!("{missing} (installing it here failed)");
        }
    }
    if !runs() {
        bail!("{missing} (it was installed but does not run)");
    }
    Ok(())
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

/// How the firmware's UART reaches the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Uart {
    /// A Unix socket, read by [`QemuPort`].
    Socket,
    /// A pseudo-terminal, opened like a board's serial port ([`super::serial::Serial`]).
    Pty,
}

/// A QEMU process running a firmware: its defmt log (semihosting, on QEMU's stdout) and its
/// exit. Dropping it ends QEMU.
pub struct Process {
    board: &'static Board,
    elf: Vec<u8>,
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Process {
    /// The board.
    pub fn board(&self) -> &'static Board {
        self.board
    }

    /// Whether QEMU has exited, and how (a fault or panic exits with code 1).
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the firmware's first log byte, or 5 s for a firmware that logs elsewhere.
    /// The firmware logs only once its board package has set the UART up, and some UARTs
    /// drop what arrives before (the STM32's, like the chip's): a request sent earlier would
    /// arrive cut.
    fn wait_until_serving(&mut self) -> Result<()> {
        let start = Instant::now();
        while self.log.lock().expect("log lock").is_empty()
            && start.elapsed() < Duration::from_secs(5)
        {
            if let Some(status) = self.exited()? {
                bail!(
                    "the firmware ended before it served ({status}){}",
                    self.diagnose()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
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

    /// A measured tick count as instructions: each instruction takes `2^shift` ns of virtual
    /// time, longer than a tick, so rounding recovers the exact count.
    pub fn instructions(&self, ticks: u64) -> u64 {
        let b = self.board();
        let tick_ns = 1e9 / f64::from(b.core_clock_hz);
        (ticks as f64 * tick_ns / f64::from(1u32 << b.qemu_icount_shift)).round() as u64
    }

    /// The log, indented, for an error about a firmware that stopped answering.
    fn diagnose(&mut self) -> String {
        let exit = match self.child.try_wait() {
            Ok(Some(status)) => {
                let err = self.stderr.lock().expect("stderr lock").trim().to_string();
                format!(" (QEMU exited: {status}) {err}")
            }
            _ => String::new(),
        };
        let logs = self.logs().unwrap_or_default().join("\n  ");
        format!("{exit}; its log:\n  {logs}")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for t in self.readers.drain(..) {
            let _ = t.join();
        }
    }
}

/// The firmware's UART as a Unix socket of QEMU's: a [`Port`].
pub struct QemuPort {
    stream: UnixStream,
    process: Process,
}

impl Read for QemuPort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for QemuPort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

impl Port for QemuPort {
    fn name(&self) -> String {
        format!("the {} firmware under QEMU", self.process.board().name)
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.process.exited()? {
            bail!(
                "{}: QEMU exited ({status}){}",
                self.name(),
                self.process.diagnose()
            );
        }
        Ok(())
    }

    fn diagnose(&mut self) -> String {
        self.process.diagnose()
    }

    fn instructions(&self, ticks: u64) -> Option<u64> {
        Some(self.process.instructions(ticks))
    }
}

/// A running firmware under QEMU, its UART on a socket behind a [`Link`].
pub struct Qemu {
    link: Link<QemuPort>,
    gdb: PathBuf,
    debugger: Option<UnixStream>,
}

impl Qemu {
    /// Boots the firmware `elf` on the board with `flash` in its `w*` region.
    pub fn boot(on: Emulated, elf: &Path, flash: Flash<'_>) -> Result<Self> {
        Self::boot_board(on.board(), elf, flash)
    }

    /// Boots the firmware `elf` on an emulated `board` (one with a QEMU machine, such as a
    /// board file's) with `flash` in its `w*` region.
    pub fn boot_board(board: &'static Board, elf: &Path, flash: Flash<'_>) -> Result<Self> {
        let (mut process, socket, gdb) = start(board, elf, flash, Uart::Socket)?;
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(10) => {
                    if let Some(status) = process.exited()? {
                        bail!("QEMU exited at start ({status}){}", process.diagnose());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e).context("QEMU's UART socket never came up"),
            }
        };
        process.wait_until_serving()?;
        Ok(Self {
            link: Link::new(QemuPort { stream, process }),
            gdb,
            debugger: None,
        })
    }

    /// Boots the firmware `elf` with its UART on a pseudo-terminal, the way a board's
    /// USB-serial port appears; returns QEMU and the terminal's path, to open with
    /// [`super::serial::Serial::open`].
    pub fn boot_on_pty(on: Emulated, elf: &Path, flash: Flash<'_>) -> Result<(Process, PathBuf)> {
        let (mut process, pty, _) = start(on.board(), elf, flash, Uart::Pty)?;
        let start = Instant::now();
        loop {
            if pty.exists() {
                process.wait_until_serving()?;
                return Ok((process, pty));
            }
            if let Some(status) = process.exited()? {
                bail!("QEMU exited at start ({status}){}", process.diagnose());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("QEMU never said which pseudo-terminal the UART is on");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The link to the firmware.
    pub fn link(&mut self) -> &mut Link<QemuPort> {
        &mut self.link
    }

    /// The QEMU process.
    pub fn process(&mut self) -> &mut Process {
        &mut self.link.port_mut().process
    }

    /// The board.
    pub fn board(&self) -> &'static Board {
        self.link.port().process.board()
    }

    /// Sends raw bytes down the link (for fault tests: garbage, truncated frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.link.send_raw(bytes)
    }

    /// Sends `request` and waits for the response frame, decoded into `buf`.
    pub fn call<'b>(
        &mut self,
        request: &Request<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Response<'b>> {
        self.link.call(request, buf)
    }

    /// Waits for the next response frame, decoded into `buf`.
    pub fn response<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Response<'b>> {
        self.link.response(buf)
    }

    /// A measured tick count as instructions (see [`Process::instructions`]).
    pub fn instructions(&self, ticks: u64) -> u64 {
        self.link.port().process.instructions(ticks)
    }

    /// Writes `bytes` at `addr` of the board's memory, flash included, as a debug probe does
    /// (QEMU's GDB stub): the firmware is halted for the write and then resumes.
    pub fn write_memory(&mut self, addr: u32, bytes: &[u8]) -> Result<()> {
        let mut stream = match self.debugger.take() {
            None => {
                let s = UnixStream::connect(&self.gdb).context("QEMU's GDB stub")?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                // A new connection halts the CPU.
                s
            }
            Some(mut s) => {
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
        self.debugger = Some(stream);
        Ok(())
    }

    /// Whether QEMU has exited, and how (a fault or panic exits with code 1).
    pub fn exited(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.process().exited()
    }

    /// The firmware's `defmt` log so far, decoded, one line per message.
    pub fn logs(&self) -> Result<Vec<String>> {
        self.link.port().process.logs()
    }
}

/// Starts QEMU with the firmware, `flash` in its slots and the UART as `uart`; returns the
/// process, the UART's path (socket or pseudo-terminal) and the GDB stub's socket.
fn start(
    board: &'static Board,
    elf: &Path,
    flash: Flash<'_>,
    uart: Uart,
) -> Result<(Process, PathBuf, PathBuf)> {
    let (Some(machine), Some(cpu)) = (board.qemu_machine, board.qemu_cpu) else {
        bail!(
            "{} is not emulated: it names no QEMU machine and cpu",
            board.name
        );
    };
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("uart.sock");
    let gdb = dir.path().join("gdb.sock");
    let (program, _) = emulator(board);
    let mut cmd = Command::new(program);
    cmd.args(["-machine", machine, "-cpu", cpu])
        .args(["-display", "none", "-monitor", "none", "-nodefaults"])
        .arg("-icount")
        .arg(format!(
            "shift={},align=off,sleep=off",
            board.qemu_icount_shift
        ))
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-serial")
        .arg(match uart {
            Uart::Socket => format!("unix:{},server=on,wait=on", socket.display()),
            Uart::Pty => "pty".into(),
        })
        // The debugger port: what a probe is on hardware; tests write flash through it.
        .arg("-gdb")
        .arg(format!("unix:{},server=on,wait=off", gdb.display()))
        .args(board.qemu_options)
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{program} not found: install it with `sudo apt-get install -y {}`",
                emulator(board).1
            )
        }
        Err(e) => return Err(e).context(format!("cannot start {program}")),
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr_text = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let sink = Arc::clone(&log);
    // With a pseudo-terminal QEMU's first line on stdout names it ("char device redirected
    // to /dev/pts/N (label serial0)"), before the firmware's first defmt byte: the reader
    // takes that line out of the log and links the terminal at `pty_at`.
    let mut pty_at = (uart == Uart::Pty).then(|| socket.clone());
    let mut readers = vec![std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut head = Vec::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut bytes = &buf[..n];
            if let Some(at) = &pty_at {
                head.extend_from_slice(bytes);
                let Some(end) = head.iter().position(|&b| b == b'\n') else {
                    continue;
                };
                let line = String::from_utf8_lossy(&head[..end]).into_owned();
                if let Some(pts) = line.split_whitespace().find(|w| w.starts_with("/dev/")) {
                    let _ = std::os::unix::fs::symlink(pts, at);
                }
                pty_at = None;
                head.drain(..=end);
                bytes = &head;
            }
            sink.lock().expect("log lock").extend_from_slice(bytes);
            head.clear();
        }
    })];
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = Arc::clone(&stderr_text);
    readers.push(std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        errors.lock().expect("stderr lock").push_str(&text);
    }));
    let process = Process {
        board,
        elf: std::fs::read(elf)?,
        child,
        log,
        stderr: stderr_text,
        readers,
        _dir: dir,
    };
    Ok((process, socket, gdb))
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
