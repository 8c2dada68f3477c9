//! The run folder: config, metrics, checkpoints, the `w*` blob and pictures. Every file is
//! written atomically (temporary file, fsync, rename, fsync of the folder), so a crash at any
//! moment leaves either the old file or the new one, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A run folder.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let run = meta_train::run_dir::RunDir::create(dir.path().join("r")).unwrap();
/// run.write_atomic("a.txt", b"hello").unwrap();
/// assert_eq!(std::fs::read(run.path("a.txt")).unwrap(), b"hello");
/// ```
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

/// Resolved training configuration.
pub const CONFIG: &str = "config.json";
/// Metrics per logging interval.
pub const METRICS: &str = "metrics.csv";
/// The latest checkpoint.
pub const CHECKPOINT: &str = "checkpoint.bin";
/// The meta-trained blob.
pub const WSTAR: &str = "wstar.bin";
/// The learning curve.
pub const CURVE: &str = "learning_curve.png";

impl RunDir {
    /// Creates (or opens) the folder.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)
            .with_context(|| format!("cannot create run folder {}", root.display()))?;
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `name` atomically.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(name), bytes)
    }
}

/// Writes `path` atomically: a temporary file in the same folder, fsync, rename, fsync of the
/// folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Ordinary permissions (0666 less the umask: 0644 as a rule), as `fs::write` gives, not
    // the temporary file's 0600.
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename itself; not every platform can fsync a folder.
        let _ = d.sync_all();
    }
    Ok(())
}

/// A run's config that a resume must match, except for the number of iterations.
pub trait RunConfig: Clone + PartialEq + std::fmt::Debug {
    /// The total iterations (a resume may extend them).
    fn iterations_mut(&mut self) -> &mut u64;
}

impl RunDir {
    /// Reads the checkpoint for `--resume`: it must decode as `C` (`what` names it in the
    /// error) and have been written with `config`, the iteration count aside. Returns it with
    /// `config` in place of its own.
    pub fn resume<C, R>(
        &self,
        what: &str,
        config: &R,
        config_of: impl Fn(&mut C) -> &mut R,
    ) -> Result<C>
    where
        C: serde::de::DeserializeOwned,
        R: RunConfig,
    {
        let path = self.path(CHECKPOINT);
        let bytes = fs::read(&path)
            .with_context(|| format!("cannot resume: cannot read {}", path.display()))?;
        let mut ck: C = postcard::from_bytes(&bytes)
            .with_context(|| format!("cannot resume: {} is not {what}", path.display()))?;
        let saved = config_of(&mut ck);
        let mut same = saved.clone();
        *same.iterations_mut() = *config.clone().iterations_mut();
        if same != *config {
            anyhow::bail!(
                "cannot resume: {} was written with another config\n  checkpoint: {:?}\n  now:        {:?}",
                path.display(),
                saved,
                config
            );
        }
        *saved = config.clone();
        Ok(ck)
    }
}
