//! The manager's journal: the records that make acknowledged operations and the results
//! buffer survive a manager crash (Momentum's `Control_Cache` file), their framing on disk, and
//! the reading back of a file whose tail may be torn. No I/O here: the sequencer emits
//! [`JournalWrite`]s, the shell appends (or replaces) and fsyncs them before it performs any
//! send or reply that follows, and hands the bytes read at start to [`read`].
//!
//! # Format
//!
//! The file starts with [`MAGIC`]; then frames of `length: u32 LE`, `crc32: u32 LE` (of the
//! body), `body` (one [`JournalRecord`], postcard). A frame is complete when its whole body is
//! there and its checksum matches. Reading stops at the first incomplete or damaged frame (a
//! crash in the middle of a write leaves exactly such a tail): every complete record before it
//! is kept, and the offset and the reason are reported. The journal is compacted by replacing
//! the whole file with a snapshot (the same records, describing the state at that moment), so
//! it stays bounded by the results buffer's bound plus what is in flight.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::{OpId, ResultStatus, Target};

/// The first bytes of a journal file (format version 1).
pub const MAGIC: &[u8; 8] = b"ECCJRN1\n";

/// A frame body larger than this is damage, not a record (commands and answers are bounded
/// far below it by the wire limits).
pub const MAX_RECORD: usize = 64 << 20;

/// One target of an operation as sequenced: where its copy goes in the node's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    /// The node.
    pub node: String,
    /// Its subcluster.
    pub subcluster: String,
    /// The node incarnation the operation was sequenced for.
    pub incarnation: u64,
    /// The operation's place in that node's order.
    pub node_seq: u64,
}

/// A result as stored: the final states a node's result can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredStatus {
    /// Not answered yet.
    Pending,
    /// Answered, success.
    Ok,
    /// Answered, failure.
    Error,
    /// No answer within the answer timeout (the operation is still delivered).
    NoAnswer,
    /// The node left or restarted first.
    NodeLeft,
}

impl From<ResultStatus> for StoredStatus {
    fn from(s: ResultStatus) -> Self {
        match s {
            ResultStatus::Pending => StoredStatus::Pending,
            ResultStatus::Ok => StoredStatus::Ok,
            ResultStatus::Error => StoredStatus::Error,
            ResultStatus::NoAnswer => StoredStatus::NoAnswer,
            ResultStatus::NodeLeft => StoredStatus::NodeLeft,
        }
    }
}

impl From<StoredStatus> for ResultStatus {
    fn from(s: StoredStatus) -> Self {
        match s {
            StoredStatus::Pending => ResultStatus::Pending,
            StoredStatus::Ok => ResultStatus::Ok,
            StoredStatus::Error => ResultStatus::Error,
            StoredStatus::NoAnswer => ResultStatus::NoAnswer,
            StoredStatus::NodeLeft => ResultStatus::NodeLeft,
        }
    }
}

/// One record of the journal. Replaying the records of a file in order rebuilds the results
/// buffer and the operations still to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalRecord {
    /// An operation was sequenced (and will be acknowledged once this is on disk).
    Sequenced {
        /// Its id.
        id: OpId,
        /// The command.
        command: String,
        /// What it was for.
        target: Target,
        /// Its targets and their places in their nodes' orders.
        nodes: Vec<Assigned>,
    },
    /// A node's result for an operation changed.
    Result {
        /// The operation.
        id: OpId,
        /// The node.
        node: String,
        /// Its new state.
        status: StoredStatus,
        /// What the node printed.
        body: String,
    },
    /// `flush control cache`.
    Flushed,
    /// Snapshot: everything the results buffer holds for one command text.
    Command {
        /// The command text.
        command: String,
        /// The latest operation of the command per target, for `retrieve`.
        sent: Vec<SentRecord>,
        /// Each node's latest result.
        results: Vec<StoredResult>,
    },
    /// Snapshot: an operation some targets have not answered yet (still to deliver).
    Delivery {
        /// The operation.
        id: OpId,
        /// The command.
        command: String,
        /// The targets that have not answered.
        nodes: Vec<Assigned>,
    },
    /// An operation will not be delivered to this node any more: the node came back as
    /// another run (the old one took the operation with it), or, recovered from an earlier
    /// run of the manager, it did not answer within the answer timeout.
    Abandoned {
        /// The operation.
        id: OpId,
        /// The node.
        node: String,
    },
    /// Snapshot: the highest operation id sequenced so far.
    Latest(OpId),
    /// The manager declared this node down. Its unanswered operations (recorded "node left")
    /// stay deliverable: if it comes back in the same incarnation (only the manager lost it),
    /// it gets them, in its order, even from a later run of the manager. A later
    /// [`JournalRecord::Sequenced`] naming the node says it was back.
    Departed {
        /// The node.
        node: String,
    },
}

/// The latest operation of a command for one target, in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    /// The operation.
    pub id: OpId,
    /// What it was for.
    pub target: Target,
    /// Its target nodes.
    pub nodes: Vec<String>,
}

/// One node's latest result for a command, in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The node.
    pub node: String,
    /// The operation the result belongs to.
    pub id: OpId,
    /// The node's subcluster.
    pub subcluster: String,
    /// Its state.
    pub status: StoredStatus,
    /// What the node printed.
    pub body: String,
}

/// What the shell must write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalWrite {
    /// Append these frames to the file.
    Append(Bytes),
    /// Replace the whole file with this content (magic and frames): a compaction.
    Replace(Bytes),
}

impl JournalWrite {
    /// The bytes to write.
    pub fn bytes(&self) -> &Bytes {
        match self {
            JournalWrite::Append(b) | JournalWrite::Replace(b) => b,
        }
    }
}

/// Where and why reading a journal stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The byte offset of the first frame not read.
    pub offset: u64,
    /// What was wrong there.
    pub reason: String,
}

/// A journal read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Every complete record, in order.
    pub records: Vec<JournalRecord>,
    /// Where reading stopped before the end, if it did.
    pub damage: Option<Damage>,
}

/// Appends the frame of `record` to `out`. A record that cannot be encoded (never expected:
/// every field is plain data) is skipped with an error.
pub fn frame(record: &JournalRecord, out: &mut BytesMut) {
    match postcard::to_allocvec(record) {
        Ok(body) => {
            out.reserve(8 + body.len());
            out.put_u32_le(body.len() as u32);
            out.put_u32_le(crc32(&body));
            out.put_slice(&body);
        }
        Err(error) => tracing::error!(%error, "cannot encode a journal record"),
    }
}

/// A whole file holding `records`: the magic, then their frames.
pub fn file_of(records: &[JournalRecord]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(MAGIC);
    for r in records {
        frame(r, &mut out);
    }
    out.freeze()
}

/// Reads a journal file. An empty file is an empty journal; a file that does not start with
/// [`MAGIC`] yields no records and damage at offset 0; a torn or damaged tail yields every
/// complete record before it. Never panics, whatever the bytes.
pub fn read(bytes: &[u8]) -> Replay {
    let mut replay = Replay::default();
    if bytes.is_empty() {
        return replay;
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        replay.damage = Some(Damage { offset: 0, reason: "not a journal file (bad magic)".to_owned() });
        return replay;
    }
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let stop = |reason: String| Some(Damage { offset: at as u64, reason });
        let Some(header) = bytes.get(at..at + 8) else {
            replay.damage = stop(format!("torn frame header ({} of 8 bytes)", bytes.len() - at));
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD {
            replay.damage = stop(format!("frame length {len} exceeds {MAX_RECORD}"));
            break;
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            replay.damage = stop(format!("torn frame ({} of {len} body bytes)", bytes.len() - at - 8));
            break;
        };
        if crc32(body) != sum {
            replay.damage = stop("checksum mismatch".to_owned());
            break;
        }
        match postcard::from_bytes::<JournalRecord>(body) {
            Ok(record) => replay.records.push(record),
            Err(error) => {
                replay.damage = stop(format!("undecodable record: {error}"));
                break;
            }
        }
        at += 8 + len;
    }
    replay
}

/// CRC-32 (IEEE 802.3, reflected), as zlib computes it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<JournalRecord> {
        vec![
            JournalRecord::Sequenced {
                id: OpId { epoch: 3, seq: 1 },
                command: "version".into(),
                target: Target::Cluster,
                nodes: vec![Assigned { node: "a".into(), subcluster: "east".into(), incarnation: 7, node_seq: 1 }],
            },
            JournalRecord::Result {
                id: OpId { epoch: 3, seq: 1 },
                node: "a".into(),
                status: StoredStatus::Ok,
                body: "1.0\n".into(),
            },
            JournalRecord::Flushed,
        ]
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_every_truncation_keeps_the_complete_ones() {
        let records = sample();
        let file = file_of(&records);
        assert_eq!(read(&file), Replay { records: records.clone(), damage: None });
        assert_eq!(read(&[]), Replay::default());
        // Cut anywhere: the records wholly before the cut survive, the torn one is reported
        // at its offset.
        let mut ends = vec![MAGIC.len()];
        let mut out = BytesMut::new();
        out.put_slice(MAGIC);
        for r in &records {
            frame(r, &mut out);
            ends.push(out.len());
        }
        for cut in MAGIC.len()..file.len() {
            let replay = read(&file[..cut]);
            let whole = ends.iter().filter(|e| **e <= cut).count() - 1;
            assert_eq!(replay.records, records[..whole], "cut at {cut}");
            let damage = replay.damage.as_ref().map(|d| d.offset);
            let expected = (cut != ends[whole]).then_some(ends[whole] as u64);
            assert_eq!(damage, expected, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_stops_reading_at_its_frame_and_junk_never_panics() {
        let records = sample();
        let file = file_of(&records);
        let second = MAGIC.len() + 8 + postcard::to_allocvec(&records[0]).expect("encode").len();
        let mut bad = file.to_vec();
        bad[second + 9] ^= 0x40;
        let replay = read(&bad);
        assert_eq!(replay.records, records[..1]);
        assert_eq!(replay.damage, Some(Damage { offset: second as u64, reason: "checksum mismatch".into() }));
        assert_eq!(read(b"not a journal at all").damage.map(|d| d.offset), Some(0));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(read(&huge).damage.expect("damage").reason.contains("exceeds"));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..2000usize {
            let mut junk = MAGIC.to_vec();
            for _ in 0..(n % 97) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                junk.push(x as u8);
            }
            let _ = read(&junk);
        }
    }
}
