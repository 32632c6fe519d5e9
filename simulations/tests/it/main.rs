//! Simulator tests, in one binary to save link time: every shipped scenario over several
//! seeds, determinism of the trace, invariant violations being caught, scenario file errors,
//! the core hook, and (ignored by default) the large benchmarks.

mod bench;
mod determinism;
mod errors;
mod scenarios;
mod support;
mod violations;
