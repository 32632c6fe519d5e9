//! A manager host's journal between its node core and its disk, as the daemon handles it
//! (the shell's `daemon::group_commit`): journal writes queue for a writer that fsyncs, in one
//! go, everything queued when the fsync began; every output the core emits after a write is
//! held, in order, until that write is durable. A crash loses the held outputs and the writes
//! not yet synced — all but a prefix of them, which may have reached the disk anyway. No
//! scheduling here: the simulation times the fsyncs and performs what is released.

use std::collections::VecDeque;

use eccluster_proto::node::Output;
use eccluster_proto::ops::journal::JournalWrite;

/// Writes on their way to the disk and the outputs waiting for them.
#[derive(Debug, Default)]
pub struct GroupCommit {
    /// Writes not in an fsync yet.
    queued: Vec<JournalWrite>,
    /// Writes of the fsync under way.
    syncing: Vec<JournalWrite>,
    /// Writes made so far (the ticket of the last one).
    written: u64,
    /// The ticket the fsync under way makes durable, if one runs.
    in_sync: Option<u64>,
    /// Every write up to this ticket is durable.
    synced: u64,
    /// Outputs under the ticket they wait for.
    held: VecDeque<(u64, Output)>,
}

impl GroupCommit {
    /// Queues a journal write.
    pub fn write(&mut self, write: JournalWrite) {
        self.queued.push(write);
        self.written += 1;
    }

    /// True when an output emitted now must wait: a write before it is not durable, or an
    /// output before it waits.
    pub fn must_hold(&self) -> bool {
        self.synced < self.written || !self.held.is_empty()
    }

    /// Holds `output` until every write made so far is durable.
    pub fn hold(&mut self, output: Output) {
        self.held.push_back((self.written, output));
    }

    /// Begins an fsync of the queued writes unless one runs or nothing is queued; true when
    /// one began (the caller completes it with [`GroupCommit::synced`] when it is done).
    pub fn begin_sync(&mut self) -> bool {
        if self.in_sync.is_some() || self.queued.is_empty() {
            return false;
        }
        self.syncing = std::mem::take(&mut self.queued);
        self.in_sync = Some(self.written);
        true
    }

    /// The fsync under way is done: its writes reach `disk`.
    pub fn synced(&mut self, disk: &mut Vec<u8>) {
        let Some(ticket) = self.in_sync.take() else { return };
        for write in self.syncing.drain(..) {
            apply(disk, write);
        }
        self.synced = ticket;
    }

    /// The fsync under way failed (the disk is full): its writes reached nothing and go back
    /// in front of those queued since, to be tried again with them, as the daemon's writer
    /// does (it cuts the file back to what was durable first).
    pub fn failed(&mut self) {
        if self.in_sync.take().is_some() {
            let queued = std::mem::take(&mut self.queued);
            self.queued = std::mem::take(&mut self.syncing);
            self.queued.extend(queued);
        }
    }

    /// The oldest held output, once what it waits for is durable.
    pub fn pop_ready(&mut self) -> Option<Output> {
        match self.held.front() {
            Some((ticket, _)) if *ticket <= self.synced => self.held.pop_front().map(|(_, o)| o),
            _ => None,
        }
    }

    /// Writes not yet durable.
    pub fn unsynced(&self) -> usize {
        self.syncing.len() + self.queued.len()
    }

    /// Outputs waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// A graceful stop: the daemon waits for its writer, so everything reaches `disk`; what
    /// was held is released (pop it with [`GroupCommit::pop_ready`]).
    pub fn flush(&mut self, disk: &mut Vec<u8>) {
        self.synced(disk);
        for write in self.queued.drain(..) {
            apply(disk, write);
        }
        self.synced = self.written;
    }

    /// A crash: the first `survive` writes not yet synced reach `disk` all the same, the rest
    /// and every held output are lost. The state is reset for the next run.
    pub fn crash(&mut self, disk: &mut Vec<u8>, survive: usize) {
        let pending = self.syncing.drain(..).chain(self.queued.drain(..));
        for write in pending.take(survive) {
            apply(disk, write);
        }
        *self = GroupCommit::default();
    }
}

/// Performs one journal write on the file's bytes.
pub fn apply(disk: &mut Vec<u8>, write: JournalWrite) {
    match write {
        JournalWrite::Append(bytes) => disk.extend_from_slice(&bytes),
        JournalWrite::Replace(bytes) => *disk = bytes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use eccluster_proto::ops::OpId;

    fn append(b: &'static [u8]) -> JournalWrite {
        JournalWrite::Append(Bytes::from_static(b))
    }

    fn completed(seq: u64) -> Output {
        Output::Completed(OpId { epoch: 1, seq })
    }

    fn ready(c: &mut GroupCommit) -> Vec<Output> {
        std::iter::from_fn(|| c.pop_ready()).collect()
    }

    #[test]
    fn outputs_wait_for_the_fsync_that_covers_the_writes_before_them() {
        let mut c = GroupCommit::default();
        let mut disk = Vec::new();
        assert!(!c.must_hold());
        c.write(append(b"a"));
        assert!(c.must_hold());
        c.hold(completed(1));
        assert!(c.begin_sync());
        // Written while the first fsync runs: the next one covers it.
        c.write(append(b"b"));
        c.hold(completed(2));
        assert!(!c.begin_sync(), "one fsync at a time");
        assert!(ready(&mut c).is_empty());
        c.synced(&mut disk);
        assert_eq!(disk, b"a");
        assert_eq!(ready(&mut c), [completed(1)]);
        assert!(c.must_hold());
        assert!(c.begin_sync());
        c.synced(&mut disk);
        assert_eq!(disk, b"ab");
        assert_eq!(ready(&mut c), [completed(2)]);
        assert!(!c.must_hold());
    }

    #[test]
    fn a_crash_keeps_a_prefix_of_the_unsynced_writes_and_drops_what_was_held() {
        let mut c = GroupCommit::default();
        let mut disk = Vec::new();
        c.write(append(b"a"));
        assert!(c.begin_sync());
        c.write(JournalWrite::Replace(Bytes::from_static(b"R")));
        c.write(append(b"c"));
        c.hold(completed(1));
        assert_eq!(c.unsynced(), 3);
        c.crash(&mut disk, 2);
        assert_eq!(disk, b"R");
        assert_eq!((c.unsynced(), c.held()), (0, 0));
        assert!(!c.must_hold());
        c.write(append(b"d"));
        c.hold(completed(2));
        c.flush(&mut disk);
        assert_eq!(disk, b"Rd");
        assert_eq!(ready(&mut c), [completed(2)]);
    }
}
