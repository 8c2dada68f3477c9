//! End-to-end tests of tinyadapt live in `tests/`; this library only gives them a home.
//!
//! Run them with `cargo test -p tinyadapt-tests`.
