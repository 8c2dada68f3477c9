//! Axis ranges and tick labels: padded bounds, log-scale floors, tidy numbers, smoothing.

use std::ops::Range;

/// Smallest value ever placed on the log-scale axis (the clamp for losses <= 0 when no positive
/// loss exists to scale from).
pub(super) const LOG_FLOOR: f64 = 1e-12;

/// Range covering `lo..hi` with `frac` padding on both sides; degenerate ranges are widened.
pub(super) fn padded(lo: f64, hi: f64, frac: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        let d = (lo.abs() * 0.1).max(0.5);
        return (lo - d)..(hi + d);
    }
    (lo - span * frac)..(hi + span * frac)
}

/// Min and max of the finite values, if any.
pub(super) fn finite_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Tick label for a log axis: plain decimal for moderate magnitudes, scientific otherwise.
pub(super) fn log_tick_label(v: &f64) -> String {
    let v = *v;
    if !(1e-3..1e4).contains(&v.abs()) {
        return format!("{v:.0e}");
    }
    trim_float(v, 4)
}

/// Formats `v` with up to `sig` significant digits and no trailing zeros.
pub(super) fn trim_float(v: f64, sig: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-4..1e6).contains(&v.abs()) {
        return format!("{v:.1e}");
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (sig as i32 - 1 - mag).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s.as_str()
    };
    // Rounding can leave a negative zero (e.g. a tick at -1e-17): print it as "0".
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Tick label on a linear axis spanning `span`: 3 significant digits, and ticks that are zero up
/// to rounding noise (e.g. -2.2e-16) print as "0".
pub(super) fn axis_label(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        "0".to_string()
    } else {
        trim_float(v, 3)
    }
}

/// Tick label for an iteration axis: integers with k/M suffixes for large values.
pub(super) fn iteration_label(v: &f64) -> String {
    let v = v.round();
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim_float(v / 1e6, 3))
    } else if a >= 1e4 {
        format!("{}k", trim_float(v / 1e3, 3))
    } else {
        format!("{v:.0}")
    }
}

/// Number of axis labels for an integer-valued axis: at most `max`, and never more than one per
/// integer, so rounded labels are never duplicated.
pub(super) fn integer_ticks(range: &Range<f64>, max: usize) -> usize {
    let span = (range.end - range.start).max(0.0).floor() as usize;
    (span + 1).clamp(2, max)
}

/// Centred moving average in log space with a window of about 5% of the points (odd, ≥ 5).
pub(super) fn smooth_log(ys: &[f64]) -> Vec<f64> {
    let n = ys.len();
    let half = (n / 40).max(2);
    let logs: Vec<f64> = ys.iter().map(|y| y.ln()).collect();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for l in &logs {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + l);
    }
    (0..n)
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + half + 1).min(n);
            ((prefix[b] - prefix[a]) / (b - a) as f64).exp()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_tidy() {
        assert_eq!(axis_label(-2.2e-16, 2.0), "0");
        assert_eq!(axis_label(0.25, 2.0), "0.25");
        assert_eq!(trim_float(-1e-17, 3), "-1.0e-17");
        assert_eq!(trim_float(1e30, 3), "1.0e30");
        assert_eq!(trim_float(2.5, 3), "2.5");
        assert_eq!(log_tick_label(&1e-5), "1e-5");
        assert_eq!(log_tick_label(&0.01), "0.01");
        assert_eq!(iteration_label(&25000.0), "25k");
        assert_eq!(iteration_label(&900.0), "900");
    }
}
