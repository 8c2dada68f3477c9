//! What flashing a `w*` needs: the slot image (slot header with its generation, then the blob;
//! see `shared::slots`) as a raw `.bin` for one of a board's two `w*` slots, its address, and
//! the same bytes as Intel HEX placed at that address.
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
    /// The same as Intel HEX at the slot's address.
    pub hex: PathBuf,
    /// The slot (0: A, 1: B).
    pub slot: usize,
    /// Its generation.
    pub generation: u32,
}

/// Checks `blob` and writes `<out>/wstar-<board>-<slot>.bin` and `.hex`: the slot image with
/// `generation` for `board`'s slot `slot` (0: A, 1: B).
pub fn export(
    blob: &[u8],
    board: &Board,
    slot: usize,
    generation: u32,
    out: &Path,
) -> Result<Exported> {
    Blob::parse(blob).map_err(|e| anyhow!("{e}"))?;
    let image = shared::slots::slot_image(blob, generation);
    let region = board.slot(slot);
    if image.len() > region.length as usize {
        bail!(
            "the slot image is {} bytes; a w* slot of {} holds {}",
            image.len(),
            board.name,
            region.length
        );
    }
    std::fs::create_dir_all(out)?;
    let name = format!("wstar-{}-{}", board.name, slot_name(slot));
    let bin = out.join(format!("{name}.bin"));
    let hex = out.join(format!("{name}.hex"));
    write_atomic(&bin, &image)?;
    write_atomic(&hex, intel_hex(&image, region.origin)?.as_bytes())?;
    Ok(Exported {
        bin,
        hex,
        slot,
        generation,
    })
}

/// "a" or "b".
pub fn slot_name(slot: usize) -> &'static str {
    if slot == 0 {
        "a"
    } else {
        "b"
    }
}

/// How to flash the exported files: `probe-rs` on a real board, QEMU's loader on an emulated
/// one.
pub fn instructions(board: &Board, e: &Exported) -> String {
    let region = board.slot(e.slot);
    let addr = region.origin;
    let mut s = format!(
        "{}: w* slot {} at {addr:#010x} ({} bytes), generation {}\n  {}\n  {}\n\
         the device serves the newest valid slot; write an update to the other slot with a higher generation\n",
        board.description,
        slot_name(e.slot).to_uppercase(),
        region.length,
        e.generation,
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
        tiny.wstar.length = 2048;
        let dir = tempfile::tempdir().unwrap();
        let e = export(&blob, &tiny, 1, 2, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("holds 1024"), "{e}");
        assert!(export(&blob[..100], &tiny, 0, 1, dir.path()).is_err());
    }

    #[test]
    fn the_exported_slot_is_what_the_device_serves() {
        let blob = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/metasgd-sinusoid-k10.bin"
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = export(&blob, &shared::board::LM3S6965EVB, 1, 7, dir.path()).unwrap();
        let image = std::fs::read(&e.bin).unwrap();
        let (generation, served) =
            shared::slots::slot_blob::<crate::model::SinusoidNet, 1, 1>(&image).unwrap();
        assert_eq!((generation, served), (7, &blob[..]));
        assert!(e.hex.to_string_lossy().ends_with("wstar-lm3s6965evb-b.hex"));
    }
}
