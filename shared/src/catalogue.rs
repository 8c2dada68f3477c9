//! What a firmware serves, written once: the model type, the sample capacity and the
//! arithmetic, as a [`Firmware`] with a short name (`mlp-2-40-40-3-k10`, `omniglot-5way-k25`,
//! `mlp-1-40-40-1-k10-q20` for the fixed-point build of a core without an FPU).
//!
//! The board packages' build scripts turn the name in `TINYADAPT_FIRMWARE` into the firmware's
//! Rust types ([`Firmware::rust_source`]); the host derives the name from a `w*` blob
//! ([`Firmware::for_blob`]), builds that firmware, and simulates it with the same types; the
//! tests boot the [named](Firmware::NAMED) ones. So a user's blob decides the firmware's types,
//! and nobody edits a constant to serve a new shape.
//!
//! ```
//! use shared::catalogue::{Arithmetic, Firmware, Model};
//! let f: Firmware = "mlp-2-40-40-3-k10".parse().unwrap();
//! assert_eq!(f.model, Model::Mlp2 { inputs: 2, hidden: [40, 40], outputs: 3 });
//! assert_eq!(f.capacity, 10);
//! assert_eq!(f.to_string(), "mlp-2-40-40-3-k10");
//! let q: Firmware = "sinusoid-q20".parse().unwrap();
//! assert_eq!(q.arithmetic, Arithmetic::Q20);
//! assert_eq!(q.to_string(), "mlp-1-40-40-1-k10-q20");
//! assert_eq!("sinusoid".parse::<Firmware>(), Ok(Firmware::SINUSOID));
//! assert!("mlp-2-40-k10".parse::<Firmware>().is_err()); // no output width
//! ```

use core::fmt;
use core::str::FromStr;

use crate::body::OMNIGLOT_BODY;
use crate::wstar::{Blob, BodyShape};

/// The model a firmware serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// A dense ReLU network with one hidden layer (`shared::model::Mlp1`).
    Mlp1 {
        /// Inputs.
        inputs: u16,
        /// Hidden units.
        hidden: u16,
        /// Outputs (classes, for a classifier).
        outputs: u16,
    },
    /// A dense ReLU network with two hidden layers (`shared::model::Mlp2`).
    Mlp2 {
        /// Inputs.
        inputs: u16,
        /// Hidden units of each layer.
        hidden: [u16; 2],
        /// Outputs (classes, for a classifier).
        outputs: u16,
    },
    /// The Omniglot image classifier: [`OMNIGLOT_BODY`] (kept in the `w*` slot, in flash)
    /// under a `ways`-way dense head that adapts (`device::ImageClassifier`).
    Omniglot {
        /// Classes.
        ways: u16,
    },
}

impl Model {
    /// The dense model of these layer widths (input, hidden…, output): one or two hidden
    /// layers; the first width error, or [`CatalogueError::Layers`], otherwise.
    fn dense(
        widths: impl Iterator<Item = Result<u16, CatalogueError>>,
    ) -> Result<Self, CatalogueError> {
        let mut w = [0u16; 4];
        let mut n = 0;
        for v in widths {
            let v = v?;
            if let Some(slot) = w.get_mut(n) {
                *slot = v;
            }
            n += 1;
        }
        match n {
            3 => Ok(Model::Mlp1 {
                inputs: w[0],
                hidden: w[1],
                outputs: w[2],
            }),
            4 => Ok(Model::Mlp2 {
                inputs: w[0],
                hidden: [w[1], w[2]],
                outputs: w[3],
            }),
            n => Err(CatalogueError::Layers(n)),
        }
    }
}

/// The numbers a firmware computes in. The `w*` blob is the same for all: a fixed-point
/// firmware converts `θ0` and `α` as it uses them, so one meta-training serves boards with and
/// without an FPU, and the host simulates whichever the board runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arithmetic {
    /// IEEE single precision (in hardware on an FPU, in software elsewhere).
    #[default]
    F32,
    /// Fixed point with 20 fractional bits in integers ([`crate::fixed::Q20`]): for cores
    /// without an FPU. Dense models only.
    Q20,
    /// Fixed point with 10 fractional bits in half-words ([`crate::fixed::Q10H`]): the
    /// adapter in half the RAM, at a measured cost in quality (see `docs/results.md`).
    Q10H,
}

impl Arithmetic {
    /// All of them, in the order `inspect` lists them.
    pub const ALL: [Arithmetic; 3] = [Arithmetic::F32, Arithmetic::Q20, Arithmetic::Q10H];

    /// Its short name: `f32`, `q20`, `q10h` (a firmware name's suffix for fixed point).
    ///
    /// ```
    /// use shared::catalogue::Arithmetic;
    /// assert_eq!(Arithmetic::Q20.name(), "q20");
    /// assert_eq!("q20".parse(), Ok(Arithmetic::Q20));
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Arithmetic::F32 => "f32",
            Arithmetic::Q20 => "q20",
            Arithmetic::Q10H => "q10h",
        }
    }

    /// The most products one of its sums holds: every adapted layer's width and the sample
    /// capacity must be at most this (see [`crate::math::Real::MAX_TERMS`]).
    ///
    /// ```
    /// use shared::catalogue::Arithmetic;
    /// assert_eq!(Arithmetic::Q20.max_terms(), 511);
    /// assert!(Arithmetic::Q10H.max_terms() > Arithmetic::Q20.max_terms());
    /// ```
    pub const fn max_terms(self) -> usize {
        use crate::math::Real;
        match self {
            Arithmetic::F32 => f32::MAX_TERMS,
            Arithmetic::Q20 => crate::fixed::Q20::MAX_TERMS,
            Arithmetic::Q10H => crate::fixed::Q10H::MAX_TERMS,
        }
    }
}

impl fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arithmetic {
    type Err = CatalogueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arithmetic::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or(CatalogueError::Arithmetic)
    }
}

/// A firmware: the model it serves, how many samples it holds and its arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// The model.
    pub model: Model,
    /// Samples (support images) the device holds: its adapter's `K`.
    pub capacity: u16,
    /// What it computes in.
    pub arithmetic: Arithmetic,
}

/// Why a name or a blob gives no firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogueError {
    /// The name is not `mlp-…-k<K>`, `omniglot-<N>way-k<K>` nor a [named](Firmware::NAMED)
    /// firmware.
    Name,
    /// A dense model with this many layer widths: firmware is built for one or two hidden
    /// layers (3 or 4 widths).
    Layers(usize),
    /// The blob has a convolutional body other than [`OMNIGLOT_BODY`].
    Body,
    /// A width or capacity of 0, or one above `u16::MAX`.
    Size,
    /// An arithmetic other than `f32`, `q20` and `q10h`, or a fixed-point model (or image
    /// classifier's head) wider than its sums hold (see [`crate::math::Real::MAX_TERMS`]).
    Arithmetic,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueError::Name => write!(
                f,
                "a firmware is named mlp-I-H-O-kK, mlp-I-H1-H2-O-kK, omniglot-Nway-kK or one of {}",
                NAMES
            ),
            CatalogueError::Layers(n) => write!(
                f,
                "a dense model with {n} layer widths: firmware is built for one or two hidden layers"
            ),
            CatalogueError::Body => write!(
                f,
                "a convolutional body other than the Omniglot body: no firmware is built for it"
            ),
            CatalogueError::Size => write!(f, "widths and capacity must be from 1 to 65535"),
            CatalogueError::Arithmetic => write!(
                f,
                "the arithmetic is f32, q20 or q10h (the suffix -q20 or -q10h); q20 is for adapted layers of widths, and capacity times outputs, up to {}, q10h up to {}",
                Arithmetic::Q20.max_terms(),
                Arithmetic::Q10H.max_terms()
            ),
        }
    }
}

/// The named firmwares, for the error message.
const NAMES: &str = "sinusoid, omniglot5, omniglot20";

impl Firmware {
    /// The MAML sinusoid adapter: 1-40-40-1, 10 samples.
    pub const SINUSOID: Firmware = Firmware {
        model: Model::Mlp2 {
            inputs: 1,
            hidden: [40, 40],
            outputs: 1,
        },
        capacity: 10,
        arithmetic: Arithmetic::F32,
    };

    /// The 5-way Omniglot classifier, up to 25 support images (5-way 5-shot).
    pub const OMNIGLOT_5WAY: Firmware = Firmware {
        model: Model::Omniglot { ways: 5 },
        capacity: 25,
        arithmetic: Arithmetic::F32,
    };

    /// The 20-way Omniglot classifier, up to 20 support images (20-way 1-shot).
    pub const OMNIGLOT_20WAY: Firmware = Firmware {
        model: Model::Omniglot { ways: 20 },
        capacity: 20,
        arithmetic: Arithmetic::F32,
    };

    /// The firmwares known by a short name, as `(name, firmware)`.
    pub const NAMED: [(&'static str, Firmware); 3] = [
        ("sinusoid", Firmware::SINUSOID),
        ("omniglot5", Firmware::OMNIGLOT_5WAY),
        ("omniglot20", Firmware::OMNIGLOT_20WAY),
    ];

    /// The `f32` firmware that serves `blob`'s model, holding `capacity` samples (default: the
    /// K the blob was trained with).
    ///
    /// ```
    /// use shared::catalogue::Firmware;
    /// use shared::model::{Mlp1, Params};
    /// use shared::wstar::{encode, Blob, Meta};
    /// type Net = Mlp1<f32, 3, 16, 2>;
    /// let mut meta = Meta::new::<Net, 3, 2>(shared::loss::Loss::Mse, 1);
    /// meta.trained_k = 5;
    /// let theta = vec![0.1; Net::PARAMS];
    /// let bytes = encode(&meta, &theta, &[0.1], &[0.0; 3], &[1.0; 3], &[0.0; 2], &[1.0; 2]).unwrap();
    /// let blob = Blob::parse(&bytes).unwrap();
    /// assert_eq!(Firmware::for_blob(&blob, None).unwrap().to_string(), "mlp-3-16-2-k5");
    /// assert_eq!(Firmware::for_blob(&blob, Some(8)).unwrap().capacity, 8);
    /// ```
    pub fn for_blob(blob: &Blob<'_>, capacity: Option<u16>) -> Result<Self, CatalogueError> {
        let shape = &blob.meta.shape;
        let capacity = capacity.unwrap_or(blob.meta.trained_k);
        let width = |w: u32| u16::try_from(w).ok().filter(|&w| w > 0);
        let model = match blob.body() {
            Some((body, _)) if *body == BodyShape::of(&OMNIGLOT_BODY) => Model::Omniglot {
                ways: shape
                    .last()
                    .copied()
                    .and_then(width)
                    .ok_or(CatalogueError::Size)?,
            },
            Some(_) => return Err(CatalogueError::Body),
            None => Model::dense(shape.iter().map(|&v| width(v).ok_or(CatalogueError::Size)))?,
        };
        if capacity == 0 {
            return Err(CatalogueError::Size);
        }
        Ok(Firmware {
            model,
            capacity,
            arithmetic: Arithmetic::F32,
        })
    }

    /// This firmware in `arithmetic`, checked: fixed point serves models whose adapted
    /// layers' widths, and capacity times outputs (the loss's terms), its sums hold (for the image classifier that is the head:
    /// its body stays in `f32`).
    ///
    /// ```
    /// use shared::catalogue::{Arithmetic, CatalogueError, Firmware};
    /// let q = Firmware::SINUSOID.in_arithmetic(Arithmetic::Q20).unwrap();
    /// assert_eq!(q.to_string(), "mlp-1-40-40-1-k10-q20");
    /// let o = Firmware::OMNIGLOT_5WAY.in_arithmetic(Arithmetic::Q20).unwrap();
    /// assert_eq!(o.to_string(), "omniglot-5way-k25-q20");
    /// let e = "mlp-1-600-1-k10".parse::<Firmware>().unwrap().in_arithmetic(Arithmetic::Q20);
    /// assert_eq!(e, Err(CatalogueError::Arithmetic));
    /// ```
    pub fn in_arithmetic(self, arithmetic: Arithmetic) -> Result<Self, CatalogueError> {
        let fits = match (arithmetic, self.model) {
            (Arithmetic::F32, _) => true,
            (Arithmetic::Q20 | Arithmetic::Q10H, model) => {
                let widest = match model {
                    Model::Mlp1 {
                        inputs,
                        hidden,
                        outputs,
                    } => usize::from(inputs.max(hidden).max(outputs)),
                    Model::Mlp2 {
                        inputs,
                        hidden: [h1, h2],
                        outputs,
                    } => usize::from(inputs.max(h1).max(h2).max(outputs)),
                    Model::Omniglot { ways } => usize::from(ways).max(OMNIGLOT_BODY.features()),
                };
                // The loss sums one term per output of every sample.
                let terms = widest.max(self.outputs() * usize::from(self.capacity));
                terms <= arithmetic.max_terms()
            }
        };
        if !fits {
            return Err(CatalogueError::Arithmetic);
        }
        Ok(Firmware { arithmetic, ..self })
    }

    /// Values of one input (an image's pixels for the classifier).
    pub const fn inputs(&self) -> usize {
        match self.model {
            Model::Mlp1 { inputs, .. } | Model::Mlp2 { inputs, .. } => inputs as usize,
            Model::Omniglot { .. } => OMNIGLOT_BODY.inputs(),
        }
    }

    /// Outputs (classes).
    pub const fn outputs(&self) -> usize {
        match self.model {
            Model::Mlp1 { outputs, .. } | Model::Mlp2 { outputs, .. } => outputs as usize,
            Model::Omniglot { ways } => ways as usize,
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.model {
            Model::Mlp1 {
                inputs,
                hidden,
                outputs,
            } => write!(f, "mlp-{inputs}-{hidden}-{outputs}")?,
            Model::Mlp2 {
                inputs,
                hidden: [h1, h2],
                outputs,
            } => write!(f, "mlp-{inputs}-{h1}-{h2}-{outputs}")?,
            Model::Omniglot { ways } => write!(f, "omniglot-{ways}way")?,
        }
        write!(f, "-k{}", self.capacity)?;
        match self.arithmetic {
            Arithmetic::F32 => Ok(()),
            a => write!(f, "-{a}"),
        }
    }
}

impl FromStr for Firmware {
    type Err = CatalogueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fixed = Arithmetic::ALL.into_iter().skip(1).find_map(|a| {
            let rest = s.strip_suffix(a.name())?.strip_suffix('-')?;
            Some((rest, a))
        });
        if let Some((rest, a)) = fixed {
            return rest.parse::<Firmware>()?.in_arithmetic(a);
        }
        if let Some((_, f)) = Firmware::NAMED.iter().find(|(n, _)| *n == s) {
            return Ok(*f);
        }
        let (model, k) = s.rsplit_once("-k").ok_or(CatalogueError::Name)?;
        let number = |v: &str| match v.parse::<u16>() {
            Ok(0) => Err(CatalogueError::Size),
            Ok(n) => Ok(n),
            Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Err(CatalogueError::Size)
            }
            Err(_) => Err(CatalogueError::Name),
        };
        let capacity = number(k)?;
        let model = if let Some(ways) = model
            .strip_prefix("omniglot-")
            .and_then(|m| m.strip_suffix("way"))
        {
            Model::Omniglot {
                ways: number(ways)?,
            }
        } else {
            let widths = model.strip_prefix("mlp-").ok_or(CatalogueError::Name)?;
            Model::dense(widths.split('-').map(number))?
        };
        Ok(Firmware {
            model,
            capacity,
            arithmetic: Arithmetic::F32,
        })
    }
}

#[cfg(feature = "alloc")]
impl Firmware {
    /// The Rust items a board package's build script writes for this firmware (`model.rs`,
    /// included by the board's `main.rs`): `Model` (the served model's type), `Server` (its
    /// link server) and `server()`, which returns the one server, built in RAM at boot.
    ///
    /// An adapter's server is a constant of all zeros, so it is placed in `.bss`; the image
    /// classifier's is built in place (a constant of it is not all zeros and would go to
    /// `.data`, its size in flash too).
    ///
    /// ```
    /// let src = shared::catalogue::Firmware::SINUSOID.rust_source();
    /// assert!(src.contains("Adapter<'static, device::Mlp2<f32, 1, 40, 40, 1>, 1, 1, 10>"));
    /// let q: shared::catalogue::Firmware = "sinusoid-q20".parse().unwrap();
    /// assert!(q.rust_source().contains(
    ///     "Adapter<'static, device::Mlp2<device::fixed::Q20, 1, 40, 40, 1>, 1, 1, 10, device::fixed::Q20>"
    /// ));
    /// ```
    pub fn rust_source(&self) -> alloc::string::String {
        let (model, stage, cell) = self.rust_parts();
        alloc::format!(
            "// Generated by the board's build.rs from the firmware `{self}` \
             (shared::catalogue::Firmware::rust_source): do not edit.\n\
             /// The firmware this build serves.\n\
             pub const FIRMWARE: &str = \"{self}\";\n\
             /// The served model.\n\
             pub type Model = {model};\n\
             /// Its link server, with a stage for one input.\n\
             pub type Server = device::server::LinkServer<'static, Model, {stage}>;\n\
             /// The server, with no `w*` loaded yet (call once, at boot).\n\
             pub fn server() -> &'static mut Server {{\n{cell}}}\n"
        )
    }

    /// The served model's Rust type, for a firmware that uses the `device` crate directly.
    ///
    /// ```
    /// let f: shared::catalogue::Firmware = "mlp-3-16-2-k5".parse().unwrap();
    /// assert_eq!(f.rust_type(), "device::Adapter<'static, device::Mlp1<f32, 3, 16, 2>, 3, 2, 5>");
    /// ```
    pub fn rust_type(&self) -> alloc::string::String {
        self.rust_parts().0
    }

    /// The model's type, the stage's length and the server's cell.
    fn rust_parts(&self) -> (alloc::string::String, alloc::string::String, &'static str) {
        let k = self.capacity;
        // The scalar of the model, and the adapter's arithmetic parameter when it is not f32.
        let (t, at) = match self.arithmetic {
            Arithmetic::F32 => ("f32", ""),
            Arithmetic::Q20 => ("device::fixed::Q20", ", device::fixed::Q20"),
            Arithmetic::Q10H => ("device::fixed::Q10H", ", device::fixed::Q10H"),
        };
        match self.model {
            Model::Mlp1 {
                inputs: i,
                hidden: h,
                outputs: o,
            } => (
                alloc::format!(
                    "device::Adapter<'static, device::Mlp1<{t}, {i}, {h}, {o}>, {i}, {o}, {k}{at}>"
                ),
                alloc::format!("{i}"),
                CONST_CELL,
            ),
            Model::Mlp2 {
                inputs: i,
                hidden: [h1, h2],
                outputs: o,
            } => (
                alloc::format!(
                    "device::Adapter<'static, device::Mlp2<{t}, {i}, {h1}, {h2}, {o}>, {i}, {o}, {k}{at}>"
                ),
                alloc::format!("{i}"),
                CONST_CELL,
            ),
            Model::Omniglot { ways: n } => (
                alloc::format!(
                    "device::ImageClassifier<'static, {c}, {{ device::body::OMNIGLOT_BODY.features() }}, {n}, {k}, {{ device::body::OMNIGLOT_BODY.scratch_len() }}{at}>",
                    c = OMNIGLOT_BODY.channels.len()
                ),
                "{ device::body::OMNIGLOT_BODY.inputs() }".into(),
                BUILT_CELL,
            ),
        }
    }
}

/// An adapter's server: a constant of zeros, in `.bss`.
#[cfg(feature = "alloc")]
const CONST_CELL: &str = "    static SERVER: static_cell::ConstStaticCell<Server> =\n        \
    static_cell::ConstStaticCell::new(Server::unloaded(Model::UNLOADED));\n    SERVER.take()\n";

/// The image classifier's server: built in place at boot, in `.bss`.
#[cfg(feature = "alloc")]
const BUILT_CELL: &str =
    "    static SERVER: static_cell::StaticCell<Server> = static_cell::StaticCell::new();\n    \
    SERVER.init_with(|| Server::unloaded(Model::unloaded(device::body::OMNIGLOT_BODY)))\n";

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn names_round_trip() {
        for s in [
            "mlp-1-40-40-1-k10",
            "mlp-6-40-40-5-k32",
            "mlp-3-16-2-k1",
            "omniglot-5way-k25",
            "omniglot-20way-k20",
            "mlp-1-40-40-1-k10-q20",
            "mlp-3-16-2-k1-q20",
            "omniglot-20way-k20-q20",
            "mlp-1-40-40-1-k10-q10h",
            "mlp-1-40-5-k200-q10h",
            "omniglot-5way-k25-q10h",
        ] {
            let f: Firmware = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        for (name, f) in Firmware::NAMED {
            assert_eq!(name.parse::<Firmware>(), Ok(f));
        }
    }

    #[test]
    fn bad_names_are_typed_errors() {
        let cases = [
            ("", CatalogueError::Name),
            ("mlp-1-40-40-1", CatalogueError::Name),
            ("mlp-1-40-40-1-k0", CatalogueError::Size),
            ("mlp-1-40-40-1-k70000", CatalogueError::Size),
            ("mlp-1-0-1-k3", CatalogueError::Size),
            ("mlp-1-k3", CatalogueError::Layers(1)),
            ("mlp-1-2-3-4-5-k3", CatalogueError::Layers(5)),
            ("mlp-1-x-1-k3", CatalogueError::Name),
            ("cnn-1-2-3-k3", CatalogueError::Name),
            ("omniglot-way-k3", CatalogueError::Name),
            ("omniglot-5way-k600-q20", CatalogueError::Arithmetic),
            ("mlp-1-600-1-k3-q20", CatalogueError::Arithmetic),
            ("mlp-1-40-1-k600-q20", CatalogueError::Arithmetic),
            ("mlp-1-40-5-k200-q20", CatalogueError::Arithmetic),
            ("mlp-1-40-1-k6-q16", CatalogueError::Name),
        ];
        for (s, e) in cases {
            assert_eq!(s.parse::<Firmware>(), Err(e), "{s:?}");
        }
    }
}
