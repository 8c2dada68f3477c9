//! The models the CLI can train, by name. Shapes are compile-time constants on the device, so
//! each supported shape is one concrete type here.

pub mod body;
pub mod head;

pub use shared::model::SinusoidNet;

/// Name of [`SinusoidNet`] in configs and on the command line.
pub const SINUSOID_NET: &str = "mlp-1-40-40-1";

/// Support-set sizes (K) the trainer and evaluator are compiled for.
pub const SUPPORTED_K: [usize; 5] = [1, 2, 5, 10, 20];

/// Calls `$body` with `const $K: usize` bound to the runtime value `$k`, for each value in
/// [`SUPPORTED_K`]; other values give an error naming the supported ones.
#[macro_export]
macro_rules! with_k {
    ($k:expr, $K:ident => $body:expr) => {
        match $k {
            1 => {
                const $K: usize = 1;
                $body
            }
            2 => {
                const $K: usize = 2;
                $body
            }
            5 => {
                const $K: usize = 5;
                $body
            }
            10 => {
                const $K: usize = 10;
                $body
            }
            20 => {
                const $K: usize = 20;
                $body
            }
            other => Err(anyhow::anyhow!(
                "K = {other} is not supported: K must be one of {:?}",
                $crate::model::SUPPORTED_K
            )),
        }
    };
}

/// Units in each of the two hidden layers of the models trained on CSV tasks.
pub const CSV_HIDDEN: usize = 40;

/// The most support (and query) samples per task of a model trained on CSV tasks: its batches
/// have this many columns, and a smaller K pads the rest (as the device does).
pub const CSV_MAX_K: usize = 32;

/// The model trained on CSV tasks with `I` features and `O` outputs (one per class for
/// classification): `I`-40-40-`O`, ReLU; in `f32` unless named with another scalar
/// (`CsvNet<I, O, Q20>`, what a fixed-point firmware adapts).
pub type CsvNet<const I: usize, const O: usize, T = f32> =
    shared::model::Mlp2<T, I, { CSV_HIDDEN }, { CSV_HIDDEN }, O>;

/// Calls `$body` with `const $I: usize` and `const $O: usize` bound to the runtime inputs `$i`
/// and outputs `$o` (so that [`CsvNet`]`<$I, $O>` is a type), for each shape of
/// [`CSV_INPUTS`] × [`CSV_OUTPUTS`]; another shape gives the error of [`unsupported_shape`].
///
/// Each shape is compiled into the trainer and the evaluator, so the lists are short. To add a
/// shape, add its numbers to the lists in the last rule below and rebuild.
///
/// ```
/// use meta_train::model::CsvNet;
/// use shared::model::Params;
/// let params = meta_train::with_csv_shape!(2usize, 3usize, I, O => Ok(CsvNet::<I, O>::PARAMS));
/// assert_eq!(params.unwrap(), 2 * 40 + 40 + 40 * 40 + 40 + 40 * 3 + 3);
/// assert!(meta_train::with_csv_shape!(7usize, 3usize, I, O => Ok(I * O)).is_err());
/// ```
#[macro_export]
macro_rules! with_csv_shape {
    (@with [$($iv:literal),*] $outs:tt inputs) => { &[$($iv),*] };
    (@with $ins:tt [$($ov:literal),*] outputs) => { &[$($ov),*] };
    (@with [$($iv:literal),*] $outs:tt $i:expr, $o:expr, $I:ident, $O:ident => $body:expr) => {
        match $i {
            $($iv => {
                const $I: usize = $iv;
                $crate::with_csv_shape!(@outputs $outs $i, $o, $O => $body)
            })*
            _ => Err($crate::model::unsupported_shape($i, $o)),
        }
    };
    (@outputs [$($ov:literal),*] $i:expr, $o:expr, $O:ident => $body:expr) => {
        match $o {
            $($ov => {
                const $O: usize = $ov;
                $body
            })*
            _ => Err($crate::model::unsupported_shape($i, $o)),
        }
    };
    // The supported shapes: inputs, then outputs. Add a number here to support it.
    ($($args:tt)*) => {
        $crate::with_csv_shape!(@with [1, 2, 3, 6] [1, 2, 3, 5] $($args)*)
    };
}

/// Feature counts (model inputs) CSV models are compiled for.
pub const CSV_INPUTS: &[usize] = with_csv_shape!(inputs);

/// Output counts (y columns, or classes) CSV models are compiled for.
pub const CSV_OUTPUTS: &[usize] = with_csv_shape!(outputs);

/// The error for a CSV model shape this build does not include: it lists the supported ones
/// and where to add another.
///
/// ```
/// let e = meta_train::model::unsupported_shape(7, 3).to_string();
/// assert!(e.starts_with("a 7-40-40-3 model is not compiled in"), "{e}");
/// ```
pub fn unsupported_shape(inputs: usize, outputs: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "a {inputs}-{CSV_HIDDEN}-{CSV_HIDDEN}-{outputs} model is not compiled in: the inputs \
         (feature columns) must be one of {CSV_INPUTS:?} and the outputs (y columns or classes) \
         one of {CSV_OUTPUTS:?}; to add a shape, add its numbers to the lists in the last rule \
         of `with_csv_shape!` in meta-train/src/model/mod.rs and rebuild"
    )
}
