//! Printing results to standard output the way command-line tools should: when the reader
//! goes away (`meta-train eval BLOB | head`), the program ends quietly instead of panicking.

use std::fmt;
use std::io::{self, Write};

/// Writes `args` and a newline to standard output. On a closed pipe the process exits with
/// status 0 (the reader has what it wanted); any other write error exits with status 1 and a
/// message on standard error.
pub fn emit(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`emit`].
///
/// ```
/// meta_train::say!("{} held-out tasks", 600);
/// ```
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::report::output::emit(format_args!($($arg)*))
    };
}
