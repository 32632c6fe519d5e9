//! The fuzzing corpus (`fuzz/corpus/TARGET/`) replayed through the same checks the fuzz
//! targets run (`fuzz/src/checks.rs`), so every committed input, the crashes found and fixed
//! among them, keeps being tested without the fuzzing toolchain.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
#[allow(dead_code, clippy::unwrap_used)]
mod checks;

#[path = "../../fuzz/seeds.rs"]
mod seeds;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// Runs `check` on every file of the target's corpus; fails on an empty corpus.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = corpus(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails its check", file.display());
    }
}

#[test]
fn wire_corpus() {
    replay("wire", checks::wire);
}

#[test]
fn membership_corpus() {
    replay("membership", checks::membership);
}

#[test]
fn ops_corpus() {
    replay("ops", checks::ops);
}

#[test]
fn revisions_corpus() {
    replay("revisions", checks::revisions);
}

#[test]
fn holders_corpus() {
    replay("holders", checks::holders);
}

#[test]
fn duravip_corpus() {
    replay("duravip", checks::duravip);
}

#[test]
fn console_frame_corpus() {
    replay("console_frame", checks::console_frame);
}

#[test]
fn console_line_corpus() {
    replay("console_line", checks::console_line);
}

#[test]
fn journal_corpus() {
    replay("journal", checks::journal);
}

#[test]
fn config_corpus() {
    replay("config", checks::config);
}

#[test]
fn segments_corpus() {
    replay("segments", checks::segments);
}

#[test]
fn confrepo_corpus() {
    replay("confrepo", checks::confrepo);
}

#[test]
fn scenario_corpus() {
    replay("scenario", checks::scenario);
}

/// Writes the seed inputs into `fuzz/corpus/` (run by hand, then minimise with `cargo fuzz
/// cmin`): real messages encoded by the cores, real files of the repository.
#[test]
#[ignore = "writes fuzz/corpus; run by hand to refresh the seeds"]
fn write_seed_corpus() {
    seeds::write(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus"));
}
