//! Serial ports for [`crate::run`]: polled UART drivers for the emulated boards, behind the
//! [`embedded_io`] traits a HAL's UART implements too (reads block until a byte arrives;
//! writes until the transmitter takes it; neither fails), [`Duplex`], which joins the
//! receive and transmit halves a HAL splits its UART into, and [`Blocking`], for a HAL whose
//! receiver only polls.

use core::convert::Infallible;

use embedded_io::{ErrorType, Read, Write};

fn read(addr: usize) -> u32 {
    // SAFETY: callers pass the address of a UART register of this board.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write(addr: usize, v: u32) {
    // SAFETY: callers pass the address of a UART register of this board.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

fn read_u8(addr: usize) -> u8 {
    // SAFETY: callers pass the address of a byte-wide UART register of this board.
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn write_u8(addr: usize, v: u8) {
    // SAFETY: callers pass the address of a byte-wide UART register of this board.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) }
}

/// Arm CMSDK APB UART (MPS2 boards).
pub struct Cmsdk {
    base: usize,
}

impl Cmsdk {
    const DATA: usize = 0x00;
    const STATE: usize = 0x04;
    const CTRL: usize = 0x08;
    const BAUDDIV: usize = 0x10;
    const TX_FULL: u32 = 1 << 0;
    const RX_FULL: u32 = 1 << 1;

    /// Enables the UART at `base` for transmit and receive.
    pub fn new(base: usize) -> Self {
        write(base + Self::BAUDDIV, 16);
        write(base + Self::CTRL, 0b11);
        Self { base }
    }
}

impl Polled for Cmsdk {
    fn get(&mut self) -> u8 {
        while read(self.base + Self::STATE) & Self::RX_FULL == 0 {}
        read(self.base + Self::DATA) as u8
    }

    fn put(&mut self, byte: u8) {
        while read(self.base + Self::STATE) & Self::TX_FULL != 0 {}
        write(self.base + Self::DATA, u32::from(byte));
    }
}

/// TI Stellaris UART, a PL011 (LM3S boards).
pub struct Stellaris {
    base: usize,
}

impl Stellaris {
    const DR: usize = 0x000;
    const FR: usize = 0x018;
    const LCRH: usize = 0x02C;
    const CTL: usize = 0x030;
    const RXFE: u32 = 1 << 4;
    const TXFF: u32 = 1 << 5;
    /// System control RCGC1: run-mode clock gating, bit 0 is UART0.
    const RCGC1: usize = 0x400F_E104;

    /// Clocks and enables UART0 at `base`, 8N1. The FIFOs stay off: switching them on flushes
    /// the receiver, which would drop a request already on the line; the link is half-duplex
    /// request/response, so a one-byte holding register loses nothing.
    pub fn new(base: usize) -> Self {
        write(Self::RCGC1, read(Self::RCGC1) | 1);
        write(base + Self::LCRH, 0b11 << 5);
        write(base + Self::CTL, (1 << 9) | (1 << 8) | 1);
        Self { base }
    }
}

impl Polled for Stellaris {
    fn get(&mut self) -> u8 {
        while read(self.base + Self::FR) & Self::RXFE != 0 {}
        read(self.base + Self::DR) as u8
    }

    fn put(&mut self, byte: u8) {
        while read(self.base + Self::FR) & Self::TXFF != 0 {}
        write(self.base + Self::DR, u32::from(byte));
    }
}

/// Nordic nRF51 UART (not UARTE: no EasyDMA), polled on its RXDRDY and TXDRDY events.
pub struct Nrf51 {
    base: usize,
}

impl Nrf51 {
    const STARTRX: usize = 0x000;
    const STARTTX: usize = 0x008;
    const RXDRDY: usize = 0x108;
    const TXDRDY: usize = 0x11C;
    const ENABLE: usize = 0x500;
    const PSELTXD: usize = 0x50C;
    const PSELRXD: usize = 0x514;
    const RXD: usize = 0x518;
    const TXD: usize = 0x51C;
    const BAUDRATE: usize = 0x524;
    const BAUD_115200: u32 = 0x01D7_E000;

    /// Routes the UART at `base` to pins `tx` and `rx` of port 0, sets 115200 8N1 and starts
    /// its receiver and transmitter.
    pub fn new(base: usize, tx: u32, rx: u32) -> Self {
        write(base + Self::PSELTXD, tx);
        write(base + Self::PSELRXD, rx);
        write(base + Self::BAUDRATE, Self::BAUD_115200);
        write(base + Self::ENABLE, 4);
        write(base + Self::STARTRX, 1);
        write(base + Self::STARTTX, 1);
        Self { base }
    }
}

impl Polled for Nrf51 {
    fn get(&mut self) -> u8 {
        while read(self.base + Self::RXDRDY) == 0 {}
        // Clear the event before reading RXD: a byte that lands after the read raises it anew.
        write(self.base + Self::RXDRDY, 0);
        read(self.base + Self::RXD) as u8
    }

    fn put(&mut self, byte: u8) {
        write(self.base + Self::TXD, u32::from(byte));
        while read(self.base + Self::TXDRDY) == 0 {}
        write(self.base + Self::TXDRDY, 0);
    }
}

/// NS16550A-compatible UART with byte-wide registers (QEMU's RISC-V `virt` machine, many
/// RISC-V and x86 SoCs), FIFOs off.
pub struct Ns16550 {
    base: usize,
}

impl Ns16550 {
    const RBR_THR: usize = 0;
    const IER: usize = 1;
    const FCR: usize = 2;
    const LCR: usize = 3;
    const LSR: usize = 5;
    const DATA_READY: u8 = 1 << 0;
    const THR_EMPTY: u8 = 1 << 5;

    /// Sets the UART at `base` to 8N1 with interrupts and FIFOs off (the clock divisor stays as
    /// the boot firmware or reset left it).
    pub fn new(base: usize) -> Self {
        write_u8(base + Self::IER, 0);
        write_u8(base + Self::FCR, 0);
        write_u8(base + Self::LCR, 0b11);
        Self { base }
    }
}

impl Polled for Ns16550 {
    fn get(&mut self) -> u8 {
        while read_u8(self.base + Self::LSR) & Self::DATA_READY == 0 {}
        read_u8(self.base + Self::RBR_THR)
    }

    fn put(&mut self, byte: u8) {
        while read_u8(self.base + Self::LSR) & Self::THR_EMPTY == 0 {}
        write_u8(self.base + Self::RBR_THR, byte);
    }
}

/// One serial port made of a HAL's receive half `rx` and transmit half `tx` (nrf-hal's
/// `UarteRx`/`UarteTx`, rp2040-hal's `Reader`/`Writer`, esp-hal's `UartRx`/`UartTx`), for
/// [`crate::run`], which reads requests and writes responses on one port.
///
/// ```ignore
/// let (tx, rx) = uarte.split(tx_buf, rx_buf)?;
/// app::run(app::uart::Duplex { rx, tx }, &board::BOARD, model::FIRMWARE, model::server(), clock)
/// ```
pub struct Duplex<R, W> {
    /// The receive half.
    pub rx: R,
    /// The transmit half.
    pub tx: W,
}

impl<R: ErrorType, W: ErrorType<Error = R::Error>> ErrorType for Duplex<R, W> {
    type Error = R::Error;
}

impl<R: Read, W: Write<Error = R::Error>> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, R::Error> {
        self.rx.read(buf)
    }
}

impl<R: Read, W: Write<Error = R::Error>> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, R::Error> {
        self.tx.write(buf)
    }

    fn flush(&mut self) -> Result<(), R::Error> {
        self.tx.flush()
    }
}

/// A HAL's receive half that offers only the non-blocking `embedded-hal-nb` read
/// (stm32f4xx-hal's `Rx`), as the blocking [`embedded_io::Read`] [`crate::run`] takes: a read
/// waits for the next byte and returns it alone. A receive error (overrun, framing, noise)
/// is returned, and `run` logs it and reads on.
///
/// ```ignore
/// let (tx, rx) = usart1.serial((pa9, pa10), 115_200.bps(), &mut rcc)?.split();
/// app::run(app::uart::Duplex { rx: app::uart::Blocking(rx), tx }, &board::BOARD, model::FIRMWARE, model::server(), clock)
/// ```
pub struct Blocking<R>(pub R);

impl<R: embedded_hal_nb::serial::ErrorType> ErrorType for Blocking<R>
where
    R::Error: embedded_io::Error,
{
    type Error = R::Error;
}

impl<R: embedded_hal_nb::serial::Read<u8>> Read for Blocking<R>
where
    R::Error: embedded_io::Error,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, R::Error> {
        match buf.first_mut() {
            Some(b) => {
                *b = nb::block!(self.0.read())?;
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

/// A byte-wide polled UART: the one thing each driver here writes.
trait Polled {
    /// Waits for a byte.
    fn get(&mut self) -> u8;
    /// Sends a byte (waits while the transmitter is full).
    fn put(&mut self, byte: u8);
}

macro_rules! embedded_io_for {
    ($($uart:ty),*) => {$(
        impl ErrorType for $uart {
            type Error = Infallible;
        }

        impl Read for $uart {
            /// Waits for one byte: a request arrives byte by byte.
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
                match buf.first_mut() {
                    Some(b) => {
                        *b = self.get();
                        Ok(1)
                    }
                    None => Ok(0),
                }
            }
        }

        impl Write for $uart {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
                buf.iter().for_each(|&b| self.put(b));
                Ok(buf.len())
            }

            fn flush(&mut self) -> Result<(), Infallible> {
                Ok(())
            }
        }
    )*};
}

embedded_io_for!(Cmsdk, Stellaris, Nrf51, Ns16550);
