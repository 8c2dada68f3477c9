//! Exact floating-point operation counts of a meta-iteration, following the code paths of
//! `shared` (kernels, losses, inner step) and `algo` (second-order backward pass), so the
//! benchmark can report achieved GFLOP/s. Counted: additions, subtractions, multiplications
//! and divisions on `f32`; not counted: comparisons (ReLU), copies and loads.

/// FLOPs of one task's meta-gradient for an MLP with layer `widths`, `k` support and `k` query
/// samples, `steps` inner steps, MSE loss.
///
/// ```
/// let f = meta_train::bench::flops::task(&[1, 40, 40, 1], 10, 1, true, false);
/// assert!(f > 12 * 2 * 1600 * 10);
/// ```
pub fn task(
    widths: &[usize],
    k: usize,
    steps: usize,
    second_order: bool,
    learns_alpha: bool,
) -> u64 {
    let layers: Vec<(u64, u64)> = widths
        .windows(2)
        .map(|w| (w[0] as u64, w[1] as u64))
        .collect();
    let k = k as u64;
    let out = *widths.last().unwrap_or(&0) as u64;
    let params: u64 = layers.iter().map(|(a, b)| a * b + b).sum();
    let forward: u64 = layers.iter().map(|(a, b)| 2 * a * b * k).sum();
    // dW (2abK), db (bK), dx (2abK) except for the first layer.
    let backward: u64 = layers
        .iter()
        .enumerate()
        .map(|(l, (a, b))| 2 * a * b * k + b * k + if l > 0 { 2 * a * b * k } else { 0 })
        .sum();
    // MSE value and gradient: d = o − y, d², sum, 2/(nO)·d; plus the final scale.
    let loss = 4 * out * k + 1;
    let step = 2 * params;
    let mut f = steps as u64 * (forward + loss + backward + step) + forward + loss + backward;
    if second_order {
        // R-forward: U·x (2abK) plus W·Rx (2abK) past the first layer. R-backward: Rdz·xᵀ,
        // plus dz·Rxᵀ past the first layer, Σ Rdz, and Uᵀdz + Wᵀ·Rdz past the first layer.
        let hvp: u64 = layers
            .iter()
            .enumerate()
            .map(|(l, (a, b))| {
                let inner = l > 0;
                2 * a * b * k
                    + if inner { 2 * a * b * k } else { 0 }
                    + 2 * a * b * k
                    + if inner { 2 * a * b * k } else { 0 }
                    + b * k
                    + if inner { 4 * a * b * k } else { 0 }
            })
            .sum();
        let r_loss = out * k;
        // w = α ⊙ v, v −= H·w (multiply-add), Meta-SGD: −g ⊙ v and its accumulation.
        let vec_ops = params + 2 * params + if learns_alpha { 4 * params } else { 0 };
        f += steps as u64 * (hvp + r_loss + vec_ops);
    }
    f
}

/// FLOPs of one inner step on the device with `k` samples: the backward pass from the cached
/// forward pass, the update `θ − α ⊙ g`, then the forward pass and loss the guard checks.
///
/// ```
/// assert_eq!(meta_train::bench::flops::inner_step(&[1, 40, 40, 1], 10), 104_373);
/// ```
pub fn inner_step(widths: &[usize], k: usize) -> u64 {
    // One inner step of a one-step task minus the initial forward, loss and backward.
    task(widths, k, 1, false, false) - task(widths, k, 0, false, false)
}

/// FLOPs of one meta-iteration: `meta_batch` tasks, their averaging, and Adam.
pub fn meta_iteration(
    widths: &[usize],
    k: usize,
    steps: usize,
    meta_batch: usize,
    second_order: bool,
    learns_alpha: bool,
) -> u64 {
    let params: u64 = widths.windows(2).map(|w| (w[0] * w[1] + w[1]) as u64).sum();
    let vectors = if learns_alpha { 2 } else { 1 };
    // Averaging: a multiply-add per value per task. Adam: 3 (m) + 4 (v) + 4 (update) per value.
    let outer = vectors * (meta_batch as u64 * 2 * params + 11 * params);
    meta_batch as u64 * task(widths, k, steps, second_order, learns_alpha) + outer
}

/// FLOPs of one image through a convolutional body in training: the forward pass, then the
/// backward pass's weight, bias and input gradients (no input gradient for the first layer,
/// whose input is the image).
///
/// ```
/// use shared::body::OMNIGLOT_BODY;
/// let f = meta_train::bench::flops::body_training_image(&OMNIGLOT_BODY);
/// assert!(f > 3 * 2 * OMNIGLOT_BODY.macs() as u64 - 2 * 2 * 28_224);
/// ```
pub fn body_training_image<const C: usize>(spec: &shared::body::BodySpec<C>) -> u64 {
    (0..C - 1)
        .map(|i| {
            let c = spec.conv(i);
            let (macs, outputs) = (c.macs() as u64, c.outputs() as u64);
            // Forward: a multiply and an add per MAC. Backward: dW (2 per MAC), the bias sum
            // (one add per output), dx (2 per MAC, and one add per patch entry scattered back).
            let dx = if i > 0 {
                2 * macs + outputs / c.c_out as u64 * c.patch() as u64
            } else {
                0
            };
            2 * macs + 2 * macs + outputs + dx
        })
        .sum()
}
