//! Helpers shared by the simulator tests: paths of shipped scenarios, scratch files, and a
//! quiet run.

use std::path::PathBuf;

use eccluster_simulations::{run_with, Outcome, RunArgs, RunOptions};

/// The path of a shipped scenario file.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml"))
}

/// The repository's segment file `name`, as an absolute path.
pub fn segments(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("segments")
        .join(name)
        .display()
        .to_string()
}

/// A scratch directory unique to this test process and `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eccluster-sim-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Writes a scenario file into a scratch directory and returns its path.
pub fn write_scenario(tag: &str, text: &str) -> PathBuf {
    let path = scratch(tag).join(format!("{tag}.toml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Runs without printing the report (it is in the outcome) and without a progress bar.
pub fn run_quiet(path: PathBuf, seed: u64, nodes: Option<usize>, trace: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let args = RunArgs { scenario: path, seed: Some(seed), nodes, out: None };
    run_with(&args, &RunOptions { trace, print: false, progress: false })
}

/// [`run_quiet`] that also writes the charts into `out`.
pub fn run_with_charts(path: PathBuf, seed: u64, out: PathBuf, trace: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let args = RunArgs { scenario: path, seed: Some(seed), nodes: None, out: Some(out) };
    run_with(&args, &RunOptions { trace, print: false, progress: false })
}

/// Runs and fails the test with the full report if the run did not pass.
pub fn expect_pass(name: &str, seed: u64, nodes: Option<usize>) -> Outcome {
    let outcome = run_quiet(scenario(name), seed, nodes, None).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    assert!(outcome.passed, "{name} failed with seed {seed}:\n{}", outcome.report);
    outcome
}
