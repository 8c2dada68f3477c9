//! The user's own tasks from one CSV file: regression or classification, one task per value of
//! the `task` column, the train/test split fixed by a `split` column when the user wants it.
//!
//! ```text
//! # classes: walk,run,sit          <- optional: classification, with these labels
//! task,split,ax,ay,az,label         <- `task` required; `split` optional; `label` or y columns
//! alice,train,0.12,0.98,0.05,walk
//! alice,test,0.10,0.97,0.07,run
//! bob,train,0.40,0.81,0.11,2        <- a label is a name from `classes` or its index
//! ```
//!
//! Columns named `y`, or `y` followed by digits (`y1`, `y2`, …), are regression targets;
//! `label` is the class (it needs the `# classes:` line); every other column is a feature and
//! must hold a finite number. Every error names the file, the line and what was expected.
//!
//! ```
//! use meta_train::tasks::csv::{CsvTasks, Target};
//! let text = "task,x,y\na,0.5,1.0\na,1.5,2.0\nb,0.0,0.5\n";
//! let t = CsvTasks::parse("mine.csv", text).unwrap();
//! assert_eq!((t.features.len(), t.tasks.len()), (1, 2));
//! assert!(matches!(t.target, Target::Regression { outputs: 1 }));
//! let e = CsvTasks::parse("mine.csv", "task,x,y\na,zero,1\n").unwrap_err();
//! assert_eq!(e.to_string(), "mine.csv:2: column `x`: expected a number, found \"zero\"");
//! ```

use std::fmt;
use std::path::Path;

/// What the tasks predict.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Real-valued outputs (the `y` columns).
    Regression {
        /// Number of `y` columns.
        outputs: usize,
    },
    /// One of the declared classes (the `label` column).
    Classification {
        /// Class names, in index order.
        classes: Vec<String>,
    },
}

/// One sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Line in the file (1-based).
    pub line: usize,
    /// Features.
    pub x: Vec<f32>,
    /// Regression targets, or the class index as a single value.
    pub y: Vec<f32>,
}

/// One task: its samples, split when the file fixes the split.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvTask {
    /// Value of the `task` column.
    pub name: String,
    /// Line of its first sample.
    pub first_line: usize,
    /// Samples marked `train`, or every sample when the file has no `split` column.
    pub train: Vec<Row>,
    /// Samples marked `test`.
    pub test: Vec<Row>,
}

/// Every task of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvTasks {
    /// The file, as given.
    pub file: String,
    /// Feature column names.
    pub features: Vec<String>,
    /// What is predicted.
    pub target: Target,
    /// Whether the file fixes the split.
    pub has_split: bool,
    /// Tasks in order of first appearance.
    pub tasks: Vec<CsvTask>,
}

/// A problem in a task file: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    /// The file.
    pub file: String,
    /// The line (1-based; 0: the file as a whole).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for CsvError {}

/// Column roles, from the header.
enum Role {
    Task,
    Split,
    Feature,
    Y,
    Label,
}

fn role(name: &str) -> Role {
    match name {
        "task" => Role::Task,
        "split" => Role::Split,
        "label" => Role::Label,
        n if n == "y"
            || (n.len() > 1
                && n.starts_with('y')
                && n[1..].bytes().all(|b| b.is_ascii_digit())) =>
        {
            Role::Y
        }
        _ => Role::Feature,
    }
}

impl CsvTasks {
    /// Reads and checks a task file.
    pub fn load(path: &Path) -> Result<Self, CsvError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CsvError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses the text of a task file called `file`.
    pub fn parse(file: &str, text: &str) -> Result<Self, CsvError> {
        let err = |line: usize, message: String| CsvError {
            file: file.to_string(),
            line,
            message,
        };
        // Directives: leading lines that start with '#'.
        let mut classes: Option<Vec<String>> = None;
        let mut skipped = 0;
        let mut rest = text;
        while let Some(line) = rest.lines().next() {
            let trimmed = line.trim();
            if !(trimmed.starts_with('#') || trimmed.is_empty()) {
                break;
            }
            skipped += 1;
            let body = trimmed.trim_start_matches('#').trim();
            if let Some(list) = body.strip_prefix("classes:") {
                let names: Vec<String> = list
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                if names.len() < 2 {
                    return Err(err(
                        skipped,
                        "`# classes:` needs at least two class names".into(),
                    ));
                }
                classes = Some(names);
            }
            rest = rest.get(line.len()..).unwrap_or("");
            rest = rest
                .strip_prefix("\r\n")
                .or_else(|| rest.strip_prefix('\n'))
                .unwrap_or(rest);
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(rest.as_bytes());
        let header_line = skipped + 1;
        let headers = reader
            .headers()
            .map_err(|e| err(header_line, format!("cannot read the header: {e}")))?
            .clone();
        if headers.iter().all(str::is_empty) {
            return Err(err(
                header_line,
                "expected a header line with a `task` column".into(),
            ));
        }
        let (mut task_col, mut split_col, mut label_col) = (None, None, None);
        let (mut features, mut feature_cols, mut y_cols) = (Vec::new(), Vec::new(), Vec::new());
        for (i, name) in headers.iter().enumerate() {
            let dup = |c: Option<usize>| {
                c.map_or(Ok(Some(i)), |_| {
                    Err(err(header_line, format!("column `{name}` appears twice")))
                })
            };
            match role(name) {
                Role::Task => task_col = dup(task_col)?,
                Role::Split => split_col = dup(split_col)?,
                Role::Label => label_col = dup(label_col)?,
                Role::Y => y_cols.push(i),
                Role::Feature => {
                    if name.is_empty() {
                        return Err(err(header_line, format!("column {} has no name", i + 1)));
                    }
                    features.push(name.to_string());
                    feature_cols.push(i);
                }
            }
        }
        let task_col =
            task_col.ok_or_else(|| err(header_line, "expected a `task` column".into()))?;
        if features.is_empty() {
            return Err(err(
                header_line,
                "expected at least one feature column".into(),
            ));
        }
        let target = match (label_col, y_cols.is_empty(), classes) {
            (Some(_), true, Some(classes)) => Target::Classification { classes },
            (Some(_), true, None) => {
                return Err(err(
                    header_line,
                    "a `label` column needs a `# classes: a,b,…` line before the header".into(),
                ))
            }
            (None, false, None) => Target::Regression {
                outputs: y_cols.len(),
            },
            (None, false, Some(_)) => {
                return Err(err(
                    1,
                    "`# classes:` is for a `label` column; this file has y columns".into(),
                ))
            }
            (Some(_), false, _) => {
                return Err(err(
                    header_line,
                    "expected either a `label` column or y columns, not both".into(),
                ))
            }
            (None, true, _) => {
                return Err(err(
                    header_line,
                    "expected a target: a `label` column or y columns (`y`, `y1`, …)".into(),
                ))
            }
        };
        let mut tasks: Vec<CsvTask> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e
                    .position()
                    .map_or(0, |p| line_at(rest, p.byte()) + skipped);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("expected {expected_len} columns as in the header, found {len}")
                    }
                    _ => format!("not CSV: {e}"),
                };
                err(line, message)
            })?;
            let line = record.position().map_or(0, |p| line_at(rest, p.byte())) + skipped;
            let number = |col: usize| -> Result<f32, CsvError> {
                number_in(&record[col], &headers[col]).map_err(|m| err(line, m))
            };
            let name = &record[task_col];
            if name.is_empty() {
                return Err(err(
                    line,
                    "column `task`: expected a task name, found nothing".into(),
                ));
            }
            let x = feature_cols
                .iter()
                .map(|&c| number(c))
                .collect::<Result<Vec<_>, _>>()?;
            let y = match &target {
                Target::Regression { .. } => y_cols
                    .iter()
                    .map(|&c| number(c))
                    .collect::<Result<Vec<_>, _>>()?,
                Target::Classification { classes } => {
                    let raw = &record[label_col.expect("classification has a label column")];
                    let index = classes
                        .iter()
                        .position(|c| c == raw)
                        .or_else(|| raw.parse::<usize>().ok().filter(|&i| i < classes.len()))
                        .ok_or_else(|| {
                            err(line, format!("column `label`: {raw:?} is not one of the declared classes ({})", classes.join(", ")))
                        })?;
                    vec![index as f32]
                }
            };
            let is_test = match split_col {
                None => false,
                Some(c) => match &record[c] {
                    "train" => false,
                    "test" => true,
                    other => {
                        return Err(err(
                            line,
                            format!("column `split`: expected `train` or `test`, found {other:?}"),
                        ))
                    }
                },
            };
            let row = Row { line, x, y };
            let task = match tasks.iter_mut().position(|t| t.name == name) {
                Some(i) => &mut tasks[i],
                None => {
                    tasks.push(CsvTask {
                        name: name.to_string(),
                        first_line: line,
                        train: Vec::new(),
                        test: Vec::new(),
                    });
                    tasks.last_mut().expect("just pushed")
                }
            };
            if is_test {
                task.test.push(row);
            } else {
                task.train.push(row);
            }
        }
        if tasks.is_empty() {
            return Err(err(0, "no samples: expected rows after the header".into()));
        }
        let has_split = split_col.is_some();
        for t in &tasks {
            if t.train.is_empty() {
                return Err(err(
                    t.first_line,
                    format!("task {:?} is empty: it has no `train` samples", t.name),
                ));
            }
            if has_split && t.test.is_empty() {
                return Err(err(
                    t.first_line,
                    format!("task {:?} is empty: it has no `test` samples", t.name),
                ));
            }
        }
        Ok(Self {
            file: file.to_string(),
            features,
            target,
            has_split,
            tasks,
        })
    }

    /// Checks that every task has at least `k` training samples (the K of K-shot).
    pub fn require_k(&self, k: usize) -> Result<(), CsvError> {
        for t in &self.tasks {
            if t.train.len() < k {
                return Err(CsvError {
                    file: self.file.clone(),
                    line: t.first_line,
                    message: format!(
                        "task {:?} has {} training samples, fewer than K = {k}",
                        t.name,
                        t.train.len()
                    ),
                });
            }
        }
        Ok(())
    }
}

impl CsvTasks {
    /// Checks that every task can give K support and K query samples: K `train` and K `test`
    /// samples when the file fixes the split, 2K samples otherwise.
    ///
    /// ```
    /// use meta_train::tasks::csv::CsvTasks;
    /// let t = CsvTasks::parse("t.csv", "task,x,y\na,0,1\na,1,2\na,2,3\n").unwrap();
    /// assert!(t.require_episodes(1).is_ok());
    /// assert_eq!(
    ///     t.require_episodes(2).unwrap_err().to_string(),
    ///     "t.csv:2: task \"a\" has 3 samples, fewer than 2K = 4 (K = 2 support and 2 query samples)"
    /// );
    /// ```
    pub fn require_episodes(&self, k: usize) -> Result<(), CsvError> {
        if self.has_split {
            self.require_k(k)?;
        }
        for t in &self.tasks {
            let message = if !self.has_split && t.train.len() < 2 * k {
                format!(
                    "task {:?} has {} samples, fewer than 2K = {} (K = {k} support and {k} query samples)",
                    t.name,
                    t.train.len(),
                    2 * k
                )
            } else if self.has_split && t.test.len() < k {
                format!(
                    "task {:?} has {} `test` samples, fewer than K = {k} (its query samples)",
                    t.name,
                    t.test.len()
                )
            } else {
                continue;
            };
            return Err(CsvError {
                file: self.file.clone(),
                line: t.first_line,
                message,
            });
        }
        Ok(())
    }
}

/// The 1-based line of the record the CSV reader places at byte `offset` of `text`: the reader
/// places it before the blank lines it skips, and its own line count leaves them out, so skip
/// them here and count `\n`, `\r\n` and lone `\r` endings before the record.
pub(crate) fn line_at(text: &str, offset: u64) -> usize {
    let all = text.as_bytes();
    let mut start = usize::try_from(offset).map_or(all.len(), |o| o.min(all.len()));
    while all.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    let bytes = &all[..start];
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    1 + breaks
}

/// The finite number in a cell, or the error message naming the column.
pub(crate) fn number_in(raw: &str, column: &str) -> Result<f32, String> {
    match raw.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "column `{column}`: expected a finite number, found {raw:?}"
        )),
        Err(_) => Err(format!(
            "column `{column}`: expected a number, found {raw:?}"
        )),
    }
}
