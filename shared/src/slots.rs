//! Two `w*` slots (A/B): an update writes the inactive slot, and the device serves the newest
//! slot whose blob passes every check, falling back to the other when it does not. A bad
//! update or a flipped bit never leaves a device without a `w*` it had.
//!
//! A slot holds a 16-byte slot header, then the `w*` blob:
//!
//! ```text
//! offset size field
//!      0    4 magic        b"TAWS"
//!      4    4 generation   u32 LE: higher is newer
//!      8    4 reserved     0
//!     12    4 CRC-32       u32 LE over bytes 0..12
//!     16    … the w* blob
//! ```
//!
//! ```
//! use shared::slots::{select, slot_image};
//! use shared::wstar::BlobError;
//! type Net = shared::model::Mlp1<f32, 1, 4, 1>;
//! # let meta = shared::wstar::Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 1);
//! # let theta = vec![0.1f32; 13];
//! # let blob = shared::wstar::encode(&meta, &theta, &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
//! let a = slot_image(&blob, 1);
//! let mut b = slot_image(&blob, 2);
//! let last = b.len() - 1;
//! b[last] ^= 0x10; // the newer slot is corrupt
//! let s = select::<Net, 1, 1>([&a, &b]);
//! assert_eq!(s.live, Some(0)); // A serves
//! assert!(matches!(s.refused[1], Some(BlobError::CrcMismatch { .. })));
//! ```

use crate::model::Shape;
use crate::wstar::{in_region, Blob, BlobError, CRC32};

/// Magic of a slot header.
pub const SLOT_MAGIC: [u8; 4] = *b"TAWS";
/// Bytes of a slot header.
pub const SLOT_HEADER_LEN: usize = 16;

/// Which slot serves and why the others were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The slot serving (0: A, 1: B), if any passed every check.
    pub live: Option<usize>,
    /// Its generation.
    pub generation: u32,
    /// Why each refused slot was refused (`None`: it serves, or was valid but older).
    pub refused: [Option<BlobError>; 2],
}

/// The generation and the blob region of a slot, or why its header is refused: blank
/// ([`BlobError::Erased`]), not a slot header ([`BlobError::BadMagic`]), or a header whose CRC
/// fails ([`BlobError::CrcMismatch`]).
pub fn parse_slot(slot: &[u8]) -> Result<(u32, &[u8]), BlobError> {
    if slot.len() < SLOT_HEADER_LEN {
        return Err(BlobError::TooShort { len: slot.len() });
    }
    let h = &slot[..SLOT_HEADER_LEN];
    if h.iter().all(|&b| b == 0xFF) || h.iter().all(|&b| b == 0) {
        return Err(BlobError::Erased);
    }
    if h[..4] != SLOT_MAGIC {
        return Err(BlobError::BadMagic);
    }
    let stored = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    let computed = CRC32.checksum(&h[..12]);
    if stored != computed {
        return Err(BlobError::CrcMismatch { stored, computed });
    }
    let generation = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    Ok((generation, &slot[SLOT_HEADER_LEN..]))
}

/// The blob in a slot, checked for model `M` (every check of [`Blob::parse_for`]).
pub fn slot_blob<M: Shape, const I: usize, const O: usize>(
    slot: &[u8],
) -> Result<(u32, &[u8]), BlobError> {
    slot_blob_by(slot, parse_for::<M, I, O>)
}

/// The blob in a slot, checked by `check`: any model's checks, such as [`Blob::parse_on`] for
/// a head on a convolutional body, or loading the blob.
///
/// ```
/// use shared::body::BodySpec;
/// use shared::slots::{slot_blob_by, slot_image};
/// use shared::wstar::{encode_with_body, Blob, BlobError, BodyShape, Meta};
/// const BODY: BodySpec<2> = BodySpec { side: 4, channels: [1, 2] };
/// type Head = shared::model::Dense<f32, 8, 2>;
/// # let meta = Meta::new::<Head, 8, 2>(shared::loss::Loss::SoftmaxCrossEntropy, 1);
/// # let blob = encode_with_body(&meta, &[0.0; 18], &[0.1], [&[0.0; 8], &[1.0; 8], &[0.0; 2], &[1.0; 2]],
/// #     Some((&BodyShape::of(&BODY), &[0.5; 20]))).unwrap();
/// // `blob`: a 2-class head on `BODY`.
/// let slot = slot_image(&blob, 7);
/// let on_body = |b| Blob::parse_on::<Head, 8, 2, 2>(b, &BODY).map(drop);
/// assert_eq!(slot_blob_by(&slot, on_body), Ok((7, &blob[..])));
/// let head_only = |b| Blob::parse_for::<Head, 8, 2>(b).map(drop);
/// assert!(matches!(slot_blob_by(&slot, head_only), Err(BlobError::SignatureMismatch { .. })));
/// ```
pub fn slot_blob_by<'s>(
    slot: &'s [u8],
    check: impl FnOnce(&'s [u8]) -> Result<(), BlobError>,
) -> Result<(u32, &'s [u8]), BlobError> {
    let (generation, region) = parse_slot(slot)?;
    let blob = in_region(region)?;
    check(blob)?;
    Ok((generation, blob))
}

/// Picks the newest slot whose blob passes every check for model `M`.
pub fn select<M: Shape, const I: usize, const O: usize>(slots: [&[u8]; 2]) -> Selection {
    select_by(slots, parse_for::<M, I, O>)
}

/// Picks the newest slot whose blob passes `check` (see [`slot_blob_by`]); `check` sees slot
/// A's blob, then B's.
///
/// ```
/// use shared::slots::{select_by, slot_image};
/// use shared::wstar::{Blob, BlobError};
/// type Net = shared::model::Mlp1<f32, 1, 4, 1>;
/// # let meta = shared::wstar::Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 1);
/// # let blob = shared::wstar::encode(&meta, &[0.1; 13], &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
/// let (a, b) = (slot_image(&blob, 1), slot_image(&blob, 2));
/// let s = select_by([&a, &b], |blob| Blob::parse_for::<Net, 1, 1>(blob).map(drop));
/// assert_eq!((s.live, s.generation), (Some(1), 2));
/// let none = select_by([&a, &b], |_| Err(BlobError::ModelMismatch));
/// assert_eq!(none.refused, [Some(BlobError::ModelMismatch); 2]);
/// ```
pub fn select_by<'s>(
    slots: [&'s [u8]; 2],
    mut check: impl FnMut(&'s [u8]) -> Result<(), BlobError>,
) -> Selection {
    let checked = [
        slot_blob_by(slots[0], &mut check),
        slot_blob_by(slots[1], &mut check),
    ];
    let mut s = Selection {
        live: None,
        generation: 0,
        refused: [None, None],
    };
    for (i, c) in checked.iter().enumerate() {
        match c {
            Ok((g, _)) if s.live.is_none() || *g > s.generation => {
                s.live = Some(i);
                s.generation = *g;
            }
            Ok(_) => {}
            Err(e) => s.refused[i] = Some(*e),
        }
    }
    s
}

/// [`Blob::parse_for`] as a check.
fn parse_for<M: Shape, const I: usize, const O: usize>(blob: &[u8]) -> Result<(), BlobError> {
    Blob::parse_for::<M, I, O>(blob).map(drop)
}

/// A slot image: the header with `generation`, then `blob`.
#[cfg(feature = "alloc")]
pub fn slot_image(blob: &[u8], generation: u32) -> alloc::vec::Vec<u8> {
    let mut v = alloc::vec::Vec::with_capacity(SLOT_HEADER_LEN + blob.len());
    v.extend_from_slice(&SLOT_MAGIC);
    v.extend_from_slice(&generation.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    let crc = CRC32.checksum(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v.extend_from_slice(blob);
    v
}
