//! eccluster-sim-bench: simulator throughput at a given size. Runs a generated cluster in
//! steady state (boot spread over 10 s, then nothing but SWIM) and prints the ratio of
//! simulated to wall time, events per second and the peak resident memory (VmHWM).
//!
//! ```text
//! eccluster-sim-bench [--nodes 1000] [--duration 10m] [--loss 0] [--seed 1]
//!                     [--start cold|seeded] [--seed-threads N] [--max-wall 600s] [--max-rss-mb 16000]
//! ```
//! `--start cold` (the default) boots the nodes within 10 s and lets them form the cluster by
//! gossip; `--start seeded` boots them all at 0 with every member already known (the state a
//! formed cluster reaches, see the scenario key `[topology] start`), filling the member tables
//! on `--seed-threads` threads (default: one per core; the run is the same with any number).
//! The budgets stop a run that would take too long or need too much memory; the figures
//! then cover the simulated time reached.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use eccluster_simulations::memory::peak_rss_kib;
use eccluster_simulations::sim::{Budget, SimOptions, Simulation};
use eccluster_simulations::time::parse_duration;
use eccluster_simulations::{Report, Scenario, EXIT_BAD_INPUT};

/// The cores allocate many small strings per message; mimalloc handles that far better than
/// glibc's malloc (about 1.5x faster runs, less memory at 1,000 nodes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    nodes: usize,
    duration: String,
    loss: f64,
    seed: u64,
    seeded: bool,
    seed_threads: Option<usize>,
    budget: Budget,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: 1000,
        duration: "10m".into(),
        loss: 0.0,
        seed: 1,
        seeded: false,
        seed_threads: None,
        budget: Budget { wall: Some(Duration::from_secs(600)), max_rss_kib: Some(16_000 * 1024) },
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--duration" => args.duration = value,
            "--loss" => args.loss = value.parse().map_err(|e| format!("--loss: {e}"))?,
            "--seed" => args.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--start" => {
                args.seeded = match value.as_str() {
                    "cold" => false,
                    "seeded" => true,
                    other => return Err(format!("--start: cold or seeded, not {other}")),
                }
            }
            "--seed-threads" => {
                let threads: usize = value.parse().map_err(|e| format!("--seed-threads: {e}"))?;
                if threads == 0 {
                    return Err("--seed-threads: at least 1".into());
                }
                args.seed_threads = Some(threads);
            }
            "--max-wall" => args.budget.wall = Some(parse_duration(&value).map_err(|e| format!("--max-wall: {e}"))?),
            "--max-rss-mb" => {
                let mb: u64 = value.parse().map_err(|e| format!("--max-rss-mb: {e}"))?;
                args.budget.max_rss_kib = Some(mb * 1024);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: eccluster-sim-bench [--nodes N] [--duration 10m] [--loss P] [--seed N] [--start cold|seeded] [--seed-threads N] [--max-wall 600s] [--max-rss-mb MB]");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let start = if args.seeded { "start = \"seeded\"" } else { "boot_spread = \"10s\"" };
    let text = format!(
        "name = \"bench-{n}\"\nduration = \"{d}\"\n[topology]\nnodes = {n}\nsubclusters = [\"east\", \"west\"]\n{start}\n[network]\nlatency = \"500us\"\njitter = \"1ms\"\nloss = {loss}\n",
        n = args.nodes,
        d = args.duration,
        loss = args.loss
    );
    let scenario = match Scenario::parse(Path::new("bench.toml"), &text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    println!(
        "bench: {} nodes ({} start), {} simulated, loss {}, seed {} (budget: {:?} wall, {:?} KiB resident)",
        args.nodes,
        if args.seeded { "seeded" } else { "cold" },
        args.duration,
        args.loss,
        args.seed,
        args.budget.wall,
        args.budget.max_rss_kib
    );
    let options = SimOptions { scenario, seed: args.seed, nodes: None, trace_text: None, progress: true, seed_threads: args.seed_threads };
    let sim = match Simulation::new(options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let finished = sim.run_within(&args.budget);
    let report = Report::new(&finished, Path::new("bench.toml"));
    let wall = finished.wall.as_secs_f64().max(1e-9);
    let hwm = peak_rss_kib().map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into());
    println!("nodes                 {}", args.nodes);
    if args.seeded {
        println!("seeding threads       {} ({} of {} cores built on them)", finished.seed_threads, finished.seeded_ahead, args.nodes);
    }
    println!("simulated             {:.1} s{}", finished.simulated.as_secs_f64(), if finished.stopped_early { " (stopped early)" } else { "" });
    println!("wall                  {wall:.2} s");
    println!("simulated / wall      {:.3}", finished.simulated.as_secs_f64() / wall);
    let start = finished.start_wall.as_secs_f64();
    let after = finished.simulated.as_secs_f64();
    println!(
        "wall at time 0        {start:.2} s (the start{}), then {:.3} s per simulated second",
        if args.seeded { ": filling the member tables" } else { "" },
        if after > 0.0 { (wall - start) / after } else { 0.0 }
    );
    println!("events                {} ({:.0} per wall second)", finished.stats.events, finished.stats.events as f64 / wall);
    println!("messages sent         {} ({:.0} per wall second, {:.1} per node per simulated second)", report.traffic.sent, report.traffic.sent as f64 / wall, report.messages_per_node_sec);
    println!("events pending at end {}", finished.pending_events);
    println!("peak memory (VmHWM)   {hwm}");
    println!("false downs           {}", report.false_downs);
    println!("trace hash            {}", finished.trace_hash);
    for note in &report.notes {
        println!("note                  {note}");
    }
    ExitCode::SUCCESS
}
