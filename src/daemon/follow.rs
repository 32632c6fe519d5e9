//! A node following the configuration repository (`ecnode --cluster-boot FILE`): what
//! `cluster.boot` says, resolved against the segment file, and the fetch — make the working
//! copy, or bring it to the newest revisions with the same pull as `eccfg pull` — that the
//! daemon loop runs in a task (`driver/follow.rs` decides when, and loads what it brings).
//!
//! The node runs `<wc>/<node>/ecelerity.conf` when the working copy has it, else
//! `<wc>/default/ecelerity.conf`. A pull is checked before it replaces the working copy: the
//! configuration it would run must read and validate exactly as a reload would read it, or the
//! working copy stays at the revisions the node runs (so a restart, too, runs the last good
//! revision).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use eccluster_proto::revisions::Revisions;
use eccluster_proto::segments::Segments;

use crate::confrepo::boot::{AutoUpdate, BootTrust, ClusterBoot, RepoSource};
use crate::confrepo::client::{Credentials, Endpoint};
use crate::confrepo::server::DEFAULT_PORT;
use crate::confrepo::users::read_password_file;
use crate::confrepo::wc::{self, BootstrapOptions, Check, Connection, Resolve, TrustChoice, WcError, WorkingCopy};

/// The configuration file a node runs, in a working copy (or a new tree laid out as one).
pub const CONFIG_FILE: &str = "ecelerity.conf";

/// How long one request to ecconfigd may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// `cluster.boot`, resolved for this node.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// The file as read.
    pub boot: ClusterBoot,
    /// The node's directory in the repository.
    pub node: String,
    /// Where to make the working copy from, in order.
    pub servers: Vec<Endpoint>,
}

impl FollowSettings {
    /// `boot` for member `name` of `segments`.
    pub fn new(boot: ClusterBoot, name: &str, segments: &Segments) -> FollowSettings {
        let node = boot.node_name.clone().unwrap_or_else(|| name.to_owned());
        let managers = segments.managers();
        let mut servers = Vec::new();
        for source in &boot.repo {
            let found = match source {
                RepoSource::Server(endpoint) => vec![endpoint.clone()],
                RepoSource::Auto => segments
                    .hosts
                    .iter()
                    .filter(|h| managers.contains(&h.name))
                    .map(|h| Endpoint { host: h.addr.to_string(), port: DEFAULT_PORT })
                    .collect(),
            };
            for endpoint in found {
                if !servers.contains(&endpoint) {
                    servers.push(endpoint);
                }
            }
        }
        FollowSettings { boot, node, servers }
    }

    /// The working copy.
    pub fn wc(&self) -> &Path {
        &self.boot.wc
    }

    /// The configuration file the node runs in the tree at `root`, if there is one.
    pub fn config_file(&self, root: &Path) -> Option<PathBuf> {
        [root.join(&self.node).join(CONFIG_FILE), root.join("default").join(CONFIG_FILE)].into_iter().find(|p| p.is_file())
    }

    /// Whether the node pulls at all.
    pub fn pulls(&self) -> bool {
        self.boot.autoupdate != AutoUpdate::Never
    }
}

/// The revisions of the working copy at `root`, if it is one.
pub fn wc_revisions(root: &Path) -> Option<Revisions> {
    WorkingCopy::open(root).ok().map(|wc| wc.meta().bases.clone())
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The working copy's revisions now.
    pub revisions: Revisions,
    /// Files of the working copy changed (it was made, or a pull changed files).
    pub changed: bool,
    /// The working copy was made by this fetch (the node had none: it loads it whatever
    /// `reload_config_on_update` says, as it would have at start).
    pub made: bool,
    /// What happened, for the log and `cluster info`.
    pub summary: String,
    /// The server it talks to.
    pub server: String,
}

/// Why a fetch did not bring the newest revisions.
#[derive(Debug, Clone)]
pub struct FetchError {
    /// The working copy's revisions (unchanged by the failed fetch), if it is one.
    pub revisions: Option<Revisions>,
    /// Why.
    pub error: String,
    /// The server could not be reached or failed: worth trying again soon.
    pub transient: bool,
}

/// Makes the working copy, or brings it to the newest revisions; `check` decides whether a new
/// tree may replace it.
pub async fn fetch(settings: Arc<FollowSettings>, check: Check) -> Result<Fetched, FetchError> {
    let root = settings.wc().to_path_buf();
    let fail = |error: String| FetchError { revisions: wc_revisions(&root), error, transient: false };
    let unreachable = |error: String| FetchError { transient: true, ..fail(error) };
    let password = read_password_file(&settings.boot.password_file).map_err(|e| fail(e.to_string()))?;
    let conn = Connection {
        credentials: Credentials { user: settings.boot.username.clone(), password },
        timeout: REQUEST_TIMEOUT,
    };
    let wc = match WorkingCopy::open(&root) {
        Ok(wc) => wc,
        Err(WcError::NotAWorkingCopy(_)) => return make(&settings, &conn).await.map_err(unreachable),
        Err(e) => return Err(fail(e.to_string())),
    };
    let server = wc.meta().server.clone();
    if settings.boot.autoupdate == AutoUpdate::IfUnchanged {
        let changes = tokio::task::spawn_blocking(move || wc.changes())
            .await
            .map_err(|e| fail(format!("looking for local changes: {e}")))?
            .map_err(|e| fail(e.to_string()))?;
        if let Some((path, _)) = changes.first() {
            return Err(fail(format!(
                "not pulled: autoupdate = ifunchanged and the working copy has {} local change(s) ({path}{})",
                changes.len(),
                if changes.len() > 1 { ", …" } else { "" }
            )));
        }
    }
    let outcome = wc::pull_checked(&root, &conn, Resolve::Refuse, Some(check)).await.map_err(|e| match e {
        WcError::Invalid(why) => {
            fail(format!("the newest revisions are not taken, their configuration does not load: {why}"))
        }
        WcError::Client(e) => unreachable(format!("pull from {server} failed: {e}")),
        other => fail(format!("pull from {server} failed: {other}")),
    })?;
    let summary = if outcome.files_changed() {
        let files: Vec<String> = outcome.changed.iter().map(|(c, p)| format!("{c} {p}")).collect();
        format!("{} → {}: {}", show(&outcome.from), show(&outcome.to), files.join(", "))
    } else if outcome.from != outcome.to {
        format!("{} → {}: no file of this node changed", show(&outcome.from), show(&outcome.to))
    } else {
        format!("{}: up to date", show(&outcome.to))
    };
    Ok(Fetched { changed: outcome.files_changed(), made: false, revisions: outcome.to, summary, server })
}

/// Makes the working copy from the first server that answers.
async fn make(settings: &FollowSettings, conn: &Connection) -> Result<Fetched, String> {
    let trust = match &settings.boot.trust {
        Some(BootTrust::Fingerprint(fp)) => TrustChoice::Fingerprint(fp.clone()),
        Some(BootTrust::Ca(path)) => TrustChoice::Ca(path.clone()),
        None => {
            return Err(format!(
                "{}: no working copy at {} and neither fingerprint nor ca is given to trust the server with",
                settings.boot.path.display(),
                settings.wc().display()
            ))
        }
    };
    let mut errors = Vec::new();
    for server in &settings.servers {
        let opts = BootstrapOptions {
            server: server.clone(),
            clustername: settings.boot.cluster_name.clone(),
            node: Some(settings.node.clone()),
            wc: settings.wc().to_path_buf(),
            trust: trust.clone(),
            password_file: Some(settings.boot.password_file.clone()),
        };
        match wc::bootstrap(&opts, conn).await {
            Ok((wc, _)) => {
                let revisions = wc.meta().bases.clone();
                let summary = format!("working copy made at {}: {}", settings.wc().display(), show(&revisions));
                return Ok(Fetched { revisions, changed: true, made: true, summary, server: server.to_string() });
            }
            Err(e) => errors.push(format!("{server}: {e}")),
        }
    }
    if errors.is_empty() {
        return Err(format!("{}: repo names no server", settings.boot.path.display()));
    }
    Err(format!("could not make the working copy: {}", errors.join("; ")))
}

/// `global 3, west 7`, or `none`.
pub fn show(revisions: &Revisions) -> String {
    if revisions.is_empty() {
        return "none".to_owned();
    }
    revisions.iter().map(|(repo, rev)| format!("{repo} {rev}")).collect::<Vec<_>>().join(", ")
}
