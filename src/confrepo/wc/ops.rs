//! The operations of `eccfg` on a working copy that talk to ecconfigd: bootstrap, pull, commit,
//! rollback, put, log; and diff, which does not. They return what happened; printing is the
//! binary's job. [`pull`] is the function a node daemon calls to follow the server: given a
//! working copy and credentials, it brings the copy to the newest revisions or says why not,
//! and reports whether any file changed (the node reloads only then).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::merge::{merge, Resolve};
use super::tree::{self, TreeSpec};
use super::{compare, io_err, Change, Files, Meta, Scan, StoredTrust, WcError, WorkingCopy, META_DIR};
use crate::confrepo::cert::{normalise_fingerprint, Trust};
use crate::confrepo::client::{Client, ClientError, Credentials, Endpoint};
use crate::confrepo::path::{check_node_name, check_placement, check_repo_name, RepoPath, GLOBAL};
use crate::confrepo::wire::{
    Bytes64, Change as WireChange, CommitRequest, RepoChanges, RepoHead, RollbackRequest, Snapshot, MAX_FILE_BYTES,
};

/// How to reach the server: who, and how long to wait.
#[derive(Debug, Clone)]
pub struct Connection {
    /// User and password.
    pub credentials: Credentials,
    /// Longest a request may take.
    pub timeout: Duration,
}

fn client(wc: &WorkingCopy, conn: &Connection) -> Result<Client, WcError> {
    Client::new(wc.endpoint()?, &wc.trust(), conn.credentials.clone(), conn.timeout)
        .map_err(|e| WcError::Refused(format!("{e:#}")))
}

/// Where bootstrap's trust comes from.
#[derive(Debug, Clone)]
pub enum TrustChoice {
    /// A PEM file of CA certificates (or the server's certificate).
    Ca(PathBuf),
    /// The key fingerprint the operator checked.
    Fingerprint(String),
    /// Trust the key the server shows now, and pin it.
    AcceptShown,
    /// Nothing given: show the fingerprint and refuse.
    Ask,
}

/// What `eccfg bootstrap` needs.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// The server.
    pub server: Endpoint,
    /// The subcluster.
    pub clustername: String,
    /// The node, or none for an operator's copy of the whole subcluster.
    pub node: Option<String>,
    /// Where the working copy goes.
    pub wc: PathBuf,
    /// Trust.
    pub trust: TrustChoice,
    /// Remembered for later commands.
    pub password_file: Option<PathBuf>,
}

/// Turns a snapshot into working-copy files, checking every path the server sent.
fn snapshot_files(wc: &WorkingCopy, snap: Snapshot, into: &mut Files) -> Result<(), WcError> {
    for file in snap.files {
        let path = RepoPath::parse(&file.path)
            .and_then(|p| check_placement(&snap.repo, &p).map(|()| p))
            .map_err(|e| WcError::Refused(format!("the server sent a file that cannot be kept: {e}")))?;
        if file.content.0.len() > MAX_FILE_BYTES {
            return Err(WcError::Refused(format!("the server sent {path}, larger than the {} KiB a file may hold", MAX_FILE_BYTES >> 10)));
        }
        let wc_path = wc.wc_path(&snap.repo, path.as_str());
        if wc.origin(&wc_path).is_some() {
            into.insert(wc_path, file.content.0);
        }
    }
    Ok(())
}

/// Creates a working copy; returns it and the key fingerprint it trusts (if pinned).
pub async fn bootstrap(opts: &BootstrapOptions, conn: &Connection) -> Result<(WorkingCopy, Option<String>), WcError> {
    check_repo_name(&opts.clustername).map_err(|e| WcError::Refused(e.to_string()))?;
    if opts.clustername == GLOBAL {
        return Err(WcError::Refused("--clustername names a subcluster; 'global' is shared by all of them".into()));
    }
    if let Some(node) = &opts.node {
        check_node_name(node).map_err(|e| WcError::Refused(e.to_string()))?;
    }
    if opts.wc.exists() && std::fs::read_dir(&opts.wc).map_or(true, |mut e| e.next().is_some()) {
        return Err(WcError::Refused(format!("{} already exists and is not empty; give another --wc", opts.wc.display())));
    }
    if let Some(parent) = std::path::absolute(&opts.wc).ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        std::fs::create_dir_all(&parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    let _lock = tree::lock(&opts.wc)?;
    let (trust, ca_pem) = match &opts.trust {
        TrustChoice::Ca(path) => {
            let pem = crate::config::read_regular_file(path, 1 << 20).map_err(io_err(format!("reading {}", path.display())))?;
            (Trust::Ca(path.clone()), Some(pem))
        }
        TrustChoice::Fingerprint(fp) => {
            (Trust::Pinned(normalise_fingerprint(fp).map_err(|e| WcError::Refused(e.to_string()))?), None)
        }
        TrustChoice::AcceptShown => {
            let probe = Client::new(opts.server.clone(), &Trust::Discover, conn.credentials.clone(), conn.timeout)
                .map_err(|e| WcError::Refused(format!("{e:#}")))?;
            match probe.heads().await {
                Err(ClientError::Untrusted { fingerprint: Some(fp), .. }) => (Trust::Pinned(fp), None),
                Err(other) => return Err(other.into()),
                Ok(_) => return Err(WcError::Refused("the server was trusted without a trust setting".into())),
            }
        }
        TrustChoice::Ask => (Trust::Discover, None),
    };
    let client = Client::new(opts.server.clone(), &trust, conn.credentials.clone(), conn.timeout)
        .map_err(|e| WcError::Refused(format!("{e:#}")))?;
    // Without trust this fails, showing the server's key fingerprint.
    let heads = client.heads().await?;
    let stored = match &trust {
        Trust::Pinned(fp) => StoredTrust::Pinned { fingerprint: fp.clone() },
        Trust::Ca(_) => StoredTrust::Ca,
        Trust::Discover => return Err(WcError::Refused("the server was trusted without a trust setting".into())),
    };
    for repo in [GLOBAL, opts.clustername.as_str()] {
        if !heads.iter().any(|h| h.repo == repo) {
            let known: Vec<&str> = heads.iter().map(|h| h.repo.as_str()).collect();
            return Err(WcError::Refused(format!(
                "ecconfigd at {} has no repository '{repo}' (it serves {}); create it with `ecconfigd --subcluster {repo}`",
                opts.server,
                known.join(", ")
            )));
        }
    }
    let meta = Meta {
        version: 1,
        server: opts.server.to_string(),
        trust: stored,
        clustername: opts.clustername.clone(),
        node: opts.node.clone(),
        user: conn.credentials.user.clone(),
        password_file: opts.password_file.clone().map(|p| std::path::absolute(&p).unwrap_or(p)),
        bases: BTreeMap::new(),
    };
    let mut wc = WorkingCopy { root: opts.wc.clone(), meta };
    let mut files = Files::new();
    for repo in [GLOBAL.to_owned(), opts.clustername.clone()] {
        let dirs = if repo == GLOBAL { None } else { wc.scope() };
        let snap = client.snapshot(&repo, None, dirs.as_deref()).await?;
        wc.meta.bases.insert(repo, snap.revision);
        snapshot_files(&wc, snap, &mut files)?;
    }
    let skeleton = wc.skeleton();
    let spec = TreeSpec { files: &files, skeleton: &skeleton, meta: &wc.meta, pristine: &files, ca_pem: ca_pem.as_deref(), carry: None };
    let new = tree::build(&opts.wc, &spec)?;
    tree::install(&new, &opts.wc)?;
    let pinned = match &wc.meta.trust {
        StoredTrust::Pinned { fingerprint } => Some(fingerprint.clone()),
        StoredTrust::Ca => None,
    };
    Ok((wc, pinned))
}

/// What a pull did.
#[derive(Debug, Clone, Default)]
pub struct PullOutcome {
    /// Revisions before, by repository.
    pub from: BTreeMap<String, u64>,
    /// Revisions after.
    pub to: BTreeMap<String, u64>,
    /// Working-copy files whose contents changed: `U` updated, `A` added, `D` deleted.
    pub changed: Vec<(char, String)>,
    /// Files where local changes were merged with the server's.
    pub merged: Vec<String>,
    /// Conflicting files resolved by `--mine` / `--theirs`.
    pub resolved: Vec<String>,
    /// Temporary directories of interrupted pulls that were removed.
    pub cleaned: usize,
}

impl PullOutcome {
    /// True if any file of the working copy changed (the node should reload its configuration).
    pub fn files_changed(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Brings the working copy at `root` to the newest revisions, keeping local changes that do
/// not conflict; conflicting ones are refused (nothing changes) unless `resolve` says which side
/// wins. The working copy is replaced whole or not at all. Its file work runs on blocking
/// threads (`spawn_blocking`), so a daemon may await it on its runtime.
pub async fn pull(root: &Path, conn: &Connection, resolve: Resolve) -> Result<PullOutcome, WcError> {
    pull_checked(root, conn, resolve, None).await
}

/// Checks a new tree before it replaces the working copy: given the new tree's root (a
/// directory beside the working copy, laid out as it), an error keeps the working copy as it
/// is. A node checks that its configuration in the new tree can run.
pub type Check = std::sync::Arc<dyn Fn(&Path) -> Result<(), String> + Send + Sync>;

/// [`pull`], with `check` run on the new tree before it is swapped in: when it fails, the
/// working copy stays at its revisions and the error is [`WcError::Invalid`] (paths in it
/// name the working copy, not the temporary tree).
pub async fn pull_checked(root: &Path, conn: &Connection, resolve: Resolve, check: Option<Check>) -> Result<PullOutcome, WcError> {
    let _lock = tree::lock(root)?;
    pull_locked(root, conn, resolve, check).await
}

async fn pull_locked(root: &Path, conn: &Connection, resolve: Resolve, check: Option<Check>) -> Result<PullOutcome, WcError> {
    let cleaned = tree::clean_stray(root)?;
    let wc = WorkingCopy::open(root)?;
    let client = client(&wc, conn)?;
    let heads = client.heads().await?;
    let mut outcome = PullOutcome { from: wc.meta.bases.clone(), cleaned, ..PullOutcome::default() };
    let mut moved = Vec::new();
    for repo in wc.repos() {
        let head = heads.iter().find(|h| h.repo == repo).map(|h| h.revision).ok_or_else(|| {
            WcError::Refused(format!("ecconfigd at {} no longer serves repository '{repo}'", wc.meta.server))
        })?;
        outcome.to.insert(repo.to_owned(), head);
        if wc.meta.bases.get(repo) != Some(&head) {
            moved.push((repo.to_owned(), head));
        }
    }
    if moved.is_empty() {
        return Ok(outcome);
    }
    let local = wc.clone();
    let (base, before) = off_runtime(move || Ok((local.pristine()?, local.scan()?))).await?;
    let mut theirs: Files = base
        .iter()
        .filter(|(p, _)| !moved.iter().any(|(r, _)| wc.origin(p).is_some_and(|o| &o.repo == r)))
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    for (repo, head) in &moved {
        let dirs = if repo == GLOBAL { None } else { wc.scope() };
        let snap = client.snapshot(repo, Some(*head), dirs.as_deref()).await?;
        snapshot_files(&wc, snap, &mut theirs)?;
    }
    let merged = merge(&base, &before.files, &theirs, resolve);
    if !merged.conflicts.is_empty() && resolve == Resolve::Refuse {
        return Err(WcError::Conflict { files: merged.conflicts, resolve_hint: true });
    }
    let mut meta = wc.meta.clone();
    meta.bases = outcome.to.clone();
    let (files, scanned) = (merged.files.clone(), before.clone());
    off_runtime(move || replace(&wc, &scanned, &files, &theirs, &meta, check.as_ref())).await?;
    outcome.changed = compare(&before.files, &merged.files)
        .into_iter()
        .map(|(path, change)| (if change == Change::Modified { 'U' } else { change.letter() }, path))
        .collect();
    outcome.merged = merged.merged;
    outcome.resolved = merged.conflicts;
    Ok(outcome)
}

/// Runs blocking file work on a thread where blocking is allowed, so that a daemon can call
/// [`pull`] from its runtime.
async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> Result<T, WcError> + Send + 'static) -> Result<T, WcError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| WcError::Refused(format!("the file work of a pull failed: {e}")))?
}

/// Writes the merged files with their metadata beside the working copy and swaps them in,
/// unless the working copy changed since `before` was read.
fn replace(wc: &WorkingCopy, before: &Scan, files: &Files, pristine: &Files, meta: &Meta, check: Option<&Check>) -> Result<(), WcError> {
    let root = wc.root();
    let ca_path = root.join(META_DIR).join("ca.pem");
    let ca_pem = match crate::config::read_regular_file(&ca_path, 1 << 20) {
        Ok(pem) => Some(pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(format!("reading {}", ca_path.display()))(e)),
    };
    let skeleton = wc.skeleton();
    let spec = TreeSpec {
        files,
        skeleton: &skeleton,
        meta,
        pristine,
        ca_pem: ca_pem.as_deref(),
        carry: Some((root, &before.unmanaged)),
    };
    let new = tree::build(root, &spec)?;
    if let Some(check) = check {
        if let Err(why) = check(&new) {
            std::fs::remove_dir_all(&new).map_err(io_err(format!("removing {}", new.display())))?;
            let why = why.replace(&new.display().to_string(), &root.display().to_string());
            return Err(WcError::Invalid(why));
        }
    }
    if wc.scan()? != *before {
        std::fs::remove_dir_all(&new).map_err(io_err(format!("removing {}", new.display())))?;
        return Err(WcError::Refused("the working copy changed while pulling; nothing was replaced: run eccfg pull again".into()));
    }
    tree::install(&new, root)
}

/// What a commit did.
#[derive(Debug, Clone, Default)]
pub struct CommitOutcome {
    /// The files sent, with their change.
    pub sent: Vec<(String, Change)>,
    /// The revisions made (empty: nothing to commit).
    pub committed: Vec<RepoHead>,
}

/// Commits the local changes (only under `only`, when given) with `message`.
pub async fn commit(root: &Path, conn: &Connection, message: &str, only: Option<&[String]>) -> Result<CommitOutcome, WcError> {
    let _lock = tree::lock(root)?;
    commit_locked(root, conn, message, only).await
}

async fn commit_locked(root: &Path, conn: &Connection, message: &str, only: Option<&[String]>) -> Result<CommitOutcome, WcError> {
    let wc = WorkingCopy::open(root)?;
    let scan = wc.scan()?;
    let pristine = wc.pristine()?;
    let mut sent = compare(&pristine, &scan.files);
    if let Some(only) = only {
        sent.retain(|(path, _)| only.iter().any(|o| path == o || path.starts_with(&format!("{}/", o.trim_end_matches('/')))));
    }
    if sent.is_empty() {
        return Ok(CommitOutcome::default());
    }
    let mut repos: BTreeMap<String, RepoChanges> = BTreeMap::new();
    for (path, _) in &sent {
        let origin = wc.origin(path).ok_or_else(|| WcError::Refused(format!("{path} is not under a repository directory")))?;
        let base = wc.meta.bases.get(&origin.repo).copied().unwrap_or(0);
        let entry = repos
            .entry(origin.repo.clone())
            .or_insert_with(|| RepoChanges { repo: origin.repo.clone(), base, changes: Vec::new() });
        entry.changes.push(WireChange {
            path: origin.path.as_str().to_owned(),
            content: scan.files.get(path).map(|b| Bytes64(b.clone())),
        });
    }
    let request = CommitRequest { message: message.to_owned(), repos: repos.into_values().collect() };
    let client = client(&wc, conn)?;
    let done = client.commit(&request).await?;
    for (path, _) in &sent {
        let repo = wc.origin(path).map(|o| o.repo).unwrap_or_default();
        if done.committed.iter().any(|c| c.repo == repo) {
            tree::write_pristine(root, path, scan.files.get(path).map(Vec::as_slice))?;
        }
    }
    let mut meta = wc.meta.clone();
    for head in &done.committed {
        meta.bases.insert(head.repo.clone(), head.revision);
    }
    tree::write_meta(root, &meta)?;
    Ok(CommitOutcome { sent, committed: done.committed })
}

/// Copies `source` to `dest` (a working-copy path) and commits that file alone.
pub async fn put(root: &Path, conn: &Connection, source: &Path, dest: &str, message: &str) -> Result<CommitOutcome, WcError> {
    let _lock = tree::lock(root)?;
    let wc = WorkingCopy::open(root)?;
    if wc.origin(dest).is_none() {
        return Err(WcError::Refused(format!(
            "{dest} is not a path of this working copy's repositories (global/…, default/…{})",
            wc.meta.node.as_ref().map(|n| format!(", {n}/…")).unwrap_or_default()
        )));
    }
    let bytes = crate::config::read_regular_file(source, MAX_FILE_BYTES as u64).map_err(io_err(format!("reading {}", source.display())))?;
    let target = root.join(dest);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    std::fs::write(&target, &bytes).map_err(io_err(format!("writing {}", target.display())))?;
    commit_locked(root, conn, message, Some(&[dest.to_owned()])).await
}

/// Makes a new revision of `repo` (the subcluster's when `None`) with the files of revision
/// `to`, then pulls it.
pub async fn rollback(
    root: &Path,
    conn: &Connection,
    repo: Option<&str>,
    to: u64,
    message: Option<&str>,
) -> Result<(Vec<RepoHead>, PullOutcome), WcError> {
    let _lock = tree::lock(root)?;
    let wc = WorkingCopy::open(root)?;
    let repo = repo.unwrap_or(&wc.meta.clustername).to_owned();
    if !wc.repos().contains(&repo.as_str()) {
        return Err(WcError::Refused(format!("this working copy holds {} and {}, not {repo}", GLOBAL, wc.meta.clustername)));
    }
    let base = wc.meta.bases.get(&repo).copied().unwrap_or(0);
    let request = RollbackRequest { base, to, message: message.map(str::to_owned) };
    let done = client(&wc, conn)?.rollback(&repo, &request).await?;
    let pulled = pull_locked(root, conn, Resolve::Refuse, None).await?;
    Ok((done.committed, pulled))
}

/// One revision as `eccfg log` shows it.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Repository.
    pub repo: String,
    /// The entry, with paths as the working copy names them.
    pub entry: crate::confrepo::wire::LogEntry,
}

/// The newest `limit` revisions of `repo` (the subcluster's when `None`).
pub async fn log(root: &Path, conn: &Connection, repo: Option<&str>, limit: usize) -> Result<Vec<LogLine>, WcError> {
    let wc = WorkingCopy::open(root)?;
    let repo = repo.unwrap_or(&wc.meta.clustername).to_owned();
    let entries = client(&wc, conn)?.log(&repo, limit).await?;
    Ok(entries
        .into_iter()
        .map(|mut entry| {
            entry.changed = entry.changed.iter().map(|p| wc.wc_path(&repo, p)).collect();
            LogLine { repo: repo.clone(), entry }
        })
        .collect())
}

/// Unified diffs of the local changes (under `only`, when given), base revision to working copy.
pub fn diff(root: &Path, only: &[String]) -> Result<String, WcError> {
    let wc = WorkingCopy::open(root)?;
    let scan = wc.scan()?;
    let pristine = wc.pristine()?;
    let mut out = String::new();
    for (path, _) in compare(&pristine, &scan.files) {
        if !only.is_empty() && !only.iter().any(|o| path == *o || path.starts_with(&format!("{}/", o.trim_end_matches('/')))) {
            continue;
        }
        let old = pristine.get(&path).map(Vec::as_slice).unwrap_or_default();
        let new = scan.files.get(&path).map(Vec::as_slice).unwrap_or_default();
        let repo = wc.origin(&path).map(|o| o.repo).unwrap_or_default();
        let rev = wc.meta.bases.get(&repo).copied().unwrap_or(0);
        out.push_str(&format!("Index: {path}\n"));
        match (std::str::from_utf8(old), std::str::from_utf8(new)) {
            (Ok(old), Ok(new)) => {
                let patch = diffy::create_patch(old, new).to_string();
                let body = patch.split_once('\n').and_then(|(_, rest)| rest.split_once('\n')).map_or("", |(_, rest)| rest);
                out.push_str(&format!("--- {path}\t(revision {rev})\n+++ {path}\t(working copy)\n{body}"));
            }
            _ => out.push_str("Binary files differ\n"),
        }
    }
    Ok(out)
}
