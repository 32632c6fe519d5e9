//! The manager's `Control_Cache` file: the journal of ordered operations and their results
//! (format and records in `eccluster_proto::ops::journal`). This file only does the I/O: read
//! the file at start (a torn or damaged tail is reported with the file and offset; every
//! complete record before it is kept), append what the node core journals, replace the file
//! when the core compacts it, and fsync, starting over cleanly after a failure; the writer
//! thread of `group_commit` does these, and the driver holds the sends and replies that
//! follow until they are done. Also reads the
//! file's settings from the manager's configuration
//! (`Logs { Control_Cache, Control_Cache_Max_Entries, Control_Cache_Max_Size }`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use eccluster_proto::ops::journal::{self, JournalRecord, JournalWrite};
use eccluster_proto::ops::ResultsLimits;
use tracing::{info, warn};

use crate::config::{self, ConfigError};

/// The file name of the journal in the manager's state directory, when the configuration names
/// none.
pub const DEFAULT_FILE: &str = "control_cache";

/// The settings of the results buffer and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// The journal file; `None`: the results buffer lives in memory only.
    pub path: Option<PathBuf>,
    /// The bound of the results buffer.
    pub limits: ResultsLimits,
}

/// Reads `Logs { Control_Cache = "path" Control_Cache_Max_Entries = N Control_Cache_Max_Size = BYTES }`
/// from the manager's configuration. Without `Control_Cache` the file is `DEFAULT_FILE` in the
/// state directory (a relative path is taken from the state directory too). Out-of-range
/// bounds are refused with the file, line and column.
pub fn read_settings(cfg: Option<&config::Scope>, state_dir: Option<&Path>) -> Result<CacheSettings, ConfigError> {
    let mut limits = ResultsLimits::default();
    let mut path = state_dir.map(|d| d.join(DEFAULT_FILE));
    let Some(logs) = cfg.and_then(|c| c.scopes("Logs").last()) else {
        return Ok(CacheSettings { path, limits });
    };
    if let Some(o) = logs.option("Control_Cache") {
        let named = PathBuf::from(o.as_str()?);
        if named.as_os_str().is_empty() {
            return Err(ConfigError::Invalid { span: o.span.clone(), message: "Control_Cache must name a file".to_owned() });
        }
        path = Some(match state_dir {
            Some(dir) if named.is_relative() => dir.join(named),
            _ => named,
        });
    }
    let ranged = |name: &str, min: u64, max: u64, unit: &str| -> Result<Option<u64>, ConfigError> {
        let Some(o) = logs.option(name) else { return Ok(None) };
        let n = o.as_u64()?;
        if n < min || n > max {
            return Err(ConfigError::Invalid {
                span: o.span.clone(),
                message: format!("{name} = {} is out of range; use {min} to {max} {unit}", o.value),
            });
        }
        Ok(Some(n))
    };
    if let Some(n) = ranged("Control_Cache_Max_Entries", 1, 10_000_000, "entries")? {
        limits.max_entries = n as usize;
    }
    if let Some(n) = ranged("Control_Cache_Max_Size", 65_536, 16 << 30, "bytes")? {
        limits.max_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(CacheSettings { path, limits })
}

/// The open journal file.
pub struct ControlCache {
    path: PathBuf,
    file: File,
    /// The file's length when its content was last known durable.
    durable_len: u64,
    /// Appends since then.
    dirty: bool,
    /// A write or fsync failed since the last commit that succeeded: the file may hold part
    /// of what was being written, or writes the kernel has since dropped.
    broken: bool,
}

impl ControlCache {
    /// Opens (creating it if absent) the journal at `path` and reads what it holds. A damaged
    /// tail is reported here; the records before it are returned.
    pub fn open(path: &Path) -> Result<(ControlCache, Vec<JournalRecord>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening the control cache {}", path.display()))?;
        if !file.metadata().with_context(|| format!("reading {}", path.display()))?.is_file() {
            anyhow::bail!("the control cache {} is not a regular file", path.display());
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).with_context(|| format!("reading the control cache {}", path.display()))?;
        // What an earlier run wrote may still be only in the page cache.
        file.sync_data().with_context(|| format!("syncing the control cache {}", path.display()))?;
        let replay = journal::read(&bytes);
        if let Some(d) = &replay.damage {
            warn!(
                file = %path.display(),
                offset = d.offset,
                kept = replay.records.len(),
                "control cache damaged at {}:{}: {}; keeping the {} complete record(s) before it",
                path.display(),
                d.offset,
                d.reason,
                replay.records.len()
            );
        } else if !bytes.is_empty() {
            info!(file = %path.display(), records = replay.records.len(), "control cache read");
        }
        let durable_len = bytes.len() as u64;
        Ok((ControlCache { path: path.to_owned(), file, durable_len, dirty: false, broken: false }, replay.records))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Performs `writes`, in order, and makes them durable. After a failure (of this call or
    /// an earlier one) it starts over from what is known durable: from the last compaction
    /// among `writes` if there is one (it holds everything before it), or else after cutting
    /// the file back to its last durable length. So the same `writes`, extended with what
    /// came meanwhile, can be handed in again until they succeed, and the file never keeps a
    /// torn or doubled record, nor a write an earlier fsync failure may have dropped.
    pub fn commit(&mut self, writes: &[JournalWrite]) -> Result<()> {
        let result = self.try_commit(writes);
        self.broken = result.is_err();
        result
    }

    fn try_commit(&mut self, writes: &[JournalWrite]) -> Result<()> {
        let last_replace = writes.iter().rposition(|w| matches!(w, JournalWrite::Replace(_)));
        let from = match last_replace {
            Some(i) if self.broken => i,
            None if self.broken => {
                self.file
                    .set_len(self.durable_len)
                    .with_context(|| format!("cutting {} back to its last durable length {}", self.path.display(), self.durable_len))?;
                0
            }
            _ => 0,
        };
        for write in &writes[from..] {
            match write {
                JournalWrite::Append(bytes) => {
                    self.dirty = true;
                    self.file.write_all(bytes).with_context(|| format!("appending to {}", self.path.display()))?;
                }
                JournalWrite::Replace(bytes) => self.replace(bytes)?,
            }
        }
        if self.dirty {
            self.file.sync_data().with_context(|| format!("syncing {}", self.path.display()))?;
            self.dirty = false;
            self.durable_len = self.file.metadata().with_context(|| format!("reading {}", self.path.display()))?.len();
        }
        Ok(())
    }

    /// Writes `bytes` to a temporary file, fsyncs it, renames it over the journal and fsyncs
    /// the directory: a crash leaves the old file or the new one, whole.
    fn replace(&mut self, bytes: &[u8]) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let written = (|| {
            let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
            f.sync_data().with_context(|| format!("syncing {}", tmp.display()))
        })();
        if let Err(e) = written {
            // Leave no partial copy taking the space the next try needs.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &self.path).with_context(|| format!("renaming {} to {}", tmp.display(), self.path.display()))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("reopening {}", self.path.display()))?;
        self.durable_len = bytes.len() as u64;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eccluster_proto::ops::journal::JournalRecord;
    use eccluster_proto::ops::OpId;

    fn settings(text: &str, dir: &Path) -> Result<CacheSettings, ConfigError> {
        let path = dir.join("eccluster.conf");
        fs::write(&path, text).expect("write");
        let cfg = config::load(&path).expect("parses");
        read_settings(Some(&cfg), Some(dir))
    }

    #[test]
    fn settings_default_to_the_state_directory_and_out_of_range_bounds_name_the_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = settings("Logs {\n}\n", dir.path()).expect("ok");
        assert_eq!(s.path, Some(dir.path().join(DEFAULT_FILE)));
        assert_eq!(s.limits, ResultsLimits::default());
        let s = settings(
            "Logs {\n  Control_Cache = \"cache.db\"\n  Control_Cache_Max_Entries = 500\n  Control_Cache_Max_Size = 1048576\n}\n",
            dir.path(),
        )
        .expect("ok");
        assert_eq!(s.path, Some(dir.path().join("cache.db")));
        assert_eq!(s.limits, ResultsLimits { max_entries: 500, max_bytes: 1 << 20 });
        let e = settings("Logs {\n  Control_Cache_Max_Size = 10\n}\n", dir.path()).expect_err("too small");
        let text = e.to_string();
        assert!(text.contains("eccluster.conf:2:") && text.contains("Control_Cache_Max_Size = 10 is out of range"), "{text}");
        let e = settings("Logs {\n  Control_Cache_Max_Entries = 0\n}\n", dir.path()).expect_err("zero");
        assert!(e.to_string().contains(":2:"), "{e}");
        assert_eq!(read_settings(None, None).expect("ok").path, None);
    }

    #[test]
    fn a_torn_file_keeps_its_complete_records_and_a_replacement_is_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state").join(DEFAULT_FILE);
        let records = vec![JournalRecord::Latest(OpId { epoch: 1, seq: 1 }), JournalRecord::Flushed];
        let file = journal::file_of(&records);
        {
            let (mut cache, read) = ControlCache::open(&path).expect("open");
            assert!(read.is_empty());
            let flushed = journal::file_of(&[JournalRecord::Flushed]).slice(journal::MAGIC.len()..);
            cache.commit(&[JournalWrite::Replace(file.clone()), JournalWrite::Append(flushed)]).expect("written");
        }
        let (_, read) = ControlCache::open(&path).expect("open");
        assert_eq!(read.len(), 3);
        // A crash in the middle of the last append.
        let len = fs::metadata(&path).expect("meta").len();
        OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 2).expect("truncate");
        let (_, read) = ControlCache::open(&path).expect("open");
        assert_eq!(read, records);
    }
}
