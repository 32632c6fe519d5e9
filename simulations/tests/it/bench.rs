//! Benchmarks at full size, ignored by default (they take minutes). Run with:
//!
//! ```text
//! cargo test -p eccluster-simulations --release -- --ignored --nocapture loss_5pct_at_1000_nodes
//! ```
//!
//! The throughput benchmark at any size is the `eccluster-sim-bench` binary.

use crate::support::run_quiet;

#[test]
#[ignore = "benchmark: 1,000 nodes for 11 simulated minutes"]
fn loss_5pct_at_1000_nodes() {
    let o = run_quiet(crate::support::scenario("loss-5pct-1000"), 1, None, None).expect("runs");
    println!("{}", o.report);
    println!("simulated/wall = {:.2}", o.report.speed());
    assert!(o.passed);
}
