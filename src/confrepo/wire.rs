//! The HTTP API between `ecconfigd` and its clients: routes, JSON bodies, and the bounds both
//! sides enforce. File contents travel base64-encoded inside JSON.
//!
//! Routes (all under HTTPS with basic authentication):
//!
//! | method | path | body → answer |
//! | --- | --- | --- |
//! | GET | `/v1/repos` | → `[RepoHead]` |
//! | GET | `/v1/repos/{repo}/snapshot?rev=N&dirs=a,b` | → [`Snapshot`] (newest revision without `rev`; only the top-level directories `dirs` when given) |
//! | GET | `/v1/repos/{repo}/log?limit=N` | → `[LogEntry]`, newest first |
//! | POST | `/v1/commit` | [`CommitRequest`] → [`CommitResponse`] |
//! | POST | `/v1/repos/{repo}/rollback` | [`RollbackRequest`] → [`CommitResponse`] |
//!
//! Errors answer with a status code and an [`ErrorBody`].
//!
//! No I/O here.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Largest file the repository holds (bytes). Configuration files are kilobytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Most files one repository revision (or one commit) may hold.
pub const MAX_FILES: usize = 4096;
/// Largest request body the server reads (bytes): base64 of the files of a full commit.
pub const MAX_REQUEST_BYTES: usize = 48 << 20;
/// Largest answer the client reads (bytes).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Longest commit message (bytes).
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;
/// Most log entries one request returns.
pub const MAX_LOG_ENTRIES: usize = 1000;

/// File contents, base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes64(pub Vec<u8>);

impl Serialize for Bytes64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes64)
            .map_err(|error| serde::de::Error::custom(format!("file contents are not base64: {error}")))
    }
}

/// A repository and a revision of it (0: no commit yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoHead {
    /// Repository name.
    pub repo: String,
    /// Revision number.
    pub revision: u64,
}

/// One file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the repository.
    pub path: String,
    /// Contents.
    pub content: Bytes64,
}

/// The files of one revision of a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Repository name.
    pub repo: String,
    /// Which revision these files are.
    pub revision: u64,
    /// Every file (of the asked directories), sorted by path.
    pub files: Vec<FileEntry>,
}

/// One file changed by a commit: new contents, or `None` to delete it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// Path inside the repository.
    pub path: String,
    /// New contents; `None` deletes the file.
    pub content: Option<Bytes64>,
}

/// The changes to one repository, and the revision they were made on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoChanges {
    /// Repository name.
    pub repo: String,
    /// The revision the working copy holds; the commit is accepted only if it is the newest.
    pub base: u64,
    /// What changes.
    pub changes: Vec<Change>,
}

/// `POST /v1/commit`: one operator commit, touching one or two repositories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRequest {
    /// The operator's message.
    pub message: String,
    /// Per repository, in any order.
    pub repos: Vec<RepoChanges>,
}

/// The revisions a commit or rollback made (empty when nothing changed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitResponse {
    /// One per repository that changed.
    pub committed: Vec<RepoHead>,
}

/// `POST /v1/repos/{repo}/rollback`: a new revision whose files are those of `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The revision the working copy holds; accepted only if it is the newest.
    pub base: u64,
    /// The revision whose files to restore.
    pub to: u64,
    /// The operator's message (a default names the revision).
    pub message: Option<String>,
}

/// One revision in the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// Revision number.
    pub revision: u64,
    /// Authenticated user who made it.
    pub author: String,
    /// Commit time, seconds since the Unix epoch.
    pub time: i64,
    /// The operator's message.
    pub message: String,
    /// Paths it added, changed or deleted (repository paths).
    pub changed: Vec<String>,
}

/// What kind of refusal an [`ErrorBody`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No or malformed credentials.
    Unauthenticated,
    /// The user is not in the users file.
    UnknownUser,
    /// The password does not match the user's.
    WrongPassword,
    /// The commit's base is not the newest revision.
    Conflict,
    /// A `.conf` file does not parse.
    InvalidConfig,
    /// The request is malformed or breaks a bound or a naming rule.
    BadRequest,
    /// No such repository or revision.
    NotFound,
    /// The server failed (disk, repository); nothing was committed.
    Internal,
}

/// Details of a [`ErrorKind::Conflict`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictDetail {
    /// Repository.
    pub repo: String,
    /// The base the commit named.
    pub base: u64,
    /// The newest revision.
    pub head: u64,
}

/// Details of an [`ErrorKind::InvalidConfig`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvalidDetail {
    /// The file, as the working copy names it (`default/ecelerity.conf`).
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub column: Option<u32>,
    /// The parser's message, starting with `path:line:column: `.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Kind of refusal.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub error: String,
    /// For conflicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictDetail>,
    /// For invalid configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<InvalidDetail>,
}

/// The message of a conflict, as both sides print it.
pub fn conflict_message(detail: &ConflictDetail) -> String {
    format!(
        "conflict: your working copy is at revision {}, {} is at {}: run eccfg pull, resolve, commit again",
        detail.base, detail.repo, detail.head
    )
}
