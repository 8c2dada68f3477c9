//! The Omniglot image classifier in the firmware under QEMU, next to the host's
//! `device::ImageClassifier` on the same episodes: the same code, compared bit for bit, and
//! what it costs on the Cortex-M4F.
//!
//! An [`ImageTarget`] is anything that classifies like the firmware: the Omniglot firmware on
//! the emulated MPS2-AN386 ([`Qemu`], images staged over the link in
//! [`STAGE_PER_FRAME`]-value parts) or the `device` crate compiled for the host
//! ([`HostClassifier`], the firmware's 5-way, 25-image classifier). [`trace_episode`] drives
//! either through one episode: clear and reset, push each support image, adapt the trained
//! steps, read the head's parameters, classify each query. [`evaluate`] builds and boots the
//! firmware, runs the episodes on both and returns the parity verdict and the costs
//! ([`OmniglotOnDevice`]; [`report`] prints it).
//!
//! ```no_run
//! use meta_train::fewshot::on_device::{evaluate, parity_episodes, report};
//! use meta_train::fewshot::train::{FewShotCheckpoint, FewShotConfig};
//! use meta_train::tasks::omniglot::Omniglot;
//! let set = Omniglot::load("../shared/data/omniglot/images_background_small2.zip")?;
//! let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1)).blob::<5>()?;
//! let episodes = parity_episodes(&set.characters, 20, 0, 5)?;
//! let r = evaluate(&blob, &episodes, |_| {})?;
//! println!("{}", report(&r));
//! assert!(r.parity.holds());
//! # anyhow::Ok(())
//! ```

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use device::server::Served;
use device::{AdaptReport, StepLimit};
use serde::Serialize;
use shared::link::{floats, put_floats, LinkError, Request, Response, Status, STAGE_PER_FRAME};
use shared::model::Params;

use super::eval::OmniglotClassifier;
use super::{Head, OMNIGLOT_BODY};
use crate::device_bench::{elf_sizes, ElfSizes};
use crate::qemu::{build_firmware_of, Emulated, Firmware, Flash, Qemu};
use crate::tasks::episodes::{Episode, EpisodeSpec, Sampler};
use crate::tasks::omniglot::Character;
use crate::tasks::Stream;

/// Classes of the firmware's classifier.
pub const WAY: usize = 5;
/// Support images the firmware's classifier holds (5-shot).
pub const CAPACITY: usize = 25;
/// Values of one image.
pub const PIXELS: usize = OMNIGLOT_BODY.inputs();

/// The firmware's classifier, as the host runs it.
pub type FirmwareClassifier<'w> = OmniglotClassifier<'w, WAY, CAPACITY>;

/// One query's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// The predicted class.
    pub label: usize,
    /// Every class's score.
    pub scores: Vec<f32>,
}

/// Something that classifies images like the firmware.
pub trait ImageTarget {
    /// Starts an episode: drops the samples and resets the head to `θ0`.
    fn begin(&mut self) -> Result<()>;
    /// Pushes a support image of class `label`; returns the ticks it took (body forward and
    /// push), when the target counts them.
    fn push(&mut self, image: &[f32], label: usize) -> Result<Option<u64>>;
    /// Runs the trained inner steps.
    fn adapt(&mut self) -> Result<(AdaptReport, Option<u64>)>;
    /// The head's live parameters.
    fn params(&mut self) -> Result<Vec<f32>>;
    /// Classifies `image`.
    fn classify(&mut self, image: &[f32]) -> Result<(Classification, Option<u64>)>;
}

/// The host's run of the firmware's classifier: `device::ImageClassifier` with the
/// firmware's shape and capacity.
pub struct HostClassifier<'b> {
    c: Box<FirmwareClassifier<'b>>,
}

impl<'b> HostClassifier<'b> {
    /// Loads `blob`.
    pub fn new(blob: &'b [u8]) -> Result<Self> {
        let mut c = Box::new(FirmwareClassifier::unloaded(OMNIGLOT_BODY));
        c.load(blob).map_err(|e| anyhow!("{e}"))?;
        Ok(Self { c })
    }
}

impl ImageTarget for HostClassifier<'_> {
    fn begin(&mut self) -> Result<()> {
        self.c.clear_samples();
        self.c.reset();
        Ok(())
    }

    fn push(&mut self, image: &[f32], label: usize) -> Result<Option<u64>> {
        self.c
            .push(image, label)
            .map_err(|e| anyhow!("support image of class {label} refused: {e}"))?;
        Ok(None)
    }

    fn adapt(&mut self) -> Result<(AdaptReport, Option<u64>)> {
        let r = self.c.adapt().map_err(|e| anyhow!("adaptation: {e}"))?;
        Ok((r, None))
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        let mut v = Vec::with_capacity(Head::<WAY>::PARAMS);
        self.c.visit_params(&mut |s| v.extend_from_slice(s));
        Ok(v)
    }

    fn classify(&mut self, image: &[f32]) -> Result<(Classification, Option<u64>)> {
        let c = self
            .c
            .classify(image)
            .map_err(|e| anyhow!("query refused: {e}"))?;
        Ok((
            Classification {
                label: c.label,
                scores: c.scores.to_vec(),
            },
            None,
        ))
    }
}

fn refused(e: LinkError) -> anyhow::Error {
    anyhow!("the device refused: {e}")
}

fn unexpected(r: &Response<'_>) -> anyhow::Error {
    anyhow!("unexpected response from the device: {r:?}")
}

impl Qemu {
    /// The firmware's status.
    pub fn status(&mut self) -> Result<Status> {
        let mut buf = Vec::new();
        match self.call(&Request::Status, &mut buf)? {
            Response::Status(s) => Ok(s),
            r => Err(unexpected(&r)),
        }
    }

    /// Checks that the firmware serves a classifier blob with the shape and capacity of
    /// [`HostClassifier`].
    pub fn check_classifier(&mut self) -> Result<()> {
        let s = self.status()?;
        if let Err(e) = s.blob {
            bail!("{}: no usable w*: {e}", self.board().name);
        }
        let shape = (s.inputs, s.outputs, s.capacity);
        let want = (PIXELS as u16, WAY as u16, CAPACITY as u16);
        if shape != want {
            bail!(
                "the firmware takes {} inputs, {} classes, {} samples; the host classifier {}, {}, {}",
                shape.0, shape.1, shape.2, want.0, want.1, want.2
            );
        }
        Ok(())
    }

    /// Stages `values` in [`STAGE_PER_FRAME`]-value parts; fails unless the stage ends full.
    pub fn stage(&mut self, values: &[f32]) -> Result<()> {
        let part = usize::from(STAGE_PER_FRAME);
        let mut buf = Vec::new();
        let mut bytes = vec![0u8; 4 * part];
        let mut filled = 0usize;
        for (k, chunk) in values.chunks(part).enumerate() {
            let req = Request::Stage {
                offset: u16::try_from(k * part)?,
                values: put_floats(chunk, &mut bytes),
            };
            match self.call(&req, &mut buf)? {
                Response::Staged { filled: f } => filled = usize::from(f),
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        if filled != values.len() {
            bail!("{filled} of {} values staged", values.len());
        }
        Ok(())
    }
}

impl ImageTarget for Qemu {
    fn begin(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        for req in [Request::ClearSamples, Request::Reset] {
            match self.call(&req, &mut buf)? {
                Response::Cleared | Response::Reset => {}
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        Ok(())
    }

    fn push(&mut self, image: &[f32], label: usize) -> Result<Option<u64>> {
        self.stage(image)?;
        let mut buf = Vec::new();
        let req = Request::PushStaged {
            label: u16::try_from(label)?,
        };
        match self.call(&req, &mut buf)? {
            Response::PushedStaged { ticks, .. } => Ok(Some(ticks)),
            Response::Error(e) => Err(refused(e)),
            r => Err(unexpected(&r)),
        }
    }

    fn adapt(&mut self) -> Result<(AdaptReport, Option<u64>)> {
        let mut buf = Vec::new();
        let req = Request::Adapt {
            steps: None,
            limit: StepLimit::Trained,
        };
        match self.call(&req, &mut buf)? {
            Response::Adapted { report, ticks } => Ok((report, Some(ticks))),
            Response::Error(e) => Err(refused(e)),
            r => Err(unexpected(&r)),
        }
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        let n = Head::<WAY>::PARAMS;
        let mut v = Vec::with_capacity(n);
        let mut buf = Vec::new();
        while v.len() < n {
            let count = (n - v.len()).min(usize::from(shared::link::PARAMS_PER_FRAME));
            let req = Request::ReadParams {
                offset: v.len() as u32,
                count: count as u16,
            };
            match self.call(&req, &mut buf)? {
                Response::Params { values, .. } => v.extend(floats(values)),
                Response::Error(e) => return Err(refused(e)),
                r => return Err(unexpected(&r)),
            }
        }
        Ok(v)
    }

    fn classify(&mut self, image: &[f32]) -> Result<(Classification, Option<u64>)> {
        self.stage(image)?;
        let mut buf = Vec::new();
        match self.call(&Request::ClassifyStaged, &mut buf)? {
            Response::Classified {
                label,
                scores,
                ticks,
            } => Ok((
                Classification {
                    label: usize::from(label),
                    scores: floats(scores).collect(),
                },
                Some(ticks),
            )),
            Response::Error(e) => Err(refused(e)),
            r => Err(unexpected(&r)),
        }
    }
}

/// One episode run through a target, values as bits.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeTrace {
    /// Support images per class.
    pub shot: usize,
    /// The adaptation's report.
    pub report: AdaptReport,
    /// Bits of the head's parameters after adaptation.
    pub params: Vec<u32>,
    /// Each query's predicted label, in episode order.
    pub labels: Vec<usize>,
    /// Bits of each query's scores, query after query.
    pub scores: Vec<u32>,
    /// Fraction of queries labelled correctly.
    pub accuracy: f64,
    /// Ticks of each support image's push (when the target counts them).
    pub push_ticks: Vec<u64>,
    /// Ticks of the adaptation.
    pub adapt_ticks: Option<u64>,
    /// Ticks of each classification.
    pub classify_ticks: Vec<u64>,
}

impl EpisodeTrace {
    /// The same report, parameters, labels and scores, bit for bit.
    pub fn same_as(&self, other: &EpisodeTrace) -> bool {
        let (a, b) = (&self.report, &other.report);
        a.loss_before.to_bits() == b.loss_before.to_bits()
            && a.loss_after.to_bits() == b.loss_after.to_bits()
            && (a.steps, a.undone, a.cause) == (b.steps, b.undone, b.cause)
            && self.params == other.params
            && self.labels == other.labels
            && self.scores == other.scores
    }
}

/// Runs `episode` through `target`: clear and reset, push the support set, adapt, read the
/// parameters, classify the queries.
///
/// ```
/// use meta_train::fewshot::on_device::{trace_episode, HostClassifier, PIXELS};
/// use meta_train::fewshot::train::{FewShotCheckpoint, FewShotConfig};
/// use meta_train::tasks::episodes::Episode;
/// let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1)).blob::<5>()?;
/// let image = |c: usize| (vec![0.1 * c as f32; PIXELS], c);
/// let episode = Episode {
///     support: (0..5).map(image).collect(),
///     query: (0..5).rev().map(image).collect(),
/// };
/// let mut host = HostClassifier::new(&blob)?;
/// let t = trace_episode(&mut host, &episode)?;
/// assert_eq!((t.shot, t.labels.len(), t.scores.len()), (1, 5, 25));
/// assert!(t.same_as(&trace_episode(&mut host, &episode)?)); // every episode starts afresh
/// # anyhow::Ok(())
/// ```
pub fn trace_episode(target: &mut impl ImageTarget, episode: &Episode) -> Result<EpisodeTrace> {
    if episode.support.len() > CAPACITY {
        bail!(
            "{} support images; the firmware holds {CAPACITY}",
            episode.support.len()
        );
    }
    target.begin()?;
    let mut push_ticks = Vec::new();
    for (image, label) in &episode.support {
        push_ticks.extend(target.push(image, *label)?);
    }
    let (report, adapt_ticks) = target.adapt()?;
    let params = target.params()?.iter().map(|v| v.to_bits()).collect();
    let (mut labels, mut scores, mut classify_ticks) = (Vec::new(), Vec::new(), Vec::new());
    let mut correct = 0;
    for (image, label) in &episode.query {
        let (c, ticks) = target.classify(image)?;
        correct += usize::from(c.label == *label);
        labels.push(c.label);
        scores.extend(c.scores.iter().map(|v| v.to_bits()));
        classify_ticks.extend(ticks);
    }
    Ok(EpisodeTrace {
        shot: episode.support.len() / episode.n_way().max(1),
        report,
        params,
        labels,
        scores,
        accuracy: correct as f64 / episode.query.len().max(1) as f64,
        push_ticks,
        adapt_ticks,
        classify_ticks,
    })
}

/// `count` 5-way episodes from `pool`, alternately 1-shot and 5-shot, with `queries` query
/// images per class (episode `i` of the evaluation stream under `seed` for its shot).
///
/// ```
/// use meta_train::fewshot::on_device::parity_episodes;
/// use meta_train::tasks::omniglot::{Character, Image};
/// let pool: Vec<Character> = (0..6)
///     .map(|c| Character {
///         alphabet: "Toy".into(),
///         name: format!("c{c}"),
///         images: vec![Image { file: "x.png".into(), pixels: vec![c as f32; 784] }; 20],
///     })
///     .collect();
/// let eps = parity_episodes(&pool, 4, 0, 2)?;
/// let shapes: Vec<_> = eps.iter().map(|e| (e.support.len(), e.query.len())).collect();
/// assert_eq!(shapes, [(5, 10), (25, 10), (5, 10), (25, 10)]);
/// # anyhow::Ok(())
/// ```
pub fn parity_episodes(
    pool: &[Character],
    count: u64,
    seed: u64,
    queries: usize,
) -> Result<Vec<Episode>> {
    let one = Sampler::across(pool, EpisodeSpec::new(WAY, 1).with_query(queries))?;
    let five = Sampler::across(pool, EpisodeSpec::new(WAY, 5).with_query(queries))?;
    Ok((0..count)
        .map(|i| {
            let s = if i % 2 == 0 { &one } else { &five };
            s.episode(seed, Stream::Eval, i / 2)
        })
        .collect())
}

/// How the firmware compared with the host.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FewShotParity {
    /// Episodes compared.
    pub episodes: usize,
    /// Episodes whose adaptation report, head parameters, labels and scores are bit-identical.
    pub identical: usize,
    /// 1-shot episodes among them.
    pub one_shot: usize,
    /// 5-shot episodes among them.
    pub five_shot: usize,
    /// Queries compared.
    pub queries: usize,
    /// Scores compared.
    pub scores: usize,
    /// Head parameters compared.
    pub params: usize,
}

impl FewShotParity {
    /// Every episode identical.
    pub fn holds(&self) -> bool {
        self.episodes > 0 && self.identical == self.episodes
    }
}

/// Instructions of one kind of request (counted under QEMU's `-icount`).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Instructions {
    /// Requests measured.
    pub count: usize,
    /// Fewest instructions.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Most.
    pub max: u64,
}

impl Instructions {
    fn of(qemu: &Qemu, ticks: impl IntoIterator<Item = u64>) -> Instructions {
        let v: Vec<u64> = ticks.into_iter().map(|t| qemu.instructions(t)).collect();
        if v.is_empty() {
            return Instructions::default();
        }
        Instructions {
            count: v.len(),
            min: v.iter().copied().min().unwrap_or(0),
            mean: v.iter().sum::<u64>() as f64 / v.len() as f64,
            max: v.iter().copied().max().unwrap_or(0),
        }
    }
}

/// The Omniglot classifier on the emulated board: parity with the host and costs.
#[derive(Clone, Debug, Serialize)]
pub struct OmniglotOnDevice {
    /// Board name.
    pub board: String,
    /// Against the host.
    pub parity: FewShotParity,
    /// Mean query accuracy in the firmware.
    pub accuracy: f64,
    /// The same on the host.
    pub host_accuracy: f64,
    /// One adaptation (the trained steps) on a 1-shot support set (5 images).
    pub adapt_one_shot: Instructions,
    /// One adaptation on a 5-shot support set (25 images).
    pub adapt_five_shot: Instructions,
    /// One support image: the body's forward pass and the push of its features.
    pub per_push: Instructions,
    /// One query: the body's forward pass, the head and the softmax.
    pub per_classification: Instructions,
    /// Code in flash: vector table, text, read-only data and `.data`'s initial values.
    pub code_flash: u64,
    /// `.data`, `.bss` and `.uninit` (the server: classifier, image stage, frame buffers).
    pub static_ram: u64,
    /// Stack high-water mark after the episodes.
    pub stack_peak: u64,
    /// Bytes the classifier occupies (part of the static RAM).
    pub classifier_bytes: u64,
    /// Bytes of the `w*` blob (in its flash slot).
    pub blob_bytes: u64,
    /// The board's RAM.
    pub board_ram: u64,
}

impl OmniglotOnDevice {
    /// Static RAM plus the stack's high-water mark.
    pub fn ram(&self) -> u64 {
        self.static_ram + self.stack_peak
    }
}

/// Builds the Omniglot firmware, boots it on the emulated AN386 with `blob` in slot A, and
/// runs `episodes` (5-way, at most 5-shot) there and on the host; `progress` gets the number
/// of episodes done.
pub fn evaluate(
    blob: &[u8],
    episodes: &[Episode],
    progress: impl FnMut(usize),
) -> Result<OmniglotOnDevice> {
    let elf = build_firmware_of(Emulated::An386, Firmware::Omniglot)?;
    let mut qemu = Qemu::boot(Emulated::An386, &elf, Flash::Blob(blob))?;
    evaluate_on(&mut qemu, &elf, blob, episodes, progress)
}

/// [`evaluate`] on a running Omniglot firmware (`elf`, serving `blob`).
pub fn evaluate_on(
    qemu: &mut Qemu,
    elf: &Path,
    blob: &[u8],
    episodes: &[Episode],
    mut progress: impl FnMut(usize),
) -> Result<OmniglotOnDevice> {
    qemu.check_classifier()?;
    let ElfSizes {
        code_flash,
        static_ram,
        ..
    } = elf_sizes(&std::fs::read(elf)?)?;
    let mut host = HostClassifier::new(blob)?;
    let mut parity = FewShotParity::default();
    let (mut acc, mut host_acc) = (0.0, 0.0);
    let (mut adapt1, mut adapt5, mut push, mut classify) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, e) in episodes.iter().enumerate() {
        let d = trace_episode(qemu, e)?;
        let h = trace_episode(&mut host, e)?;
        parity.episodes += 1;
        parity.identical += usize::from(d.same_as(&h));
        parity.one_shot += usize::from(d.shot == 1);
        parity.five_shot += usize::from(d.shot == 5);
        parity.queries += d.labels.len();
        parity.scores += d.scores.len();
        parity.params += d.params.len();
        acc += d.accuracy;
        host_acc += h.accuracy;
        match d.shot {
            1 => adapt1.extend(d.adapt_ticks),
            5 => adapt5.extend(d.adapt_ticks),
            _ => {}
        }
        push.extend(d.push_ticks);
        classify.extend(d.classify_ticks);
        progress(i + 1);
    }
    let memory = qemu.memory()?;
    let n = episodes.len().max(1) as f64;
    Ok(OmniglotOnDevice {
        board: qemu.board().name.into(),
        parity,
        accuracy: acc / n,
        host_accuracy: host_acc / n,
        adapt_one_shot: Instructions::of(qemu, adapt1),
        adapt_five_shot: Instructions::of(qemu, adapt5),
        per_push: Instructions::of(qemu, push),
        per_classification: Instructions::of(qemu, classify),
        code_flash,
        static_ram,
        stack_peak: u64::from(memory.stack_peak),
        classifier_bytes: u64::from(memory.adapter_bytes),
        blob_bytes: blob.len() as u64,
        board_ram: u64::from(qemu.board().ram.length),
    })
}

/// The result as text: the parity verdict and the costs.
pub fn report(r: &OmniglotOnDevice) -> String {
    let p = &r.parity;
    let ins = |i: &Instructions| {
        if i.min == i.max {
            format!("{} ({} measured)", i.min, i.count)
        } else {
            format!(
                "{:.0} (from {} to {}, {} measured)",
                i.mean, i.min, i.max, i.count
            )
        }
    };
    format!(
        "Omniglot classifier on {} (QEMU), {} 5-way episodes ({} 1-shot, {} 5-shot), next to the host's device::ImageClassifier\n\
         parity: {}/{} episodes bit-identical ({} labels, {} scores, {} head parameters and every adaptation report compared): {}\n\
         accuracy: {:.1}% on the device, {:.1}% on the host\n\
         instructions (QEMU -icount): adaptation {} with 5 images, {} with 25; push of an image (body forward + push) {}; classification {}\n\
         memory: code flash {} B, static RAM {} B (classifier {} B), stack peak {} B, RAM in all {} B of {} KiB; w* {} B in its slot\n",
        r.board,
        p.episodes,
        p.one_shot,
        p.five_shot,
        p.identical,
        p.episodes,
        p.queries,
        p.scores,
        p.params,
        if p.holds() { "PASS" } else { "FAIL" },
        100.0 * r.accuracy,
        100.0 * r.host_accuracy,
        ins(&r.adapt_one_shot),
        ins(&r.adapt_five_shot),
        ins(&r.per_push),
        ins(&r.per_classification),
        r.code_flash,
        r.static_ram,
        r.classifier_bytes,
        r.stack_peak,
        r.ram(),
        r.board_ram / 1024,
        r.blob_bytes,
    )
}
