//! `cluster.boot`: how a node follows the configuration repository.
//!
//! `key=value` lines; `#` starts a comment line; blank lines are ignored; keys are
//! case-insensitive. Momentum's keys:
//!
//! - `cluster_name` (required): the subcluster whose repository the node follows.
//! - `node_name`: the node's directory in the repository (default: the daemon's `--name`).
//! - `autoupdate` = `true` (pull, merging local changes that do not conflict) | `ifunchanged`
//!   (pull only while the working copy has no local changes) | `false` (never pull).
//! - `repo` = a comma-separated list of `auto` (port 2027 of each manager of the segment file)
//!   and `HOST[:PORT]`; the first that answers makes the working copy (default `auto`).
//! - `reload_config_on_update` = `true` | `false`: load a pull that changed files (the first
//!   working copy, made when the node had none, is loaded either way).
//!
//! And the ones a node needs to reach the server without a prompt:
//!
//! - `wc`: the working copy (default `/opt/msys/ecelerity/etc/conf`).
//! - `username` (default `ecuser`) and `password_file` (required): the login.
//! - `fingerprint` (`SHA256:…`) or `ca` (a PEM file): what to trust when the working copy is
//!   made; afterwards the working copy remembers it.
//! - `poll_interval`: seconds between checks for new revisions when none is announced
//!   (default 60; announcements from the manager make pulls immediate).
//!
//! Relative paths are relative to the directory of `cluster.boot`. An unknown key, a bad
//! value or a missing `cluster_name` is an error naming the file, line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::Endpoint;
use super::path::{check_node_name, check_repo_name, GLOBAL};
use super::wc::DEFAULT_WC;

/// When to pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoUpdate {
    /// Always, merging local changes that do not conflict.
    Always,
    /// Only while the working copy has no local changes.
    IfUnchanged,
    /// Never.
    Never,
}

/// Where the repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// Port 2027 of each manager of the segment file.
    Auto,
    /// This server.
    Server(Endpoint),
}

/// What to trust when the working copy is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootTrust {
    /// A key fingerprint.
    Fingerprint(String),
    /// A PEM file.
    Ca(PathBuf),
}

/// A parsed `cluster.boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBoot {
    /// The file it came from.
    pub path: PathBuf,
    /// `cluster_name`.
    pub cluster_name: String,
    /// `node_name`, if given.
    pub node_name: Option<String>,
    /// `autoupdate`.
    pub autoupdate: AutoUpdate,
    /// `repo`, in order.
    pub repo: Vec<RepoSource>,
    /// `reload_config_on_update`.
    pub reload_on_update: bool,
    /// `wc`.
    pub wc: PathBuf,
    /// `username`.
    pub username: String,
    /// `password_file`.
    pub password_file: PathBuf,
    /// `fingerprint` or `ca`.
    pub trust: Option<BootTrust>,
    /// `poll_interval`.
    pub poll_interval: Duration,
}

/// The longest `cluster.boot` read.
pub const MAX_BOOT_BYTES: u64 = 64 << 10;
/// Bounds of `poll_interval`, in seconds.
pub const POLL_RANGE: (u64, u64) = (1, 86_400);

/// A `cluster.boot` that cannot be used: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct BootError {
    /// The file.
    pub file: String,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ClusterBoot {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ClusterBoot, BootError> {
        let file = path.display().to_string();
        let bytes = crate::config::read_regular_file(path, MAX_BOOT_BYTES)
            .map_err(|e| BootError { file: file.clone(), line: 0, column: 0, message: format!("cannot read it: {e}") })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| BootError { file: file.clone(), line: 0, column: 0, message: format!("not UTF-8 text: {e}") })?;
        ClusterBoot::parse(&text, path)
    }

    /// Parses the text of the file at `path` (used for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<ClusterBoot, BootError> {
        let file = path.display().to_string();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let relative = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        };
        let mut cluster_name = None;
        let mut boot = ClusterBoot {
            path: path.to_path_buf(),
            cluster_name: String::new(),
            node_name: None,
            autoupdate: AutoUpdate::Always,
            repo: vec![RepoSource::Auto],
            reload_on_update: true,
            wc: PathBuf::from(DEFAULT_WC),
            username: "ecuser".into(),
            password_file: PathBuf::new(),
            trust: None,
            poll_interval: Duration::from_secs(60),
        };
        let mut password_file = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let key_col = raw.len() - trimmed.len() + 1;
            let err = |column: usize, message: String| BootError { file: file.clone(), line, column, message };
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(err(key_col, format!("expected key=value, found '{}'", escape(trimmed.trim_end()))));
            };
            let value_col = key_col + key.len() + 1 + (value.len() - value.trim_start().len());
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            let bad = |what: &str| err(value_col, format!("{key}: {what}, found '{}'", escape(value)));
            // For errors that already show the value.
            let said = |what: String| err(value_col, format!("{key}: {what}"));
            match key.as_str() {
                "cluster_name" => {
                    check_repo_name(value).map_err(|e| said(e.to_string()))?;
                    if value == GLOBAL {
                        return Err(bad("names a subcluster ('global' is shared by all of them)"));
                    }
                    cluster_name = Some(value.to_owned());
                }
                "node_name" => {
                    check_node_name(value).map_err(|e| said(e.to_string()))?;
                    boot.node_name = Some(value.to_ascii_lowercase());
                }
                "autoupdate" => {
                    boot.autoupdate = match value.to_ascii_lowercase().as_str() {
                        "true" => AutoUpdate::Always,
                        "ifunchanged" => AutoUpdate::IfUnchanged,
                        "false" => AutoUpdate::Never,
                        _ => return Err(bad("expected true, ifunchanged or false")),
                    }
                }
                "reload_config_on_update" => {
                    boot.reload_on_update = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("expected true or false")),
                    }
                }
                "repo" => {
                    let mut sources = Vec::new();
                    for item in value.split(',').map(str::trim) {
                        match item.to_ascii_lowercase().as_str() {
                            "auto" => sources.push(RepoSource::Auto),
                            "local" => sources.push(RepoSource::Server(Endpoint { host: "127.0.0.1".into(), port: super::server::DEFAULT_PORT })),
                            _ => sources.push(RepoSource::Server(Endpoint::parse(item).map_err(said)?)),
                        }
                    }
                    boot.repo = sources;
                }
                "wc" if !value.is_empty() => boot.wc = relative(value),
                "username" => {
                    super::path::check_user_name(value).map_err(|e| said(e.to_string()))?;
                    boot.username = value.to_owned();
                }
                "password_file" if !value.is_empty() => password_file = Some(relative(value)),
                "fingerprint" => {
                    let fp = super::cert::normalise_fingerprint(value).map_err(|e| said(e.to_string()))?;
                    boot.trust = Some(BootTrust::Fingerprint(fp));
                }
                "ca" if !value.is_empty() => boot.trust = Some(BootTrust::Ca(relative(value))),
                "poll_interval" => {
                    let secs: u64 = value.parse().map_err(|_| bad("expected a number of seconds"))?;
                    if !(POLL_RANGE.0..=POLL_RANGE.1).contains(&secs) {
                        return Err(bad(&format!("expected {} to {} seconds", POLL_RANGE.0, POLL_RANGE.1)));
                    }
                    boot.poll_interval = Duration::from_secs(secs);
                }
                "wc" | "password_file" | "ca" => return Err(bad("expected a path")),
                _ => {
                    return Err(err(
                        key_col,
                        format!(
                            "unknown key '{}' (known: cluster_name, node_name, autoupdate, repo, reload_config_on_update, \
                             wc, username, password_file, fingerprint, ca, poll_interval)",
                            escape(&key)
                        ),
                    ))
                }
            }
        }
        let whole = |message: &str| BootError { file: file.clone(), line: 0, column: 0, message: message.to_owned() };
        boot.cluster_name = cluster_name.ok_or_else(|| whole("cluster_name is required (the subcluster this node follows)"))?;
        boot.password_file = password_file.ok_or_else(|| whole("password_file is required (the password of the repository user)"))?;
        Ok(boot)
    }
}

/// `text` with control characters shown escaped.
fn escape(text: &str) -> String {
    text.chars().flat_map(char::escape_default).collect::<String>().chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClusterBoot, BootError> {
        ClusterBoot::parse(text, Path::new("/etc/ec/cluster.boot"))
    }

    #[test]
    fn momentum_keys_and_ours_are_read_with_paths_relative_to_the_file() {
        let boot = parse(
            "# autoupdate = (true|ifunchanged|false)\nautoupdate=ifunchanged\ncluster_name = west\n\
             node_name=West1\nrepo=auto,mgr.example.com:2100\nreload_config_on_update=false\n\
             wc=conf\npassword_file=/secret/ecuser\nfingerprint=SHA256:abababababababababababababababababababababababababababababababab\n\
             poll_interval=5\n",
        )
        .expect("parses");
        assert_eq!(boot.cluster_name, "west");
        assert_eq!(boot.node_name.as_deref(), Some("west1"));
        assert_eq!(boot.autoupdate, AutoUpdate::IfUnchanged);
        assert_eq!(
            boot.repo,
            vec![RepoSource::Auto, RepoSource::Server(Endpoint { host: "mgr.example.com".into(), port: 2100 })]
        );
        assert!(!boot.reload_on_update);
        assert_eq!(boot.wc, PathBuf::from("/etc/ec/conf"));
        assert_eq!(boot.password_file, PathBuf::from("/secret/ecuser"));
        assert_eq!(boot.poll_interval, Duration::from_secs(5));
        assert!(matches!(boot.trust, Some(BootTrust::Fingerprint(_))));
    }

    #[test]
    fn defaults_need_only_the_cluster_name_and_the_password_file() {
        let boot = parse("cluster_name=default\npassword_file=pw\n").expect("parses");
        assert_eq!(boot.autoupdate, AutoUpdate::Always);
        assert_eq!(boot.repo, vec![RepoSource::Auto]);
        assert!(boot.reload_on_update);
        assert_eq!(boot.wc, PathBuf::from(DEFAULT_WC));
        assert_eq!(boot.username, "ecuser");
        assert_eq!(boot.poll_interval, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("cluster_name=west\npassword_file=p\n  autoupdate = sometimes\n").expect_err("bad value");
        assert_eq!((e.line, e.column), (3, 16), "{e}");
        assert!(e.to_string().starts_with("/etc/ec/cluster.boot:3:16: autoupdate: expected true"), "{e}");
        let e = parse("cluster_name=west\npassword_file=p\nrepos=auto\n").expect_err("unknown key");
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.to_string().contains("unknown key 'repos'"), "{e}");
        let e = parse("password_file=p\n").expect_err("no cluster_name");
        assert!(e.to_string().contains("cluster_name is required"), "{e}");
        let e = parse("cluster_name=global\npassword_file=p\n").expect_err("global");
        assert!(e.to_string().contains("'global' is shared"), "{e}");
        let e = parse("cluster_name=west\npassword_file=p\npoll_interval=0\n").expect_err("range");
        assert!(e.to_string().contains("1 to 86400 seconds"), "{e}");
        let e = parse("cluster_name=west\npassword_file=p\njust words\x1b\n").expect_err("no =");
        assert!(e.to_string().contains("expected key=value, found 'just words\\u{1b}'"), "{e}");
        let e = parse("cluster_name=../x\npassword_file=p\n").expect_err("bad name");
        assert_eq!((e.line, e.column), (1, 14), "{e}");
    }
}
