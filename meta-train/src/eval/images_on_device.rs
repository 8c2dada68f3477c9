//! The Omniglot image classifier in a firmware (under QEMU or on a board's serial port), next
//! to the host's simulation of that firmware on the same episodes: the same code, compared
//! bit for bit, and what it costs on the device.
//!
//! There are two classifier firmwares ([`ClassifierFirmware`]): the 5-way one (up to 25
//! support images: 5-way 1- and 5-shot) and the 20-way one (up to 20: 20-way 1-shot); a blob
//! is served by the one of its way.
//!
//! Both sides are a [`Link`]: the firmware's (images staged over the link in
//! [`STAGE_PER_FRAME`]-value parts) and the host's ([`host_classifier`], the firmware's
//! server in this process). [`trace_episode`] drives either through one episode: clear and
//! reset, push each support image, adapt the trained steps, read the head's parameters,
//! classify each query; [`EpisodeRun`] is that episode as a parity [`Workload`].
//! [`evaluate`] opens the device (building and booting the blob's firmware under QEMU), runs
//! the episodes on both and returns the parity verdict and the costs ([`OmniglotOnDevice`];
//! [`report`] prints it).
//!
//! ```no_run
//! use meta_train::eval::images_on_device::{evaluate, parity_episodes, report};
//! use meta_train::link::On;
//! use meta_train::train::images::{FewShotCheckpoint, FewShotConfig};
//! use meta_train::tasks::omniglot::Omniglot;
//! let set = Omniglot::load("../shared/data/omniglot/images_background_small2.zip")?;
//! let episodes = parity_episodes(&set.characters, 20, 0, 5)?;
//! for way in [5, 20] {
//!     let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(way, 1)).blob_for(way, shared::body::Views::Single)?;
//!     let f32 = shared::catalogue::Arithmetic::F32;
//!     let r = evaluate(&On::parse("qemu-an386")?, f32, None, &blob, &episodes, |_| {})?;
//!     println!("{}", report(&r));
//!     assert!(r.parity.holds());
//! }
//! # anyhow::Ok(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use device::{AdaptReport, StepLimit};
use serde::Serialize;
use shared::wstar::Blob;

use crate::link::device::Device;
use crate::link::firmware::{elf_sizes, ElfSizes};
use crate::link::parity::{run_both, Parity, Workload};
use crate::link::qemu::Emulated;
use crate::link::{firmware, Link, Loopback, On, Port};
use crate::model::head::{FEATURES, OMNIGLOT_BODY};
use crate::tasks::episodes::{Episode, EpisodeSpec, Sampler};
use crate::tasks::omniglot::Character;
use crate::tasks::Stream;
use shared::catalogue::{Arithmetic, Firmware};

/// Values of one image.
pub const PIXELS: usize = OMNIGLOT_BODY.inputs();

/// A classifier firmware of the AN386: which one, its classes, the support images it holds,
/// and the episodes its parity check draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifierFirmware {
    /// The firmware.
    pub firmware: Firmware,
    /// Classes of its head.
    pub way: usize,
    /// Support images it holds.
    pub capacity: usize,
    /// Its parity episodes take their classes from one alphabet (the 20-way evaluation's
    /// form) rather than across alphabets.
    pub within_alphabet: bool,
}

impl ClassifierFirmware {
    /// The 5-way classifier, up to 25 support images (5-way 1- and 5-shot).
    pub const FIVE_WAY: ClassifierFirmware = ClassifierFirmware {
        firmware: Firmware::OMNIGLOT_5WAY,
        way: 5,
        capacity: 25,
        within_alphabet: false,
    };
    /// The 20-way classifier, up to 20 support images (20-way 1-shot).
    pub const TWENTY_WAY: ClassifierFirmware = ClassifierFirmware {
        firmware: Firmware::OMNIGLOT_20WAY,
        way: 20,
        capacity: 20,
        within_alphabet: true,
    };
    /// Every classifier firmware.
    pub const ALL: [ClassifierFirmware; 2] = [Self::FIVE_WAY, Self::TWENTY_WAY];

    /// The firmware of `way`-way classifiers.
    ///
    /// ```
    /// use meta_train::eval::images_on_device::ClassifierFirmware;
    /// assert_eq!(ClassifierFirmware::for_way(20)?.capacity, 20);
    /// assert!(ClassifierFirmware::for_way(40).is_err());
    /// # anyhow::Ok(())
    /// ```
    pub fn for_way(way: usize) -> Result<ClassifierFirmware> {
        Self::ALL.into_iter().find(|f| f.way == way).ok_or_else(|| {
            anyhow!("no classifier firmware serves {way}-way blobs: 5 or 20 classes")
        })
    }

    /// The firmware that serves `blob` (by its head's classes).
    ///
    /// ```
    /// use meta_train::eval::images_on_device::ClassifierFirmware;
    /// use meta_train::train::images::{FewShotCheckpoint, FewShotConfig};
    /// let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(20, 1)).blob::<20>()?;
    /// assert_eq!(ClassifierFirmware::for_blob(&blob)?, ClassifierFirmware::TWENTY_WAY);
    /// # anyhow::Ok(())
    /// ```
    pub fn for_blob(blob: &[u8]) -> Result<ClassifierFirmware> {
        let b = Blob::parse(blob).map_err(|e| anyhow!("w*: {e}"))?;
        if b.body().is_none() {
            bail!("the w* has no body: not an image classifier");
        }
        let way = b.meta.shape.last().map_or(0, |&w| w as usize);
        Self::for_way(way)
    }

    /// Parameters of its head.
    pub fn params(self) -> usize {
        (FEATURES + 1) * self.way
    }

    /// Support images per class of its parity episodes, in turn: 1 and 5 when it holds 5
    /// per class, else 1.
    pub fn shots(self) -> &'static [usize] {
        if self.capacity >= 5 * self.way {
            &[1, 5]
        } else {
            &[1]
        }
    }

    /// This firmware in `arithmetic` (the head's; the body stays in `f32`).
    ///
    /// ```
    /// use meta_train::eval::images_on_device::ClassifierFirmware;
    /// use shared::catalogue::Arithmetic;
    /// let q = ClassifierFirmware::FIVE_WAY.in_arithmetic(Arithmetic::Q20)?;
    /// assert_eq!(q.firmware.to_string(), "omniglot-5way-k25-q20");
    /// # anyhow::Ok(())
    /// ```
    pub fn in_arithmetic(self, arithmetic: Arithmetic) -> Result<ClassifierFirmware> {
        let firmware = self
            .firmware
            .in_arithmetic(arithmetic)
            .map_err(|e| anyhow!("{}: {e}", self.firmware))?;
        Ok(ClassifierFirmware { firmware, ..self })
    }

    /// Builds it (release) if needed and returns its ELF.
    pub fn build(self) -> Result<PathBuf> {
        firmware::build(Emulated::An386.board(), &self.firmware)
    }
}

/// The host's simulation of the classifier firmware in `arithmetic` that serves the blob in
/// `image` (a slot image, see `shared::slots::slot_image`): that firmware's server, in this
/// process.
///
/// ```
/// use meta_train::eval::images_on_device::{host_classifier, ClassifierFirmware};
/// use meta_train::train::images::{FewShotCheckpoint, FewShotConfig};
/// use shared::catalogue::Arithmetic;
/// let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1)).blob::<5>()?;
/// let image = shared::slots::slot_image(&blob, 1);
/// let (firmware, mut host) = host_classifier(&image, Arithmetic::F32)?;
/// assert_eq!(firmware, ClassifierFirmware::FIVE_WAY);
/// assert_eq!(host.status()?.outputs, 5);
/// # anyhow::Ok(())
/// ```
pub fn host_classifier(
    image: &[u8],
    arithmetic: Arithmetic,
) -> Result<(ClassifierFirmware, Link<Loopback<'_>>)> {
    let (_, blob) = shared::slots::parse_slot(image).map_err(|e| anyhow!("w* slot: {e}"))?;
    let blob = shared::wstar::in_region(blob).map_err(|e| anyhow!("w*: {e}"))?;
    let firmware = ClassifierFirmware::for_blob(blob)?.in_arithmetic(arithmetic)?;
    let link = Link::new(Loopback::open(&firmware.firmware, [image, &[]])?);
    Ok((firmware, link))
}

/// Checks that `device` serves a classifier blob with the shape and capacity of `firmware`'s
/// classifier.
pub fn check_classifier<P: Port>(device: &mut Link<P>, firmware: ClassifierFirmware) -> Result<()> {
    let s = device.status()?;
    if let Err(e) = s.blob {
        bail!("{}: no usable w*: {e}", device.port().name());
    }
    let shape = (s.inputs, s.outputs, s.capacity);
    let want = (PIXELS as u16, firmware.way as u16, firmware.capacity as u16);
    if shape != want {
        bail!(
            "the firmware takes {} inputs, {} classes, {} samples; the host classifier {}, {}, {}",
            shape.0,
            shape.1,
            shape.2,
            want.0,
            want.1,
            want.2
        );
    }
    Ok(())
}

/// One episode run through a link, values as bits.
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
    /// Ticks of each support image's push.
    pub push_ticks: Vec<u64>,
    /// Ticks of the adaptation.
    pub adapt_ticks: u64,
    /// Ticks of each classification.
    pub classify_ticks: Vec<u64>,
}

/// Runs `episode` through `link`: clear and reset, push the support set, adapt, read the
/// parameters, classify the queries.
///
/// ```
/// use meta_train::eval::images_on_device::{host_classifier, trace_episode, PIXELS};
/// use meta_train::train::images::{FewShotCheckpoint, FewShotConfig};
/// use meta_train::tasks::episodes::Episode;
/// let blob = FewShotCheckpoint::new(&FewShotConfig::omniglot(5, 1)).blob::<5>()?;
/// let image = |c: usize| (vec![0.1 * c as f32; PIXELS], c);
/// let episode = Episode {
///     support: (0..5).map(image).collect(),
///     query: (0..5).rev().map(image).collect(),
/// };
/// let image = shared::slots::slot_image(&blob, 1);
/// let (_, mut host) = host_classifier(&image, shared::catalogue::Arithmetic::F32)?;
/// let t = trace_episode(&mut host, &episode)?;
/// assert_eq!((t.shot, t.labels.len(), t.scores.len()), (1, 5, 25));
/// // Every episode starts afresh.
/// assert_eq!(t.scores, trace_episode(&mut host, &episode)?.scores);
/// # anyhow::Ok(())
/// ```
pub fn trace_episode<P: Port>(link: &mut Link<P>, episode: &Episode) -> Result<EpisodeTrace> {
    link.clear()?;
    link.reset()?;
    let mut push_ticks = Vec::new();
    for (image, label) in &episode.support {
        let (_, ticks) = link.push_input(image, u16::try_from(*label)?)?;
        push_ticks.push(ticks);
    }
    let (report, adapt_ticks) = link.adapt(None, StepLimit::Trained)?;
    let n = link.status()?.params as usize;
    let params = link.params(n)?.iter().map(|v| v.to_bits()).collect();
    let (mut labels, mut scores, mut classify_ticks) = (Vec::new(), Vec::new(), Vec::new());
    let mut correct = 0;
    for (image, label) in &episode.query {
        let (got, s, ticks) = link.classify_input(image)?;
        let got = usize::from(got);
        correct += usize::from(got == *label);
        labels.push(got);
        scores.extend(s.iter().map(|v| v.to_bits()));
        classify_ticks.push(ticks);
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

/// One episode as a parity [`Workload`]: [`trace_episode`] on each device.
pub struct EpisodeRun<'e>(pub &'e Episode);

impl Workload for EpisodeRun<'_> {
    type Out = EpisodeTrace;

    fn run<P: Port>(&mut self, link: &mut Link<P>) -> Result<EpisodeTrace> {
        trace_episode(link, self.0)
    }
}

/// The episodes a parity check runs: `count` episodes from `pool` under `seed`, with
/// `queries` query images per class, in the shape of the firmware that runs them
/// ([`ParityEpisodes::for_firmware`]).
///
/// Fails when no classifier firmware's episodes can be drawn from `pool`.
///
/// ```
/// use meta_train::eval::images_on_device::{parity_episodes, ClassifierFirmware};
/// use meta_train::tasks::omniglot::{Character, Image};
/// let pool: Vec<Character> = (0..6)
///     .map(|c| Character {
///         alphabet: "Toy".into(),
///         name: format!("c{c}"),
///         images: vec![Image { file: "x.png".into(), pixels: vec![c as f32; 784] }; 20],
///     })
///     .collect();
/// let p = parity_episodes(&pool, 4, 0, 2)?;
/// let eps = p.for_firmware(ClassifierFirmware::FIVE_WAY)?;
/// let shapes: Vec<_> = eps.iter().map(|e| (e.support.len(), e.query.len())).collect();
/// assert_eq!(shapes, [(5, 10), (25, 10), (5, 10), (25, 10)]);
/// // Six characters cannot make a 20-way episode.
/// assert!(p.for_firmware(ClassifierFirmware::TWENTY_WAY).is_err());
/// # anyhow::Ok(())
/// ```
pub fn parity_episodes(
    pool: &[Character],
    count: u64,
    seed: u64,
    queries: usize,
) -> Result<ParityEpisodes<'_>> {
    let p = ParityEpisodes {
        pool,
        count,
        seed,
        queries,
    };
    let mut why = None;
    for f in ClassifierFirmware::ALL {
        match p.samplers(f) {
            Ok(_) => return Ok(p),
            Err(e) => why = why.or(Some(e)),
        }
    }
    Err(why.unwrap_or_else(|| anyhow!("no classifier firmware")))
}

/// See [`parity_episodes`].
#[derive(Clone, Copy, Debug)]
pub struct ParityEpisodes<'p> {
    /// The characters the episodes' classes come from.
    pub pool: &'p [Character],
    /// Episodes.
    pub count: u64,
    /// Seed of the evaluation stream.
    pub seed: u64,
    /// Query images per class.
    pub queries: usize,
}

impl<'p> ParityEpisodes<'p> {
    /// Episodes.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No episodes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The episodes for `firmware`: its way, each of its [`ClassifierFirmware::shots`] in
    /// turn (the 5-way one: alternately 1-shot and 5-shot), across alphabets or within one
    /// alphabet as it says (episode `i` of a shot is the evaluation stream's `i` under the
    /// seed, for that shot).
    pub fn for_firmware(&self, firmware: ClassifierFirmware) -> Result<Vec<Episode>> {
        let samplers = self.samplers(firmware)?;
        let n = samplers.len() as u64;
        Ok((0..self.count)
            .map(|i| samplers[(i % n) as usize].episode(self.seed, Stream::Eval, i / n))
            .collect())
    }

    fn samplers(&self, firmware: ClassifierFirmware) -> Result<Vec<Sampler<'p>>> {
        firmware
            .shots()
            .iter()
            .map(|&shot| {
                let spec = EpisodeSpec::new(firmware.way, shot).with_query(self.queries);
                if firmware.within_alphabet {
                    Sampler::within_alphabet(self.pool, spec)
                } else {
                    Sampler::across(self.pool, spec)
                }
            })
            .collect()
    }
}

/// How the firmware compared with the host: the link transcripts ([`Parity`], one run per
/// episode) and what the episodes held.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FewShotParity {
    /// Classes of the episodes.
    pub way: usize,
    /// Every answer of every episode, compared bit for bit.
    pub link: Parity,
    /// 1-shot episodes among them.
    pub one_shot: usize,
    /// 5-shot episodes among them.
    pub five_shot: usize,
    /// Queries classified.
    pub queries: usize,
    /// Scores among the answers.
    pub scores: usize,
    /// Head parameters among the answers.
    pub params: usize,
}

impl FewShotParity {
    /// Every episode identical.
    pub fn holds(&self) -> bool {
        self.link.holds()
    }
}

/// Instructions (under QEMU's `-icount`; clock ticks on a board) of one kind of request.
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
    fn of<P: Port>(link: &Link<P>, ticks: impl IntoIterator<Item = u64>) -> Instructions {
        let v: Vec<u64> = ticks
            .into_iter()
            .map(|t| link.instructions(t).unwrap_or(t))
            .collect();
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

/// The Omniglot classifier on a device: parity with the host and costs.
#[derive(Clone, Debug, Serialize)]
pub struct OmniglotOnDevice {
    /// The board's name, or the serial port's path.
    pub board: String,
    /// Against the host.
    pub parity: FewShotParity,
    /// Whether the costs are instructions (QEMU's `-icount`) rather than clock ticks.
    pub instructions: bool,
    /// Mean query accuracy in the firmware.
    pub accuracy: f64,
    /// The same on the host.
    pub host_accuracy: f64,
    /// The firmware's ELF name.
    pub firmware: String,
    /// Support images its classifier holds.
    pub capacity: usize,
    /// One adaptation (the trained steps) on a 1-shot support set (one image per class).
    pub adapt_one_shot: Instructions,
    /// One adaptation on a 5-shot support set (five per class; none measured when the
    /// firmware holds fewer).
    pub adapt_five_shot: Instructions,
    /// One support image: the body's forward pass and the push of its features.
    pub per_push: Instructions,
    /// One query: the body's forward pass, the head and the softmax.
    pub per_classification: Instructions,
    /// Code in flash: vector table, text, read-only data and `.data`'s initial values (when
    /// the firmware's ELF is at hand).
    pub code_flash: Option<u64>,
    /// `.data`, `.bss` and `.uninit` (the server: classifier, image stage, frame buffers).
    pub static_ram: Option<u64>,
    /// Stack high-water mark after the episodes.
    pub stack_peak: u64,
    /// Bytes the classifier occupies (part of the static RAM).
    pub classifier_bytes: u64,
    /// Bytes of the `w*` blob (in its flash slot).
    pub blob_bytes: u64,
    /// The board's RAM (when known).
    pub board_ram: Option<u64>,
}

impl OmniglotOnDevice {
    /// Static RAM plus the stack's high-water mark.
    pub fn ram(&self) -> Option<u64> {
        self.static_ram.map(|r| r + self.stack_peak)
    }
}

/// Opens the device `on` names ([`Device::open`]: for an emulated board, the classifier
/// firmware of `blob`'s way ([`ClassifierFirmware::for_blob`]) in `arithmetic`, or `elf`,
/// booted with `blob` in slot A; a board on a serial port, flashed with both) and runs
/// `episodes` in that firmware's shape there and on the host; `progress` gets the number of
/// episodes done.
pub fn evaluate(
    on: &On,
    arithmetic: Arithmetic,
    elf: Option<&Path>,
    blob: &[u8],
    episodes: &ParityEpisodes<'_>,
    progress: impl FnMut(usize),
) -> Result<OmniglotOnDevice> {
    let firmware = ClassifierFirmware::for_blob(blob)?.in_arithmetic(arithmetic)?;
    let episodes = episodes.for_firmware(firmware)?;
    let mut device = Device::open(on, &firmware.firmware, elf, blob)?;
    let (name, elf, ram) = (
        device.name(),
        device.elf().map(Path::to_path_buf),
        device.board_ram(),
    );
    let at = OnBoard {
        name: &name,
        elf: elf.as_deref(),
        ram,
    };
    crate::with_link!(device, link => evaluate_on(link, &at, arithmetic, blob, &episodes, progress))
}

/// What is known of the device an evaluation runs on.
pub struct OnBoard<'a> {
    /// The board's name, or the serial port's path.
    pub name: &'a str,
    /// The firmware's ELF, for its code flash and static RAM.
    pub elf: Option<&'a Path>,
    /// The board's RAM.
    pub ram: Option<u64>,
}

/// [`evaluate`] on a running classifier firmware in `arithmetic` behind `device` (serving
/// `blob`), with `episodes` of the blob's way.
pub fn evaluate_on<P: Port>(
    device: &mut Link<P>,
    at: &OnBoard<'_>,
    arithmetic: Arithmetic,
    blob: &[u8],
    episodes: &[Episode],
    mut progress: impl FnMut(usize),
) -> Result<OmniglotOnDevice> {
    let image = shared::slots::slot_image(blob, 1);
    let (firmware, mut host) = host_classifier(&image, arithmetic)?;
    check_classifier(device, firmware)?;
    let sizes = match at.elf {
        Some(elf) => Some(elf_sizes(&std::fs::read(elf)?)?),
        None => None,
    };
    let mut parity = FewShotParity {
        way: firmware.way,
        ..FewShotParity::default()
    };
    let (mut acc, mut host_acc) = (0.0, 0.0);
    let (mut adapt1, mut adapt5, mut push, mut classify) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, e) in episodes.iter().enumerate() {
        let (d, h) = run_both(&mut EpisodeRun(e), device, &mut host, &mut parity.link)?;
        parity.one_shot += usize::from(d.shot == 1);
        parity.five_shot += usize::from(d.shot == 5);
        parity.queries += d.labels.len();
        parity.scores += d.scores.len();
        parity.params += d.params.len();
        acc += d.accuracy;
        host_acc += h.accuracy;
        match d.shot {
            1 => adapt1.push(d.adapt_ticks),
            5 => adapt5.push(d.adapt_ticks),
            _ => {}
        }
        push.extend(d.push_ticks);
        classify.extend(d.classify_ticks);
        progress(i + 1);
    }
    let memory = crate::eval::sinusoid_on_device::memory(device)?;
    let n = episodes.len().max(1) as f64;
    Ok(OmniglotOnDevice {
        board: at.name.into(),
        firmware: firmware.firmware.to_string(),
        capacity: firmware.capacity,
        parity,
        instructions: device.instructions(0).is_some(),
        accuracy: acc / n,
        host_accuracy: host_acc / n,
        adapt_one_shot: Instructions::of(device, adapt1),
        adapt_five_shot: Instructions::of(device, adapt5),
        per_push: Instructions::of(device, push),
        per_classification: Instructions::of(device, classify),
        code_flash: sizes.map(|s: ElfSizes| s.code_flash),
        static_ram: sizes.map(|s| s.static_ram),
        stack_peak: u64::from(memory.stack_peak),
        classifier_bytes: u64::from(memory.adapter_bytes),
        blob_bytes: blob.len() as u64,
        board_ram: at.ram,
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
    // A firmware that holds no 5-shot set has no 5-shot episodes and no such adaptation.
    let five = r.capacity >= 5 * p.way;
    let shots = if five {
        format!("{} 1-shot, {} 5-shot", p.one_shot, p.five_shot)
    } else {
        format!("{} 1-shot", p.one_shot)
    };
    let mut adapt = format!("{} with {} images", ins(&r.adapt_one_shot), p.way);
    if five {
        adapt += &format!(", {} with {}", ins(&r.adapt_five_shot), 5 * p.way);
    }
    let known = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    format!(
        "Omniglot classifier on {}, {} {}-way episodes ({}), next to the host's device::ImageClassifier\n\
         {} ({} labels, {} scores, {} head parameters and every adaptation report among them)\n\
         accuracy: {:.1}% on the device, {:.1}% on the host\n\
         {}: adaptation {}; push of an image (body forward + push) {}; classification {}\n\
         memory: code flash {} B, static RAM {} B (classifier {} B), stack peak {} B, RAM in all {} B of {} KiB; w* {} B in its slot\n",
        r.board,
        p.link.runs,
        p.way,
        shots,
        p.link.verdict(),
        p.queries,
        p.scores,
        p.params,
        100.0 * r.accuracy,
        100.0 * r.host_accuracy,
        if r.instructions { "instructions (QEMU -icount)" } else { "clock ticks" },
        adapt,
        ins(&r.per_push),
        ins(&r.per_classification),
        known(r.code_flash),
        known(r.static_ram),
        r.classifier_bytes,
        r.stack_peak,
        known(r.ram()),
        known(r.board_ram.map(|b| b / 1024)),
        r.blob_bytes,
    )
}
