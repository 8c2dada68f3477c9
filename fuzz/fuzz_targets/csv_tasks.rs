//! The CSV task parser on arbitrary bytes: it returns tasks or an error naming the file and
//! line, never panics, and what it accepts is consistent (every task has training samples,
//! every row has the header's widths, labels index the declared classes).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// meta-train's parser, the very file: it depends on the `csv` crate and std only.
#[path = "../../meta-train/src/tasks/csv.rs"]
#[allow(dead_code)]
mod tasks_csv;

use tasks_csv::{CsvTasks, Target};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match CsvTasks::parse("fuzz.csv", &text) {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.csv"), "{shown}");
        }
        Ok(t) => {
            let (outputs, classes) = match &t.target {
                Target::Regression { outputs } => (*outputs, None),
                Target::Classification { classes } => (1, Some(classes.len())),
            };
            assert!(!t.features.is_empty() && !t.tasks.is_empty());
            for task in &t.tasks {
                assert!(!task.train.is_empty());
                assert!(!t.has_split || !task.test.is_empty());
                for row in task.train.iter().chain(&task.test) {
                    assert_eq!(row.x.len(), t.features.len());
                    assert_eq!(row.y.len(), outputs);
                    assert!(row.x.iter().chain(&row.y).all(|v| v.is_finite()));
                    if let Some(n) = classes {
                        assert!((row.y[0] as usize) < n && row.y[0].fract() == 0.0);
                    }
                }
            }
            let _ = t.require_k(5);
        }
    }
});
