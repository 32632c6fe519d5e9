//! DuraVIP ownership over a run: the holder timeline the simulation recorded, cut into
//! segments per address (who held it from when to when), and the figures the report shows —
//! acquisitions, owner changes, conflict windows (two or more holders at once) and unowned
//! gaps after an address first had an owner. Pure bookkeeping over recorded data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::{format_duration, SimTime};
use crate::topology::Topology;

/// An interval during which an address had one set of holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Start.
    pub from: SimTime,
    /// End (the next change, or the end of the run).
    pub to: SimTime,
    /// Node indices holding it, ascending.
    pub holders: Vec<u32>,
}

/// A window with two or more holders of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The address.
    pub addr: IpAddr,
    /// Start.
    pub from: SimTime,
    /// End.
    pub to: SimTime,
    /// Everyone who held it at some point of the window.
    pub holders: Vec<u32>,
}

impl Window {
    /// Its length.
    pub fn len(&self) -> Duration {
        self.to.since(self.from)
    }

    /// True if it has no length.
    pub fn is_empty(&self) -> bool {
        self.to <= self.from
    }
}

/// The DuraVIP figures of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSummary {
    /// Addresses bound.
    pub addresses: usize,
    /// `Acquire` effects over all nodes.
    pub acquisitions: u64,
    /// Times an address's single holder became a different single holder (directly or
    /// through a gap or a conflict).
    pub owner_changes: u64,
    /// Windows with two or more holders, in time order.
    pub conflicts: Vec<Window>,
    /// Windows with no holder after the address first had one (failover gaps).
    pub unowned: Vec<Window>,
    /// Addresses held by exactly one node at the end.
    pub single_owner_at_end: usize,
}

/// Cuts the recorded changes into per-address segments up to `end`. Addresses never held
/// have one empty segment.
pub fn segments(vips: &[IpAddr], timeline: &[(SimTime, IpAddr, Vec<u32>)], end: SimTime) -> BTreeMap<IpAddr, Vec<Segment>> {
    let mut out: BTreeMap<IpAddr, Vec<Segment>> =
        vips.iter().map(|a| (*a, vec![Segment { from: SimTime::ZERO, to: end, holders: Vec::new() }])).collect();
    for (at, addr, holders) in timeline {
        let segs = out.entry(*addr).or_insert_with(|| vec![Segment { from: SimTime::ZERO, to: end, holders: Vec::new() }]);
        if let Some(last) = segs.last_mut() {
            if last.holders == *holders {
                continue;
            }
            last.to = *at;
        }
        segs.push(Segment { from: *at, to: end, holders: holders.clone() });
    }
    for segs in out.values_mut() {
        segs.retain(|s| s.to > s.from || s.from == end);
    }
    out
}

/// Per address, one line saying who held it from when: `2.1s east3 | 31.9s east3+west2 |
/// 71.2s west2`, holders named (two or more holders at once are the two sides of a partition,
/// or a conflict being resolved), `nobody` for a gap. At most `max` changes per address are
/// spelled out; the rest are counted.
pub fn history(
    vips: &[IpAddr],
    timeline: &[(SimTime, IpAddr, Vec<u32>)],
    end: SimTime,
    topo: &Topology,
    max: usize,
) -> Vec<(IpAddr, String)> {
    segments(vips, timeline, end)
        .into_iter()
        .map(|(addr, segs)| {
            let shown: Vec<String> = segs
                .iter()
                .skip_while(|s| s.holders.is_empty())
                .take(max)
                .map(|s| {
                    let who = if s.holders.is_empty() {
                        "nobody".to_owned()
                    } else {
                        s.holders.iter().map(|&h| topo.name(h as usize)).collect::<Vec<_>>().join("+")
                    };
                    format!("{} {who}", s.from)
                })
                .collect();
            let held = segs.iter().skip_while(|s| s.holders.is_empty()).count();
            let mut line = if shown.is_empty() { "never held".to_owned() } else { shown.join(" | ") };
            if held > max {
                let _ = write!(line, " | ... {} more changes", held - max);
            }
            (addr, line)
        })
        .collect()
}

/// The figures of a run from its recorded timeline.
pub fn summarize(vips: &[IpAddr], timeline: &[(SimTime, IpAddr, Vec<u32>)], end: SimTime) -> VipSummary {
    let mut acquisitions = 0;
    let mut last: BTreeMap<IpAddr, Vec<u32>> = BTreeMap::new();
    for (_, addr, holders) in timeline {
        let before = last.entry(*addr).or_default();
        acquisitions += holders.iter().filter(|h| !before.contains(h)).count() as u64;
        *before = holders.clone();
    }
    let mut owner_changes = 0;
    let mut conflicts = Vec::new();
    let mut unowned = Vec::new();
    let mut single_owner_at_end = 0;
    for (addr, segs) in segments(vips, timeline, end) {
        let mut previous_owner: Option<u32> = None;
        let mut ever_held = false;
        let mut window: Option<Window> = None;
        for s in &segs {
            let was_held = ever_held;
            ever_held |= !s.holders.is_empty();
            if let [only] = s.holders.as_slice() {
                if previous_owner.is_some_and(|p| p != *only) {
                    owner_changes += 1;
                }
                previous_owner = Some(*only);
            }
            if s.holders.len() >= 2 {
                let w = window.get_or_insert(Window { addr, from: s.from, to: s.to, holders: Vec::new() });
                w.to = s.to;
                for h in &s.holders {
                    if !w.holders.contains(h) {
                        w.holders.push(*h);
                    }
                }
            } else if let Some(w) = window.take() {
                conflicts.push(w);
            }
            if s.holders.is_empty() && was_held && s.to > s.from {
                unowned.push(Window { addr, from: s.from, to: s.to, holders: Vec::new() });
            }
        }
        conflicts.extend(window);
        if segs.last().is_some_and(|s| s.holders.len() == 1) {
            single_owner_at_end += 1;
        }
    }
    conflicts.sort_by_key(|w| (w.from, w.addr));
    unowned.sort_by_key(|w| (w.from, w.addr));
    VipSummary { addresses: vips.len(), acquisitions, owner_changes, conflicts, unowned, single_owner_at_end }
}

fn longest(windows: &[Window]) -> Option<&Window> {
    windows.iter().max_by_key(|w| (w.len(), std::cmp::Reverse(w.from)))
}

impl VipSummary {
    /// Report lines (label, text).
    pub fn rows(&self, topo: &Topology) -> Vec<(&'static str, String)> {
        let total = |ws: &[Window]| ws.iter().map(Window::len).sum::<Duration>();
        let describe = |w: &Window| {
            let mut s = format!("{} for {} from {}", w.addr, format_duration(w.len()), w.from);
            if !w.holders.is_empty() {
                let names: Vec<&str> = w.holders.iter().map(|&h| topo.name(h as usize)).collect();
                let _ = write!(s, " ({})", names.join(", "));
            }
            s
        };
        let mut rows = vec![(
            "DuraVIP ownership",
            format!(
                "{} addresses, {} acquisitions, {} owner changes, {}/{} with one owner at the end",
                self.addresses, self.acquisitions, self.owner_changes, self.single_owner_at_end, self.addresses
            ),
        )];
        rows.push((
            "VIP conflict windows",
            match longest(&self.conflicts) {
                None => "none".into(),
                Some(w) => format!(
                    "{} (total {}), longest {}",
                    self.conflicts.len(),
                    format_duration(total(&self.conflicts)),
                    describe(w)
                ),
            },
        ));
        rows.push((
            "VIP unowned after first owner",
            match longest(&self.unowned) {
                None => "never".into(),
                Some(w) => format!(
                    "{} gaps (total {}), longest {}",
                    self.unowned.len(),
                    format_duration(total(&self.unowned)),
                    describe(w)
                ),
            },
        ));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn changes_conflicts_and_gaps_are_measured() {
        let a: IpAddr = "10.200.0.1".parse().expect("ip");
        let b: IpAddr = "10.200.0.2".parse().expect("ip");
        let timeline = vec![
            (t(1_000), a, vec![1]),
            (t(2_000), b, vec![2]),
            (t(5_000), a, vec![]),
            (t(7_000), a, vec![3]),
            (t(9_000), a, vec![1, 3]),
            (t(9_500), a, vec![1]),
        ];
        let segs = segments(&[a, b], &timeline, t(10_000));
        assert_eq!(segs[&a].len(), 6, "{:?}", segs[&a]);
        assert_eq!(segs[&a][0], Segment { from: t(0), to: t(1_000), holders: vec![] });
        let s = summarize(&[a, b], &timeline, t(10_000));
        assert_eq!(s.acquisitions, 4);
        assert_eq!(s.owner_changes, 2, "1 -> 3 across the gap, 3 -> 1 through the conflict");
        assert_eq!(s.conflicts.len(), 1);
        assert_eq!(s.conflicts[0].len(), Duration::from_millis(500));
        assert_eq!(s.conflicts[0].holders, vec![1, 3]);
        assert_eq!(s.unowned.len(), 1, "the gap before the first owner is not a failover gap");
        assert_eq!(s.unowned[0].len(), Duration::from_secs(2));
        assert_eq!(s.single_owner_at_end, 2);
    }
}
