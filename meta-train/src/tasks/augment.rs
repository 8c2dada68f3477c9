//! Random affine distortions of training images: a small rotation, scale, shear and shift,
//! resampled bilinearly. Meta-training sees each character drawn a little differently every
//! time, which is what separates alphabets it never saw from the five it learned on.

use rand::Rng;

/// How strongly [`Distortion::distort`] distorts: each parameter is drawn uniformly from
/// `±` its limit. [`Distortion::default`] is the training recipe's: ±15°, ±15% scale, ±0.2
/// shear, ±2 px shift.
///
/// ```
/// use meta_train::tasks::augment::Distortion;
/// let d = Distortion::default();
/// assert_eq!((d.degrees, d.scale, d.shear, d.shift), (15.0, 0.15, 0.2, 2.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Distortion {
    /// Largest rotation, in degrees.
    pub degrees: f32,
    /// Scales are drawn from `[1 − scale, 1 + scale]`.
    pub scale: f32,
    /// Largest shear (x += shear · y).
    pub shear: f32,
    /// Largest shift, in pixels.
    pub shift: f32,
}

impl Default for Distortion {
    fn default() -> Self {
        Self {
            degrees: 15.0,
            scale: 0.15,
            shear: 0.2,
            shift: 2.0,
        }
    }
}

impl Distortion {
    /// `pixels` (`side`×`side`, row-major) under a random affine map; ink outside the frame
    /// is 0.
    ///
    /// ```
    /// use meta_train::tasks::augment::Distortion;
    /// use rand::SeedableRng;
    /// let mut img = vec![0.0f32; 28 * 28];
    /// for y in 10..18 { for x in 10..18 { img[y * 28 + x] = 1.0; } }
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let out = Distortion::default().distort(&img, 28, &mut rng);
    /// let ink = |v: &[f32]| v.iter().sum::<f32>();
    /// assert!(out != img && (ink(&out) - ink(&img)).abs() < 0.4 * ink(&img));
    /// ```
    pub fn distort(&self, pixels: &[f32], side: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = vec![0.0f32; side * side];
        self.distort_into(pixels, side, rng, &mut out);
        out
    }

    /// [`Distortion::distort`] into `out` (`side`×`side` values), which the training loop
    /// reuses from episode to episode. Panics if `pixels` or `out` has the wrong length.
    pub fn distort_into(&self, pixels: &[f32], side: usize, rng: &mut impl Rng, out: &mut [f32]) {
        assert_eq!(out.len(), side * side, "distorted image");
        let angle = rng.gen_range(-self.degrees..=self.degrees).to_radians();
        let scale = rng.gen_range(1.0 - self.scale..=1.0 + self.scale);
        let shear = rng.gen_range(-self.shear..=self.shear);
        let (tx, ty) = (
            rng.gen_range(-self.shift..=self.shift),
            rng.gen_range(-self.shift..=self.shift),
        );
        let (sin, cos) = angle.sin_cos();
        resample(pixels, side, [sin, cos, scale, shear, tx, ty], out);
    }
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
