//! Omniglot (Lake et al., 2015): handwritten characters of 50 alphabets, 20 drawers each, read
//! in place from a zip archive or from a folder, in the layout of the official release:
//!
//! ```text
//! [TOP/…/]ALPHABET/CHARACTER/IMAGE.png      e.g. images_background/Greek/character01/0394_01.png
//! ```
//!
//! Each image becomes a 28×28 [`Image`] of `f32` ink in `[0, 1]` (1.0: fully inked), the size
//! MAML and most few-shot work use for Omniglot, so results compare with theirs. The scans are
//! 105×105 black-and-white; each output pixel is the mean ink over its 3.75×3.75 footprint (an
//! exact area average, fractional pixels weighted by overlap), which keeps thin strokes as grey
//! instead of dropping them as point sampling would. 784 floats are 3,136 bytes per input: a
//! Cortex-M4F with 256 KiB of RAM holds a 5-way 5-shot support set (78 KiB) beside the model,
//! where 105×105 inputs (44,100 bytes each) would need 1.1 MiB for the same set.
//!
//! Nothing here panics on a bad file: every error names the archive or folder, the entry and
//! what was wrong.
//!
//! ```
//! use meta_train::tasks::omniglot::{Omniglot, SIDE};
//! # fn main() -> anyhow::Result<()> {
//! # let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
//! #     .join("../../shared/data/omniglot/images_background_small1.zip");
//! # if !path.exists() { return Ok(()); }
//! let set = Omniglot::load(&path)?;
//! let greek = set.alphabet("Greek");
//! assert_eq!((greek.len(), greek[0].images.len()), (24, 20));
//! assert_eq!(greek[0].images[0].pixels.len(), SIDE * SIDE);
//! assert_eq!(set.with_rotations().characters.len(), 4 * set.characters.len());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use rand::seq::index;

use super::{rng_for, Stream};

/// Side of an [`Image`], in pixels.
pub const SIDE: usize = 28;
/// Values per [`Image`]: 784 `f32`, 3,136 bytes.
pub const PIXELS: usize = SIDE * SIDE;
/// Largest entry read from an archive, so a corrupt or hostile size cannot exhaust memory.
pub const MAX_ENTRY_BYTES: u64 = 16 << 20;
/// Largest accepted PNG side.
pub const MAX_PNG_SIDE: u32 = 4096;
/// Index of the [`Stream::Init`] generator that [`Omniglot::split_characters`] draws from, far
/// from the indices parameter initialisation uses.
pub const SPLIT_STREAM_INDEX: u64 = 1 << 40;

/// One drawing: [`PIXELS`] values in `[0, 1]`, row-major, ink = 1.0 on a 0.0 background.
///
/// ```
/// use meta_train::tasks::omniglot::{Image, PIXELS, SIDE};
/// let mut pixels = vec![0.0; PIXELS];
/// pixels[SIDE - 1] = 1.0; // top-right corner
/// let img = Image { file: "0001_01.png".into(), pixels };
/// assert_eq!(img.rotated(1).pixels[0], 1.0); // 90° counter-clockwise: now top-left
/// assert_eq!(img.rotated(4), img);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// File name in the source, e.g. `0394_01.png` (character `0394`, drawer `01`).
    pub file: String,
    /// Ink, row-major, [`SIDE`]×[`SIDE`].
    pub pixels: Vec<f32>,
}

impl Image {
    /// A copy rotated by `k` quarter turns counter-clockwise (`k` is taken modulo 4).
    ///
    /// The area-averaging grid is symmetric, so this equals downscaling the rotated scan.
    pub fn rotated(&self, k: u32) -> Image {
        Image {
            file: self.file.clone(),
            pixels: rotate(&self.pixels, SIDE, k),
        }
    }

    /// Total ink (sum of the pixels).
    pub fn ink(&self) -> f32 {
        self.pixels.iter().sum()
    }
}

/// `pixels` (`side`×`side`, row-major) rotated by `k` quarter turns counter-clockwise.
///
/// ```
/// use meta_train::tasks::omniglot::rotate;
/// let p = [1.0, 2.0, 3.0, 4.0]; // 1 2 / 3 4
/// assert_eq!(rotate(&p, 2, 1), [2.0, 4.0, 1.0, 3.0]); // 2 4 / 1 3
/// assert_eq!(rotate(&p, 2, 2), [4.0, 3.0, 2.0, 1.0]);
/// ```
pub fn rotate(pixels: &[f32], side: usize, k: u32) -> Vec<f32> {
    assert_eq!(
        pixels.len(),
        side * side,
        "rotate: not a {side}x{side} image"
    );
    let mut out = pixels.to_vec();
    for _ in 0..k % 4 {
        let src = out.clone();
        for y in 0..side {
            for x in 0..side {
                // Counter-clockwise: the right column becomes the top row.
                out[y * side + x] = src[x * side + (side - 1 - y)];
            }
        }
    }
    out
}

/// One character of one alphabet, with every drawing of it.
///
/// ```
/// use meta_train::tasks::omniglot::{Character, Image, PIXELS};
/// let c = Character {
///     alphabet: "Greek".into(),
///     name: "character01".into(),
///     images: vec![Image { file: "0394_01.png".into(), pixels: vec![0.0; PIXELS] }],
/// };
/// assert_eq!(c.rotated(3).name, "character01_rot270");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Character {
    /// Alphabet folder name, e.g. `Japanese_(katakana)`.
    pub alphabet: String,
    /// Character folder name, e.g. `character01`; rotated copies add `_rot90`, `_rot180`, `_rot270`.
    pub name: String,
    /// Drawings, sorted by file name (drawer order for the official release).
    pub images: Vec<Image>,
}

impl Character {
    /// A copy with every image rotated by `k` quarter turns counter-clockwise: a new class for
    /// MAML's rotation augmentation. `k % 4 == 0` returns the character unchanged.
    pub fn rotated(&self, k: u32) -> Character {
        let k = k % 4;
        Character {
            alphabet: self.alphabet.clone(),
            name: if k == 0 {
                self.name.clone()
            } else {
                format!("{}_rot{}", self.name, 90 * k)
            },
            images: self.images.iter().map(|i| i.rotated(k)).collect(),
        }
    }
}

/// A set of characters: one archive or folder, or a part of one.
///
/// ```
/// use meta_train::tasks::omniglot::{Character, Omniglot};
/// let c = |a: &str, n: &str| Character { alphabet: a.into(), name: n.into(), images: vec![] };
/// let set = Omniglot {
///     source: "mine".into(),
///     characters: vec![c("Greek", "character01"), c("Latin", "character01")],
/// };
/// assert_eq!(set.alphabets(), ["Greek", "Latin"]);
/// assert_eq!(set.only_alphabets(&["Latin"]).characters.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Omniglot {
    /// Where the set came from, as given (errors and reports name it).
    pub source: String,
    /// Characters, sorted by alphabet then name.
    pub characters: Vec<Character>,
}

impl Omniglot {
    /// Loads every `ALPHABET/CHARACTER/IMAGE.png` under `path`, a zip archive (read in place) or a
    /// folder, and resizes each image to 28×28 ink (see the [module](self) docs).
    pub fn load(path: impl AsRef<Path>) -> Result<Omniglot> {
        let source = Source::open(path)?;
        Omniglot::from_entries(&source.label(), source.entries()?)
    }

    /// Decodes raw entries (from [`Source::entries`] or built in memory); `source` names them
    /// in errors.
    pub fn from_entries(source: &str, entries: Vec<Entry>) -> Result<Omniglot> {
        if entries.is_empty() {
            bail!("{source}: no ALPHABET/CHARACTER/IMAGE.png images found");
        }
        // File name → (entry path, pixels), per (alphabet, character).
        type Drawings = BTreeMap<String, (String, Vec<f32>)>;
        let mut by_char: BTreeMap<(String, String), Drawings> = BTreeMap::new();
        for e in entries {
            let pixels =
                decode_png(&e.bytes).map_err(|err| anyhow!("{source}: entry {}: {err}", e.path))?;
            let images = by_char.entry((e.alphabet, e.character)).or_default();
            if let Some((first, _)) = images.get(&e.file) {
                bail!("{source}: entry {}: same image as entry {first}", e.path);
            }
            images.insert(e.file, (e.path, pixels));
        }
        let characters = by_char
            .into_iter()
            .map(|((alphabet, name), images)| Character {
                alphabet,
                name,
                images: images
                    .into_iter()
                    .map(|(file, (_, pixels))| Image { file, pixels })
                    .collect(),
            })
            .collect();
        Ok(Omniglot {
            source: source.to_string(),
            characters,
        })
    }

    /// Alphabet names, sorted.
    pub fn alphabets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .characters
            .iter()
            .map(|c| c.alphabet.as_str())
            .collect();
        names.dedup();
        names
    }

    /// The characters of one alphabet (empty when it is absent).
    pub fn alphabet(&self, name: &str) -> Vec<&Character> {
        self.characters
            .iter()
            .filter(|c| c.alphabet == name)
            .collect()
    }

    /// Number of images over all characters.
    pub fn image_count(&self) -> usize {
        self.characters.iter().map(|c| c.images.len()).sum()
    }

    /// The characters of the listed alphabets only.
    pub fn only_alphabets(&self, names: &[&str]) -> Omniglot {
        self.filtered(|c| names.contains(&c.alphabet.as_str()))
    }

    /// The characters whose alphabet `other` lacks: the held-out alphabets of a second set.
    ///
    /// ```
    /// use meta_train::tasks::omniglot::{Character, Omniglot};
    /// let set = |alphabets: &[&str]| Omniglot {
    ///     source: "s".into(),
    ///     characters: alphabets
    ///         .iter()
    ///         .map(|a| Character { alphabet: a.to_string(), name: "c".into(), images: vec![] })
    ///         .collect(),
    /// };
    /// let new = set(&["Greek", "Tagalog"]).alphabets_missing_from(&set(&["Greek", "Latin"]));
    /// assert_eq!(new.alphabets(), ["Tagalog"]);
    /// ```
    pub fn alphabets_missing_from(&self, other: &Omniglot) -> Omniglot {
        let known = other.alphabets();
        self.filtered(|c| !known.contains(&c.alphabet.as_str()))
    }

    /// Every character four times, rotated by 0°, 90°, 180° and 270° (MAML's augmentation: each
    /// rotation is a class of its own). The copies of a character are adjacent.
    pub fn with_rotations(&self) -> Omniglot {
        Omniglot {
            source: self.source.clone(),
            characters: self
                .characters
                .iter()
                .flat_map(|c| (0..4).map(move |k| c.rotated(k)))
                .collect(),
        }
    }

    /// Splits the characters (never the images of one character) into `(rest, held_out)`, with
    /// `round(fraction × n)` characters of each alphabet of `n` held out, drawn under `seed`.
    /// Both keep the sorted order. For a meta-validation set disjoint from meta-training.
    ///
    /// ```
    /// use meta_train::tasks::omniglot::{Character, Omniglot};
    /// let c = |n: usize| Character { alphabet: "A".into(), name: format!("c{n:02}"), images: vec![] };
    /// let set = Omniglot { source: "s".into(), characters: (0..10).map(c).collect() };
    /// let (train, val) = set.split_characters(0.2, 1);
    /// assert_eq!((train.characters.len(), val.characters.len()), (8, 2));
    /// assert_eq!(val, set.split_characters(0.2, 1).1);
    /// ```
    pub fn split_characters(&self, fraction: f64, seed: u64) -> (Omniglot, Omniglot) {
        let mut rng = rng_for(seed, Stream::Init, SPLIT_STREAM_INDEX);
        let mut held = vec![false; self.characters.len()];
        for alphabet in self.alphabets() {
            let members: Vec<usize> = (0..self.characters.len())
                .filter(|&i| self.characters[i].alphabet == alphabet)
                .collect();
            let take = ((fraction.clamp(0.0, 1.0) * members.len() as f64).round() as usize)
                .min(members.len());
            for i in index::sample(&mut rng, members.len(), take) {
                held[members[i]] = true;
            }
        }
        let part = |keep: bool| Omniglot {
            source: self.source.clone(),
            characters: self
                .characters
                .iter()
                .zip(&held)
                .filter(|(_, &h)| h == keep)
                .map(|(c, _)| c.clone())
                .collect(),
        };
        (part(false), part(true))
    }

    fn filtered(&self, keep: impl Fn(&Character) -> bool) -> Omniglot {
        Omniglot {
            source: self.source.clone(),
            characters: self
                .characters
                .iter()
                .filter(|c| keep(c))
                .cloned()
                .collect(),
        }
    }
}

/// Where images come from: a zip archive, read in place, or a folder.
///
/// ```no_run
/// use meta_train::tasks::omniglot::{Omniglot, Source};
/// # fn main() -> anyhow::Result<()> {
/// let source = Source::open("images_evaluation")?; // a folder: the full evaluation set
/// let entries = source.entries()?; // raw PNG bytes, not decoded yet
/// let set = Omniglot::from_entries(&source.label(), entries)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A zip archive.
    Zip(PathBuf),
    /// A folder.
    Dir(PathBuf),
}

/// One image file of a [`Source`], not yet decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the source, `/`-separated, as errors name it.
    pub path: String,
    /// Alphabet: the third-last path component.
    pub alphabet: String,
    /// Character: the second-last path component.
    pub character: String,
    /// File name.
    pub file: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl Source {
    /// A folder when `path` is one, else a zip archive.
    pub fn open(path: impl AsRef<Path>) -> Result<Source> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(if meta.is_dir() {
            Source::Dir(path.to_path_buf())
        } else {
            Source::Zip(path.to_path_buf())
        })
    }

    /// The path, as given.
    pub fn label(&self) -> String {
        match self {
            Source::Zip(p) | Source::Dir(p) => p.display().to_string(),
        }
    }

    /// Every `.png` file at least three levels deep, in path order. Directories, other files,
    /// hidden files and macOS `__MACOSX` metadata are skipped.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let label = self.label();
        let mut out = Vec::new();
        match self {
            Source::Zip(path) => read_zip(path, &label, &mut out)?,
            Source::Dir(root) => walk_dir(root, &[], &label, &mut out)?,
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// `Some(entry)` for an image path, `None` for one to skip, an error for a PNG too shallow.
fn entry_for(label: &str, path: &str, bytes: Vec<u8>) -> Result<Option<Entry>> {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some(file) = parts.last() else {
        return Ok(None);
    };
    let hidden = parts.iter().any(|p| p.starts_with('.') || *p == "__MACOSX");
    if hidden || !file.to_ascii_lowercase().ends_with(".png") {
        return Ok(None);
    }
    let [.., alphabet, character, file] = parts[..] else {
        bail!("{label}: entry {path}: expected ALPHABET/CHARACTER/IMAGE.png");
    };
    Ok(Some(Entry {
        path: path.to_string(),
        alphabet: alphabet.to_string(),
        character: character.to_string(),
        file: file.to_string(),
        bytes,
    }))
}

fn read_zip(path: &Path, label: &str, out: &mut Vec<Entry>) -> Result<()> {
    let file = fs::File::open(path).map_err(|e| anyhow!("{label}: {e}"))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| anyhow!("{label}: not a readable zip archive: {e}"))?;
    for i in 0..zip.len() {
        let name = zip.name_for_index(i).unwrap_or_default().to_string();
        if entry_for(label, &name, Vec::new())?.is_none() {
            continue; // not an image: not even opened
        }
        let mut f = zip
            .by_index(i)
            .map_err(|e| anyhow!("{label}: entry {name}: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let mut bytes = Vec::with_capacity(f.size().min(MAX_ENTRY_BYTES) as usize);
        (&mut f)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow!("{label}: entry {name}: {e}"))?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            bail!("{label}: entry {name}: larger than {MAX_ENTRY_BYTES} bytes");
        }
        out.extend(entry_for(label, &name, bytes)?);
    }
    Ok(())
}

/// Folders nested deeper than this are not followed (a symlink loop ends here).
const MAX_DEPTH: usize = 16;

fn walk_dir(dir: &Path, rel: &[String], label: &str, out: &mut Vec<Entry>) -> Result<()> {
    let shown = |rel: &[String]| {
        if rel.is_empty() {
            label.to_string()
        } else {
            format!("{label}: {}", rel.join("/"))
        }
    };
    if rel.len() > MAX_DEPTH {
        bail!("{}: folders nested deeper than {MAX_DEPTH}", shown(rel));
    }
    let listing = fs::read_dir(dir).map_err(|e| anyhow!("{}: {e}", shown(rel)))?;
    for item in listing {
        let item = item.map_err(|e| anyhow!("{}: {e}", shown(rel)))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let mut child = rel.to_vec();
        child.push(name);
        let path = item.path();
        let meta = fs::metadata(&path).map_err(|e| anyhow!("{}: {e}", shown(&child)))?;
        let rel_path = child.join("/");
        if meta.is_dir() {
            if !child
                .last()
                .is_some_and(|n| n.starts_with('.') || n == "__MACOSX")
            {
                walk_dir(&path, &child, label, out)?;
            }
        } else if entry_for(label, &rel_path, Vec::new())?.is_some() {
            if meta.len() > MAX_ENTRY_BYTES {
                bail!("{label}: file {rel_path}: larger than {MAX_ENTRY_BYTES} bytes");
            }
            let bytes = fs::read(&path).map_err(|e| anyhow!("{label}: file {rel_path}: {e}"))?;
            out.extend(entry_for(label, &rel_path, bytes)?);
        }
    }
    Ok(())
}

/// Decodes a PNG of any colour type and size up to [`MAX_PNG_SIDE`] into [`PIXELS`] ink values
/// (1 − luminance, transparent = white), area-averaged to [`SIDE`]×[`SIDE`].
///
/// ```
/// use meta_train::tasks::omniglot::decode_png;
/// let e = decode_png(b"GIF89a").unwrap_err();
/// assert!(e.starts_with("not a PNG: "), "{e}");
/// ```
pub fn decode_png(bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let not_png = |e: png::DecodingError| format!("not a PNG: {e}");
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(not_png)?;
    let (w, h) = reader.info().size();
    if w == 0 || h == 0 || w > MAX_PNG_SIDE || h > MAX_PNG_SIDE {
        return Err(format!(
            "PNG is {w}x{h}, outside 1..={MAX_PNG_SIDE} per side"
        ));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(not_png)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("PNG palette was not expanded".into()),
    };
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(format!("PNG of {:?} bits per sample", frame.bit_depth));
    }
    let mut ink = Vec::with_capacity(w * h);
    for y in 0..h {
        let row = &buf[y * frame.line_size..][..w * channels];
        for px in row.chunks_exact(channels) {
            let v = |i: usize| f32::from(px[i]) / 255.0;
            let (lum, alpha) = match channels {
                1 => (v(0), 1.0),
                2 => (v(0), v(1)),
                3 => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), 1.0),
                _ => (0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2), v(3)),
            };
            ink.push(alpha * (1.0 - lum));
        }
    }
    Ok(area_downscale(&ink, w, h, SIDE))
}

/// Resizes a `w`×`h` row-major image to `side`×`side` by area averaging: each output pixel is
/// the mean of the source over its footprint, source pixels weighted by the fraction of them
/// the footprint covers (a box filter; 105→28 gives 3.75×3.75 footprints).
///
/// ```
/// use meta_train::tasks::omniglot::area_downscale;
/// // 4×4 → 2×2: plain 2×2 block means.
/// let src = [1., 1., 0., 0., 1., 1., 0., 0., 0., 0., 0., 1., 0., 0., 1., 0.];
/// assert_eq!(area_downscale(&src, 4, 4, 2), [1.0, 0.0, 0.0, 0.5]);
/// // 3 → 2 (footprints of 1.5): the middle pixel is split between both outputs.
/// let row = area_downscale(&[0.0, 0.9, 0.0], 3, 1, 2);
/// assert!((row[0] - 0.3).abs() < 1e-6 && (row[1] - 0.3).abs() < 1e-6);
/// ```
pub fn area_downscale(src: &[f32], w: usize, h: usize, side: usize) -> Vec<f32> {
    assert_eq!(src.len(), w * h, "area_downscale: not a {w}x{h} image");
    let wx = footprints(w, side);
    let wy = footprints(h, side);
    // Rows first: h × side, then columns: side × side.
    let mut rows = vec![0.0f32; h * side];
    for y in 0..h {
        for (ox, taps) in wx.iter().enumerate() {
            rows[y * side + ox] = taps.iter().map(|&(x, f)| f * src[y * w + x]).sum();
        }
    }
    let mut out = vec![0.0f32; side * side];
    for (oy, taps) in wy.iter().enumerate() {
        for ox in 0..side {
            let v: f32 = taps.iter().map(|&(y, f)| f * rows[y * side + ox]).sum();
            out[oy * side + ox] = v.clamp(0.0, 1.0);
        }
    }
    out
}

/// For each of `n` outputs along an axis of `len` source pixels: the source pixels its
/// footprint covers and their weights (covered length / footprint length; they sum to 1).
fn footprints(len: usize, n: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = len as f64 / n as f64;
    (0..n)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).min(len);
            (first..last)
                .map(|s| {
                    let covered = hi.min(s as f64 + 1.0) - lo.max(s as f64);
                    (s, (covered / scale) as f32)
                })
                .filter(|&(_, f)| f > 0.0)
                .collect()
        })
        .collect()
}
