//! Synthetic task families written as a user's CSV file (`task`, feature columns, a label or
//! target columns): what the tests and `bench --device` train CSV models on, with no data set
//! to ship. Each family is a few lines of generator; the rows are deterministic per family.
//!
//! ```
//! use meta_train::tasks::synthetic::FAMILIES;
//! let text = FAMILIES[0].csv_text();
//! assert!(text.starts_with("# classes: c0,c1,c2\ntask,x0,x1,label\n"));
//! assert_eq!(text.lines().count(), 2 + 20 * 32);
//! ```

use std::fmt::Write;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A task family of a user's: `features` inputs, `outputs` outputs (classes, when
/// `classes`), trained with K samples.
pub struct Family {
    /// Its name (the CSV file's stem).
    pub name: &'static str,
    /// Feature columns.
    pub features: usize,
    /// Classes, or target columns.
    pub outputs: usize,
    /// A classification family (else regression).
    pub classes: bool,
    /// The K it is meant to be trained with.
    pub k: usize,
}

/// Three families: a classifier, and regressions of two shapes.
pub const FAMILIES: [Family; 3] = [
    // Gestures: three blobs in the plane whose labels each user permutes.
    Family {
        name: "gestures",
        features: 2,
        outputs: 3,
        classes: true,
        k: 6,
    },
    // A sensor: two readings, each a per-device linear function of three inputs.
    Family {
        name: "sensor",
        features: 3,
        outputs: 2,
        classes: false,
        k: 10,
    },
    // A calibration curve of six inputs: a per-device weighting.
    Family {
        name: "calibration",
        features: 6,
        outputs: 1,
        classes: false,
        k: 5,
    },
];

impl Family {
    /// The family's CSV file: 20 tasks of 32 rows.
    pub fn csv_text(&self) -> String {
        let f = self;
        let mut rng = ChaCha8Rng::seed_from_u64(f.features as u64);
        let cols: Vec<String> = (0..f.features).map(|i| format!("x{i}")).collect();
        let mut s = String::new();
        if f.classes {
            let names: Vec<String> = (0..f.outputs).map(|c| format!("c{c}")).collect();
            writeln!(s, "# classes: {}", names.join(",")).expect("writing to a String");
            writeln!(s, "task,{},label", cols.join(",")).expect("writing to a String");
            for t in 0..20 {
                let mut perm: Vec<usize> = (0..f.outputs).collect();
                perm.shuffle(&mut rng);
                for _ in 0..32 {
                    let c = rng.gen_range(0..f.outputs);
                    let angle = c as f32 * std::f32::consts::TAU / f.outputs as f32;
                    let x: Vec<String> = (0..f.features)
                        .map(|i| {
                            let centre = if i % 2 == 0 { angle.cos() } else { angle.sin() };
                            (2.0 * centre + rng.gen_range(-0.9..0.9)).to_string()
                        })
                        .collect();
                    writeln!(s, "u{t},{},{}", x.join(","), names[perm[c]])
                        .expect("writing to a String");
                }
            }
        } else {
            let ys: Vec<String> = (0..f.outputs).map(|i| format!("y{i}")).collect();
            writeln!(s, "task,{},{}", cols.join(","), ys.join(",")).expect("writing to a String");
            for t in 0..20 {
                let w: Vec<f32> = (0..f.features * f.outputs)
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                for _ in 0..32 {
                    let x: Vec<f32> = (0..f.features).map(|_| rng.gen_range(-2.0..2.0)).collect();
                    let y: Vec<String> = (0..f.outputs)
                        .map(|o| {
                            let dot: f32 =
                                (0..f.features).map(|i| w[o * f.features + i] * x[i]).sum();
                            (dot + 0.5).to_string()
                        })
                        .collect();
                    let x: Vec<String> = x.iter().map(f32::to_string).collect();
                    writeln!(s, "d{t},{},{}", x.join(","), y.join(","))
                        .expect("writing to a String");
                }
            }
        }
        s
    }
}
