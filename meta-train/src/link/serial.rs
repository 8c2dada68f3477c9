//! A board's serial port (a USB-serial adapter or a probe's VCOM: `/dev/ttyACM0`, `COM3`) as a
//! [`Port`], through the `serialport` crate. The firmware is already flashed; the link is
//! 8N1 at [`BAUD`] baud.

use std::io::{self, Read, Write};
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::client::Port;

/// Baud rate of the firmware's UART.
pub const BAUD: u32 = 115_200;

/// An open serial port.
pub struct Serial {
    path: String,
    port: Box<dyn serialport::SerialPort>,
}

impl Serial {
    /// Opens the serial port at `path`: an absent, busy or unusable port is an error naming
    /// it and why.
    pub fn open(path: &str) -> Result<Self> {
        let port = serialport::new(path, BAUD)
            .timeout(Duration::from_millis(200))
            .open()
            .map_err(|e| {
                let why = match e.kind() {
                    serialport::ErrorKind::NoDevice => "no such device, or it is busy",
                    serialport::ErrorKind::Io(io::ErrorKind::NotFound) => "no such port",
                    serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                        "permission denied (is your user in the dialout group?)"
                    }
                    _ => "it cannot be opened",
                };
                anyhow!("serial port {path}: {why}: {e}")
            })?;
        // Whatever the device sent before (a boot log, a half frame) is not an answer.
        port.clear(serialport::ClearBuffer::All).ok();
        Ok(Self {
            path: path.into(),
            port,
        })
    }

    /// The port's path, as opened.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.port.read(buf)
    }
}

impl Write for Serial {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.port.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.port.flush()
    }
}

impl Port for Serial {
    fn name(&self) -> String {
        format!("the device on serial port {}", self.path)
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.port.set_timeout(timeout).map_err(io::Error::other)
    }

    fn diagnose(&mut self) -> String {
        " (is the tinyadapt firmware flashed and running, and is this its port?)".into()
    }
}
