//! Figures of the daemon's own process, cheap to read at each scrape: resident memory (from
//! `/proc/self/statm`) and uptime.

use std::time::Instant;

/// The process's figures at one scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFigures {
    /// Resident memory in bytes, where `/proc/self/statm` can be read.
    pub resident_bytes: Option<u64>,
    /// Seconds since the daemon started.
    pub uptime_secs: f64,
}

impl ProcessFigures {
    /// Reads them now, for a daemon that started at `started`.
    pub fn read(started: Instant) -> ProcessFigures {
        ProcessFigures { resident_bytes: resident_bytes(), uptime_secs: started.elapsed().as_secs_f64() }
    }
}

/// Resident set size: the second field of `/proc/self/statm`, in pages.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten()?;
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read() {
        let figures = ProcessFigures::read(Instant::now());
        assert!(figures.resident_bytes.is_some_and(|b| b > 1 << 20), "{figures:?}");
    }
}
