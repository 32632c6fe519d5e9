//! The soak's command line. Run by `cargo test` it gets no options (the short CI run) or
//! libtest's own flags and filters, which it accepts: a filter that does not match "soak"
//! skips the run, as it would skip a test of that name.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::schedule::Kind;

pub const USAGE: &str = "\
usage: cargo test --release --test soak -- [OPTIONS]
  --seed N              replay the schedule of seed N (default: 42 for the CI run, else from the clock)
  --duration D          run rounds for D (seconds, or 90s / 30m / 1h); default 100s, the CI run
  --round D             chaos before each checkpoint (default 30s)
  --no-KIND             leave events of KIND out; KIND: kill manager-kill stop cut oneway move
  --only KIND[,KIND..]  only these kinds of events
  --consoles N          concurrent ec_console clients (default 3)
  --max-faults N        most faults in force at once (default 2)
  --rss-limit-mib N     resident memory limit of each daemon (default 64)
  --settle D            how long DuraVIP ownership may take to settle after a heal (default 30s)
  --policy P            DuraVIP partition policy: available (default) or majority
  --net N               the namespaces' network, 10.N.0.0/24 (default 71)";

/// Default length of a run when none is given: the CI run.
const CI_DURATION: Duration = Duration::from_secs(100);
/// The CI run's seed, when none is given.
const CI_SEED: u64 = 42;

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub duration: Duration,
    pub round: Duration,
    pub mix: BTreeSet<Kind>,
    pub consoles: usize,
    pub max_faults: usize,
    pub rss_limit_mib: u64,
    pub settle: Duration,
    pub policy: String,
    pub net: u8,
}

impl Options {
    /// The command line that replays this run's schedule.
    pub fn replay(&self) -> String {
        let mut s = format!(
            "cargo test --release --test soak -- --seed {} --duration {}s --round {}s --only {} --consoles {} --max-faults {} \
             --rss-limit-mib {} --settle {}s --policy {}",
            self.seed,
            self.duration.as_secs(),
            self.round.as_secs(),
            self.mix.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
            self.consoles,
            self.max_faults,
            self.rss_limit_mib,
            self.settle.as_secs(),
            self.policy
        );
        if self.mix.is_empty() {
            s = s.replace("--only  ", "--only none ");
        }
        s
    }
}

/// What the command line asks for.
pub enum Parsed {
    Run(Options),
    /// Nothing to run (`--list`, a filter for other tests, `--ignored`); print this.
    Skip(String),
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("{flag}: expected a duration like 90, 90s, 30m or 1h, got '{text}'"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{flag}: unknown unit '{unit}' in '{text}' (use s, m or h)")),
    };
    if secs == 0 {
        return Err(format!("{flag}: must be more than 0"));
    }
    Ok(Duration::from_secs(secs))
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: expected a number, got '{text}'"))
}

fn kind(flag: &str, text: &str) -> Result<Kind, String> {
    Kind::parse(text).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!("{flag}: unknown kind of event '{text}' (kinds: {})", all.join(" "))
    })
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let seed_from_clock = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut o = Options {
        seed: seed_from_clock % 1_000_000_007,
        duration: CI_DURATION,
        round: Duration::from_secs(30),
        mix: Kind::ALL.into_iter().collect(),
        consoles: 3,
        max_faults: 2,
        rss_limit_mib: 64,
        settle: Duration::from_secs(30),
        policy: "available".to_owned(),
        net: 71,
    };
    let mut duration_given = false;
    let mut seed_given = false;
    let mut filters = Vec::new();
    let mut list = false;
    let mut ignored = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{flag}: missing value"));
        match flag.as_str() {
            "--seed" => {
                o.seed = number(&flag, &value()?)?;
                seed_given = true;
            }
            "--duration" => {
                o.duration = duration(&flag, &value()?)?;
                duration_given = true;
            }
            "--round" => o.round = duration(&flag, &value()?)?,
            "--consoles" => o.consoles = number(&flag, &value()?)?,
            "--max-faults" => o.max_faults = number(&flag, &value()?)?,
            "--rss-limit-mib" => o.rss_limit_mib = number(&flag, &value()?)?,
            "--settle" => o.settle = duration(&flag, &value()?)?,
            "--net" => o.net = number(&flag, &value()?)?,
            "--policy" => {
                let p = value()?;
                if p != "available" && p != "majority" {
                    return Err(format!("--policy: '{p}' is not a policy (available or majority)"));
                }
                o.policy = p;
            }
            "--only" => {
                let v = value()?;
                o.mix = if v == "none" { BTreeSet::new() } else { v.split(',').map(|k| kind(&flag, k)).collect::<Result<_, _>>()? };
            }
            "--help" | "-h" => return Ok(Parsed::Skip(USAGE.to_owned())),
            // libtest's flags, given by `cargo test`: nothing to do for one test.
            "--nocapture" | "--show-output" | "--quiet" | "-q" | "--exact" | "--include-ignored" | "--test" => {}
            "--test-threads" | "--format" | "--color" | "--skip" | "-Z" | "--logfile" => {
                value()?;
            }
            "--list" => list = true,
            "--ignored" | "--bench" => ignored = true,
            f if f.starts_with("--no-") => {
                o.mix.remove(&kind(&flag, &f["--no-".len()..])?);
            }
            f if f.starts_with('-') => return Err(format!("unknown option '{f}'\n{USAGE}")),
            _ => filters.push(arg),
        }
    }
    // The CI run replays one schedule, so that it fails only when something changed; runs of
    // a chosen length explore new ones.
    if !duration_given && !seed_given {
        o.seed = CI_SEED;
    }
    if list {
        return Ok(Parsed::Skip("soak: test".to_owned()));
    }
    if ignored {
        return Ok(Parsed::Skip("soak: not an ignored test; nothing to run".to_owned()));
    }
    if !filters.is_empty() && !filters.iter().any(|f| "soak".contains(f.as_str())) {
        return Ok(Parsed::Skip(format!("soak: skipped (filter {})", filters.join(" "))));
    }
    if o.consoles == 0 && o.mix.is_empty() {
        return Err("nothing to do: no consoles and no kinds of event".to_owned());
    }
    if o.net == 0 {
        return Err("--net: must be 1 to 255".to_owned());
    }
    Ok(Parsed::Run(o))
}
