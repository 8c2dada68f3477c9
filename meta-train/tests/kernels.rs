//! The trainer's vectorised kernels, picked at run time per instruction set, give the same
//! bits on every one: the batched body against the device's forward pass and the per-image
//! reference backward pass of `shared::body` (many images, bodies whose widths do and do not
//! fill the kernels' blocks), and the distortions against pinned bytes. CI runs this file
//! natively and under qemu-x86_64 with older CPU models.

use meta_train::model::body::Batch;
use rand::{Rng, SeedableRng};
use shared::body::{BodySpec, LeBytes, OMNIGLOT_BODY};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Random weights at He scale and random ink-like images (a third of the pixels blank).
fn weights_and_images<const C: usize>(
    spec: BodySpec<C>,
    n: usize,
    seed: u64,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let w = (0..spec.params())
        .map(|_| rng.gen_range(-0.5f32..0.5))
        .collect();
    let images = (0..n)
        .map(|_| {
            (0..spec.inputs())
                .map(|_| {
                    if rng.gen_bool(0.3) {
                        0.0
                    } else {
                        rng.gen_range(0.0f32..1.0)
                    }
                })
                .collect()
        })
        .collect();
    (w, images)
}

/// The batch's features equal the device's (weights read in place from `w*` bytes) and its
/// weight gradient equals the reference's, image after image, for `n` images.
fn agrees_with_the_reference<const C: usize>(spec: BodySpec<C>, n: usize, seed: u64) {
    let (w, images) = weights_and_images(spec, n, seed);
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut batch = Batch::new(spec);
    batch.forward(&w, images.iter().map(|i| i.as_slice()));
    assert_eq!(batch.len(), n);
    let mut scratch = vec![0.0f32; spec.scratch_len()];
    for (i, image) in images.iter().enumerate() {
        let device = spec.forward(&LeBytes(&bytes), image, &mut scratch).unwrap();
        assert_eq!(bits(batch.features(i)), bits(device), "image {i}");
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
    let d: Vec<f32> = (0..n * spec.features())
        .map(|_| rng.gen_range(-1.0f32..1.0))
        .collect();
    let mut reference = vec![0.0f32; w.len()];
    for (image, d) in images.iter().zip(d.chunks_exact(spec.features())) {
        spec.backward(&w, &spec.trace(&w, image), d, &mut reference);
    }
    let mut batched = vec![0.0f32; w.len()];
    batch.backward(&w, &d, &mut batched);
    assert_eq!(bits(&batched), bits(&reference));
    let live = batched.iter().filter(|g| **g != 0.0).count();
    assert!(
        live > w.len() / 2,
        "{live} of {} weights got a gradient",
        w.len()
    );
}

#[test]
fn omniglot_body_features_and_gradients_equal_the_device_and_the_reference() {
    // 61 images: every kernel's full blocks and its remainder rows.
    agrees_with_the_reference(OMNIGLOT_BODY, 61, 1);
}

#[test]
fn widths_that_do_not_fill_a_kernel_block_agree_too() {
    // 3 and 24 channels: partial vectors; 9·3 patch entries: partial row blocks.
    const ODD: BodySpec<4> = BodySpec {
        side: 11,
        channels: [3, 24, 5, 20],
    };
    agrees_with_the_reference(ODD, 7, 2);
}

#[test]
fn a_reused_batch_forgets_the_previous_one() {
    let (w, images) = weights_and_images(OMNIGLOT_BODY, 9, 3);
    let mut batch = Batch::new(OMNIGLOT_BODY);
    batch.forward(&w, images.iter().map(|i| i.as_slice()));
    batch.forward(&w, images[..2].iter().map(|i| i.as_slice()));
    let mut fresh = Batch::new(OMNIGLOT_BODY);
    fresh.forward(&w, images[..2].iter().map(|i| i.as_slice()));
    assert_eq!(batch.len(), 2);
    let d = vec![0.5f32; 2 * OMNIGLOT_BODY.features()];
    let (mut a, mut b) = (vec![0.0f32; w.len()], vec![0.0f32; w.len()]);
    batch.backward(&w, &d, &mut a);
    fresh.backward(&w, &d, &mut b);
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn the_kernels_run_with_the_instruction_set_this_machine_has() {
    // CI names the instruction set each run under qemu-x86_64 must pick, so every kernel
    // version is checked by the other tests.
    let (isa, _) = meta_train::bench::convolution_kernels();
    if let Ok(expected) = std::env::var("TINYADAPT_EXPECT_KERNELS") {
        assert_eq!(isa, expected);
    }
    assert!(["AVX-512", "AVX2", "SSE2", "portable"].contains(&isa));
}

#[test]
fn distortions_give_the_same_pixels_on_every_instruction_set() {
    use meta_train::tasks::augment::Distortion;
    let (_, images) = weights_and_images(OMNIGLOT_BODY, 20, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for image in &images {
        for v in Distortion::default().distort(image, 28, &mut rng) {
            hash = (hash ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3);
        }
    }
    // The bytes of the training recipe's distortions since they were introduced: a change
    // here changes every trained blob.
    assert_eq!(hash, PINNED, "{hash:#x}");
}

const PINNED: u64 = 0xd2c5_b1e7_62b4_804d;
