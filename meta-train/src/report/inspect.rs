//! `meta-train inspect`: what a blob holds, in words.

use std::fmt::Write;

use shared::body::{Views, SHIFTS};
use shared::fixed::{Q10H, Q20};
use shared::wstar::{AlphaKind, Blob, HeadStart, HEADER_LEN};

use crate::model::{CsvNet, CSV_HIDDEN, CSV_INPUTS, CSV_MAX_K, CSV_OUTPUTS};

/// Device RAM of an adapter for `shape` with K samples in `f32` and in fixed point (`q20`
/// and `q10h`),
/// for the sample counts worth knowing (5 and 10, and [`CSV_MAX_K`], the CSV evaluation's),
/// when this build compiles the shape: the `I`-40-40-`O` MLPs of [`crate::with_csv_shape!`]
/// (the sinusoid net among them).
fn adapter_ram(shape: &[u32]) -> Option<Vec<(usize, [usize; 3])>> {
    let &[i, h1, h2, o] = shape else {
        return None;
    };
    if [h1, h2] != [CSV_HIDDEN as u32; 2] {
        return None;
    }
    type In<T, const I: usize, const O: usize, const K: usize> =
        device::Adapter<'static, CsvNet<I, O, T>, I, O, K, T>;
    fn rams<const I: usize, const O: usize, const K: usize>() -> (usize, [usize; 3]) {
        (
            K,
            [
                In::<f32, I, O, K>::RAM_BYTES,
                In::<Q20, I, O, K>::RAM_BYTES,
                In::<Q10H, I, O, K>::RAM_BYTES,
            ],
        )
    }
    crate::with_csv_shape!(i as usize, o as usize, I, O => Ok(vec![
        rams::<I, O, 5>(),
        rams::<I, O, 10>(),
        rams::<I, O, CSV_MAX_K>(),
    ]))
    .ok()
}

/// Device RAM of the Omniglot classifier for a head of `shape`, for the support sizes the
/// evaluation uses: the whole classifier's and its head's adapter's (the part fixed point
/// shrinks; the body's forward scratch stays in `f32`), in `f32`, `q20` and `q10h`.
fn classifier_ram(shape: &[u32]) -> Vec<(usize, [[usize; 2]; 3])> {
    use crate::eval::images::OmniglotClassifier;
    type Head<T, const N: usize, const K: usize> = device::Adapter<
        'static,
        shared::model::Dense<T, { crate::model::head::FEATURES }, N>,
        { crate::model::head::FEATURES },
        N,
        K,
        T,
    >;
    fn rams<const N: usize, const K: usize>() -> (usize, [[usize; 2]; 3]) {
        (
            K,
            [
                [
                    OmniglotClassifier::<N, K>::RAM_BYTES,
                    Head::<f32, N, K>::RAM_BYTES,
                ],
                [
                    OmniglotClassifier::<N, K, Q20>::RAM_BYTES,
                    Head::<Q20, N, K>::RAM_BYTES,
                ],
                [
                    OmniglotClassifier::<N, K, Q10H>::RAM_BYTES,
                    Head::<Q10H, N, K>::RAM_BYTES,
                ],
            ],
        )
    }
    match shape {
        [128, 5] => vec![rams::<5, 5>(), rams::<5, 25>()],
        [128, 20] => vec![rams::<20, 20>(), rams::<20, 100>()],
        _ => Vec::new(),
    }
}

/// Which firmware arithmetics serve `blob`, and why not the others.
fn arithmetic(blob: &Blob<'_>) -> String {
    let fixed = if blob.body().is_some() {
        "the head adapts in fixed point, the body stays in f32 and its features are converted \
         once per image"
    } else {
        "fixed point, for a core without an FPU"
    };
    let refusal = |name: &str, e: Option<shared::wstar::BlobError>, range: f32| match e {
        None => format!("{name} (θ0 and α within ±{range})"),
        Some(e) => format!("not {name}: its firmware refuses it ({e})"),
    };
    format!(
        "f32; {}; {} ({fixed}; a fixed-point firmware converts θ0 and α as it uses them)",
        refusal("q20", blob.out_of_range::<Q20>(), Q20::range()),
        refusal("q10h", blob.out_of_range::<Q10H>(), Q10H::range()),
    )
}

/// A report of `blob`'s header, shape, inner loop, α statistics, sizes and device RAM.
///
/// ```
/// use shared::model::{Mlp1, Params};
/// use shared::wstar::{encode, Blob, Meta};
/// type Net = Mlp1<f32, 1, 4, 1>;
/// let meta = Meta::new::<Net, 1, 1>(shared::loss::Loss::Mse, 2);
/// let bytes = encode(&meta, &vec![0.1; Net::PARAMS], &[0.01], &[0.0], &[1.0], &[0.0], &[1.0]).unwrap();
/// let text = meta_train::report::inspect::report(&Blob::parse(&bytes).unwrap(), bytes.len());
/// assert!(text.contains("1-4-1"));
/// ```
pub fn report(blob: &Blob<'_>, total: usize) -> String {
    let m = &blob.meta;
    let shape: Vec<String> = m.shape.iter().map(|w| w.to_string()).collect();
    let mut s = String::new();
    let body_bytes = blob.body().map_or(0, |(shape, _)| {
        postcard::to_allocvec(shape).map_or(0, |v| v.len()) + 4 * shape.params()
    });
    let meta_len = total - HEADER_LEN - m.arrays_len() - body_bytes;
    let _ = writeln!(
        s,
        "format        TAW* version {}, signature {:#010x} (checked), CRC-32 ok",
        shared::wstar::FORMAT_VERSION,
        blob.signature
    );
    match blob.body() {
        None => {
            let _ = writeln!(
                s,
                "model         {} ReLU MLP, {} parameters",
                shape.join("-"),
                m.params
            );
        }
        Some((body, _)) => {
            let mut side = usize::from(body.side);
            let mut stages = vec![format!("{side}x{side}x{}", body.channels[0])];
            for &c in body.channels.iter().skip(1) {
                side = side.div_ceil(2);
                stages.push(format!("{side}x{side}x{c}"));
            }
            let _ = writeln!(
                s,
                "body          {} (3x3 stride-2 convolutions + ReLU), {} weights, read from flash in place",
                stages.join(" -> "),
                body.params()
            );
            let _ = match blob.views {
                Views::Single => writeln!(s, "views         one body pass per image"),
                Views::Shifted => writeln!(
                    s,
                    "views         the mean of {} body passes per image, shifted by {:?} pixels",
                    SHIFTS.len(),
                    SHIFTS
                ),
            };
            let _ = writeln!(
                s,
                "model         dense head {}, {} parameters: the part that adapts",
                shape.join("-"),
                m.params
            );
        }
    }
    let _ = writeln!(s, "loss          {:?}", m.loss);
    let _ = writeln!(
        s,
        "algorithm     {:?}, trained with K = {}, seed {}",
        m.algorithm, m.trained_k, m.seed
    );
    let layers = m.shape.len() - 1;
    let adapted: Vec<String> = (0..layers)
        .filter(|&l| m.adapt.adapts(l))
        .map(|l| l.to_string())
        .collect();
    let start = match blob.start {
        HeadStart::Theta0 => "from θ0",
        HeadStart::Prototypes => "from θ0 plus the support set's class prototypes",
    };
    let _ = writeln!(
        s,
        "inner loop    {} step(s) {start}; adapts layer(s) {} of 0..{}",
        m.steps,
        adapted.join(", "),
        layers
    );
    let alphas: Vec<f32> = (0..blob.alpha_len()).map(|k| blob.alpha(k)).collect();
    match m.alpha {
        AlphaKind::Scalar => {
            let _ = writeln!(s, "alpha         scalar {}", alphas[0]);
        }
        AlphaKind::PerParameter => {
            let min = alphas.iter().copied().fold(f32::INFINITY, f32::min);
            let max = alphas.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = alphas.iter().map(|&a| f64::from(a)).sum::<f64>() / alphas.len() as f64;
            let neg = alphas.iter().filter(|&&a| a < 0.0).count();
            let _ = writeln!(
                s,
                "alpha         per parameter: min {min:.5}, max {max:.5}, mean {mean:.5}, {neg} negative of {}",
                alphas.len()
            );
        }
        AlphaKind::PerLayerPerStep => {
            let _ = writeln!(s, "alpha         per layer and step (LSLR):");
            for (step, row) in alphas.chunks(layers.max(1)).enumerate() {
                let row: Vec<String> = row.iter().map(|a| format!("{a:.5}")).collect();
                let _ = writeln!(s, "              step {step}: {}", row.join(" "));
            }
        }
    }
    let bound = if m.loss_bound.is_finite() {
        m.loss_bound.to_string()
    } else {
        "none (the guard still undoes non-finite losses, and extra steps that climb)".into()
    };
    let _ = writeln!(s, "loss bound    {bound}");
    let (xm, xs) = blob.input_norm(0);
    let (ym, ys) = blob.output_norm(0);
    let _ = writeln!(
        s,
        "normalisation x[0]: mean {xm}, std {xs}; y[0]: mean {ym}, std {ys}"
    );
    let _ = writeln!(
        s,
        "bytes         {total} total: header {HEADER_LEN}, meta {meta_len}, θ0 {}, α {}, normalisation {}, body {body_bytes}",
        4 * m.params,
        4 * blob.alpha_len(),
        m.arrays_len() - 4 * (m.params as usize + blob.alpha_len())
    );
    let _ = writeln!(s, "arithmetic    {}", arithmetic(blob));
    if let Some((body, _)) = blob.body() {
        let head = m.params as usize;
        for (k, [[f32_all, f32_head], [q20_all, q20_head], [q10h_all, q10h_head]]) in
            classifier_ram(&m.shape)
        {
            let _ = writeln!(
                s,
                "device RAM    K = {k:>3}: {f32_all} bytes of classifier state in f32 ({f32_head} of them the head's adapter), {q20_all} in q20 ({q20_head}), {q10h_all} in q10h ({q10h_head}), plus stack"
            );
        }
        let _ = writeln!(
            s,
            "              (two head buffers of {} bytes, the samples' features, one image's forward \
             scratch; adapting body and head in RAM would need {} bytes for the two parameter \
             buffers alone)",
            4 * head,
            2 * 4 * (head + body.params())
        );
        return s;
    }
    match adapter_ram(&m.shape) {
        Some(rams) => {
            for (k, [ram, q20, q10h]) in rams {
                let _ = writeln!(
                    s,
                    "device RAM    K = {k:>2}: {ram} bytes of adapter state in f32 ({} per parameter buffer), {q20} in q20, {q10h} in q10h, plus stack",
                    4 * m.params
                );
            }
        }
        None => {
            let _ = writeln!(
                s,
                "device RAM    unknown: this build has no adapter for this shape (known: \
                 I-{CSV_HIDDEN}-{CSV_HIDDEN}-O MLPs, I in {CSV_INPUTS:?}, O in {CSV_OUTPUTS:?})"
            );
        }
    }
    s
}
