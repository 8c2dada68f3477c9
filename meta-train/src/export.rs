//! What flashing a `w*` needs: the raw `.bin` for a board's `w*` region, its address, and the
//! same bytes as Intel HEX placed at that address.
//!
//! ```
//! use meta_train::export::intel_hex;
//! let hex = intel_hex(&[1, 2, 3], 0x000E_0000).unwrap();
//! assert!(hex.starts_with(":02000004000EEC")); // upper address 0x000E
//! assert!(hex.trim_end().ends_with(":00000001FF"));
//! ```

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use shared::board::Board;
use shared::wstar::Blob;

use crate::run_dir::write_atomic;

/// Data bytes per Intel HEX record.
const HEX_RECORD: usize = 32;

/// `bytes` as Intel HEX, starting at `address`.
pub fn intel_hex(bytes: &[u8], address: u32) -> Result<String> {
    let mut records = Vec::new();
    let mut upper = None;
    for (i, chunk) in bytes.chunks(HEX_RECORD).enumerate() {
        let at = address
            .checked_add((i * HEX_RECORD) as u32)
            .ok_or_else(|| anyhow!("the blob runs past the 32-bit address space"))?;
        // A record must not cross a 64 KiB boundary: split where it would.
        let room = 0x1_0000 - (at & 0xFFFF) as usize;
        let parts = if chunk.len() > room {
            vec![(at, &chunk[..room]), (at + room as u32, &chunk[room..])]
        } else {
            vec![(at, chunk)]
        };
        for (at, part) in parts {
            let hi = (at >> 16) as u16;
            if upper != Some(hi) {
                records.push(ihex::Record::ExtendedLinearAddress(hi));
                upper = Some(hi);
            }
            records.push(ihex::Record::Data {
                offset: (at & 0xFFFF) as u16,
                value: part.to_vec(),
            });
        }
    }
    records.push(ihex::Record::EndOfFile);
    let mut s =
        ihex::create_object_file_representation(&records).map_err(|e| anyhow!("Intel HEX: {e}"))?;
    s.push('\n');
    Ok(s)
}

/// Files written by [`export`].
pub struct Exported {
    /// The raw blob.
    pub bin: PathBuf,
    /// The blob as Intel HEX at the region's address.
    pub hex: PathBuf,
}

/// Checks `blob` and writes `<out>/wstar-<board>.bin` and `.hex` for `board`'s `w*` region.
pub fn export(blob: &[u8], board: &Board, out: &Path) -> Result<Exported> {
    Blob::parse(blob).map_err(|e| anyhow!("{e}"))?;
    if blob.len() > board.wstar.length as usize {
        bail!(
            "the blob is {} bytes; the w* region of {} holds {}",
            blob.len(),
            board.name,
            board.wstar.length
        );
    }
    std::fs::create_dir_all(out)?;
    let bin = out.join(format!("wstar-{}.bin", board.name));
    let hex = out.join(format!("wstar-{}.hex", board.name));
    write_atomic(&bin, blob)?;
    write_atomic(&hex, intel_hex(blob, board.wstar.origin)?.as_bytes())?;
    Ok(Exported { bin, hex })
}

/// How to flash the exported files: `probe-rs` on a real board, QEMU's loader on an emulated
/// one.
pub fn instructions(board: &Board, e: &Exported) -> String {
    let addr = board.wstar.origin;
    let mut s = format!(
        "{}: w* region at {addr:#010x}, {} bytes\n  {}\n  {}\n",
        board.description,
        board.wstar.length,
        e.bin.display(),
        e.hex.display()
    );
    if let Some(chip) = board.probe_rs_chip {
        s.push_str(&format!(
            "flash it (the firmware stays):\n  probe-rs download --chip {chip} --binary-format bin --base-address {addr:#x} {}\n  \
             or: probe-rs download --chip {chip} --binary-format hex {}\n",
            e.bin.display(),
            e.hex.display()
        ));
    }
    if let Some(machine) = board.qemu_machine {
        s.push_str(&format!(
            "under QEMU:\n  qemu-system-arm -machine {machine} ... -device loader,file={},addr={addr:#x}\n",
            e.bin.display()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads Intel HEX back into (address, bytes) runs.
    fn read_back(hex: &str) -> Vec<(u32, u8)> {
        let mut upper = 0u32;
        let mut out = Vec::new();
        for r in ihex::Reader::new(hex) {
            match r.expect("valid record") {
                ihex::Record::ExtendedLinearAddress(hi) => upper = u32::from(hi) << 16,
                ihex::Record::Data { offset, value } => {
                    for (i, b) in value.into_iter().enumerate() {
                        out.push((upper + u32::from(offset) + i as u32, b));
                    }
                }
                ihex::Record::EndOfFile => break,
                other => panic!("unexpected record {other:?}"),
            }
        }
        out
    }

    #[test]
    fn hex_holds_every_byte_at_its_address_across_64k_boundaries() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for base in [0x0000_0000, 0x000E_0000, 0x0001_FFF0, 0x0010_0000] {
            let got = read_back(&intel_hex(&bytes, base).unwrap());
            let want: Vec<(u32, u8)> = bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| (base + i as u32, b))
                .collect();
            assert_eq!(got, want, "base {base:#x}");
        }
    }

    #[test]
    fn a_blob_larger_than_the_region_is_refused() {
        let blob = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/metasgd-sinusoid-k10.bin"
        ))
        .unwrap();
        let mut tiny = shared::board::LM3S6965EVB;
        tiny.wstar.length = 1024;
        let dir = tempfile::tempdir().unwrap();
        let e = export(&blob, &tiny, dir.path()).err().unwrap().to_string();
        assert!(e.contains("holds 1024"), "{e}");
        assert!(export(&blob[..100], &tiny, dir.path()).is_err());
    }
}
