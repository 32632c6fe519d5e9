//! Names that cross the wire or reach the disk: repository names, user names, and file paths
//! inside a repository. Every name is checked here before it is used, on the server and in the
//! client, so that path traversal cannot happen: no `..`, no absolute path, no empty or hidden
//! component (which also keeps the working copy's `.eccfg/` metadata and git's own files out of
//! reach), no control characters, bounded lengths.
//!
//! No I/O here.

use std::fmt;

/// Name of the repository every working copy maps to `global/`.
pub const GLOBAL: &str = "global";

/// Longest path accepted inside a repository, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest directory nesting accepted inside a repository.
pub const MAX_PATH_DEPTH: usize = 16;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} '{name}' is not allowed: {why}")]
pub struct NameError {
    /// What kind of name ("path", "repository name", "user name").
    pub what: &'static str,
    /// The name as given (control characters escaped).
    pub name: String,
    /// The rule it breaks.
    pub why: &'static str,
}

fn refuse(what: &'static str, name: &str, why: &'static str) -> NameError {
    NameError { what, name: name.escape_debug().to_string(), why }
}

/// Checks a short identifier: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
fn identifier(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 64 {
        return Err(refuse(what, name, "it must be 1 to 64 characters long"));
    }
    if name.starts_with(['.', '-']) {
        return Err(refuse(what, name, "it must not start with '.' or '-'"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(refuse(what, name, "only letters, digits, '.', '_' and '-' may be used"));
    }
    Ok(())
}

/// Checks a repository name (`global`, `default`, a subcluster's name).
pub fn check_repo_name(name: &str) -> Result<(), NameError> {
    identifier("repository name", name)
}

/// Checks a user name of the users file.
pub fn check_user_name(name: &str) -> Result<(), NameError> {
    identifier("user name", name)
}

/// Checks a node name (the name of a node's directory in its subcluster's repository).
pub fn check_node_name(name: &str) -> Result<(), NameError> {
    identifier("node name", name)?;
    if name == GLOBAL {
        return Err(refuse("node name", name, "'global' is the global repository's directory"));
    }
    Ok(())
}

/// A checked relative path of a file inside a repository, components joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    /// Checks `path`: relative, `/`-separated, each component non-empty, not `.` or `..`, not
    /// starting with `.`, free of control characters and `\`; at most [`MAX_PATH_BYTES`] long and
    /// [`MAX_PATH_DEPTH`] deep.
    pub fn parse(path: &str) -> Result<RepoPath, NameError> {
        const WHAT: &str = "path";
        if path.is_empty() {
            return Err(refuse(WHAT, path, "it is empty"));
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(refuse(WHAT, path, "it is longer than 1024 bytes"));
        }
        if path.starts_with('/') {
            return Err(refuse(WHAT, path, "it is absolute; paths are relative to the repository"));
        }
        if path.chars().any(|c| c.is_control() || c == '\\') {
            return Err(refuse(WHAT, path, "it holds a control character or a backslash"));
        }
        let mut depth = 0;
        for component in path.split('/') {
            depth += 1;
            if component.is_empty() {
                return Err(refuse(WHAT, path, "it has an empty component ('//' or a trailing '/')"));
            }
            if component == ".." || component == "." {
                return Err(refuse(WHAT, path, "'.' and '..' components are not allowed"));
            }
            if component.starts_with('.') {
                return Err(refuse(WHAT, path, "hidden names (starting with '.') are not kept in the repository"));
            }
        }
        if depth > MAX_PATH_DEPTH {
            return Err(refuse(WHAT, path, "it is nested more than 16 directories deep"));
        }
        Ok(RepoPath(path.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first component (the top-level directory, or the file name of a top-level file).
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// True when the path is a single component (a file at the top of the repository).
    pub fn is_top_level(&self) -> bool {
        !self.0.contains('/')
    }

    /// `self` with `prefix/` in front.
    pub fn under(&self, prefix: &str) -> String {
        format!("{prefix}/{}", self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `path` may be stored in repository `repo`: in the global repository anything
/// [`RepoPath::parse`] accepts; in a subcluster's repository only files inside a directory
/// (`default/`, a node's directory), never inside `global/`.
pub fn check_placement(repo: &str, path: &RepoPath) -> Result<(), NameError> {
    if repo == GLOBAL {
        return Ok(());
    }
    if path.is_top_level() {
        return Err(refuse(
            "path",
            path.as_str(),
            "files of a subcluster's repository live in default/ or in a node's directory",
        ));
    }
    if path.top() == GLOBAL {
        return Err(refuse("path", path.as_str(), "global/ belongs to the global repository"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traversal_absolute_and_hidden_paths_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "default/../../x", "a//b", "a/", "./a", ".eccfg/wc.json",
            "default/.git/config", "a\\b", "a\nb"]
        {
            assert!(RepoPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        let deep = vec!["d"; 17].join("/");
        assert!(RepoPath::parse(&deep).is_err());
        let ok = RepoPath::parse("default/conf.d/spam.conf").unwrap();
        assert_eq!(ok.top(), "default");
        assert!(!ok.is_top_level());
    }

    #[test]
    fn subcluster_repositories_hold_files_only_inside_directories() {
        let top = RepoPath::parse("ecelerity.conf").unwrap();
        assert!(check_placement(GLOBAL, &top).is_ok());
        assert!(check_placement("east", &top).is_err());
        assert!(check_placement("east", &RepoPath::parse("global/x.conf").unwrap()).is_err());
        assert!(check_placement("east", &RepoPath::parse("east1/ecelerity.conf").unwrap()).is_ok());
    }

    #[test]
    fn names_are_short_identifiers() {
        assert!(check_repo_name("east-1").is_ok());
        assert!(check_repo_name("../x").is_err());
        assert!(check_repo_name(".hidden").is_err());
        assert!(check_user_name("a:b").is_err());
        assert!(check_node_name("global").is_err());
        assert!(check_user_name(&"x".repeat(65)).is_err());
    }
}
