//! The one summary of a sample every table reports: the mean with its 95% interval, and the
//! median.

/// Mean of `values` and the half-width of its 95% interval, `1.96 · √(s² / n)` with `s²` the
/// sample variance (n − 1): `(NaN, NaN)` for no values, a zero width for one.
///
/// ```
/// use meta_train::eval::stats::mean_ci95;
/// let (m, h) = mean_ci95(&[0.5, 0.7]);
/// assert!((m - 0.6).abs() < 1e-12 && (h - 1.96 * 0.01_f64.sqrt()).abs() < 1e-12);
/// assert_eq!(mean_ci95(&[3.0]), (3.0, 0.0));
/// assert!(mean_ci95(&[]).0.is_nan());
/// ```
pub fn mean_ci95(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, if values.is_empty() { f64::NAN } else { 0.0 });
    }
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// The median of `values` (the mean of the middle two for an even count), NaN for none.
///
/// ```
/// use meta_train::eval::stats::median;
/// assert_eq!(median(&[3.0, 1.0, 10.0, 2.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
