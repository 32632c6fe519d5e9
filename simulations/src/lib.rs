//! eccluster-simulations: the deterministic partition simulator.
//!
//! It answers "what happens to my cluster if ..." with the code that ships: it drives each
//! host's `eccluster_proto::node::Node` — membership, ordered operations and DuraVIP composed
//! exactly as the daemons run them — with virtual time and a simulated network, thousands of
//! nodes in one process. Messages travel as the exact bytes
//! the cores produce. No tokio, no sockets, no threads; one seed reproduces a run exactly.
//!
//! # Layout
//!
//! - [`world`]: the event heap, ordered by (virtual time, sequence number).
//! - [`time`]: virtual time and the duration syntax of scenario files.
//! - [`network`]: links (latency, jitter, loss, duplication, reordering) and cuts.
//! - [`topology`]: hosts from a segment file or generated.
//! - [`node`]: a simulated node: its node core, run state, clock and incarnations;
//!   [`group_commit`]: a manager's journal writes on their way to its disk.
//! - [`scenario`]: scenario files (TOML) and their checked form.
//! - [`sim`]: the event loop that drives nodes, network and timeline.
//! - [`beliefs`], [`invariants`], [`assertions`], [`stats`]: what is watched and measured.
//! - [`trace`]: the trace hash; [`report`]: the terminal table; [`plot`]: SVG charts (plotters);
//!   [`vips`]: DuraVIP holder segments, conflict windows and gaps.
//! - [`memory`]: peak and current resident memory, for benchmarks.
//!
//! # Entry point
//!
//! [`run`] takes [`RunArgs`] (as `eccluster sim run SCENARIO [--seed N] [--nodes N] [--out DIR]`
//! parses them), prints the report and returns an [`Outcome`]. Exit codes: 0 when every
//! assertion held and no invariant broke, 1 otherwise ([`Outcome::exit_code`]), 2 when `run`
//! returns an error (a bad scenario, segment file, seed or output directory: nothing ran).
#![forbid(unsafe_code)]

pub mod assertions;
pub mod beliefs;
pub mod bitset;
pub mod group_commit;
pub mod invariants;
pub mod memory;
pub mod network;
pub mod node;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod time;
pub mod topology;
pub mod trace;
pub mod vips;
pub mod world;

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

use anyhow::Context;

pub use crate::report::Report;
pub use crate::scenario::{Scenario, ScenarioError};
use crate::sim::{SimOptions, Simulation};
use crate::time::SimTime;

/// The environment variable that sets the seed when `--seed` is not given.
pub const SEED_ENV: &str = "SIM_SEED";

/// Exit code of a run whose assertions held and invariants were kept.
pub const EXIT_PASS: u8 = 0;
/// Exit code of a run where an assertion failed or an invariant broke.
pub const EXIT_FAIL: u8 = 1;
/// Exit code when nothing ran: bad scenario, segment file, seed or output directory.
pub const EXIT_BAD_INPUT: u8 = 2;

/// What `eccluster sim run` parses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The seed (else `SIM_SEED`, else the scenario's `seed`, else a random one).
    pub seed: Option<u64>,
    /// Overrides the node count of a generated topology.
    pub nodes: Option<usize>,
    /// Directory for the SVG charts.
    pub out: Option<PathBuf>,
}

/// The result of a run whose report has been printed.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// True if every assertion held and no invariant broke.
    pub passed: bool,
    /// The seed used.
    pub seed: u64,
    /// The report (already printed).
    pub report: Report,
    /// Charts written under `--out`.
    pub plots: Vec<PathBuf>,
}

impl Outcome {
    /// 0 if the run passed, 1 if not.
    pub fn exit_code(&self) -> u8 {
        if self.passed {
            EXIT_PASS
        } else {
            EXIT_FAIL
        }
    }
}

/// The seed to use: `--seed`, else `SIM_SEED`, else the scenario's, else a fresh random one.
pub fn choose_seed(flag: Option<u64>, scenario: Option<u64>) -> anyhow::Result<u64> {
    if let Some(seed) = flag {
        return Ok(seed);
    }
    if let Ok(text) = std::env::var(SEED_ENV) {
        let text = text.trim();
        if !text.is_empty() {
            return text
                .parse()
                .with_context(|| format!("{SEED_ENV}={text:?} is not a seed (an unsigned 64-bit integer)"));
        }
    }
    if let Some(seed) = scenario {
        return Ok(seed);
    }
    // Only the choice of seed is random; the run itself depends on nothing but the seed.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    Ok(hasher.finish() % 1_000_000_000)
}

/// Extra knobs of the runner binary and tests, beyond what `eccluster sim run` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Also write the trace as text lines to this file (to diff two runs).
    pub trace: Option<PathBuf>,
    /// Print the seed line and the report (on by default).
    pub print: bool,
    /// Show a progress bar on stderr when it is a terminal (on by default).
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { trace: None, print: true, progress: true }
    }
}

/// Writes to standard output. A reader that has gone away (`eccluster sim run … | head`) is not
/// an error: the run goes on (its trace, report and charts are still made) and prints nothing
/// more. Any other failure to write is an error that names standard output.
pub fn print_out(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(error).context("writing to standard output")),
        _ => Ok(()),
    }
}

/// Runs a scenario file, printing the seed first and the report at the end (and the replay
/// command when it fails). An `Err` means nothing ran: exit with [`EXIT_BAD_INPUT`].
pub fn run(args: &RunArgs) -> anyhow::Result<Outcome> {
    run_with(args, &RunOptions::default())
}

/// [`run`] with extra options.
pub fn run_with(args: &RunArgs, options: &RunOptions) -> anyhow::Result<Outcome> {
    let scenario = Scenario::load(&args.scenario)?;
    let seed = choose_seed(args.seed, scenario.seed)?;
    let mut command = format!("eccluster sim run {} --seed {seed}", args.scenario.display());
    if let Some(n) = args.nodes {
        command.push_str(&format!(" --nodes {n}"));
    }
    if options.print {
        print_out(format_args!("simulating {} with seed {seed} ({command})\n", scenario.name))?;
    }
    let trace_text: Option<Box<dyn std::io::Write>> = match &options.trace {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("creating trace file {}", path.display()))?;
            Some(Box::new(std::io::BufWriter::new(file)))
        }
        None => None,
    };
    let sim = Simulation::new(SimOptions {
        scenario,
        seed,
        nodes: args.nodes,
        trace_text,
        progress: options.progress,
        seed_threads: None,
    })?;
    let finished = sim.run();
    let report = Report::new(&finished, &args.scenario);
    if options.print {
        print_out(format_args!("{report}"))?;
    }
    let mut plots = Vec::new();
    if let Some(dir) = &args.out {
        let names: Vec<String> = finished.topology.hosts().iter().map(|h| h.name.clone()).collect();
        let marks = plot::marks(&finished.stats.changes, &names);
        plots = plot::write_plots(dir, &report.scenario, &finished.stats.series, &marks)
            .with_context(|| format!("writing charts to {}", dir.display()))?;
        if !finished.vips.is_empty() {
            let end = SimTime::from_duration(finished.simulated);
            let rows = vips::segments(&finished.vips, &finished.vip_timeline, end);
            let svg = plot::vip_owners_svg(&report.scenario, &names, &rows, end.as_duration().as_secs_f64(), &marks)?;
            let path = dir.join("vip-owners.svg");
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            plots.push(path);
        }
        if options.print {
            for p in &plots {
                print_out(format_args!("wrote {}\n", p.display()))?;
            }
        }
    }
    Ok(Outcome { passed: report.passed, seed, report, plots })
}
