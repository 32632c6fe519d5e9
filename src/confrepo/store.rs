//! The repository store of `ecconfigd`: one bare git repository per subcluster plus `global`,
//! under `STATE/repos/NAME.git`, each with one branch (`main`) whose first-parent chain is the
//! history. Revision N of a repository is the N-th commit of that chain; its message carries
//! the operator's message and the trailers `Revision: N` and `Author: USER`, so `git log` in the
//! repository shows what `eccfg log` shows.
//!
//! **No lost commit.** A commit names the revision it was made on ([`RepoChanges::base`]). Under
//! the repository's lock the store checks that the base is still the newest revision, writes the
//! new objects, fsyncs them, moves `refs/heads/main` with a compare-and-swap from the old commit to
//! the new one, fsyncs the ref and its directory, and only then answers. Anything else is a
//! conflict, never an overwrite. All state is the git repository on disk: the revision index is
//! rebuilt from it at start, so a restart between two commits changes nothing.
//!
//! **Bad configuration is refused.** Every file ending in `.conf` that a commit writes is parsed
//! with the project's parser ([`crate::config::parse_detached`]: syntax only, includes are not
//! followed since they name the node's files); one that does not parse refuses the whole commit
//! with its path, line and column, and nothing is written.
//!
//! Everything here blocks (git, fsync): the server calls it from blocking tasks.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use git2::{ErrorCode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, TreeWalkMode, TreeWalkResult};

use super::path::{check_placement, check_repo_name, RepoPath, GLOBAL};
use super::stop_point::stop_point;
use super::wire::{
    Change, CommitRequest, CommitResponse, ConflictDetail, FileEntry, InvalidDetail, LogEntry, RepoChanges,
    RepoHead, RollbackRequest, Snapshot, Bytes64, MAX_FILES, MAX_FILE_BYTES, MAX_LOG_ENTRIES, MAX_MESSAGE_BYTES,
};

/// The one branch of every repository.
const BRANCH: &str = "refs/heads/main";

/// Why a store operation failed. Every variant leaves the repositories as they were, except
/// [`StoreError::Git`] and [`StoreError::Io`] raised after the ref moved (then the commit is made
/// and durable; the error concerns reading it back).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No repository of that name. Expected on a typing mistake.
    #[error("no repository '{0}' (ecconfigd serves {1})")]
    NoSuchRepo(String, String),
    /// No such revision. Expected on a typing mistake.
    #[error("repository '{repo}' has no revision {revision} (its newest is {head})")]
    NoSuchRevision {
        /// Repository.
        repo: String,
        /// Asked revision.
        revision: u64,
        /// Newest revision.
        head: u64,
    },
    /// The commit's base is not the newest revision: nothing was written. Expected when two
    /// operators commit on the same revision.
    #[error("{}", super::wire::conflict_message(.0))]
    Conflict(ConflictDetail),
    /// A `.conf` file does not parse: nothing was written. Expected on an editing mistake.
    #[error("{}", .0.message)]
    Invalid(InvalidDetail),
    /// The request breaks a naming rule or a bound: nothing was written.
    #[error("{0}")]
    BadRequest(String),
    /// git failed.
    #[error("{context}: {source}")]
    Git {
        /// What the store was doing.
        context: String,
        /// libgit2's error.
        source: git2::Error,
    },
    /// The disk failed.
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn git_err(context: impl Into<String>) -> impl FnOnce(git2::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Git { context, source }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// One repository: its git handle and the commit id of every revision (index 0 is revision 1).
pub struct Repo {
    name: String,
    git: Repository,
    revisions: Vec<Oid>,
}

impl Repo {
    fn head(&self) -> u64 {
        self.revisions.len() as u64
    }

    fn commit_at(&self, revision: u64) -> Result<Option<git2::Commit<'_>>, StoreError> {
        if revision == 0 {
            return Ok(None);
        }
        let oid = usize::try_from(revision - 1).ok().and_then(|i| self.revisions.get(i)).ok_or_else(|| {
            StoreError::NoSuchRevision { repo: self.name.clone(), revision, head: self.head() }
        })?;
        self.git.find_commit(*oid).map(Some).map_err(git_err(format!("reading revision {revision} of {}", self.name)))
    }

    /// Every file of `revision` as path → blob id.
    fn files_at(&self, revision: u64) -> Result<BTreeMap<String, Oid>, StoreError> {
        let mut files = BTreeMap::new();
        let Some(commit) = self.commit_at(revision)? else { return Ok(files) };
        let tree = commit.tree().map_err(git_err("reading a tree"))?;
        tree.walk(TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                if let Ok(name) = entry.name() {
                    files.insert(format!("{root}{name}"), entry.id());
                }
            }
            TreeWalkResult::Ok
        })
        .map_err(git_err("walking a tree"))?;
        Ok(files)
    }

    fn open(name: &str, path: &Path) -> Result<Repo, StoreError> {
        let git = Repository::open_bare(path).map_err(git_err(format!("opening {}", path.display())))?;
        let mut revisions = Vec::new();
        match git.head() {
            Ok(head) => {
                let mut commit = head.peel_to_commit().map_err(git_err(format!("reading the head of {name}")))?;
                loop {
                    revisions.push(commit.id());
                    if commit.parent_count() == 0 {
                        break;
                    }
                    commit = commit.parent(0).map_err(git_err(format!("reading the history of {name}")))?;
                }
            }
            Err(error) if error.code() == ErrorCode::UnbornBranch => {}
            Err(error) => return Err(git_err(format!("reading the head of {name}"))(error)),
        }
        revisions.reverse();
        let repo = Repo { name: name.to_owned(), git, revisions };
        if let Some(commit) = repo.commit_at(repo.head())? {
            let numbered = trailer(commit.message().unwrap_or_default(), "Revision");
            if numbered.as_deref() != Some(repo.head().to_string().as_str()) {
                tracing::warn!(repo = name, head = repo.head(), trailer = ?numbered,
                    "the newest commit's Revision trailer does not match its place in the history (edited by hand?); numbering follows the history");
            }
        }
        Ok(repo)
    }
}

/// The value of trailer `key` in a commit message.
fn trailer(message: &str, key: &str) -> Option<String> {
    message.lines().rev().find_map(|line| line.strip_prefix(key)?.strip_prefix(": ").map(str::to_owned))
}

/// The operator's message of a commit message (without the trailers).
fn operator_message(message: &str) -> String {
    match message.rfind("\n\nRevision: ") {
        Some(end) => message[..end].to_owned(),
        None => message.trim_end().to_owned(),
    }
}

/// All repositories of one `ecconfigd`.
pub struct Store {
    dir: PathBuf,
    repos: BTreeMap<String, Arc<Mutex<Repo>>>,
}

fn lock(repo: &Mutex<Repo>) -> Result<MutexGuard<'_, Repo>, StoreError> {
    repo.lock().map_err(|_| StoreError::BadRequest("a repository lock was poisoned by an earlier failure; restart ecconfigd".into()))
}

impl Store {
    /// Opens the repositories in `dir` (`NAME.git`), creating `global`, `default` and every name in
    /// `create` that does not exist yet.
    pub fn open(dir: &Path, create: &[String]) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut wanted = vec![GLOBAL.to_owned(), "default".to_owned()];
        wanted.extend(create.iter().cloned());
        for name in &wanted {
            check_repo_name(name).map_err(|e| StoreError::BadRequest(e.to_string()))?;
            let path = dir.join(format!("{name}.git"));
            if !path.exists() {
                let mut options = RepositoryInitOptions::new();
                options.bare(true).initial_head("main").mkdir(true);
                Repository::init_opts(&path, &options).map_err(git_err(format!("creating {}", path.display())))?;
                sync_dir(dir)?;
                tracing::info!(repo = %name, path = %path.display(), "created repository");
            }
        }
        let mut repos = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
            let entry = entry.map_err(io_err(format!("listing {}", dir.display())))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".git")) else { continue };
            if check_repo_name(name).is_err() {
                tracing::warn!(path = %entry.path().display(), "ignoring a repository with a name ecconfigd does not serve");
                continue;
            }
            let repo = Repo::open(name, &entry.path())?;
            tracing::info!(repo = %name, revision = repo.head(), "opened repository");
            repos.insert(name.to_owned(), Arc::new(Mutex::new(repo)));
        }
        Ok(Store { dir: dir.to_path_buf(), repos })
    }

    /// Where the repositories are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn repo(&self, name: &str) -> Result<&Arc<Mutex<Repo>>, StoreError> {
        self.repos.get(name).ok_or_else(|| {
            StoreError::NoSuchRepo(name.to_owned(), self.repos.keys().cloned().collect::<Vec<_>>().join(", "))
        })
    }

    /// The newest revision of every repository.
    pub fn heads(&self) -> Result<Vec<RepoHead>, StoreError> {
        let mut heads = Vec::new();
        for (name, repo) in &self.repos {
            heads.push(RepoHead { repo: name.clone(), revision: lock(repo)?.head() });
        }
        Ok(heads)
    }

    /// The files of `revision` (the newest when `None`) of `repo`, only those under the top-level
    /// directories `dirs` when given.
    pub fn snapshot(&self, repo: &str, revision: Option<u64>, dirs: Option<&[String]>) -> Result<Snapshot, StoreError> {
        let repo = lock(self.repo(repo)?)?;
        let revision = revision.unwrap_or(repo.head());
        let mut files = Vec::new();
        for (path, oid) in repo.files_at(revision)? {
            let top = path.split('/').next().unwrap_or_default();
            if dirs.is_some_and(|dirs| !dirs.iter().any(|d| d == top)) {
                continue;
            }
            let blob = repo.git.find_blob(oid).map_err(git_err(format!("reading {path}")))?;
            files.push(FileEntry { path, content: Bytes64(blob.content().to_vec()) });
        }
        stop_point("ecconfigd-before-snapshot");
        Ok(Snapshot { repo: repo.name.clone(), revision, files })
    }

    /// The history of `repo`, newest first, at most `limit` entries.
    pub fn log(&self, repo: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let repo = lock(self.repo(repo)?)?;
        let mut entries = Vec::new();
        let limit = limit.clamp(1, MAX_LOG_ENTRIES);
        for revision in (1..=repo.head()).rev().take(limit) {
            let Some(commit) = repo.commit_at(revision)? else { break };
            let tree = commit.tree().map_err(git_err("reading a tree"))?;
            let parent_tree = match commit.parent_count() {
                0 => None,
                _ => Some(commit.parent(0).and_then(|p| p.tree()).map_err(git_err("reading a parent tree"))?),
            };
            let diff = repo
                .git
                .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
                .map_err(git_err("comparing revisions"))?;
            let changed = diff
                .deltas()
                .filter_map(|d| d.new_file().path().or(d.old_file().path()).map(|p| p.to_string_lossy().into_owned()))
                .collect();
            let message = commit.message().unwrap_or_default();
            entries.push(LogEntry {
                revision,
                author: trailer(message, "Author").unwrap_or_else(|| commit.author().name().unwrap_or_default().to_owned()),
                time: commit.time().seconds(),
                message: operator_message(message),
                changed,
            });
        }
        Ok(entries)
    }

    /// Applies a commit of `author`: every repository's base must be its newest revision.
    pub fn commit(&self, author: &str, request: &CommitRequest) -> Result<CommitResponse, StoreError> {
        check_message(&request.message)?;
        let mut names: Vec<&str> = request.repos.iter().map(|r| r.repo.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(StoreError::BadRequest("a repository appears twice in one commit".into()));
        }
        let mut prepared = Vec::new();
        for changes in &request.repos {
            prepared.push((changes, prepare(changes)?));
        }
        // Locks in name order, so two commits over the same repositories cannot deadlock.
        prepared.sort_by(|a, b| a.0.repo.cmp(&b.0.repo));
        let mut guards = Vec::new();
        for (changes, _) in &prepared {
            guards.push(lock(self.repo(&changes.repo)?)?);
        }
        for (guard, (changes, _)) in guards.iter().zip(&prepared) {
            if guard.head() != changes.base {
                return Err(StoreError::Conflict(ConflictDetail {
                    repo: changes.repo.clone(),
                    base: changes.base,
                    head: guard.head(),
                }));
            }
        }
        let mut planned = Vec::new();
        for (guard, (_, prepared)) in guards.iter().zip(&prepared) {
            let mut files = guard.files_at(guard.head())?;
            for (path, content) in prepared {
                match content {
                    Some(bytes) => {
                        let oid = guard.git.blob(bytes).map_err(git_err(format!("storing {path}")))?;
                        files.insert(path.as_str().to_owned(), oid);
                    }
                    None => {
                        files.remove(path.as_str());
                    }
                }
            }
            planned.push(files);
        }
        let message = request.message.trim_end();
        let mut committed = Vec::new();
        for (guard, files) in guards.iter_mut().zip(planned) {
            if let Some(revision) = commit_files(guard, author, message, &files)? {
                committed.push(RepoHead { repo: guard.name.clone(), revision });
            }
        }
        Ok(CommitResponse { committed })
    }

    /// Makes a new revision of `repo` whose files are those of `request.to`.
    pub fn rollback(&self, author: &str, repo: &str, request: &RollbackRequest) -> Result<CommitResponse, StoreError> {
        let default_message = format!("Rollback to revision {}", request.to);
        let message = request.message.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(&default_message);
        check_message(message)?;
        let mut guard = lock(self.repo(repo)?)?;
        if guard.head() != request.base {
            return Err(StoreError::Conflict(ConflictDetail { repo: repo.to_owned(), base: request.base, head: guard.head() }));
        }
        if request.to > guard.head() {
            return Err(StoreError::NoSuchRevision { repo: repo.to_owned(), revision: request.to, head: guard.head() });
        }
        let files = guard.files_at(request.to)?;
        let committed = commit_files(&mut guard, author, message, &files)?
            .map(|revision| RepoHead { repo: repo.to_owned(), revision })
            .into_iter()
            .collect();
        Ok(CommitResponse { committed })
    }
}

fn check_message(message: &str) -> Result<(), StoreError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(StoreError::BadRequest(format!("the commit message is longer than {MAX_MESSAGE_BYTES} bytes")));
    }
    Ok(())
}

/// Checks one repository's changes as a commit does before taking any lock — names,
/// placement, bounds, `.conf` syntax — without touching a repository; returns how many there
/// are. For tools and fuzzing; [`Store::commit`] runs the same checks.
pub fn check_changes(changes: &RepoChanges) -> Result<usize, StoreError> {
    prepare(changes).map(|prepared| prepared.len())
}

/// Checked changes of one repository: path and new contents (`None`: delete).
type Prepared = Vec<(RepoPath, Option<Vec<u8>>)>;

/// Checks the names, bounds and `.conf` syntax of one repository's changes before any lock is
/// taken; returns them as checked paths.
fn prepare(changes: &RepoChanges) -> Result<Prepared, StoreError> {
    check_repo_name(&changes.repo).map_err(|e| StoreError::BadRequest(e.to_string()))?;
    if changes.changes.len() > MAX_FILES {
        return Err(StoreError::BadRequest(format!("a commit may change at most {MAX_FILES} files")));
    }
    let mut out: Prepared = Vec::new();
    for Change { path, content } in &changes.changes {
        let path = RepoPath::parse(path).map_err(|e| StoreError::BadRequest(e.to_string()))?;
        check_placement(&changes.repo, &path).map_err(|e| StoreError::BadRequest(e.to_string()))?;
        if out.iter().any(|(p, _)| *p == path) {
            return Err(StoreError::BadRequest(format!("{path} appears twice in one commit")));
        }
        let content = content.as_ref().map(|c| c.0.clone());
        if let Some(bytes) = &content {
            if bytes.len() > MAX_FILE_BYTES {
                return Err(StoreError::BadRequest(format!("{path} is larger than {} KiB, the most a file may hold", MAX_FILE_BYTES >> 10)));
            }
            if path.as_str().ends_with(".conf") {
                let shown = if changes.repo == GLOBAL { path.under(GLOBAL) } else { path.as_str().to_owned() };
                if let Err(error) = crate::config::parse_detached(bytes, Path::new(&shown)) {
                    let span = error.span();
                    return Err(StoreError::Invalid(InvalidDetail {
                        path: shown,
                        line: span.map(|s| s.line),
                        column: span.map(|s| s.column),
                        message: error.to_string(),
                    }));
                }
            }
        }
        out.push((path, content));
    }
    Ok(out)
}

/// A directory of the tree being built.
#[derive(Default)]
struct Dir {
    files: BTreeMap<String, Oid>,
    dirs: BTreeMap<String, Dir>,
}

fn write_tree(git: &Repository, dir: &Dir, written: &mut Vec<Oid>) -> Result<Oid, StoreError> {
    let mut builder = git.treebuilder(None).map_err(git_err("building a tree"))?;
    for (name, oid) in &dir.files {
        builder.insert(name, *oid, 0o100644).map_err(git_err(format!("adding {name} to a tree")))?;
    }
    for (name, sub) in &dir.dirs {
        let oid = write_tree(git, sub, written)?;
        builder.insert(name, oid, 0o040000).map_err(git_err(format!("adding {name}/ to a tree")))?;
    }
    let oid = builder.write().map_err(git_err("writing a tree"))?;
    written.push(oid);
    Ok(oid)
}

/// Writes `files` as the next revision of `repo` unless they equal the newest one; returns the
/// new revision. The ref moves only after every object is durable, and the answer is given only
/// after the ref is.
fn commit_files(repo: &mut Repo, author: &str, message: &str, files: &BTreeMap<String, Oid>) -> Result<Option<u64>, StoreError> {
    if files.len() > MAX_FILES {
        return Err(StoreError::BadRequest(format!("a repository may hold at most {MAX_FILES} files")));
    }
    let mut root = Dir::default();
    for (path, oid) in files {
        let mut dir = &mut root;
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        for part in parts {
            dir = dir.dirs.entry(part.to_owned()).or_default();
        }
        dir.files.insert(name.to_owned(), *oid);
    }
    let mut written: Vec<Oid> = files.values().copied().collect();
    let tree_id = write_tree(&repo.git, &root, &mut written)?;
    let revision = repo.head() + 1;
    let commit = {
        let parent = repo.commit_at(repo.head())?;
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
            return Ok(None);
        }
        let tree = repo.git.find_tree(tree_id).map_err(git_err("reading the new tree"))?;
        let signature =
            Signature::now(author, &format!("{author}@ecconfigd")).map_err(git_err("making the signature"))?;
        let text = if message.is_empty() { "(no message)" } else { message };
        let full = format!("{text}\n\nRevision: {revision}\nAuthor: {author}\n");
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let commit = repo
            .git
            .commit(None, &signature, &signature, &full, &tree, &parents)
            .map_err(git_err("writing the commit"))?;
        written.push(commit);
        sync_objects(&repo.git, &written)?;
        stop_point("ecconfigd-before-ref-update");
        let log_message = format!("revision {revision}");
        match &parent {
            Some(parent) => repo.git.reference_matching(BRANCH, commit, true, parent.id(), &log_message),
            None => repo.git.reference(BRANCH, commit, false, &log_message),
        }
        .map_err(git_err(format!("moving {BRANCH} of {}", repo.name)))?;
        commit
    };
    let refs = repo.git.path().join("refs/heads");
    sync_file(&refs.join("main"))?;
    sync_dir(&refs)?;
    repo.revisions.push(commit);
    tracing::info!(repo = %repo.name, revision, author, "committed");
    stop_point("ecconfigd-after-ref-update");
    Ok(Some(revision))
}

/// fsyncs the loose object files of `oids` (those that exist as loose files: an object that was
/// already stored was made durable when it was written) and their directories.
fn sync_objects(git: &Repository, oids: &[Oid]) -> Result<(), StoreError> {
    let objects = git.path().join("objects");
    let mut dirs = std::collections::BTreeSet::new();
    for oid in oids {
        let hex = oid.to_string();
        let dir = objects.join(&hex[..2]);
        let file = dir.join(&hex[2..]);
        if file.exists() {
            sync_file(&file)?;
            dirs.insert(dir);
        }
    }
    for dir in &dirs {
        sync_dir(dir)?;
    }
    sync_dir(&objects)
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path).and_then(|f| f.sync_all()).map_err(io_err(format!("syncing {}", path.display())))
}

/// fsyncs a directory, so that the names created or renamed in it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), StoreError> {
    sync_file(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
