//! One few-shot episode of the user's own, from a folder of PNG images or from a CSV file.
//!
//! A folder holds a `support` and a `query` folder with one folder per class inside:
//!
//! ```text
//! EPISODE/support/CLASS/IMAGE.png      e.g. my_symbols/support/star/01.png
//! EPISODE/query/CLASS/IMAGE.png        e.g. my_symbols/query/star/07.png
//! ```
//!
//! Each image becomes 28×28 ink in `[0, 1]` exactly as an Omniglot image does
//! ([`decode_png`]: 1 − luminance, transparent = white, area-averaged), so a model meta-trained
//! on Omniglot reads it as it read its training images. Hidden files and folders (`.DS_Store`,
//! `__MACOSX`) are skipped; anything else that is not `CLASS/IMAGE.png` is an error.
//!
//! A CSV file (a name ending `.csv`) holds the same with numbers instead of images:
//!
//! ```text
//! split,label,f0,f1,f2      <- `split`, `label`, then one or more feature columns
//! support,walk,0.12,0.98,0.05
//! support,run,0.40,0.81,0.11
//! query,walk,0.10,0.97,0.07  <- `split` is `support` or `query`; `label` is a class name
//! ```
//!
//! The classes are the class names of the support set, sorted; label `i` is `classes[i]`. Every
//! query class needs support samples, and there must be at least one query sample. Samples keep
//! file order (CSV) or class-then-file-name order (folders). Nothing here panics on a bad input:
//! every error names the folder or file, the entry or line, and what was expected.
//!
//! ```
//! use meta_train::tasks::episode_dir::UserEpisode;
//! let text = "split,label,f0,f1\nsupport,b,1,1\nsupport,a,0,0\nquery,a,0.1,0\n";
//! let ep = UserEpisode::parse_csv("mine.csv", text)?;
//! assert_eq!((ep.classes.clone(), ep.n_way(), ep.features()), (vec!["a".into(), "b".into()], 2, 2));
//! assert_eq!(ep.episode.support, [(vec![1.0, 1.0], 1), (vec![0.0, 0.0], 0)]);
//! let e = UserEpisode::parse_csv("mine.csv", "split,label,f0\nsupport,a,zero\n").unwrap_err();
//! assert_eq!(e.to_string(), "mine.csv:2: column `f0`: expected a number, found \"zero\"");
//! # anyhow::Ok(())
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::csv::{line_at, number_in, CsvError};
use super::episodes::Episode;
use super::omniglot::{decode_png, MAX_ENTRY_BYTES};

/// The two folders of an episode folder, and the two values of the CSV `split` column.
const SPLITS: [&str; 2] = ["support", "query"];

/// A user's episode: its classes and its samples, labelled by class index.
///
/// ```
/// use meta_train::tasks::episode_dir::UserEpisode;
/// use meta_train::tasks::episodes::Episode;
/// let ep = UserEpisode {
///     source: "mine.csv".into(),
///     classes: vec!["cat".into(), "dog".into()],
///     episode: Episode {
///         support: vec![(vec![0.0; 3], 0), (vec![1.0; 3], 1)],
///         query: vec![(vec![0.9; 3], 1)],
///     },
/// };
/// assert_eq!((ep.n_way(), ep.features()), (2, 3));
/// assert_eq!(ep.classes[ep.episode.query[0].1], "dog");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct UserEpisode {
    /// Where the episode came from, as given (errors and reports name it).
    pub source: String,
    /// Class names, sorted; label `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// The samples: 784 ink values per image, or the CSV features, with their labels.
    pub episode: Episode,
}

impl UserEpisode {
    /// Loads `path`: a folder laid out as `support/CLASS/*.png` and `query/CLASS/*.png`, or a
    /// `.csv` file with a `split,label,f0,…` header (see the [module](self) docs).
    ///
    /// ```
    /// use meta_train::tasks::episode_dir::UserEpisode;
    /// let dir = tempfile::tempdir()?;
    /// // A 1×1 black PNG: full ink everywhere once resized to 28×28.
    /// let mut png = Vec::new();
    /// let mut enc = png::Encoder::new(&mut png, 1, 1);
    /// enc.set_color(png::ColorType::Grayscale);
    /// enc.write_header()?.write_image_data(&[0])?;
    /// for split in ["support", "query"] {
    ///     std::fs::create_dir_all(dir.path().join(split).join("dot"))?;
    ///     std::fs::write(dir.path().join(split).join("dot/1.png"), &png)?;
    /// }
    /// let ep = UserEpisode::load(dir.path())?;
    /// assert_eq!((ep.classes.clone(), ep.features()), (vec!["dot".to_string()], 28 * 28));
    /// assert!(ep.episode.query[0].0.iter().all(|&ink| ink == 1.0));
    ///
    /// std::fs::remove_dir_all(dir.path().join("query"))?;
    /// let e = UserEpisode::load(dir.path()).unwrap_err().to_string();
    /// assert!(e.contains("missing `query` folder"), "{e}");
    /// # anyhow::Ok(())
    /// ```
    pub fn load(path: &Path) -> Result<UserEpisode> {
        let source = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| anyhow!("{source}: {e}"))?;
        if meta.is_dir() {
            return from_dir(path, &source);
        }
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv {
            bail!(
                "{source}: expected a folder holding support/CLASS/*.png and \
                 query/CLASS/*.png, or a .csv file"
            );
        }
        let bytes = fs::read(path).map_err(|e| anyhow!("{source}: cannot read it: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            CsvError {
                file: source.clone(),
                line: 1 + valid.iter().filter(|&&b| b == b'\n').count(),
                message: "expected UTF-8 text".into(),
            }
        })?;
        Ok(UserEpisode::parse_csv(&source, &text)?)
    }

    /// Parses the text of a CSV episode file called `file` (see the [module](self) docs).
    /// Errors name the file and the 1-based line; line 0 (shown as just the file) is the file
    /// as a whole: empty, no samples, no query samples.
    ///
    /// ```
    /// use meta_train::tasks::episode_dir::UserEpisode;
    /// let e = UserEpisode::parse_csv("mine.csv", "split,label,f0\nsupport,a,1\ntest,a,2\n");
    /// assert_eq!(
    ///     e.unwrap_err().to_string(),
    ///     "mine.csv:3: column `split`: expected `support` or `query`, found \"test\""
    /// );
    /// ```
    pub fn parse_csv(file: &str, text: &str) -> std::result::Result<UserEpisode, CsvError> {
        let err = |line: usize, message: String| CsvError {
            file: file.to_string(),
            line,
            message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(err(
                0,
                "empty file: expected a header `split,label,f0,f1,…` and samples".into(),
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| err(1, format!("cannot read the header: {e}")))?
            .clone();
        let header_line = headers.position().map_or(1, |p| line_at(text, p.byte()));
        let (mut split_col, mut label_col) = (None, None);
        let mut feature_cols = Vec::new();
        for (i, name) in headers.iter().enumerate() {
            let col = match name {
                "split" => &mut split_col,
                "label" => &mut label_col,
                "" => {
                    return Err(err(
                        header_line,
                        format!(
                            "column {} has no name: expected `split,label,f0,f1,…`",
                            i + 1
                        ),
                    ))
                }
                _ => {
                    feature_cols.push(i);
                    continue;
                }
            };
            if col.replace(i).is_some() {
                return Err(err(header_line, format!("column `{name}` appears twice")));
            }
        }
        for (col, name) in [(split_col, "split"), (label_col, "label")] {
            if col.is_none() {
                return Err(err(
                    header_line,
                    format!("expected a `{name}` column: a header `split,label,f0,f1,…`"),
                ));
            }
        }
        let (split_col, label_col) = (split_col.unwrap_or(0), label_col.unwrap_or(0));
        if feature_cols.is_empty() {
            return Err(err(
                header_line,
                "expected at least one feature column after `split,label`".into(),
            ));
        }
        // (line, is query, class name, features), in file order.
        let mut rows: Vec<(usize, bool, String, Vec<f32>)> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| line_at(text, p.byte()));
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("expected {expected_len} columns as in the header, found {len}")
                    }
                    _ => format!("not CSV: {e}"),
                };
                err(line, message)
            })?;
            let line = record.position().map_or(0, |p| line_at(text, p.byte()));
            let is_query = match &record[split_col] {
                "support" => false,
                "query" => true,
                other => {
                    return Err(err(
                        line,
                        format!("column `split`: expected `support` or `query`, found {other:?}"),
                    ))
                }
            };
            let label = &record[label_col];
            if label.is_empty() {
                return Err(err(
                    line,
                    "column `label`: expected a class name, found nothing".into(),
                ));
            }
            let x = feature_cols
                .iter()
                .map(|&c| number_in(&record[c], &headers[c]).map_err(|m| err(line, m)))
                .collect::<std::result::Result<Vec<f32>, CsvError>>()?;
            rows.push((line, is_query, label.to_string(), x));
        }
        if rows.is_empty() {
            return Err(err(0, "no samples: expected rows after the header".into()));
        }
        let mut classes: Vec<String> = rows.iter().filter(|r| !r.1).map(|r| r.2.clone()).collect();
        classes.sort_unstable();
        classes.dedup();
        if classes.is_empty() {
            return Err(err(
                0,
                "no support samples: expected rows with split `support`".into(),
            ));
        }
        let mut episode = Episode {
            support: Vec::new(),
            query: Vec::new(),
        };
        for (line, is_query, label, x) in rows {
            let Ok(index) = classes.binary_search(&label) else {
                return Err(err(
                    line,
                    format!(
                        "class {label:?} has no support samples: expected a `support` row \
                         labelled {label:?}"
                    ),
                ));
            };
            if is_query {
                episode.query.push((x, index));
            } else {
                episode.support.push((x, index));
            }
        }
        if episode.query.is_empty() {
            return Err(err(
                0,
                "no query samples: expected rows with split `query`".into(),
            ));
        }
        Ok(UserEpisode {
            source: file.to_string(),
            classes,
            episode,
        })
    }

    /// Values per sample: 784 (28×28 ink) for images, the feature columns for a CSV file.
    pub fn features(&self) -> usize {
        let first = self.episode.support.first().or(self.episode.query.first());
        first.map_or(0, |(x, _)| x.len())
    }

    /// Number of classes (N of N-way).
    pub fn n_way(&self) -> usize {
        self.classes.len()
    }
}

/// Whether a folder entry is metadata to skip: hidden (`.DS_Store`) or macOS `__MACOSX`.
fn hidden(name: &str) -> bool {
    name.starts_with('.') || name == "__MACOSX"
}

/// The non-hidden entries of `dir` (`rel` inside `source`, for errors), sorted by name.
fn listing(dir: &Path, source: &str, rel: &str) -> Result<Vec<(String, PathBuf)>> {
    let items = fs::read_dir(dir).map_err(|e| anyhow!("{source}: folder {rel}: {e}"))?;
    let mut out = Vec::new();
    for item in items {
        let item = item.map_err(|e| anyhow!("{source}: folder {rel}: {e}"))?;
        let name = item.file_name().into_string().map_err(|name| {
            anyhow!(
                "{source}: entry {rel}/{}: expected a UTF-8 name",
                name.to_string_lossy()
            )
        })?;
        if !hidden(&name) {
            out.push((name, item.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn from_dir(root: &Path, source: &str) -> Result<UserEpisode> {
    let [support, query] = SPLITS.map(|split| read_split(root, source, split));
    let (support, query) = (support?, query?);
    if support.is_empty() {
        bail!("{source}: folder support: expected class folders support/CLASS/ holding .png images, found none");
    }
    if query.is_empty() {
        bail!("{source}: folder query: no query samples: expected class folders query/CLASS/ holding .png images, found none");
    }
    if let Some(class) = query.keys().find(|c| !support.contains_key(*c)) {
        bail!(
            "{source}: folder query/{class}: class {class:?} has no support images: expected a \
             folder support/{class} with at least one .png image"
        );
    }
    let classes: Vec<String> = support.keys().cloned().collect();
    let labelled = |split: BTreeMap<String, Vec<Vec<f32>>>| -> Vec<(Vec<f32>, usize)> {
        split
            .into_iter()
            .flat_map(|(class, images)| {
                let label = classes.binary_search(&class).unwrap_or_default();
                images.into_iter().map(move |x| (x, label))
            })
            .collect()
    };
    let episode = Episode {
        support: labelled(support),
        query: labelled(query),
    };
    Ok(UserEpisode {
        source: source.to_string(),
        classes,
        episode,
    })
}

/// The images of `root/split`, by class name; each class has at least one.
fn read_split(root: &Path, source: &str, split: &str) -> Result<BTreeMap<String, Vec<Vec<f32>>>> {
    let dir = root.join(split);
    match fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("{source}: entry {split}: expected a folder {split}/CLASS/ of .png images, found a file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let found: Vec<String> = listing(root, source, ".")?
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            bail!(
                "{source}: missing `{split}` folder: expected {split}/CLASS/*.png beside \
                 {other}/CLASS/*.png (found: {})",
                if found.is_empty() {
                    "nothing".to_string()
                } else {
                    found.join(", ")
                },
                other = SPLITS.iter().find(|&&s| s != split).unwrap_or(&split),
            );
        }
        Err(e) => bail!("{source}: folder {split}: {e}"),
    }
    let mut classes = BTreeMap::new();
    for (class, path) in listing(&dir, source, split)? {
        let rel = format!("{split}/{class}");
        let meta = fs::metadata(&path).map_err(|e| anyhow!("{source}: entry {rel}: {e}"))?;
        if !meta.is_dir() {
            bail!("{source}: entry {rel}: expected a class folder {split}/CLASS/ holding .png images, found a file");
        }
        let images = read_class(&path, source, &rel)?;
        if images.is_empty() {
            bail!("{source}: folder {rel}: expected at least one .png image, found none");
        }
        classes.insert(class, images);
    }
    Ok(classes)
}

/// The images of one class folder (`rel` inside `source`), in file-name order, each decoded
/// as Omniglot images are.
fn read_class(dir: &Path, source: &str, rel: &str) -> Result<Vec<Vec<f32>>> {
    let mut images = Vec::new();
    for (name, path) in listing(dir, source, rel)? {
        let rel = format!("{rel}/{name}");
        let meta = fs::metadata(&path).map_err(|e| anyhow!("{source}: entry {rel}: {e}"))?;
        if meta.is_dir() {
            bail!("{source}: entry {rel}: expected a .png image, found a folder");
        }
        if !name.to_ascii_lowercase().ends_with(".png") {
            bail!("{source}: entry {rel}: expected a .png image");
        }
        if meta.len() > MAX_ENTRY_BYTES {
            bail!("{source}: entry {rel}: larger than {MAX_ENTRY_BYTES} bytes");
        }
        let bytes = fs::read(&path).map_err(|e| anyhow!("{source}: entry {rel}: {e}"))?;
        images.push(decode_png(&bytes).map_err(|e| anyhow!("{source}: entry {rel}: {e}"))?);
    }
    Ok(images)
}
