//! Fuzz targets of eccluster's decoders and parsers; the checks themselves are in
//! `checks.rs`, shared with the corpus replay test of the main test suite.

mod checks;

pub use checks::*;
