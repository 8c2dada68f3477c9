//! Task files as users write them, and every mistake named by file and line.

use meta_train::tasks::csv::{CsvTasks, Target};

fn error(text: &str) -> String {
    CsvTasks::parse("tasks.csv", text).unwrap_err().to_string()
}

#[test]
fn a_classification_file_with_a_fixed_split_loads() {
    let text = "# gestures of two users\n# classes: walk,run,sit\n\
                task,split,ax,ay,label\n\
                alice,train,0.1,0.9,walk\n\
                alice,train,0.2,0.8,2\n\
                alice,test,0.1,0.7,run\n\
                bob,train,0.5,0.5,sit\n\
                bob,test,0.4,0.6,walk\n";
    let t = CsvTasks::parse("tasks.csv", text).unwrap();
    assert_eq!(t.features, ["ax", "ay"]);
    assert_eq!(
        t.target,
        Target::Classification {
            classes: vec!["walk".into(), "run".into(), "sit".into()]
        }
    );
    assert!(t.has_split);
    assert_eq!(t.tasks.len(), 2);
    let alice = &t.tasks[0];
    assert_eq!((alice.name.as_str(), alice.first_line), ("alice", 4));
    assert_eq!(alice.train.len(), 2);
    assert_eq!(alice.train[1].y, [2.0]); // "2" is the index of sit
    assert_eq!(alice.test[0].y, [1.0]); // run
    assert_eq!(alice.test[0].line, 6);
    t.require_k(1).unwrap();
}

#[test]
fn a_regression_file_without_split_loads() {
    let t = CsvTasks::parse(
        "r.csv",
        "task,t,temp,y1,y2\nd1,0,20.5,1,2\nd1,1,21.0,1.5,2.5\n",
    )
    .unwrap();
    assert_eq!(t.target, Target::Regression { outputs: 2 });
    assert!(!t.has_split);
    assert_eq!(t.tasks[0].train[1].x, [1.0, 21.0]);
    assert_eq!(t.tasks[0].train[1].y, [1.5, 2.5]);
}

#[test]
fn a_wrong_column_count_names_the_line() {
    let e = error("task,x,y\na,1,2\na,1,2,3\n");
    assert_eq!(
        e,
        "tasks.csv:3: expected 3 columns as in the header, found 4"
    );
    let e = error("# note\ntask,x,y\na,1\n");
    assert_eq!(
        e,
        "tasks.csv:3: expected 3 columns as in the header, found 2"
    );
}

#[test]
fn a_non_numeric_value_names_the_line_and_column() {
    assert_eq!(
        error("task,x,y\na,1,2\na,1,two\n"),
        "tasks.csv:3: column `y`: expected a number, found \"two\""
    );
    assert_eq!(
        error("task,x,y\na,NaN,2\n"),
        "tasks.csv:2: column `x`: expected a finite number, found \"NaN\""
    );
}

#[test]
fn a_label_outside_the_declared_classes_names_the_line() {
    let e = error("# classes: a,b\ntask,x,label\nt,1,a\nt,2,c\n");
    assert_eq!(
        e,
        "tasks.csv:4: column `label`: \"c\" is not one of the declared classes (a, b)"
    );
    let e = error("# classes: a,b\ntask,x,label\nt,1,2\n");
    assert!(e.starts_with("tasks.csv:3: column `label`: \"2\""), "{e}");
    assert!(error("task,x,label\nt,1,0\n").contains("needs a `# classes: a,b,…` line"));
}

#[test]
fn an_empty_task_names_its_first_line() {
    let e = error("task,split,x,y\na,train,1,2\na,test,1,2\nb,test,1,2\n");
    assert_eq!(
        e,
        "tasks.csv:4: task \"b\" is empty: it has no `train` samples"
    );
    let e = error("task,split,x,y\na,train,1,2\na,test,1,2\nb,train,1,2\n");
    assert_eq!(
        e,
        "tasks.csv:4: task \"b\" is empty: it has no `test` samples"
    );
    assert_eq!(
        error("task,x,y\n"),
        "tasks.csv: no samples: expected rows after the header"
    );
}

#[test]
fn a_task_with_fewer_samples_than_k_names_its_first_line() {
    let t = CsvTasks::parse("tasks.csv", "task,x,y\na,1,1\na,2,2\nb,1,1\na,3,3\n").unwrap();
    t.require_k(2).unwrap_err();
    assert_eq!(
        t.require_k(2).unwrap_err().to_string(),
        "tasks.csv:4: task \"b\" has 1 training samples, fewer than K = 2"
    );
    t.require_k(1).unwrap();
}

#[test]
fn header_mistakes_are_named() {
    assert!(error("x,y\n1,2\n").ends_with("tasks.csv:1: expected a `task` column"));
    assert!(error("task,y\na,1\n").contains("expected at least one feature column"));
    assert!(error("task,x\na,1\n").contains("expected a target"));
    assert!(error("task,x,x2,task\na,1,2,b\n").contains("column `task` appears twice"));
    assert!(error("task,split,x,y\na,validate,1,2\n")
        .contains("column `split`: expected `train` or `test`, found \"validate\""));
    assert!(error("").contains("expected a header line"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap sweep here; the fuzz target `csv_tasks` does this for real.
    let seeds = [
        "task,x,y\na,1,2\n",
        "# classes: a,b\ntask,split,x,label\nt,train,1,a\nt,test,2,b\n",
    ];
    for seed in seeds {
        let bytes = seed.as_bytes();
        for i in 0..bytes.len() {
            for b in [0u8, b',', b'\n', b'"', b'#', 0xFF, b'9'] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let text = String::from_utf8_lossy(&m);
                let _ = CsvTasks::parse("m.csv", &text).map(|t| t.require_k(2));
            }
        }
    }
}

#[test]
fn lines_are_counted_as_an_editor_shows_them_past_blank_lines_and_crlf() {
    let text = "# classes: a,b\ntask,x,label\r\n\r\nt1,0.5,a\n\nt1,oops,b\n";
    assert_eq!(
        error(text),
        "tasks.csv:6: column `x`: expected a number, found \"oops\""
    );
    let text = "task,x,y\n\n\nt1,0.5,1.0,2.0\n";
    assert!(error(text).starts_with("tasks.csv:4: "), "{}", error(text));
}
