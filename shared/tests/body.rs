//! The convolutional body: its backward pass against finite differences in f64, and the
//! device's in-place forward pass against the host's, bit for bit.

use shared::body::{BodySpec, LeBytes};

const NET: BodySpec<4> = BodySpec {
    side: 7,
    channels: [2, 3, 4, 2],
};

/// A deterministic pseudo-random value in [-1, 1).
fn noise(i: usize, salt: u64) -> f64 {
    let mut z = (i as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x2545_F491);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// `L = Σ r_i · feature_i` with fixed random `r`.
fn loss(w: &[f64], image: &[f64]) -> f64 {
    let t = NET.trace(w, image);
    t.features()
        .iter()
        .enumerate()
        .map(|(i, f)| f * noise(i, 3))
        .sum()
}

#[test]
fn backward_matches_central_differences_in_f64() {
    let w: Vec<f64> = (0..NET.params()).map(|i| 0.6 * noise(i, 1)).collect();
    let image: Vec<f64> = (0..NET.inputs()).map(|i| noise(i, 2)).collect();
    let trace = NET.trace(&w, &image);
    let d_features: Vec<f64> = (0..NET.features()).map(|i| noise(i, 3)).collect();
    let mut grad = vec![0.0; NET.params()];
    NET.backward(&w, &trace, &d_features, &mut grad);
    let (mut worst, mut nonzero) = (0.0f64, 0);
    for i in 0..NET.params() {
        let h = 1e-6;
        let (mut up, mut down) = (w.clone(), w.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (loss(&up, &image) - loss(&down, &image)) / (2.0 * h);
        worst = worst.max((fd - grad[i]).abs() / (fd.abs() + grad[i].abs()).max(1e-3));
        nonzero += usize::from(grad[i] != 0.0);
    }
    assert!(worst < 1e-6, "worst relative error {worst:e}");
    // ReLUs switch some units off; most weights must still get a gradient, or the check is hollow.
    assert!(
        nonzero > NET.params() / 2,
        "{nonzero} of {} nonzero",
        NET.params()
    );
}

#[test]
fn backward_accumulates_over_images() {
    let w: Vec<f64> = (0..NET.params()).map(|i| 0.6 * noise(i, 1)).collect();
    let a: Vec<f64> = (0..NET.inputs()).map(|i| noise(i, 4)).collect();
    let b: Vec<f64> = (0..NET.inputs()).map(|i| noise(i, 5)).collect();
    let d: Vec<f64> = (0..NET.features()).map(|i| noise(i, 6)).collect();
    let (mut ga, mut gb, mut both) = (vec![0.0; w.len()], vec![0.0; w.len()], vec![0.0; w.len()]);
    NET.backward(&w, &NET.trace(&w, &a), &d, &mut ga);
    NET.backward(&w, &NET.trace(&w, &b), &d, &mut gb);
    NET.backward(&w, &NET.trace(&w, &a), &d, &mut both);
    NET.backward(&w, &NET.trace(&w, &b), &d, &mut both);
    for i in 0..w.len() {
        assert!((both[i] - (ga[i] + gb[i])).abs() < 1e-12);
    }
}

#[test]
fn in_place_forward_from_flash_bytes_equals_the_host_trace_bit_for_bit() {
    let w: Vec<f32> = (0..NET.params())
        .map(|i| 0.6 * noise(i, 7) as f32)
        .collect();
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut scratch = [0.0f32; NET.scratch_len()];
    for k in 0..20 {
        let image: Vec<f32> = (0..NET.inputs())
            .map(|i| noise(i, 100 + k) as f32)
            .collect();
        let host = NET.trace(&w, &image);
        let from_slice = NET.forward(&w[..], &image, &mut scratch).unwrap().to_vec();
        let from_bytes = NET.forward(&LeBytes(&bytes), &image, &mut scratch).unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(host.features()), bits(&from_slice));
        assert_eq!(bits(&from_slice), bits(from_bytes));
    }
}

#[test]
fn wrong_sizes_are_errors_not_panics() {
    use shared::body::BodyError;
    let w = vec![0.0f32; NET.params()];
    let image = vec![0.0f32; NET.inputs()];
    let mut scratch = [0.0f32; NET.scratch_len()];
    assert_eq!(
        NET.forward(&w[1..], &image, &mut scratch),
        Err(BodyError::Weights)
    );
    assert_eq!(
        NET.forward(&w[..], &image[1..], &mut scratch),
        Err(BodyError::Input)
    );
    assert_eq!(
        NET.forward(&w[..], &image, &mut scratch[1..]),
        Err(BodyError::Scratch)
    );
}
