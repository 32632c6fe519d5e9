//! Admission of incoming QUIC connections: which Initials start a handshake, which are answered
//! with a Retry (address validation), which are refused or silently ignored; and the aggregated
//! account of what was turned away, one line per source and reason per interval.
//!
//! Bookkeeping only: the time comes in as an argument, notices go out through
//! [`Admission::poll_notice`]; no sockets, no logging here. The accept loop in `mod.rs` asks
//! [`Admission::admit`] about every `quinn::Incoming` before quinn keeps any per-connection
//! state, and logs the notices.
//!
//! # The order of the checks, and why
//!
//! 1. The sender must be a member's address from the segment file (address and port). After
//!    the handshake the certificate name must match that address anyway, so anyone else would
//!    be refused later at the price of a TLS handshake; here they cost a lookup. Ignored (no
//!    answer at all: a spoofed sender must not turn us into a reflector).
//! 2. A token bucket per source IP address (`Initial_Rate` per second, `Initial_Burst` at
//!    once) bounds the Retry packets and handshakes one address can cause. Ignored.
//! 3. An unvalidated address gets a Retry: a stateless token the sender must echo from the
//!    address it claims. Spoofed Initials end here, having cost one small packet.
//! 4. At most `Concurrency` handshakes run at once; past that a validated sender is refused
//!    (`CONNECTION_REFUSED`, so a member redials at once instead of timing out).
//! 5. A handshake not finished within `Handshake_Timeout` is abandoned.
//!
//! Memory is bounded by these limits: the source table holds at most `Source_Table_Size`
//! entries (later sources share one overflow entry), quinn holds at most `Accept_Queue_Backlog`
//! Initials waiting for a decision, and at most `Concurrency` connections are mid-handshake.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The transport's limits on incoming connections (`ECCluster_Listener { }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Handshakes in progress at once (`Concurrency`).
    pub max_handshakes: usize,
    /// A handshake not finished by then is abandoned (`Handshake_Timeout`).
    pub handshake_timeout: Duration,
    /// Sustained Initials per second from one source IP address (`Initial_Rate`).
    pub initial_rate: u32,
    /// Initials one source IP address may send at once (`Initial_Burst`).
    pub initial_burst: u32,
    /// Source addresses tracked for rate limits and the log (`Source_Table_Size`).
    pub sources: usize,
    /// How long a Retry token is accepted (`Retry_Token_Lifetime`).
    pub retry_token_lifetime: Duration,
    /// Initials quinn keeps waiting for a decision (`Accept_Queue_Backlog`).
    pub backlog: usize,
    /// How often turned-away Initials are summarised in the log (`Log_Interval`).
    pub log_interval: Duration,
}

impl Default for Limits {
    /// Sized for a cluster of a few hundred members: a member dials a peer once and redials
    /// only after losing the connection, two Initials per dial (one answered by a Retry).
    fn default() -> Self {
        Limits {
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(10),
            initial_rate: 20,
            initial_burst: 100,
            sources: 4096,
            retry_token_lifetime: Duration::from_secs(15),
            backlog: 1024,
            log_interval: Duration::from_secs(10),
        }
    }
}

/// What to do with one incoming Initial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start the handshake.
    Accept,
    /// Answer with a Retry packet; the handshake starts once the sender echoes the token.
    Retry,
    /// Answer with `CONNECTION_REFUSED` (the address is validated, so the answer reaches the
    /// sender and no one else).
    Refuse(Reason),
    /// Drop it without an answer.
    Ignore(Reason),
}

/// Why an Initial or a handshake was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The sender is not a member's address in the segment file.
    NotMember,
    /// The source IP address sent more than its rate allows.
    RateLimited,
    /// `Concurrency` handshakes were already running.
    Busy,
    /// The handshake failed (TLS, certificate, or the certificate does not match the sender).
    HandshakeFailed,
    /// The handshake did not finish within `Handshake_Timeout`.
    HandshakeTimedOut,
}

const REASONS: usize = 5;

impl Reason {
    fn index(self) -> usize {
        match self {
            Reason::NotMember => 0,
            Reason::RateLimited => 1,
            Reason::Busy => 2,
            Reason::HandshakeFailed => 3,
            Reason::HandshakeTimedOut => 4,
        }
    }

    fn all() -> [Reason; REASONS] {
        [Reason::NotMember, Reason::RateLimited, Reason::Busy, Reason::HandshakeFailed, Reason::HandshakeTimedOut]
    }

    /// What happened, for one event: "ignored an Initial", "handshake failed".
    fn one(self) -> &'static str {
        match self {
            Reason::NotMember | Reason::RateLimited => "ignored an Initial",
            Reason::Busy => "refused an Initial",
            Reason::HandshakeFailed => "handshake failed",
            Reason::HandshakeTimedOut => "handshake timed out",
        }
    }

    /// What happened, counted: "ignored 3,412 Initials".
    fn many(self, count: u64) -> String {
        let n = group_digits(count);
        match self {
            Reason::NotMember | Reason::RateLimited => format!("ignored {n} Initials"),
            Reason::Busy => format!("refused {n} Initials"),
            Reason::HandshakeFailed => format!("{n} handshakes failed"),
            Reason::HandshakeTimedOut => format!("{n} handshakes timed out"),
        }
    }

    /// Why, in the words of the log.
    fn why(self) -> &'static str {
        match self {
            Reason::NotMember => "not a member address of the segment file",
            Reason::RateLimited => "rate limit",
            Reason::Busy => "too many handshakes in progress",
            Reason::HandshakeFailed => "handshake failed",
            Reason::HandshakeTimedOut => "handshake timeout",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.why())
    }
}

/// A line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The first event of its kind from a source that had none in the previous interval,
    /// told at once so that an operator sees a misconfigured member without waiting.
    First {
        /// The sender.
        from: SocketAddr,
        /// What happened.
        reason: Reason,
        /// The error, for handshakes.
        detail: Option<String>,
        /// The summary interval, named in the line.
        interval: Duration,
    },
    /// Events of one kind from one source (or from every source past the table's size) over
    /// one interval.
    Summary {
        /// The source IP address; `None`: sources the table had no room for.
        source: Option<IpAddr>,
        /// What happened.
        reason: Reason,
        /// How many times.
        count: u64,
        /// Over how long.
        over: Duration,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::First { from, reason, detail, interval } => {
                match (reason, detail) {
                    (Reason::HandshakeFailed, Some(detail)) => write!(f, "handshake with {from} failed: {detail}")?,
                    (_, Some(detail)) => write!(f, "{} from {from} ({reason}: {detail})", reason.one())?,
                    (_, None) => write!(f, "{} from {from} ({reason})", reason.one())?,
                }
                write!(f, "; more from {} are counted and logged every {} s", from.ip(), interval.as_secs())
            }
            Notice::Summary { source, reason, count, over } => {
                let who = source.map_or_else(|| "other sources".to_owned(), |ip| ip.to_string());
                let secs = over.as_secs_f64().round().max(1.0);
                write!(f, "{} from {who} in {secs} s ({reason})", reason.many(*count))
            }
        }
    }
}

/// 3412 → "3,412".
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One source IP address: its token bucket and what it was refused this interval.
#[derive(Debug, Clone)]
struct Source {
    tokens: f64,
    refilled: Instant,
    counts: [u64; REASONS],
    /// Counts of the previous interval: a source still at it gets no new `First` line.
    previous: [u64; REASONS],
}

impl Source {
    fn new(now: Instant, burst: u32) -> Source {
        Source { tokens: f64::from(burst), refilled: now, counts: [0; REASONS], previous: [0; REASONS] }
    }

    fn refill(&mut self, now: Instant, limits: &Limits) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(limits.initial_rate)).min(f64::from(limits.initial_burst));
        self.refilled = now;
    }

    fn take(&mut self, now: Instant, limits: &Limits) -> bool {
        self.refill(now, limits);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Nothing to report and a full bucket: forgetting it changes nothing.
    fn idle(&mut self, now: Instant, limits: &Limits) -> bool {
        self.refill(now, limits);
        self.counts == [0; REASONS] && self.previous == [0; REASONS] && self.tokens >= f64::from(limits.initial_burst)
    }
}

/// The admission state of one endpoint. Driving contract: [`Admission::admit`] for each
/// Initial, [`Admission::handshake_ended`] for each handshake that did not produce a member's
/// connection, [`Admission::handle_interval`] every `log_interval`; drain
/// [`Admission::poll_notice`] after each. Time must not go backwards.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    sources: BTreeMap<IpAddr, Source>,
    /// Shared by every source the table had no room for.
    overflow: Source,
    interval_start: Instant,
    notices: VecDeque<Notice>,
}

impl Admission {
    /// A fresh table at `now`.
    pub fn new(limits: Limits, now: Instant) -> Admission {
        let overflow = Source::new(now, limits.initial_burst);
        Admission { limits, sources: BTreeMap::new(), overflow, interval_start: now, notices: VecDeque::new() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Source addresses currently tracked (at most `Limits::sources`).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    fn source(&mut self, now: Instant, ip: IpAddr) -> (Option<IpAddr>, &mut Source) {
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.limits.sources {
            return (None, &mut self.overflow);
        }
        let burst = self.limits.initial_burst;
        (Some(ip), self.sources.entry(ip).or_insert_with(|| Source::new(now, burst)))
    }

    /// Decides about one Initial from `from`. `member`: `from` is a member's address;
    /// `validated`: the Initial carried a valid token (quinn's `remote_address_validated`);
    /// `handshakes`: handshakes in progress now.
    pub fn admit(&mut self, now: Instant, from: SocketAddr, member: bool, validated: bool, handshakes: usize) -> Verdict {
        let limits = self.limits;
        let verdict = if !member {
            Verdict::Ignore(Reason::NotMember)
        } else if !self.source(now, from.ip()).1.take(now, &limits) {
            Verdict::Ignore(Reason::RateLimited)
        } else if !validated {
            Verdict::Retry
        } else if handshakes >= self.limits.max_handshakes {
            Verdict::Refuse(Reason::Busy)
        } else {
            Verdict::Accept
        };
        if let Verdict::Ignore(reason) | Verdict::Refuse(reason) = verdict {
            self.record(now, from, reason, None);
        }
        verdict
    }

    /// A handshake from `from` ended without a member's connection.
    pub fn handshake_ended(&mut self, now: Instant, from: SocketAddr, reason: Reason, detail: String) {
        self.record(now, from, reason, Some(detail));
    }

    fn record(&mut self, now: Instant, from: SocketAddr, reason: Reason, detail: Option<String>) {
        let interval = self.limits.log_interval;
        let (tracked, source) = self.source(now, from.ip());
        let i = reason.index();
        source.counts[i] += 1;
        // Sources past the table's size are only summarised together: naming each at once
        // would be exactly the flood of lines this bounds.
        if tracked.is_some() && source.counts[i] == 1 && source.previous[i] == 0 {
            self.notices.push_back(Notice::First { from, reason, detail, interval });
        }
    }

    /// The end of a log interval: one summary per source and reason with more than the one
    /// event already told, then sources with nothing to tell and a full bucket are forgotten.
    pub fn handle_interval(&mut self, now: Instant) {
        let over = now.saturating_duration_since(self.interval_start);
        self.interval_start = now;
        let summarise = |source: Option<IpAddr>, entry: &mut Source, notices: &mut VecDeque<Notice>| {
            for reason in Reason::all() {
                let i = reason.index();
                let count = entry.counts[i];
                // One event after a quiet interval was told in full by its `First` line.
                let told = source.is_some() && count == 1 && entry.previous[i] == 0;
                if count > 0 && !told {
                    notices.push_back(Notice::Summary { source, reason, count, over });
                }
            }
            entry.previous = entry.counts;
            entry.counts = [0; REASONS];
        };
        for (ip, entry) in self.sources.iter_mut() {
            summarise(Some(*ip), entry, &mut self.notices);
        }
        summarise(None, &mut self.overflow, &mut self.notices);
        let limits = self.limits;
        self.sources.retain(|_, entry| !entry.idle(now, &limits));
    }

    /// The next line for the log.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn drain(a: &mut Admission) -> Vec<String> {
        std::iter::from_fn(|| a.poll_notice()).map(|n| n.to_string()).collect()
    }

    #[test]
    fn checks_run_in_order_member_rate_validation_concurrency() {
        let t0 = Instant::now();
        let limits = Limits { initial_rate: 1, initial_burst: 2, max_handshakes: 1, ..Limits::default() };
        let mut a = Admission::new(limits, t0);
        let member = addr("10.0.0.1:4803");
        assert_eq!(a.admit(t0, addr("10.0.0.9:4803"), false, true, 0), Verdict::Ignore(Reason::NotMember));
        assert_eq!(a.admit(t0, member, true, false, 0), Verdict::Retry);
        assert_eq!(a.admit(t0, member, true, true, 1), Verdict::Refuse(Reason::Busy));
        // The burst of two is spent; the third Initial within the same instant is over the rate.
        assert_eq!(a.admit(t0, member, true, true, 0), Verdict::Ignore(Reason::RateLimited));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(a.admit(t1, member, true, true, 0), Verdict::Accept);
    }

    #[test]
    fn a_flood_from_one_source_gives_one_line_at_once_and_one_per_interval() {
        let t0 = Instant::now();
        let mut a = Admission::new(Limits::default(), t0);
        for port in 0..3412u16 {
            a.admit(t0, SocketAddr::new("10.0.0.9".parse().unwrap(), 10_000 + port), false, false, 0);
        }
        let first = drain(&mut a);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].starts_with("ignored an Initial from 10.0.0.9:10000 (not a member address"), "{first:?}");
        a.handle_interval(t0 + Duration::from_secs(10));
        assert_eq!(
            drain(&mut a),
            ["ignored 3,412 Initials from 10.0.0.9 in 10 s (not a member address of the segment file)"]
        );
        // Still at it: no new first line, one summary per interval.
        let t1 = t0 + Duration::from_secs(15);
        for port in 0..5u16 {
            a.admit(t1, SocketAddr::new("10.0.0.9".parse().unwrap(), port), false, false, 0);
        }
        assert!(drain(&mut a).is_empty());
        a.handle_interval(t0 + Duration::from_secs(20));
        assert_eq!(drain(&mut a).len(), 1);
        // A quiet interval: nothing said, and the source is forgotten.
        a.handle_interval(t0 + Duration::from_secs(30));
        assert!(drain(&mut a).is_empty());
        a.handle_interval(t0 + Duration::from_secs(40));
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_later_sources_are_summarised_together() {
        let t0 = Instant::now();
        let limits = Limits { sources: 8, ..Limits::default() };
        let mut a = Admission::new(limits, t0);
        for i in 0..1000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            a.admit(t0, SocketAddr::new(ip.into(), 4803), false, false, 0);
        }
        assert_eq!(a.tracked(), 8);
        assert_eq!(drain(&mut a).len(), 8, "only tracked sources are named at once");
        a.handle_interval(t0 + Duration::from_secs(10));
        let lines = drain(&mut a);
        assert_eq!(lines, ["ignored 992 Initials from other sources in 10 s (not a member address of the segment file)"]);
    }

    #[test]
    fn handshake_failures_name_the_sender_and_the_error() {
        let t0 = Instant::now();
        let mut a = Admission::new(Limits::default(), t0);
        let from = addr("10.0.0.1:4803");
        a.handshake_ended(t0, from, Reason::HandshakeFailed, "certificate names east2".into());
        a.handshake_ended(t0, from, Reason::HandshakeFailed, "certificate names east2".into());
        assert_eq!(
            drain(&mut a),
            ["handshake with 10.0.0.1:4803 failed: certificate names east2; more from 10.0.0.1 are counted and logged every 10 s"]
        );
        a.handle_interval(t0 + Duration::from_secs(10));
        assert_eq!(drain(&mut a), ["2 handshakes failed from 10.0.0.1 in 10 s (handshake failed)"]);
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1_234_567), "1,234,567");
    }
}
