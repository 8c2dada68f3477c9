//! What a run shows its reader: the figures (behind the `plot` feature), the report of a blob,
//! and printing to standard output.

#[cfg(feature = "plot")]
pub mod figures;
pub mod inspect;
pub mod output;
#[cfg(feature = "plot")]
pub mod plot;
