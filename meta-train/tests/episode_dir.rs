//! A user's own episode from a folder of PNGs or a CSV file: labels, counts, pixel values that
//! match the Omniglot preprocessing, and an error naming the entry or line for each bad input.

use std::fs;
use std::path::Path;

use meta_train::tasks::episode_dir::UserEpisode;
use meta_train::tasks::omniglot::{decode_png, PIXELS};

/// An 8-bit PNG of `w`×`h` pixels of `color` with `data` row-major.
fn png_bytes(w: u32, h: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
    out
}

/// A 28×28 grey PNG of one value (0: black, 255: white).
fn grey(v: u8) -> Vec<u8> {
    png_bytes(28, 28, png::ColorType::Grayscale, &[v; PIXELS])
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

/// A valid episode: classes `a` and `b` (support and query), `c` (support only), plus
/// metadata and a README that must be skipped.
fn valid_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    put(r, "support/b/2.png", &grey(255)); // white: no ink
    put(r, "support/b/10.png", &grey(0)); // black: full ink; sorts before 2.png
    put(r, "support/a/x.png", &grey(51));
    put(
        r,
        "support/c/half.png",
        &png_bytes(2, 1, png::ColorType::Grayscale, &[0, 255]),
    );
    put(r, "support/.DS_Store", b"junk");
    put(r, "support/a/.DS_Store", b"junk");
    put(r, "support/__MACOSX/a/._x.png", b"junk");
    put(r, "query/a/1.png", &grey(0));
    put(
        r,
        "query/b/1.png",
        &png_bytes(28, 28, png::ColorType::Rgba, &[0; PIXELS * 4]),
    );
    put(r, "query/.hidden/1.png", b"junk");
    put(r, "README.txt", b"my episode");
    dir
}

fn load_err(path: &Path) -> String {
    format!("{:#}", UserEpisode::load(path).unwrap_err())
}

fn assert_names(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "error {e:?} lacks {p:?}");
    }
}

#[test]
fn folder_episode_has_sorted_classes_labels_and_omniglot_pixels() {
    let dir = valid_dir();
    let ep = UserEpisode::load(dir.path()).unwrap();
    assert_eq!(ep.source, dir.path().display().to_string());
    assert_eq!(ep.classes, ["a", "b", "c"]);
    assert_eq!((ep.n_way(), ep.features()), (3, PIXELS));
    let labels = |s: &[(Vec<f32>, usize)]| s.iter().map(|&(_, l)| l).collect::<Vec<_>>();
    assert_eq!(labels(&ep.episode.support), [0, 1, 1, 2]);
    assert_eq!(labels(&ep.episode.query), [0, 1]);
    assert_eq!(ep.episode.n_way(), 3);
    // Ink = 1 − luminance: grey 51 is 0.8, black 1.0 (10.png first), white 0.0.
    let s = &ep.episode.support;
    assert!(s[0].0.iter().all(|&v| (v - 0.8).abs() < 1e-6));
    assert!(s[1].0.iter().all(|&v| v == 1.0));
    assert!(s[2].0.iter().all(|&v| v == 0.0));
    // 2×1 black|white, area-averaged to 28×28: left half inked, right half blank.
    for (i, &v) in s[3].0.iter().enumerate() {
        assert_eq!(v, if i % 28 < 14 { 1.0 } else { 0.0 }, "pixel {i}");
    }
    // Transparent is white: no ink.
    assert!(ep.episode.query[1].0.iter().all(|&v| v == 0.0));
    // Exactly the Omniglot preprocessing.
    let half = fs::read(dir.path().join("support/c/half.png")).unwrap();
    assert_eq!(s[3].0, decode_png(&half).unwrap());
    // Deterministic.
    assert_eq!(ep, UserEpisode::load(dir.path()).unwrap());
}

#[test]
fn missing_support_or_query_folder_is_named() {
    for split in ["support", "query"] {
        let dir = valid_dir();
        fs::remove_dir_all(dir.path().join(split)).unwrap();
        let e = load_err(dir.path());
        let root = dir.path().display().to_string();
        assert_names(
            &e,
            &[&root, &format!("missing `{split}` folder"), "README.txt"],
        );
    }
    // A file where the folder should be.
    let dir = valid_dir();
    fs::remove_dir_all(dir.path().join("query")).unwrap();
    put(dir.path(), "query", b"not a folder");
    assert_names(&load_err(dir.path()), &["entry query", "expected a folder"]);
}

#[test]
fn query_class_without_support_is_named() {
    let dir = valid_dir();
    put(dir.path(), "query/zebra/1.png", &grey(0));
    let e = load_err(dir.path());
    assert_names(
        &e,
        &["query/zebra", "has no support images", "support/zebra"],
    );
}

#[test]
fn class_folder_without_images_is_named() {
    let dir = valid_dir();
    put(dir.path(), "support/empty/.DS_Store", b"junk");
    let e = load_err(dir.path());
    assert_names(
        &e,
        &["folder support/empty", "expected at least one .png image"],
    );

    let dir = valid_dir();
    fs::create_dir_all(dir.path().join("query/c")).unwrap();
    assert_names(
        &load_err(dir.path()),
        &["folder query/c", "at least one .png"],
    );
}

#[test]
fn undecodable_png_is_named() {
    let dir = valid_dir();
    put(dir.path(), "support/a/y.png", b"GIF89a not a png");
    assert_names(
        &load_err(dir.path()),
        &["entry support/a/y.png", "not a PNG"],
    );

    // Every truncation of a valid PNG is an error, never a panic; only the 12-byte IEND
    // trailer may go missing, the image data being complete without it.
    let good = grey(128);
    for n in 0..good.len() {
        let dir = valid_dir();
        put(dir.path(), "query/a/cut.png", &good[..n]);
        match UserEpisode::load(dir.path()) {
            Err(e) => assert_names(&format!("{e:#}"), &["entry query/a/cut.png"]),
            Ok(ep) => {
                assert!(n >= good.len() - 12, "{n} of {} bytes decoded", good.len());
                assert_eq!(ep.episode.query[1].0, decode_png(&good).unwrap()); // after 1.png
            }
        }
    }
}

#[test]
fn non_png_files_and_misplaced_entries_are_named() {
    let dir = valid_dir();
    put(dir.path(), "support/a/notes.txt", b"hello");
    let e = load_err(dir.path());
    assert_names(&e, &["entry support/a/notes.txt", "expected a .png image"]);

    let dir = valid_dir();
    put(dir.path(), "support/loose.png", &grey(0));
    let e = load_err(dir.path());
    assert_names(&e, &["entry support/loose.png", "expected a class folder"]);

    let dir = valid_dir();
    put(dir.path(), "support/a/deeper/1.png", &grey(0));
    let e = load_err(dir.path());
    assert_names(&e, &["entry support/a/deeper", "found a folder"]);
}

#[test]
fn no_query_samples_is_an_error() {
    let dir = valid_dir();
    fs::remove_dir_all(dir.path().join("query")).unwrap();
    fs::create_dir(dir.path().join("query")).unwrap();
    put(dir.path(), "query/.DS_Store", b"junk");
    assert_names(&load_err(dir.path()), &["folder query", "no query samples"]);

    let dir = valid_dir();
    fs::remove_dir_all(dir.path().join("support")).unwrap();
    fs::create_dir(dir.path().join("support")).unwrap();
    assert_names(
        &load_err(dir.path()),
        &["folder support", "expected class folders"],
    );
}

#[test]
fn other_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert_names(&load_err(&missing), &[&missing.display().to_string()]);
    let txt = dir.path().join("episode.txt");
    fs::write(&txt, "split,label,f0\n").unwrap();
    assert_names(&load_err(&txt), &["episode.txt", "or a .csv file"]);
}

// ---- CSV ----

const VALID: &str = "\u{feff}split,label,f0,f1\r\n\
    support,walk,0.5,1\r\n\
    \r\n\
    support, run ,-2,3e-1\r\n\
    query,walk,0.25,\"1.5\"\r\n\
    support,walk,0,0\r\n\
    query,run,1,1\r\n";

fn csv_err(text: &str) -> String {
    UserEpisode::parse_csv("ep.csv", text)
        .unwrap_err()
        .to_string()
}

#[test]
fn csv_episode_keeps_file_order_and_sorted_labels() {
    let ep = UserEpisode::parse_csv("ep.csv", VALID).unwrap();
    assert_eq!(ep.source, "ep.csv");
    assert_eq!(ep.classes, ["run", "walk"]);
    assert_eq!((ep.n_way(), ep.features()), (2, 2));
    assert_eq!(
        ep.episode.support,
        [
            (vec![0.5, 1.0], 1),
            (vec![-2.0, 0.3], 0),
            (vec![0.0, 0.0], 1)
        ]
    );
    assert_eq!(
        ep.episode.query,
        [(vec![0.25, 1.5], 1), (vec![1.0, 1.0], 0)]
    );

    // Columns in another order; any feature names.
    let ep = UserEpisode::parse_csv("ep.csv", "ax,label,split\n3,a,support\n4,a,query\n").unwrap();
    assert_eq!(ep.episode.query, [(vec![4.0], 0)]);

    // Through a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Mine.CSV");
    fs::write(&path, VALID).unwrap();
    let ep = UserEpisode::load(&path).unwrap();
    assert_eq!(ep.source, path.display().to_string());
    assert_eq!(ep.episode.support.len(), 3);
}

#[test]
fn csv_errors_name_file_line_and_expectation() {
    let cases: &[(&str, &str)] = &[
        (
            "split,label,f0\nsupport,a,1\nquery,a,1,2\n",
            "ep.csv:3: expected 3 columns as in the header, found 4",
        ),
        (
            "split,label,f0\nsupport,a\n",
            "ep.csv:2: expected 3 columns as in the header, found 2",
        ),
        (
            "split,label,f0,f1\nsupport,a,1,x\n",
            "ep.csv:2: column `f1`: expected a number, found \"x\"",
        ),
        (
            "split,label,f0\nsupport,a,\n",
            "ep.csv:2: column `f0`: expected a number, found \"\"",
        ),
        (
            "split,label,f0\nsupport,a,NaN\n",
            "ep.csv:2: column `f0`: expected a finite number, found \"NaN\"",
        ),
        (
            "split,label,f0\nsupport,a,1\n\ntrain,a,2\n",
            "ep.csv:4: column `split`: expected `support` or `query`, found \"train\"",
        ),
        (
            "split,label,f0\nsupport,,1\n",
            "ep.csv:2: column `label`: expected a class name, found nothing",
        ),
        (
            "",
            "ep.csv: empty file: expected a header `split,label,f0,f1,…` and samples",
        ),
        (
            " \n\n",
            "ep.csv: empty file: expected a header `split,label,f0,f1,…` and samples",
        ),
        (
            "split,label,f0\n",
            "ep.csv: no samples: expected rows after the header",
        ),
        (
            "split,label,f0\nsupport,a,1\nsupport,b,2\n",
            "ep.csv: no query samples: expected rows with split `query`",
        ),
        (
            "split,label,f0\nquery,a,1\n",
            "ep.csv: no support samples: expected rows with split `support`",
        ),
        (
            "split,label,f0\nsupport,a,1\nquery,b,2\n",
            "ep.csv:3: class \"b\" has no support samples: expected a `support` row labelled \"b\"",
        ),
        (
            "label,f0\nsupport,1\n",
            "ep.csv:1: expected a `split` column: a header `split,label,f0,f1,…`",
        ),
        (
            "split,f0\nsupport,1\n",
            "ep.csv:1: expected a `label` column: a header `split,label,f0,f1,…`",
        ),
        (
            "split,label\nsupport,a\n",
            "ep.csv:1: expected at least one feature column after `split,label`",
        ),
        (
            "split,label,split,f0\n",
            "ep.csv:1: column `split` appears twice",
        ),
        (
            "split,label,,f0\n",
            "ep.csv:1: column 3 has no name: expected `split,label,f0,f1,…`",
        ),
        (
            "split,label,f0\r\n\r\nsupport,a,1\r\n\r\n\r\nquery,a,1,\r\n",
            "ep.csv:6: expected 3 columns as in the header, found 4",
        ),
        (
            "split,label,f0\nsupport,a,1\n\n   \n",
            "ep.csv:4: expected 3 columns as in the header, found 1",
        ),
        (
            "split,label,f0\nsupport,\"multi\nline\",1\n\nquery,a,1\n",
            "ep.csv:5: class \"a\" has no support samples: expected a `support` row labelled \"a\"",
        ),
        (
            "\nsplit,label,f0\nsupport,a,1\nquery,a,x\n",
            "ep.csv:4: column `f0`: expected a number, found \"x\"",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&csv_err(text), want, "for {text:?}");
    }
}

#[test]
fn csv_file_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    fs::write(&path, b"split,label,f0\nsupport,a,1\nquery,\xff,1\n").unwrap();
    let e = load_err(&path);
    assert_eq!(e, format!("{}:3: expected UTF-8 text", path.display()));
    fs::write(&path, "split,label,f0\nsupport,a,1\nquery,a,?\n").unwrap();
    let e = load_err(&path);
    assert_eq!(
        e,
        format!(
            "{}:3: column `f0`: expected a number, found \"?\"",
            path.display()
        )
    );
}

#[test]
fn csv_never_panics_on_truncated_or_mangled_text() {
    for n in 0..=VALID.len() {
        if let Some(prefix) = VALID.get(..n) {
            let _ = UserEpisode::parse_csv("ep.csv", prefix);
        }
    }
    for junk in [
        "\"",
        "\"unterminated\nsupport",
        ",,,\n,,,",
        "split,label,f0\n\"a\"b,c,1\n",
    ] {
        let _ = UserEpisode::parse_csv("ep.csv", junk);
    }
}
