//! Group commit of the manager's journal: a thread of its own writes the journal writes of the
//! loop's turns and fsyncs them, as many turns' writes in one fsync as have queued up while
//! the previous one ran ([`JournalWriter`]), and the outputs of each turn wait, in order, until
//! the journal writes before them are durable ([`Held`]). The loop goes on taking inputs
//! meanwhile: it never waits on the disk, and still nothing is sent or acknowledged before
//! what it depends on is on disk. What to journal is the node core's business, not this
//! file's; the file itself is `control_cache`'s.
//!
//! # Contract
//!
//! Every batch of writes handed to [`JournalWriter::submit`] gets the next ticket (1, 2, …).
//! The writer performs the batches in that order and, after the fsync that covers a batch,
//! publishes its ticket ([`JournalWriter::synced`]): once ticket `t` is published, every
//! write of batches `1..=t` is on disk. An output is held under the last ticket submitted
//! when it came out of the core, and behind every output held before it; it is released when
//! that ticket is published. So an output is performed only after every journal write the
//! core emitted before it is durable — the rule of `eccluster_proto::node` — and outputs are
//! performed in the order the core emitted them.
//!
//! A write or fsync that fails (a full disk, a file made read-only) publishes no ticket: the
//! writer reports why ([`JournalWriter::fault`]), waits, and tries the same writes again, with
//! those queued meanwhile, until they succeed (see `ControlCache::commit`); then it publishes
//! the last ticket and clears the fault. What is held stays held meanwhile, so nothing is
//! acknowledged that is not on disk, and the driver tells the core, which refuses new
//! operations until the journal is written again.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use eccluster_proto::ops::journal::JournalWrite;
use tokio::sync::watch;
use tracing::{error, info};

use super::control_cache::ControlCache;

/// How far the writer has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last ticket whose writes are on disk, with every one before it.
    pub synced: u64,
    /// Why the writes after it fail, while they do.
    pub fault: Option<String>,
}

/// The first wait before writes that failed are tried again; it doubles up to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The journal file, written and fsynced by a thread of its own.
pub struct JournalWriter {
    queue: Option<mpsc::Sender<(u64, Vec<JournalWrite>)>>,
    synced: watch::Receiver<Progress>,
    submitted: u64,
    thread: Option<JoinHandle<()>>,
}

impl JournalWriter {
    /// Starts the writer thread, which owns `cache` from now on.
    pub fn start(cache: ControlCache) -> Result<JournalWriter> {
        let (queue, batches) = mpsc::channel();
        let (published, synced) = watch::channel(Progress::default());
        let thread = std::thread::Builder::new()
            .name("journal".to_owned())
            .spawn(move || write_batches(cache, batches, published))
            .context("starting the journal writer thread")?;
        Ok(JournalWriter { queue: Some(queue), synced, submitted: 0, thread: Some(thread) })
    }

    /// Queues one turn's writes; returns their ticket.
    pub fn submit(&mut self, writes: Vec<JournalWrite>) -> u64 {
        self.submitted += 1;
        let sent = self.queue.as_ref().map(|q| q.send((self.submitted, writes)));
        if !matches!(sent, Some(Ok(()))) {
            // Only if the thread died (a bug): what is held behind this ticket stays held, so
            // nothing is acknowledged that is not on disk.
            error!(ticket = self.submitted, "the journal writer is gone; operations wait for it");
        }
        self.submitted
    }

    /// The ticket of the last batch submitted (0: none).
    pub fn submitted(&self) -> u64 {
        self.submitted
    }

    /// The last ticket whose writes are on disk, with every one before it.
    pub fn synced(&self) -> u64 {
        self.synced.borrow().synced
    }

    /// Why the journal writes fail, while they do.
    pub fn fault(&self) -> Option<String> {
        self.synced.borrow().fault.clone()
    }

    /// A receiver of the writer's progress, to wait on.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.synced.clone()
    }

    /// Closes the queue and waits for the thread to write what it holds. Blocks: call it when
    /// [`JournalWriter::synced`] has caught up, or at the very end.
    pub fn stop(mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the journal writer thread panicked");
            }
        }
    }
}

/// The writer thread: takes the next batch and every batch queued behind it, writes them in
/// order, fsyncs once, publishes the last ticket; until the queue closes. Writes that fail are
/// tried again, with what has queued meanwhile, after a wait that doubles up to `RETRY_MAX`;
/// the fault is published while they fail, and logged once per distinct reason.
fn write_batches(mut cache: ControlCache, batches: mpsc::Receiver<(u64, Vec<JournalWrite>)>, published: watch::Sender<Progress>) {
    let mut pending: Vec<JournalWrite> = Vec::new();
    let mut ticket = 0;
    let mut retry = RETRY_MIN;
    loop {
        if pending.is_empty() {
            let Ok((next, writes)) = batches.recv() else { return };
            ticket = next;
            pending = writes;
        }
        while let Ok((next, writes)) = batches.try_recv() {
            ticket = next;
            pending.extend(writes);
        }
        match cache.commit(&pending) {
            Ok(()) => {
                pending.clear();
                retry = RETRY_MIN;
                published.send_modify(|p| {
                    p.synced = ticket;
                    if p.fault.take().is_some() {
                        info!(file = %cache.path().display(), "control cache written again; operations are taken again");
                    }
                });
            }
            Err(e) => {
                let why = format!("{e:#}");
                published.send_if_modified(|p| {
                    if p.fault.as_ref() == Some(&why) {
                        return false;
                    }
                    error!(error = %why, "control cache write failed; new operations are refused, and those taken wait, until it works again");
                    p.fault = Some(why);
                    true
                });
                // Wait before trying again, taking what else comes; a closed queue means the
                // stop gave up on the disk.
                let until = Instant::now() + retry;
                loop {
                    match batches.recv_timeout(until.saturating_duration_since(Instant::now())) {
                        Ok((next, writes)) => {
                            ticket = next;
                            pending.extend(writes);
                        }
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Outputs waiting for the journal: each under the ticket it needs, in the order they came.
#[derive(Debug)]
pub struct Held<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held { items: VecDeque::new() }
    }
}

impl<T> Held<T> {
    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many outputs wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Holds `item` until ticket `ticket` is synced, behind everything held before it (a
    /// lower ticket than one already held is raised to it: order is never broken).
    pub fn push(&mut self, ticket: u64, item: T) {
        let ticket = self.items.back().map_or(ticket, |(last, _)| ticket.max(*last));
        self.items.push_back((ticket, item));
    }

    /// The oldest output, if the journal writes it waits for are on disk (`synced`).
    pub fn pop_ready(&mut self, synced: u64) -> Option<T> {
        match self.items.front() {
            Some((ticket, _)) if *ticket <= synced => self.items.pop_front().map(|(_, item)| item),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eccluster_proto::ops::journal::{self, JournalRecord};
    use eccluster_proto::ops::OpId;

    fn ready(held: &mut Held<&'static str>, synced: u64) -> Vec<&'static str> {
        std::iter::from_fn(|| held.pop_ready(synced)).collect()
    }

    #[test]
    fn held_outputs_wait_for_their_ticket_and_keep_their_order() {
        let mut held = Held::default();
        held.push(1, "ack 1");
        held.push(1, "send 1");
        held.push(2, "ack 2");
        // An output of a turn that journaled nothing, behind held ones: it waits for them.
        held.push(0, "membership datagram");
        held.push(3, "ack 3");
        assert_eq!(ready(&mut held, 0), Vec::<&str>::new());
        assert_eq!(ready(&mut held, 1), ["ack 1", "send 1"]);
        assert_eq!(held.len(), 3);
        assert_eq!(ready(&mut held, 2), ["ack 2", "membership datagram"]);
        assert_eq!(ready(&mut held, 2), Vec::<&str>::new());
        assert_eq!(ready(&mut held, 5), ["ack 3"]);
        assert!(held.is_empty());
    }

    fn frames(records: &[JournalRecord]) -> JournalWrite {
        JournalWrite::Append(journal::file_of(records).slice(journal::MAGIC.len()..))
    }

    #[tokio::test]
    async fn a_published_ticket_means_its_writes_and_every_earlier_one_are_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control_cache");
        let (cache, _) = ControlCache::open(&path).expect("open");
        let mut writer = JournalWriter::start(cache).expect("start");
        let mut synced = writer.subscribe();
        let latest = |seq| JournalRecord::Latest(OpId { epoch: 1, seq });
        let mut expected = Vec::new();
        let first = writer.submit(vec![JournalWrite::Replace(journal::file_of(&[latest(0)]))]);
        assert_eq!(first, 1);
        expected.push(latest(0));
        for seq in 1..=200 {
            let ticket = writer.submit(vec![frames(&[latest(seq)]), frames(&[JournalRecord::Flushed])]);
            assert_eq!(ticket, seq + 1);
            expected.extend([latest(seq), JournalRecord::Flushed]);
            if seq % 50 == 0 {
                // Whenever a ticket is published, the file already holds everything up to it.
                synced.wait_for(|s| s.synced >= ticket).await.expect("writer alive");
                let on_disk = journal::read(&std::fs::read(&path).expect("read"));
                assert_eq!(on_disk.damage, None);
                assert!(on_disk.records.len() >= expected.len(), "ticket {ticket}: {} records", on_disk.records.len());
                assert_eq!(on_disk.records[..expected.len()], expected[..]);
            }
        }
        // A compaction in the middle of the stream: later appends go to the new file.
        writer.submit(vec![JournalWrite::Replace(journal::file_of(&[latest(7)]))]);
        let last = writer.submit(vec![frames(&[JournalRecord::Flushed])]);
        synced.wait_for(|s| s.synced >= last).await.expect("writer alive");
        assert_eq!(writer.synced(), last);
        writer.stop();
        let on_disk = journal::read(&std::fs::read(&path).expect("read"));
        assert_eq!(on_disk.records, [latest(7), JournalRecord::Flushed]);
    }

    /// A tmpfs of `size` mounted on a fresh directory, unmounted on drop (needs root, as the
    /// network-namespace tests do).
    struct SmallDisk(tempfile::TempDir);

    impl SmallDisk {
        fn mount(size: &str) -> SmallDisk {
            let dir = tempfile::tempdir().expect("tempdir");
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .expect("running mount");
            assert!(status.success(), "mounting a tmpfs needs root");
            SmallDisk(dir)
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
        }
    }

    #[tokio::test]
    async fn writes_that_fail_on_a_full_disk_publish_nothing_and_land_whole_once_there_is_room() {
        let disk = SmallDisk::mount("64k");
        let path = disk.0.path().join("control_cache");
        let (cache, _) = ControlCache::open(&path).expect("open");
        let mut writer = JournalWriter::start(cache).expect("start");
        let mut progress = writer.subscribe();
        let latest = |seq| JournalRecord::Latest(OpId { epoch: 1, seq });
        let first = writer.submit(vec![JournalWrite::Replace(journal::file_of(&[latest(0)]))]);
        progress.wait_for(|p| p.synced >= first).await.expect("writer alive");
        // Fill the disk.
        let filler = disk.0.path().join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        while std::io::Write::write_all(&mut f, &[0u8; 4096]).is_ok() {}
        drop(f);
        let mut expected = vec![latest(0)];
        let mut last = first;
        for seq in 1..=2_000 {
            last = writer.submit(vec![frames(&[latest(seq)])]);
            expected.push(latest(seq));
        }
        let failing = progress.wait_for(|p| p.fault.is_some()).await.expect("writer alive").clone();
        let fault = failing.fault.clone().expect("a fault");
        assert!(fault.contains("No space left on device") && fault.contains("control_cache"), "{fault}");
        assert!(failing.synced < last, "a ticket after the failure was published: {failing:?}");
        // Still failing a while later: nothing more is published.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(writer.synced() < last && writer.fault().is_some());
        // Room again: every write lands, once, in order.
        std::fs::remove_file(&filler).expect("remove filler");
        let done = progress.wait_for(|p| p.synced >= last).await.expect("writer alive").clone();
        assert_eq!(done, Progress { synced: last, fault: None });
        writer.stop();
        let on_disk = journal::read(&std::fs::read(&path).expect("read"));
        assert_eq!(on_disk.damage, None);
        assert_eq!(on_disk.records, expected);
    }
}
