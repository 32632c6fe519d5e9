//! Virtual time: [`SimTime`], nanoseconds since the simulation's fixed epoch, and the
//! human duration syntax of scenario files (`"30s"`, `"1m30s"`, `"250ms"`, `"1.5s"`).
//!
//! Nothing here reads a clock. The cores take `now: Instant`; the simulator makes one from a
//! single epoch `Instant` captured at start plus a [`SimTime`] offset.

use std::fmt;
use std::time::Duration;

/// A point in virtual time: nanoseconds since the start of the simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimTime {
    /// The start of the simulation.
    pub const ZERO: SimTime = SimTime(0);
    /// Later than any time a simulation reaches.
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// The time `d` after the start.
    pub fn from_duration(d: Duration) -> SimTime {
        SimTime(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the start.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// The offset from the start.
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Seconds since the start, for arithmetic in reports and plots.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// This time plus `d`, saturating at [`SimTime::NEVER`].
    pub fn after(self, d: Duration) -> SimTime {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        SimTime(self.0.saturating_add(d))
    }

    /// How long after `earlier` this is (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This time minus `d`, saturating at the start.
    pub fn before(self, d: Duration) -> SimTime {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        SimTime(self.0.saturating_sub(d))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1_000_000_000, (self.0 / 1_000_000) % 1000)
    }
}

/// Parses a duration: one or more `NUMBER UNIT` parts with units `h`, `m`, `s`, `ms`, `us`,
/// `ns` (`"1m30s"`, `"250ms"`, `"1.5s"`), or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() {
        return Err("empty duration (write e.g. \"30s\", \"250ms\" or \"1m30s\")".into());
    }
    let mut total = 0f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("bad duration {text:?}: expected a number at {rest:?}"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("bad duration {text:?}: {:?} is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err(format!("bad duration {text:?}: a unit is missing (h, m, s, ms, us, ns)")),
            other => return Err(format!("bad duration {text:?}: unknown unit {other:?} (h, m, s, ms, us, ns)")),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("bad duration {text:?}: too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration compactly for reports: `850ms`, `12.3s`, `4m05s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1 {
        format!("{}us", d.as_micros())
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 10us "), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        assert!(parse_duration("30").expect_err("bad duration").contains("unit is missing"));
        assert!(parse_duration("30x").expect_err("bad duration").contains("unknown unit \"x\""));
        assert!(parse_duration("s").expect_err("bad duration").contains("expected a number"));
        assert!(parse_duration("").expect_err("bad duration").contains("empty"));
        assert!(parse_duration("1..2s").expect_err("bad duration").contains("not a number"));
    }

    #[test]
    fn sim_time_arithmetic_and_display() {
        let t = SimTime::from_duration(Duration::from_millis(12_345));
        assert_eq!(t.to_string(), "12.345s");
        assert_eq!(t.after(Duration::from_millis(5)).since(t), Duration::from_millis(5));
        assert_eq!(SimTime::ZERO.before(Duration::from_secs(1)), SimTime::ZERO);
        assert_eq!(SimTime::NEVER.after(Duration::from_secs(1)), SimTime::NEVER);
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
    }
}
