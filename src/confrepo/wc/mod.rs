//! A working copy: the configuration files of a node (or an operator) checked out from
//! ecconfigd, with its metadata in the hidden directory `.eccfg/` inside it.
//!
//! Layout: `global/` holds the global repository; `default/` and `<node>/` hold those
//! directories of the subcluster's repository (an operator's working copy, made without
//! `--node`, holds every directory of it). Everything else in the working copy (files at its
//! top, hidden files, other directories of a node's copy) is not managed: it is kept as it is.
//!
//! `.eccfg/wc.json` records the server, the trust (a pinned key fingerprint, or `ca.pem` beside
//! it), the subcluster, the node, the user, and the revision of each repository the files are
//! at; `.eccfg/pristine/` holds the files as they were at those revisions, so that local changes
//! are found by comparing, offline. Because the metadata lives inside the working copy, a pull
//! that swaps the whole directory swaps files and metadata together.
//!
//! # Layout
//!
//! - `mod.rs` — [`WorkingCopy`], its metadata, path mapping, scanning and local changes.
//! - `tree.rs` — writing a new tree beside the working copy, swapping it in, cleaning up.
//! - `merge.rs` — the three-way merge of a pull.
//! - `ops.rs` — bootstrap, pull, commit, rollback, put, log, diff (the network side).

mod merge;
mod ops;
mod tree;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cert::Trust;
use super::client::{ClientError, Endpoint};
use super::path::{RepoPath, GLOBAL};
use super::wire::MAX_FILE_BYTES;

pub use merge::Resolve;
pub use ops::{
    bootstrap, commit, diff, log, pull, pull_checked, put, rollback, BootstrapOptions, Check, CommitOutcome, Connection, LogLine,
    PullOutcome, TrustChoice,
};

/// The metadata directory inside a working copy.
pub const META_DIR: &str = ".eccfg";
/// Default working copy of a node (as Momentum's).
pub const DEFAULT_WC: &str = "/opt/msys/ecelerity/etc/conf";

/// Why a working-copy operation failed. Unless a variant says otherwise, the working copy is
/// unchanged.
#[derive(Debug, thiserror::Error)]
pub enum WcError {
    /// The path is not a working copy.
    #[error("{0} is not a working copy (no .eccfg/wc.json): run eccfg bootstrap first, or give --wc")]
    NotAWorkingCopy(PathBuf),
    /// Another eccfg holds the working copy.
    #[error("another eccfg is working on {0}; try again when it is done")]
    Busy(PathBuf),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A pull found local changes that conflict with the server's; nothing was changed.
    #[error("{}", conflict_text(.files, .resolve_hint))]
    Conflict {
        /// The conflicting working-copy paths.
        files: Vec<String>,
        /// Whether `--mine` / `--theirs` can resolve it.
        resolve_hint: bool,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What eccfg was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The new revisions were not taken: their check failed (see [`ops::pull_checked`]).
    #[error("{0}")]
    Invalid(String),
    /// Anything else the operator must fix (named in the message).
    #[error("{0}")]
    Refused(String),
}

fn conflict_text(files: &[String], hint: &bool) -> String {
    let mut text = String::from("conflict: local changes conflict with the server's in:\n");
    for f in files {
        text.push_str(&format!("  C {f}\n"));
    }
    text.push_str("nothing was changed.");
    if *hint {
        text.push_str(
            " Resolve with `eccfg pull --mine` (keep your version of these files) or `eccfg pull --theirs` \
             (take the server's), or edit them to match the server's and pull again.",
        );
    }
    text
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WcError {
    let context = context.into();
    move |source| WcError::Io { context, source }
}

/// How the working copy trusts its server, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredTrust {
    /// A pinned key fingerprint.
    Pinned {
        /// `SHA256:…`
        fingerprint: String,
    },
    /// The CA certificates in `.eccfg/ca.pem`.
    Ca,
}

/// `.eccfg/wc.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Format version (1).
    pub version: u32,
    /// `HOST:PORT` of ecconfigd.
    pub server: String,
    /// What is trusted.
    pub trust: StoredTrust,
    /// The subcluster (its repository's name).
    pub clustername: String,
    /// The node whose directory this copy holds, or none for an operator's copy of everything.
    pub node: Option<String>,
    /// The user bootstrap authenticated as (the default for later commands).
    pub user: String,
    /// The password file bootstrap was given, if any (the default for later commands).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Revision of each repository the files are at.
    pub bases: BTreeMap<String, u64>,
}

/// Where a managed file comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// Repository.
    pub repo: String,
    /// Path inside it.
    pub path: RepoPath,
}

/// Files by working-copy path.
pub type Files = BTreeMap<String, Vec<u8>>;

/// A local change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// In the working copy, not at the base revision.
    Added,
    /// Different from the base revision.
    Modified,
    /// At the base revision, gone from the working copy.
    Deleted,
}

impl Change {
    /// The status letter (`A`, `M`, `D`).
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Modified => 'M',
            Change::Deleted => 'D',
        }
    }
}

/// What scanning the working copy found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Managed files and their contents.
    pub files: Files,
    /// Everything else (relative paths of files and symlinks), kept as it is by a pull.
    pub unmanaged: Vec<PathBuf>,
}

/// An open working copy.
#[derive(Debug, Clone)]
pub struct WorkingCopy {
    root: PathBuf,
    meta: Meta,
}

impl WorkingCopy {
    /// Opens the working copy at `root`.
    pub fn open(root: &Path) -> Result<WorkingCopy, WcError> {
        let path = root.join(META_DIR).join("wc.json");
        let bytes = match crate::config::read_regular_file(&path, 1 << 20) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(WcError::NotAWorkingCopy(root.to_path_buf())),
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        };
        let meta: Meta = serde_json::from_slice(&bytes)
            .map_err(|e| WcError::Refused(format!("{}: unreadable working-copy metadata: {e}", path.display())))?;
        if meta.version != 1 {
            return Err(WcError::Refused(format!("{}: unknown metadata version {}", path.display(), meta.version)));
        }
        Ok(WorkingCopy { root: root.to_path_buf(), meta })
    }

    /// The working copy's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Its metadata.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> Result<Endpoint, WcError> {
        Endpoint::parse(&self.meta.server).map_err(WcError::Refused)
    }

    /// What it trusts.
    pub fn trust(&self) -> Trust {
        match &self.meta.trust {
            StoredTrust::Pinned { fingerprint } => Trust::Pinned(fingerprint.clone()),
            StoredTrust::Ca => Trust::Ca(self.root.join(META_DIR).join("ca.pem")),
        }
    }

    /// The repositories it holds: `global` and its subcluster's.
    pub fn repos(&self) -> [&str; 2] {
        [GLOBAL, &self.meta.clustername]
    }

    /// The top-level directories of the subcluster's repository it holds (`None`: all).
    pub fn scope(&self) -> Option<Vec<String>> {
        self.meta.node.as_ref().map(|node| vec!["default".to_owned(), node.clone()])
    }

    /// The directories a fresh checkout creates even when empty.
    pub fn skeleton(&self) -> Vec<String> {
        let mut dirs = vec![GLOBAL.to_owned(), "default".to_owned()];
        dirs.extend(self.meta.node.clone());
        dirs
    }

    /// Where working-copy path `wc_path` comes from, or `None` if it is not managed.
    pub fn origin(&self, wc_path: &str) -> Option<Origin> {
        let path = RepoPath::parse(wc_path).ok()?;
        if path.is_top_level() {
            return None;
        }
        if path.top() == GLOBAL {
            let inner = RepoPath::parse(wc_path.split_once('/')?.1).ok()?;
            return Some(Origin { repo: GLOBAL.to_owned(), path: inner });
        }
        if let Some(scope) = self.scope() {
            if !scope.iter().any(|d| d == path.top()) {
                return None;
            }
        }
        Some(Origin { repo: self.meta.clustername.clone(), path })
    }

    /// The working-copy path of `path` in `repo`.
    pub fn wc_path(&self, repo: &str, path: &str) -> String {
        if repo == GLOBAL {
            format!("{GLOBAL}/{path}")
        } else {
            path.to_owned()
        }
    }

    /// Reads the managed files and lists the unmanaged ones.
    pub fn scan(&self) -> Result<Scan, WcError> {
        let mut scan = Scan::default();
        walk(&self.root, Path::new(""), &mut |rel, kind| {
            let text = rel.to_str().map(str::to_owned);
            let managed = kind == Kind::File && text.as_deref().and_then(|t| self.origin(t)).is_some();
            if !managed {
                scan.unmanaged.push(rel.to_path_buf());
                return Ok(());
            }
            let full = self.root.join(rel);
            let bytes = crate::config::read_regular_file(&full, MAX_FILE_BYTES as u64)
                .map_err(io_err(format!("reading {}", full.display())))?;
            scan.files.insert(text.unwrap_or_default(), bytes);
            Ok(())
        })?;
        Ok(scan)
    }

    /// The files at the base revisions.
    pub fn pristine(&self) -> Result<Files, WcError> {
        let dir = self.root.join(META_DIR).join("pristine");
        let mut files = Files::new();
        if !dir.exists() {
            return Ok(files);
        }
        walk(&dir, Path::new(""), &mut |rel, kind| {
            if kind == Kind::File {
                let full = dir.join(rel);
                let bytes = crate::config::read_regular_file(&full, MAX_FILE_BYTES as u64)
                    .map_err(io_err(format!("reading {}", full.display())))?;
                files.insert(rel.to_string_lossy().into_owned(), bytes);
            }
            Ok(())
        })?;
        Ok(files)
    }

    /// The local changes, by path.
    pub fn changes(&self) -> Result<Vec<(String, Change)>, WcError> {
        let scan = self.scan()?;
        Ok(compare(&self.pristine()?, &scan.files))
    }
}

/// The differences from `base` to `now`, by path.
pub fn compare(base: &Files, now: &Files) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    for (path, bytes) in now {
        match base.get(path) {
            None => out.push((path.clone(), Change::Added)),
            Some(old) if old != bytes => out.push((path.clone(), Change::Modified)),
            Some(_) => {}
        }
    }
    for path in base.keys() {
        if !now.contains_key(path) {
            out.push((path.clone(), Change::Deleted));
        }
    }
    out.sort();
    out
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Symlink,
}

/// Calls `visit` for every regular file and symlink under `dir/rel`, in name order, skipping
/// the top-level `.eccfg/`. Other kinds (sockets, devices) are skipped.
pub(crate) fn walk(
    dir: &Path,
    rel: &Path,
    visit: &mut dyn FnMut(&Path, Kind) -> Result<(), WcError>,
) -> Result<(), WcError> {
    let here = dir.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&here)
        .map_err(io_err(format!("listing {}", here.display())))?
        .collect::<Result<_, _>>()
        .map_err(io_err(format!("listing {}", here.display())))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name == META_DIR {
            continue;
        }
        let child = rel.join(&name);
        let kind = entry.file_type().map_err(io_err(format!("reading {}", entry.path().display())))?;
        if kind.is_dir() {
            walk(dir, &child, visit)?;
        } else if kind.is_file() {
            visit(&child, Kind::File)?;
        } else if kind.is_symlink() {
            visit(&child, Kind::Symlink)?;
        }
    }
    Ok(())
}
