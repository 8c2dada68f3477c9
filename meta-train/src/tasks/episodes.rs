//! N-way K-shot classification episodes drawn from a pool of [`Character`]s, the class pools of
//! the Omniglot experiments, and the nearest-neighbour baseline on raw pixels.
//!
//! An episode picks N characters, gives them the labels `0..N` in a random order, and draws
//! K support and Q query images of each, all distinct. Episode `i` under `seed` is drawn from
//! [`rng_for`]`(seed, stream, i)` alone: the same whatever else is drawn, in any order.
//!
//! ```
//! use meta_train::tasks::episodes::{nn_accuracy, EpisodeSpec, Sampler};
//! use meta_train::tasks::omniglot::{Character, Image};
//! use meta_train::tasks::Stream;
//! // Three toy "characters", each a constant brightness with a little drawer noise.
//! let pool: Vec<Character> = (0..3)
//!     .map(|c| Character {
//!         alphabet: "Toy".into(),
//!         name: format!("c{c}"),
//!         images: (0..20)
//!             .map(|d| Image { file: format!("{d}.png"), pixels: vec![c as f32 + 0.01 * d as f32; 4] })
//!             .collect(),
//!     })
//!     .collect();
//! let sampler = Sampler::across(&pool, EpisodeSpec::new(3, 1))?;
//! let ep = sampler.episode(7, Stream::Eval, 0);
//! assert_eq!((ep.support.len(), ep.query.len()), (3, 3 * 15));
//! assert_eq!(ep, sampler.episode(7, Stream::Eval, 0));
//! let (mean, ci95) = nn_accuracy(sampler.episodes(7, Stream::Eval, 10));
//! assert_eq!((mean, ci95), (1.0, 0.0));
//! # anyhow::Ok(())
//! ```

use std::borrow::Borrow;
use std::path::Path;

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::Rng;

use super::index_sample::IndexSampler;
use super::omniglot::{Character, Omniglot};
use super::{rng_for, Stream};

/// Drawers per Omniglot character: K + Q can be at most this.
pub const DRAWERS: usize = 20;
/// Query images per class unless K leaves fewer.
pub const DEFAULT_QUERY: usize = 15;
/// The share of each training alphabet's characters held out for meta-validation.
pub const VAL_FRACTION: f64 = 0.2;

/// The shape of an episode.
///
/// ```
/// use meta_train::tasks::episodes::EpisodeSpec;
/// assert_eq!(EpisodeSpec::new(5, 5).n_query, 15);
/// assert_eq!(EpisodeSpec::new(5, 10).n_query, 10); // the rest of the 20 drawers
/// assert_eq!(EpisodeSpec::new(5, 1).with_query(5).n_query, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpisodeSpec {
    /// Classes per episode (N).
    pub n_way: usize,
    /// Support images per class (K).
    pub k_shot: usize,
    /// Query images per class (Q).
    pub n_query: usize,
}

impl EpisodeSpec {
    /// N-way K-shot with [`DEFAULT_QUERY`] queries per class, or the rest of the [`DRAWERS`]
    /// when K leaves fewer.
    pub fn new(n_way: usize, k_shot: usize) -> EpisodeSpec {
        EpisodeSpec {
            n_way,
            k_shot,
            n_query: DEFAULT_QUERY.min(DRAWERS.saturating_sub(k_shot)),
        }
    }

    /// The same with `n_query` queries per class.
    pub fn with_query(self, n_query: usize) -> EpisodeSpec {
        EpisodeSpec { n_query, ..self }
    }

    /// Images each class needs: K + Q.
    pub fn per_class(&self) -> usize {
        self.k_shot + self.n_query
    }
}

/// One episode: `(pixels, label)` pairs, labels in `0..N`, each list in random order.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// K images of each class.
    pub support: Vec<(Vec<f32>, usize)>,
    /// Q images of each class, none of them in the support set.
    pub query: Vec<(Vec<f32>, usize)>,
}

impl Episode {
    /// Number of classes (N): one more than the largest label.
    pub fn n_way(&self) -> usize {
        self.support.iter().map(|&(_, l)| l + 1).max().unwrap_or(0)
    }
}

/// What an episode is made of, as indices: which pool characters, which of their images.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picks {
    /// Pool index of the character that has label `i`.
    pub classes: Vec<usize>,
    /// `(label, image index within that character)` of each support image, in episode order.
    pub support: Vec<(usize, usize)>,
    /// `(label, image index within that character)` of each query image, in episode order.
    pub query: Vec<(usize, usize)>,
}

/// Draws episodes of one [`EpisodeSpec`] from a pool: across the whole pool, or all N classes
/// from one alphabet.
#[derive(Clone, Debug)]
pub struct Sampler<'a> {
    pool: &'a [Character],
    spec: EpisodeSpec,
    /// Pool indices to draw the N classes from; one group is chosen per episode.
    groups: Vec<Vec<usize>>,
}

impl<'a> Sampler<'a> {
    /// Episodes whose classes come from anywhere in the pool (characters with at least K + Q
    /// images). Fails when fewer than N characters qualify.
    pub fn across(pool: &'a [Character], spec: EpisodeSpec) -> Result<Sampler<'a>> {
        check(spec)?;
        let eligible: Vec<usize> = (0..pool.len())
            .filter(|&i| pool[i].images.len() >= spec.per_class())
            .collect();
        if eligible.len() < spec.n_way {
            bail!(
                "{}-way episodes need {} characters with at least {} images; the pool has {}",
                spec.n_way,
                spec.n_way,
                spec.per_class(),
                eligible.len()
            );
        }
        Ok(Sampler {
            pool,
            spec,
            groups: vec![eligible],
        })
    }

    /// Episodes whose N classes all come from one alphabet, chosen uniformly among the
    /// alphabets with at least N characters of at least K + Q images (the harder, "within
    /// alphabet" test of Lake et al.). Fails when no alphabet qualifies.
    ///
    /// ```
    /// use meta_train::tasks::episodes::{EpisodeSpec, Sampler};
    /// use meta_train::tasks::omniglot::{Character, Image};
    /// let chars = |a: &str, n: usize| -> Vec<Character> {
    ///     (0..n)
    ///         .map(|i| Character {
    ///             alphabet: a.to_string(),
    ///             name: format!("c{i}"),
    ///             images: vec![Image { file: "x.png".into(), pixels: vec![0.0] }; 20],
    ///         })
    ///         .collect()
    /// };
    /// let pool = [chars("Big", 25), chars("Small", 17)].concat();
    /// let s = Sampler::within_alphabet(&pool, EpisodeSpec::new(20, 1))?;
    /// assert_eq!(s.alphabets(), ["Big"]);
    /// assert!(Sampler::within_alphabet(&pool, EpisodeSpec::new(30, 1)).is_err());
    /// # anyhow::Ok(())
    /// ```
    pub fn within_alphabet(pool: &'a [Character], spec: EpisodeSpec) -> Result<Sampler<'a>> {
        check(spec)?;
        let mut alphabets: Vec<&str> = pool.iter().map(|c| c.alphabet.as_str()).collect();
        alphabets.sort_unstable();
        alphabets.dedup();
        let mut groups = Vec::new();
        let mut largest = (0, "");
        for a in alphabets {
            let members: Vec<usize> = (0..pool.len())
                .filter(|&i| pool[i].alphabet == a && pool[i].images.len() >= spec.per_class())
                .collect();
            largest = largest.max((members.len(), a));
            if members.len() >= spec.n_way {
                groups.push(members);
            }
        }
        if groups.is_empty() {
            bail!(
                "{}-way within-alphabet episodes need an alphabet with {} characters of at \
                 least {} images; the largest, {:?}, has {}",
                spec.n_way,
                spec.n_way,
                spec.per_class(),
                largest.1,
                largest.0
            );
        }
        Ok(Sampler { pool, spec, groups })
    }

    /// The episode shape.
    pub fn spec(&self) -> EpisodeSpec {
        self.spec
    }

    /// The alphabets episodes are drawn from (within-alphabet), or all of the pool's (across).
    pub fn alphabets(&self) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = self
            .groups
            .iter()
            .flatten()
            .map(|&i| self.pool[i].alphabet.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The indices of episode `index` of `stream` under `seed`.
    pub fn picks(&self, seed: u64, stream: Stream, index: u64) -> Picks {
        let mut picks = Picks::default();
        self.picks_into(
            seed,
            stream,
            index,
            &mut picks,
            &mut IndexSampler::default(),
        );
        picks
    }

    /// [`Sampler::picks`] into `picks`, drawing with `indices`: no allocation once the
    /// buffers have grown to an episode's size.
    pub fn picks_into(
        &self,
        seed: u64,
        stream: Stream,
        index: u64,
        picks: &mut Picks,
        indices: &mut IndexSampler,
    ) {
        let mut rng = rng_for(seed, stream, index);
        let group = &self.groups[rng.gen_range(0..self.groups.len())];
        let Picks {
            classes,
            support,
            query,
        } = picks;
        classes.clear();
        let drawn = indices.sample(&mut rng, group.len(), self.spec.n_way);
        classes.extend(drawn.iter().map(|&i| group[i]));
        classes.shuffle(&mut rng); // the labels: a fresh order every episode
        let (k, q) = (self.spec.k_shot, self.spec.n_query);
        support.clear();
        query.clear();
        for (label, &c) in classes.iter().enumerate() {
            let drawn = indices.sample(&mut rng, self.pool[c].images.len(), k + q);
            support.extend(drawn[..k].iter().map(|&i| (label, i)));
            query.extend(drawn[k..].iter().map(|&i| (label, i)));
        }
        support.shuffle(&mut rng);
        query.shuffle(&mut rng);
    }

    /// An [`IndexSampler`] big enough for every draw of this sampler, so that
    /// [`Sampler::picks_into`] never allocates with it.
    pub fn index_sampler(&self) -> IndexSampler {
        let groups = self.groups.iter().map(Vec::len);
        let images = self.pool.iter().map(|c| c.images.len());
        IndexSampler::with_capacity(groups.chain(images).max().unwrap_or(0))
    }

    /// The pixels of `pick`, a `(label, image)` of `picks`' support or query.
    pub fn image(&self, picks: &Picks, (label, i): (usize, usize)) -> &'a [f32] {
        &self.pool[picks.classes[label]].images[i].pixels
    }

    /// Episode `index` of `stream` under `seed`, with its images.
    pub fn episode(&self, seed: u64, stream: Stream, index: u64) -> Episode {
        let picks = self.picks(seed, stream, index);
        let image = |&pick: &(usize, usize)| (self.image(&picks, pick).to_vec(), pick.0);
        Episode {
            support: picks.support.iter().map(image).collect(),
            query: picks.query.iter().map(image).collect(),
        }
    }

    /// Episodes `0..count`, drawn lazily (a 20-way episode holds 1 MB of pixels).
    pub fn episodes(
        &self,
        seed: u64,
        stream: Stream,
        count: u64,
    ) -> impl Iterator<Item = Episode> + '_ {
        (0..count).map(move |i| self.episode(seed, stream, i))
    }
}

fn check(spec: EpisodeSpec) -> Result<()> {
    if spec.n_way == 0 || spec.k_shot == 0 || spec.n_query == 0 {
        bail!("episodes need N, K and Q of at least 1, not {spec:?}");
    }
    Ok(())
}

/// Which of Omniglot's two minimal background sets meta-training learns from; the other
/// set's alphabets that it lacks are the evaluation alphabets.
///
/// - `small1` (the default): learn from `images_background_small1` (Balinese, Cyrillic, Early
///   Aramaic, Greek, Korean; 5 alphabets, 148 characters) and evaluate on small2's Japanese
///   (katakana), Sanskrit and Tagalog (106 characters).
/// - `small2`: learn from `images_background_small2` (Greek, Japanese (katakana), Latin,
///   Sanskrit, Tagalog) and evaluate on small1's Balinese, Early Aramaic and Korean.
///
/// ```
/// use meta_train::tasks::episodes::Split;
/// let split: Split = "small2".parse()?;
/// assert_eq!(split.background(), "images_background_small2.zip");
/// assert_eq!(split.other(), "images_background_small1.zip");
/// assert_eq!(split.to_string(), "small2");
/// assert!("small3".parse::<Split>().is_err());
/// # anyhow::Ok(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Learn from `images_background_small1`.
    #[default]
    Small1,
    /// Learn from `images_background_small2`.
    Small2,
}

impl Split {
    /// Both splits, in the order the tables list them.
    pub const ALL: [Split; 2] = [Split::Small1, Split::Small2];

    /// The zip meta-training learns from.
    pub fn background(self) -> &'static str {
        match self {
            Split::Small1 => "images_background_small1.zip",
            Split::Small2 => "images_background_small2.zip",
        }
    }

    /// The zip whose alphabets missing from [`Split::background`] are evaluated on.
    pub fn other(self) -> &'static str {
        match self {
            Split::Small1 => Split::Small2.background(),
            Split::Small2 => Split::Small1.background(),
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Small1 => "small1",
            Split::Small2 => "small2",
        })
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Split> {
        match s {
            "small1" => Ok(Split::Small1),
            "small2" => Ok(Split::Small2),
            _ => {
                bail!("the split is small1 or small2 (the background set learned from), not {s:?}")
            }
        }
    }
}

/// Class pools for the Omniglot experiments on the two small background sets: meta-train on
/// one of them less a held-out meta-validation share of its characters, and evaluate on the
/// alphabets of the other that it lacks (see [`Split`]).
///
/// ```
/// use meta_train::tasks::episodes::Pools;
/// use meta_train::tasks::omniglot::{Character, Omniglot};
/// let set = |chars: &[(&str, usize)]| Omniglot {
///     source: "s".into(),
///     characters: chars
///         .iter()
///         .flat_map(|&(a, n)| (0..n).map(move |i| Character {
///             alphabet: a.into(),
///             name: format!("character{i:02}"),
///             images: vec![],
///         }))
///         .collect(),
/// };
/// let small1 = set(&[("Greek", 24), ("Korean", 40)]);
/// let small2 = set(&[("Greek", 24), ("Tagalog", 17)]);
/// let pools = Pools::from_small(&small1, &small2, 0.2, 0);
/// assert_eq!((pools.train.len(), pools.val.len(), pools.eval.len()), (51, 13, 17));
/// assert_eq!(pools.eval_alphabets(), ["Tagalog"]);
/// // The other split: learn from small2, evaluate on small1's Korean.
/// let pools = Pools::from_small(&small2, &small1, 0.2, 0);
/// assert_eq!(pools.eval_alphabets(), ["Korean"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Pools {
    /// Meta-training characters.
    pub train: Vec<Character>,
    /// Meta-validation characters: disjoint from `train`, same alphabets.
    pub val: Vec<Character>,
    /// Evaluation characters: alphabets never seen in meta-training.
    pub eval: Vec<Character>,
}

impl Pools {
    /// `train` and `val` split `background` by character (`val_fraction` of each alphabet,
    /// drawn under `seed`; see [`Omniglot::split_characters`]); `eval` is `other`'s alphabets
    /// that `background` lacks.
    pub fn from_small(
        background: &Omniglot,
        other: &Omniglot,
        val_fraction: f64,
        seed: u64,
    ) -> Pools {
        let (train, val) = background.split_characters(val_fraction, seed);
        Pools {
            train: train.characters,
            val: val.characters,
            eval: other.alphabets_missing_from(background).characters,
        }
    }

    /// [`Pools::from_small`] of `split`'s two zips in the folder `dir`, 20% of each training
    /// alphabet's characters held out for meta-validation.
    pub fn load(dir: &Path, split: Split, seed: u64) -> Result<Pools> {
        let background = Omniglot::load(dir.join(split.background()))?;
        let other = Omniglot::load(dir.join(split.other()))?;
        Ok(Pools::from_small(&background, &other, VAL_FRACTION, seed))
    }

    /// The evaluation pool's alphabets, in order.
    pub fn eval_alphabets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.eval.iter().map(|c| c.alphabet.as_str()).collect();
        names.dedup();
        names
    }

    /// The same with four rotations of every meta-training and meta-validation character as
    /// classes of their own (rotated after the split, so a character's rotations never straddle
    /// it). The evaluation pool stays as drawn.
    pub fn with_rotations(&self) -> Pools {
        let rotate = |cs: &[Character]| -> Vec<Character> {
            cs.iter()
                .flat_map(|c| (0..4).map(move |k| c.rotated(k)))
                .collect()
        };
        Pools {
            train: rotate(&self.train),
            val: rotate(&self.val),
            eval: self.eval.clone(),
        }
    }
}

/// How the pixel nearest-neighbour baseline picks a query's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NnRule {
    /// The label of the single nearest support image.
    NearestImage,
    /// The label of the nearest class mean of the support images (same as `NearestImage` at
    /// K = 1).
    NearestClassMean,
}

/// The label `rule` gives `x` from `support`, by Euclidean distance on raw values; ties go to
/// the first candidate (support order, or label order for class means).
///
/// ```
/// use meta_train::tasks::episodes::{nn_predict, NnRule};
/// let support = vec![(vec![0.0, 0.0], 0), (vec![1.0, 1.0], 1), (vec![0.9, 0.0], 1)];
/// assert_eq!(nn_predict(&support, &[0.6, 0.0], NnRule::NearestImage), 1);
/// assert_eq!(nn_predict(&support, &[0.6, 0.0], NnRule::NearestClassMean), 0);
/// ```
pub fn nn_predict(support: &[(Vec<f32>, usize)], x: &[f32], rule: NnRule) -> usize {
    match rule {
        NnRule::NearestImage => nearest(support, x),
        NnRule::NearestClassMean => nearest(&class_means(support), x),
    }
}

/// Fraction of `episode`'s queries that `rule` labels correctly.
pub fn episode_accuracy(episode: &Episode, rule: NnRule) -> f64 {
    let prototypes = match rule {
        NnRule::NearestImage => None,
        NnRule::NearestClassMean => Some(class_means(&episode.support)),
    };
    let candidates = prototypes.as_deref().unwrap_or(&episode.support);
    let correct = episode
        .query
        .iter()
        .filter(|(x, label)| nearest(candidates, x) == *label)
        .count();
    correct as f64 / episode.query.len().max(1) as f64
}

/// Pixel nearest-neighbour accuracy (nearest single support image) over `episodes`: the mean
/// of the per-episode accuracies and its 95% interval half-width, 1.96 · std / √episodes.
///
/// ```
/// use meta_train::tasks::episodes::{nn_accuracy, Episode};
/// let ep = |q: f32| Episode {
///     support: vec![(vec![0.0], 0), (vec![1.0], 1)],
///     query: vec![(vec![q], 0), (vec![0.9], 1)],
/// };
/// let (mean, ci95) = nn_accuracy([ep(0.1), ep(0.8)]); // accuracies 1.0 and 0.5
/// assert_eq!(mean, 0.75);
/// assert!((ci95 - 1.96 * 0.5_f64.sqrt() * 0.5 / 2f64.sqrt()).abs() < 1e-12);
/// ```
pub fn nn_accuracy<E: Borrow<Episode>>(episodes: impl IntoIterator<Item = E>) -> (f64, f64) {
    nn_accuracy_with(episodes, NnRule::NearestImage)
}

/// [`nn_accuracy`] with a chosen [`NnRule`].
pub fn nn_accuracy_with<E: Borrow<Episode>>(
    episodes: impl IntoIterator<Item = E>,
    rule: NnRule,
) -> (f64, f64) {
    let accuracies: Vec<f64> = episodes
        .into_iter()
        .map(|e| episode_accuracy(e.borrow(), rule))
        .collect();
    crate::eval::stats::mean_ci95(&accuracies)
}

fn nearest(candidates: &[(Vec<f32>, usize)], x: &[f32]) -> usize {
    let mut best = (f32::INFINITY, usize::MAX);
    for (c, label) in candidates {
        let d: f32 = c.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.0 {
            best = (d, *label);
        }
    }
    best.1
}

/// One `(mean of the support images of label l, l)` per label present, in label order.
fn class_means(support: &[(Vec<f32>, usize)]) -> Vec<(Vec<f32>, usize)> {
    let n = support.iter().map(|&(_, l)| l + 1).max().unwrap_or(0);
    let dim = support.first().map_or(0, |(x, _)| x.len());
    let mut sums = vec![(vec![0.0f32; dim], 0usize); n];
    for (x, l) in support {
        let (sum, count) = &mut sums[*l];
        sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
        *count += 1;
    }
    sums.into_iter()
        .enumerate()
        .filter(|(_, (_, count))| *count > 0)
        .map(|(l, (sum, count))| (sum.into_iter().map(|s| s / count as f32).collect(), l))
        .collect()
}
