//! The event trace of a run and its hash. Every delivered message (time, sender, receiver,
//! exact bytes), every cluster event a core publishes, and every scenario step and node start
//! or stop goes into one BLAKE3 hash, so two runs with the same scenario and seed print the
//! same hash exactly when their traces are byte-identical. A text copy of the trace can be
//! written too (for diffing two runs); the hash covers a fixed binary encoding of the same
//! records, not the text, so hashing allocates nothing.

use std::io::Write;

use eccluster_proto::membership::ClusterEvent;
use eccluster_proto::MemberId;

use crate::time::SimTime;
use crate::topology::Topology;

const DELIVERY: u8 = 1;
const EVENT: u8 = 2;
const NOTE: u8 = 3;

/// The running trace hash, with an optional text copy.
pub struct Trace {
    hasher: blake3::Hasher,
    text: Option<Box<dyn Write>>,
    records: u64,
    write_error: Option<std::io::Error>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::new(None)
    }
}

impl Trace {
    /// A trace hashing records, and also writing them as text lines to `text` if given.
    pub fn new(text: Option<Box<dyn Write>>) -> Trace {
        Trace { hasher: blake3::Hasher::new(), text, records: 0, write_error: None }
    }

    fn header(&mut self, tag: u8, at: SimTime) {
        self.records += 1;
        self.hasher.update(&[tag]);
        self.hasher.update(&at.as_nanos().to_le_bytes());
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if let Some(w) = &mut self.text {
            if let Err(e) = w.write_fmt(args) {
                self.write_error.get_or_insert(e);
                self.text = None;
            }
        }
    }

    /// A message from `from` was delivered to `to`.
    pub fn delivery(&mut self, at: SimTime, from: usize, to: usize, payload: &[u8], topo: &Topology) {
        self.header(DELIVERY, at);
        self.hasher.update(&(from as u32).to_le_bytes());
        self.hasher.update(&(to as u32).to_le_bytes());
        self.hasher.update(&(payload.len() as u32).to_le_bytes());
        self.hasher.update(payload);
        if self.text.is_some() {
            let digest = blake3::hash(payload);
            let short = &digest.to_hex()[..12];
            self.line(format_args!("{at} deliver {} -> {} {}B {short}\n", topo.name(from), topo.name(to), payload.len()));
        }
    }

    /// Node `node`'s core published `event`.
    pub fn cluster_event(&mut self, at: SimTime, node: usize, event: &ClusterEvent, topo: &Topology) {
        self.header(EVENT, at);
        self.hasher.update(&(node as u32).to_le_bytes());
        let (kind, id, other): (u8, Option<&MemberId>, Option<&MemberId>) = match event {
            ClusterEvent::MemberUp(id) => (1, Some(id), None),
            ClusterEvent::MemberDown(id) => (2, Some(id), None),
            ClusterEvent::MemberRenewed { from, to } => (3, Some(from), Some(to)),
            ClusterEvent::Joined => (4, None, None),
            ClusterEvent::Isolated => (5, None, None),
            ClusterEvent::Rejoined(id) => (6, Some(id), None),
        };
        self.hasher.update(&[kind]);
        for m in [id, other].into_iter().flatten() {
            self.hasher.update(m.name.as_bytes());
            self.hasher.update(&m.incarnation.to_le_bytes());
        }
        if self.text.is_some() {
            let name = topo.name(node).to_string();
            let who = |m: Option<&MemberId>| m.map(|m| format!("{}#{}", m.name, m.incarnation)).unwrap_or_default();
            let label = ["", "member-up", "member-down", "member-renewed", "joined", "isolated", "rejoined"][kind as usize];
            self.line(format_args!("{at} event {name} {label} {} {}\n", who(id), who(other)));
        }
    }

    /// A scenario step, start, stop or other note.
    pub fn note(&mut self, at: SimTime, text: &str) {
        self.header(NOTE, at);
        self.hasher.update(text.as_bytes());
        self.line(format_args!("{at} {text}\n"));
    }

    /// Records hashed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The hash of the trace so far, as 64 hex digits.
    pub fn hash(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Flushes the text copy; reports the first write error, if any.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.write_error.take() {
            return Err(e);
        }
        match &mut self.text {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_records_hash_equal_and_any_difference_shows() {
        let topo = Topology::generate(&[("east".into(), 2)]);
        let mut a = Trace::default();
        let mut b = Trace::default();
        for t in [&mut a, &mut b] {
            t.note(SimTime::ZERO, "start mgr");
            t.delivery(SimTime::ZERO, 0, 1, b"\x01\x01abc", &topo);
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.records(), 2);
        b.delivery(SimTime::ZERO, 0, 1, b"\x01\x01abd", &topo);
        a.delivery(SimTime::ZERO, 0, 1, b"\x01\x01abc", &topo);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_text_copy_names_hosts() {
        let topo = Topology::generate(&[("east".into(), 2)]);
        let buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut t = Trace::new(Some(Box::new(Sink(buf.clone()))));
        t.delivery(SimTime::ZERO, 1, 0, b"xy", &topo);
        t.finish().expect("flush");
        let text = String::from_utf8(buf.lock().expect("lock").clone()).expect("utf8");
        assert!(text.starts_with("0.000s deliver east1 -> mgr 2B "), "{text}");
    }
}
