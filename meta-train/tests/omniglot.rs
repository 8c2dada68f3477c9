//! Omniglot from the two small background zips, read in place: counts, pixels, rotations,
//! episodes, the class pools, errors for corrupt archives and images, and the pixel
//! nearest-neighbour baseline (printed; `cargo test --test omniglot -- --nocapture`).
//!
//! The zips are in the shared data folder beside the work tree; `OMNIGLOT_DIR` overrides it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use meta_train::tasks::episodes::{
    nn_accuracy, nn_accuracy_with, EpisodeSpec, NnRule, Pools, Sampler, Split,
};
use meta_train::tasks::omniglot::{
    area_downscale, decode_png, rotate, Character, Omniglot, Source, PIXELS, SIDE,
};
use meta_train::tasks::Stream;
use rand::{Rng, SeedableRng};

const EVAL_ALPHABETS: [(&str, usize); 3] = [
    ("Japanese_(katakana)", 47),
    ("Sanskrit", 42),
    ("Tagalog", 17),
];

fn data_dir() -> PathBuf {
    std::env::var_os("OMNIGLOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/omniglot"),
        PathBuf::from,
    )
}

fn zip_path(n: u8) -> PathBuf {
    let p = data_dir().join(format!("images_background_small{n}.zip"));
    assert!(p.exists(), "{} is missing (set OMNIGLOT_DIR)", p.display());
    p
}

fn load_timed(n: u8) -> Omniglot {
    let t = Instant::now();
    let set = Omniglot::load(zip_path(n)).unwrap();
    println!(
        "loaded images_background_small{n}.zip: {} characters, {} images in {:.2?}",
        set.characters.len(),
        set.image_count(),
        t.elapsed()
    );
    set
}

fn small1() -> &'static Omniglot {
    static SET: OnceLock<Omniglot> = OnceLock::new();
    SET.get_or_init(|| load_timed(1))
}

fn small2() -> &'static Omniglot {
    static SET: OnceLock<Omniglot> = OnceLock::new();
    SET.get_or_init(|| load_timed(2))
}

fn pools() -> &'static Pools {
    static POOLS: OnceLock<Pools> = OnceLock::new();
    POOLS.get_or_init(|| Pools::from_small(small1(), small2(), 0.2, 0))
}

fn key(c: &Character) -> (String, String) {
    (c.alphabet.clone(), c.name.clone())
}

#[test]
fn small1_has_136_characters_of_20_inked_28x28_images() {
    let set = small1();
    assert_eq!(set.characters.len(), 136);
    assert_eq!(set.image_count(), 2720);
    let counts: Vec<(&str, usize)> = set
        .alphabets()
        .into_iter()
        .map(|a| (a, set.alphabet(a).len()))
        .collect();
    assert_eq!(
        counts,
        [
            ("Balinese", 24),
            ("Early_Aramaic", 22),
            ("Greek", 24),
            ("Korean", 40),
            ("Latin", 26)
        ]
    );
    let mut total_ink = 0.0;
    for c in &set.characters {
        assert_eq!(c.images.len(), 20, "{}/{}", c.alphabet, c.name);
        for img in &c.images {
            assert_eq!(img.pixels.len(), PIXELS);
            assert!(img.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
            // A stroke covers at least a few output pixels, the page far from all of them.
            let ink = img.ink();
            assert!(
                (1.0..PIXELS as f32 / 2.0).contains(&ink),
                "{}: {ink}",
                img.file
            );
            total_ink += ink;
        }
    }
    // Drawer numbers: the 20 files of a character end in _01 … _20.
    let greek1 = set.alphabet("Greek")[0];
    assert_eq!(greek1.name, "character01");
    assert_eq!(greek1.images[0].file, "0394_01.png");
    assert_eq!(greek1.images[19].file, "0394_20.png");
    println!(
        "mean ink per 28x28 image: {:.1} of {PIXELS} pixels",
        total_ink / 2720.0
    );
}

#[test]
fn small2_adds_three_unseen_alphabets() {
    let (s1, s2) = (small1(), small2());
    assert_eq!((s2.characters.len(), s2.image_count()), (156, 3120));
    let eval = s2.alphabets_missing_from(s1);
    let counts: Vec<(&str, usize)> = eval
        .alphabets()
        .into_iter()
        .map(|a| (a, eval.alphabet(a).len()))
        .collect();
    assert_eq!(counts, EVAL_ALPHABETS);
    // The alphabets both sets share are the same drawings.
    for a in ["Greek", "Latin"] {
        let (x, y) = (s1.alphabet(a), s2.alphabet(a));
        assert!(x == y, "{a} differs between small1 and small2");
    }
}

#[test]
fn a_folder_in_the_same_layout_loads_like_the_zip() {
    let zip = Source::open(zip_path(1)).unwrap();
    let wanted = |p: &str| p.contains("/Greek/character0") && !p.contains("character03");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("background");
    let mut n = 0;
    for e in zip
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| wanted(&e.path))
    {
        let d = root.join("nested").join(&e.alphabet).join(&e.character);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(&e.file), &e.bytes).unwrap();
        n += 1;
    }
    assert_eq!(n, 8 * 20); // character01, 02, 04 … 09
                           // Files that are not images, and macOS debris, are skipped.
    std::fs::write(root.join("README.txt"), "not an image").unwrap();
    std::fs::create_dir_all(root.join("__MACOSX/Greek/character01")).unwrap();
    std::fs::write(root.join("__MACOSX/Greek/character01/._0394_01.png"), "x").unwrap();
    std::fs::write(root.join("nested/Greek/.DS_Store"), "x").unwrap();

    let from_dir = Omniglot::load(&root).unwrap();
    let from_zip = small1().only_alphabets(&["Greek"]);
    assert_eq!(from_dir.characters.len(), 8);
    for c in &from_dir.characters {
        let z = from_zip
            .characters
            .iter()
            .find(|z| key(z) == key(c))
            .unwrap();
        assert_eq!(c, z);
    }
}

#[test]
fn rotations_are_four_classes_and_commute_with_the_downscale() {
    let set = small1().only_alphabets(&["Latin"]);
    let rot = set.with_rotations();
    assert_eq!(rot.characters.len(), 4 * set.characters.len());
    let names: Vec<&str> = rot.characters[..4]
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "character01",
            "character01_rot90",
            "character01_rot180",
            "character01_rot270"
        ]
    );
    let img = &set.characters[0].images[0];
    assert_eq!(rot.characters[0].images[0], *img);
    assert_ne!(img.rotated(1), *img);
    assert_eq!(img.rotated(1).rotated(1), img.rotated(2));
    assert_eq!(img.rotated(3).rotated(1), *img);
    assert_eq!(
        rot.characters[2].images[5],
        set.characters[0].images[5].rotated(2)
    );
    assert!((img.rotated(1).ink() - img.ink()).abs() < 1e-3);

    // The 105 → 28 area average has a symmetric grid: rotating before or after is the same.
    let mut rng = rand::thread_rng();
    let scan: Vec<f32> = (0..105 * 105).map(|_| rng.gen_range(0.0..1.0)).collect();
    let a = area_downscale(&rotate(&scan, 105, 1), 105, 105, SIDE);
    let b = rotate(&area_downscale(&scan, 105, 105, SIDE), SIDE, 1);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "{worst}");
}

#[test]
fn pools_split_by_character_and_hold_out_alphabets() {
    let p = pools();
    assert_eq!(p.train.len() + p.val.len(), 136);
    assert_eq!(p.val.len(), 5 + 4 + 5 + 8 + 5); // 20% of 24, 22, 24, 40, 26, rounded
    assert!(p
        .val
        .iter()
        .all(|v| p.train.iter().all(|t| key(t) != key(v))));
    let eval_alphabets: Vec<&str> = EVAL_ALPHABETS.iter().map(|a| a.0).collect();
    assert_eq!(p.eval.len(), 106);
    assert!(p
        .eval
        .iter()
        .all(|c| eval_alphabets.contains(&c.alphabet.as_str())));
    assert_eq!(*p, Pools::from_small(small1(), small2(), 0.2, 0));
    assert_ne!(p.val, Pools::from_small(small1(), small2(), 0.2, 1).val);
    let r = p.with_rotations();
    assert_eq!(
        (r.train.len(), r.val.len()),
        (4 * p.train.len(), 4 * p.val.len())
    );
    assert!(r
        .val
        .iter()
        .all(|v| r.train.iter().all(|t| key(t) != key(v))));
}

#[test]
fn the_small2_split_learns_from_small2_and_holds_out_small1s_new_alphabets() {
    let p = Pools::load(&data_dir(), Split::Small2, 0).unwrap();
    assert_eq!(p, Pools::from_small(small2(), small1(), 0.2, 0));
    assert_eq!(p.eval_alphabets(), ["Balinese", "Early_Aramaic", "Korean"]);
    assert_eq!(p.eval.len(), 24 + 22 + 40);
    // Greek and Latin are in both sets: training holds them, evaluation never does.
    let trained: Vec<&str> = p.train.iter().map(|c| c.alphabet.as_str()).collect();
    assert!(trained.contains(&"Greek") && trained.contains(&"Latin"));
    assert!(p.eval.iter().all(|e| p
        .train
        .iter()
        .chain(&p.val)
        .all(|t| t.alphabet != e.alphabet)));
    assert!(p
        .val
        .iter()
        .all(|v| p.train.iter().all(|t| key(t) != key(v))));
    // The default split is the one every earlier run used.
    assert_eq!(
        Pools::load(&data_dir(), Split::default(), 0).unwrap(),
        *pools()
    );
}

#[test]
fn episodes_are_deterministic_disjoint_and_labelled() {
    let eval = &pools().eval;
    for spec in [EpisodeSpec::new(5, 1), EpisodeSpec::new(5, 5)] {
        let s = Sampler::across(eval, spec).unwrap();
        let mut labels_permuted = false;
        for i in 0..50 {
            let picks = s.picks(3, Stream::Eval, i);
            assert_eq!(picks, s.picks(3, Stream::Eval, i));
            let mut classes = picks.classes.clone();
            labels_permuted |= !classes.is_sorted();
            classes.sort_unstable();
            classes.dedup();
            assert_eq!(classes.len(), 5);
            for label in 0..5 {
                let sup: Vec<usize> = picks
                    .support
                    .iter()
                    .filter(|p| p.0 == label)
                    .map(|p| p.1)
                    .collect();
                let qry: Vec<usize> = picks
                    .query
                    .iter()
                    .filter(|p| p.0 == label)
                    .map(|p| p.1)
                    .collect();
                assert_eq!((sup.len(), qry.len()), (spec.k_shot, 15));
                let mut all = [sup, qry].concat();
                all.sort_unstable();
                all.dedup();
                assert_eq!(all.len(), spec.k_shot + 15, "an image in support and query");
            }
            let ep = s.episode(3, Stream::Eval, i);
            assert_eq!(ep.n_way(), 5);
            for (list, chosen) in [(&ep.support, &picks.support), (&ep.query, &picks.query)] {
                for ((x, label), &(l, img)) in list.iter().zip(chosen) {
                    assert_eq!(*label, l);
                    assert_eq!(*x, eval[picks.classes[l]].images[img].pixels);
                }
            }
        }
        assert!(
            labels_permuted,
            "label 0 always went to the first character"
        );
        assert_ne!(s.picks(3, Stream::Eval, 0), s.picks(3, Stream::Eval, 1));
        assert_ne!(s.picks(3, Stream::Eval, 0), s.picks(3, Stream::Train, 0));
        assert_ne!(s.picks(3, Stream::Eval, 0), s.picks(4, Stream::Eval, 0));
    }

    // 20-way within one alphabet: Tagalog's 17 characters are too few.
    let s = Sampler::within_alphabet(eval, EpisodeSpec::new(20, 1)).unwrap();
    assert_eq!(s.alphabets(), ["Japanese_(katakana)", "Sanskrit"]);
    let mut seen = Vec::new();
    for i in 0..40 {
        let picks = s.picks(3, Stream::Eval, i);
        let a = &eval[picks.classes[0]].alphabet;
        assert!(picks.classes.iter().all(|&c| eval[c].alphabet == *a));
        seen.push(a.clone());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2);
    let s = Sampler::within_alphabet(eval, EpisodeSpec::new(5, 1)).unwrap();
    assert_eq!(s.alphabets().len(), 3);
    let e = Sampler::across(&eval[..3], EpisodeSpec::new(5, 1)).unwrap_err();
    assert!(e.to_string().contains("the pool has 3"), "{e}");
    let e = Sampler::across(eval, EpisodeSpec::new(5, 1).with_query(20)).unwrap_err();
    assert!(e.to_string().contains("at least 21 images"), "{e}");
}

/// The error, as `{}` shows it: every message carries its own file and entry.
fn error_of(path: &std::path::Path) -> String {
    let e = Omniglot::load(path).unwrap_err().to_string();
    println!("error: {e}");
    e
}

#[test]
fn a_corrupt_zip_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x03\x04 this is not really a zip archive").unwrap();
    let e = error_of(&junk);
    assert!(
        e.starts_with(&format!("{}: not a readable zip archive", junk.display())),
        "{e}"
    );

    // A download cut short: the central directory is missing.
    let cut = dir.path().join("cut.zip");
    let bytes = std::fs::read(zip_path(1)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = error_of(&cut);
    assert!(e.starts_with(&cut.display().to_string()), "{e}");

    // Damaged image data behind an intact directory: the entry is named.
    let damaged = dir.path().join("damaged.zip");
    let mut bytes = bytes.clone();
    bytes[3000..3400].fill(0x55);
    std::fs::write(&damaged, &bytes).unwrap();
    let e = error_of(&damaged);
    let prefix = format!(
        "{}: entry images_background_small1/Balinese/",
        damaged.display()
    );
    assert!(e.starts_with(&prefix), "{e}");

    let e = error_of(&dir.path().join("absent.zip"));
    assert!(e.contains("absent.zip"), "{e}");
}

#[test]
fn a_corrupt_png_in_a_zip_is_an_error_naming_the_file_and_entry() {
    let good = Source::open(zip_path(1)).unwrap().entries().unwrap()[0]
        .bytes
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let write_zip = |name: &str, files: &[(&str, &[u8])]| {
        let path = dir.path().join(name);
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (entry, bytes) in files {
            w.start_file(*entry, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
        path
    };

    let ok = write_zip("ok.zip", &[("Greek/character01/0394_01.png", &good)]);
    assert_eq!(Omniglot::load(&ok).unwrap().image_count(), 1);

    let bad = write_zip(
        "bad.zip",
        &[
            ("Greek/character01/0394_01.png", &good),
            (
                "Greek/character01/0394_02.png",
                b"\x89PNG\r\n\x1a\n but then junk",
            ),
        ],
    );
    let e = error_of(&bad);
    let prefix = format!(
        "{}: entry Greek/character01/0394_02.png: not a PNG: ",
        bad.display()
    );
    assert!(e.starts_with(&prefix), "{e}");

    let truncated = write_zip("cut.zip", &[("top/Latin/character02/x.png", &good[..60])]);
    let e = error_of(&truncated);
    assert!(
        e.starts_with(&format!(
            "{}: entry top/Latin/character02/x.png: ",
            truncated.display()
        )),
        "{e}"
    );

    let shallow = write_zip("shallow.zip", &[("loose.png", &good)]);
    let e = error_of(&shallow);
    assert!(
        e.contains("entry loose.png: expected ALPHABET/CHARACTER/IMAGE.png"),
        "{e}"
    );

    let empty = write_zip("empty.zip", &[("notes.txt", b"hello")]);
    assert!(error_of(&empty).contains("no ALPHABET/CHARACTER/IMAGE.png images found"));

    // Damaged PNGs of every kind are errors, never panics: each prefix, and random byte flips.
    let ok: Vec<usize> = (0..good.len())
        .filter(|&n| decode_png(&good[..n]).is_ok())
        .collect();
    // Only the trailing IEND chunk (12 bytes) may be missing: the pixels are all there.
    assert!(ok.iter().all(|&n| n >= good.len() - 12), "{ok:?}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..2000 {
        let mut png = good.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..png.len());
            png[i] = rng.gen();
        }
        if let Ok(pixels) = decode_png(&png) {
            assert_eq!(pixels.len(), PIXELS);
        }
    }
}

#[test]
fn pixel_nearest_neighbour_beats_chance() {
    const EPISODES: u64 = 600;
    let eval = &pools().eval;
    let setups = [
        (
            "5-way 1-shot, across eval alphabets",
            EpisodeSpec::new(5, 1),
            false,
        ),
        (
            "5-way 5-shot, across eval alphabets",
            EpisodeSpec::new(5, 5),
            false,
        ),
        (
            "20-way 1-shot, within one alphabet",
            EpisodeSpec::new(20, 1),
            true,
        ),
    ];
    for (what, spec, within) in setups {
        let s = if within {
            Sampler::within_alphabet(eval, spec)
        } else {
            Sampler::across(eval, spec)
        }
        .unwrap();
        let t = Instant::now();
        let (mean, ci) = nn_accuracy(s.episodes(0, Stream::Eval, EPISODES));
        let (mean_c, ci_c) = nn_accuracy_with(
            s.episodes(0, Stream::Eval, EPISODES),
            NnRule::NearestClassMean,
        );
        println!(
            "pixel NN, {what}, Q={}: nearest image {:.1}% ± {:.1}, nearest class mean \
             {:.1}% ± {:.1} ({EPISODES} episodes, {:.1?})",
            spec.n_query,
            100.0 * mean,
            100.0 * ci,
            100.0 * mean_c,
            100.0 * ci_c,
            t.elapsed()
        );
        let chance = 1.0 / spec.n_way as f64;
        assert!(mean > chance + 0.1 && mean < 1.0, "{what}: {mean}");
        assert!(mean_c > chance + 0.1 && mean_c < 1.0, "{what}: {mean_c}");
        assert!(ci > 0.0 && ci < 0.05, "{what}: ±{ci}");
        if spec.k_shot == 1 {
            assert_eq!(mean, mean_c, "one image per class is its own mean");
        }
    }
}
