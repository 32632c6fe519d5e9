//! The holdings report, the node's reporter and the manager's book, on their own.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;

fn addr(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 1, last])
}

/// The one clock read: the tests pick an epoch; the book only sees it.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn stamp(incarnation: u64, seq: u64) -> Stamp {
    Stamp { incarnation, seq }
}

fn sent(r: &mut Reporter) -> Vec<(String, HoldingsReport)> {
    let mut out = Vec::new();
    while let Some(o) = r.poll_output() {
        if let ReporterOutput::Send { to, payload } = o {
            out.push((to, HoldingsReport::decode(&payload).expect("a report the reporter made decodes")));
        }
    }
    out
}

#[test]
fn reports_round_trip_and_junk_or_oversize_is_refused() {
    let report = HoldingsReport {
        stamp: stamp(u64::MAX, u64::MAX),
        entries: vec![
            (addr(1), (u64::MAX, u64::MAX), HoldingState::Held),
            ("2001:db8::1".parse().expect("addr"), NO_TERM, HoldingState::Acquiring),
        ],
    };
    let bytes = report.encode().expect("encodes");
    assert_eq!(HoldingsReport::decode(&bytes), Ok(report));
    assert!(HoldingsReport::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(matches!(HoldingsReport::decode(&vec![1; MAX_BYTES + 1]), Err(DecodeError::Oversize { .. })));
    let full: Vec<_> = (0..=MAX_ENTRIES).map(|i| (IpAddr::from([10, 2, (i / 256) as u8, i as u8]), NO_TERM, HoldingState::Idle)).collect();
    assert!(HoldingsReport { stamp: stamp(1, 1), entries: full.clone() }.encode().is_err(), "over the entry bound");
    // The longest entries fit: the bound in entries is reached before the bound in bytes.
    let v6: Vec<_> = (0..MAX_ENTRIES)
        .map(|i| (IpAddr::from([0xffff_u16, 0, 0, 0, 0, 0, 0, i as u16]), (u64::MAX, u64::MAX), HoldingState::Acquiring))
        .collect();
    assert!(HoldingsReport { stamp: stamp(u64::MAX, u64::MAX), entries: v6 }.encode().is_ok());
}

#[test]
fn a_node_reports_changes_at_once_everything_to_a_manager_that_comes_up_and_again_on_the_timer() {
    let mut r = Reporter::new(7, Duration::from_secs(30));
    r.observe([(addr(1), NO_TERM, HoldingState::Idle)].into_iter());
    assert!(sent(&mut r).is_empty(), "no manager yet");
    r.handle_manager_up("mgr");
    let first = sent(&mut r);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.entries, vec![(addr(1), NO_TERM, HoldingState::Idle)]);
    r.observe([(addr(1), NO_TERM, HoldingState::Idle)].into_iter());
    assert!(sent(&mut r).is_empty(), "nothing changed");
    r.observe([(addr(1), (1, 4), HoldingState::Held), (addr(2), NO_TERM, HoldingState::Acquiring)].into_iter());
    let change = sent(&mut r);
    assert_eq!(change[0].1.entries.len(), 2);
    assert!(change[0].1.stamp > first[0].1.stamp);
    // A binding removed is reported idle.
    r.observe([(addr(1), (1, 4), HoldingState::Held)].into_iter());
    assert_eq!(sent(&mut r)[0].1.entries, vec![(addr(2), NO_TERM, HoldingState::Idle)]);
    r.handle_timer();
    assert_eq!(sent(&mut r)[0].1.entries, vec![(addr(1), (1, 4), HoldingState::Held)]);
    r.handle_manager_down("mgr");
    r.handle_timer();
    assert!(sent(&mut r).is_empty());
}

#[test]
fn many_addresses_are_split_into_reports_complete_on_their_own() {
    let mut r = Reporter::new(1, Duration::from_secs(30));
    r.handle_manager_up("mgr");
    let many: Vec<_> = (0..600u16).map(|i| (IpAddr::from([10, 3, (i / 256) as u8, i as u8]), NO_TERM, HoldingState::Held)).collect();
    r.observe(many.iter().copied());
    let reports = sent(&mut r);
    assert_eq!(reports.len(), 3);
    let mut book = HolderBook::new();
    let at = epoch();
    for (_, report) in reports {
        book.handle_report(at, "a", report, |_| true);
    }
    assert_eq!(book.all().len(), 600);
}

#[test]
fn the_book_keeps_the_newest_word_of_each_node_and_forgets_a_node_that_goes_down() {
    let at = epoch();
    let mut book = HolderBook::new();
    let known = |a: IpAddr| a != addr(9);
    book.handle_report(at, "a", HoldingsReport { stamp: stamp(1, 2), entries: vec![(addr(1), NO_TERM, HoldingState::Held)] }, known);
    book.handle_report(at, "b", HoldingsReport { stamp: stamp(1, 1), entries: vec![(addr(1), (1, 1), HoldingState::Held)] }, known);
    assert_eq!(book.holders(addr(1)).len(), 2, "two holders: a conflict");
    // A late, older report changes nothing; a newer one does.
    book.handle_report(at, "a", HoldingsReport { stamp: stamp(1, 1), entries: vec![(addr(1), NO_TERM, HoldingState::Idle)] }, known);
    assert_eq!(book.holders(addr(1)).len(), 2);
    book.handle_report(at, "a", HoldingsReport { stamp: stamp(1, 3), entries: vec![(addr(1), NO_TERM, HoldingState::Idle)] }, known);
    assert_eq!(book.holders(addr(1)).iter().map(|h| h.node.as_str()).collect::<Vec<_>>(), ["b"]);
    // Unknown addresses are ignored and counted.
    book.handle_report(at, "a", HoldingsReport { stamp: stamp(1, 4), entries: vec![(addr(9), NO_TERM, HoldingState::Held)] }, known);
    assert!(book.holders(addr(9)).is_empty());
    assert_eq!(book.ignored(), 1);
    // Down: forgotten; a report that overtakes the node's return waits for it.
    book.handle_node_down("b");
    assert!(book.holders(addr(1)).is_empty());
    book.handle_report(at, "b", HoldingsReport { stamp: stamp(2, 1), entries: vec![(addr(1), NO_TERM, HoldingState::Held)] }, known);
    assert!(book.holders(addr(1)).is_empty());
    book.handle_node_up(at, "b", known);
    assert_eq!(book.holders(addr(1))[0].node, "b");
    // A report of an earlier run is stale.
    book.handle_report(at, "b", HoldingsReport { stamp: stamp(1, 9), entries: vec![(addr(1), NO_TERM, HoldingState::Idle)] }, known);
    assert_eq!(book.holders(addr(1)).len(), 1);
}
