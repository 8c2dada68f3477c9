//! Random affine distortions of training images: a small rotation, scale, shear and shift,
//! resampled bilinearly. Meta-training sees each character drawn a little differently every
//! time, which is what separates alphabets it never saw from the five it learned on.

use rand::Rng;

/// Largest rotation, in degrees.
pub const MAX_DEGREES: f32 = 15.0;
/// Scales are drawn from `[1 − MAX_SCALE, 1 + MAX_SCALE]`.
pub const MAX_SCALE: f32 = 0.15;
/// Largest shear (x += shear · y).
pub const MAX_SHEAR: f32 = 0.2;
/// Largest shift, in pixels.
pub const MAX_SHIFT: f32 = 2.0;

/// `pixels` (`side`×`side`, row-major) under a random affine map; ink outside the frame is 0.
///
/// ```
/// use meta_train::tasks::augment::distort;
/// use rand::SeedableRng;
/// let mut img = vec![0.0f32; 28 * 28];
/// for y in 10..18 { for x in 10..18 { img[y * 28 + x] = 1.0; } }
/// let out = distort(&img, 28, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
/// let ink = |v: &[f32]| v.iter().sum::<f32>();
/// assert!(out != img && (ink(&out) - ink(&img)).abs() < 0.4 * ink(&img));
/// ```
pub fn distort(pixels: &[f32], side: usize, rng: &mut impl Rng) -> Vec<f32> {
    let angle = rng.gen_range(-MAX_DEGREES..=MAX_DEGREES).to_radians();
    let scale = rng.gen_range(1.0 - MAX_SCALE..=1.0 + MAX_SCALE);
    let shear = rng.gen_range(-MAX_SHEAR..=MAX_SHEAR);
    let (tx, ty) = (
        rng.gen_range(-MAX_SHIFT..=MAX_SHIFT),
        rng.gen_range(-MAX_SHIFT..=MAX_SHIFT),
    );
    let (sin, cos) = angle.sin_cos();
    let mut out = vec![0.0f32; side * side];
    resample(pixels, side, [sin, cos, scale, shear, tx, ty], &mut out);
    out
}

/// `out[i]` = `pixels` bilinearly sampled where the inverse of the affine map
/// `[sin, cos, scale, shear, tx, ty]` takes output pixel `i`. Compiled for AVX2 and AVX-512 as
/// well, picked at run time: the floors and conversions vectorise there, and each lane does
/// the same arithmetic, so every version gives the same images.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2"))]
fn resample(pixels: &[f32], side: usize, affine: [f32; 6], out: &mut [f32]) {
    let [sin, cos, scale, shear, tx, ty] = affine;
    let c = (side as f32 - 1.0) / 2.0;
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= side as isize || y >= side as isize {
            0.0
        } else {
            pixels[y as usize * side + x as usize]
        }
    };
    for (i, o) in out.iter_mut().enumerate() {
        // Inverse map: output pixel → source position.
        let (u, v) = ((i % side) as f32 - c - tx, (i / side) as f32 - c - ty);
        let (u, v) = ((cos * u + sin * v) / scale, (-sin * u + cos * v) / scale);
        let (x, y) = (u - shear * v + c, v + c);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        *o = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0))
            + fy * ((1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
}
