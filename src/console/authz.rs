//! Authorization of console commands, as Momentum's `Authorization` scope words it:
//!
//! ```text
//! Control_Listener { AuthorizationParameters = [ uri = "groups:///etc/eccluster/groups" ] }
//! Authorization {
//!   Role "admin" { allow = ( "^show" "^broadcast" "^summary$" ) }
//!   Role "root"  { allow = ( ".*" ) }
//! }
//! ```
//!
//! The groups file holds `group:user1,user2` lines (`#` starts a comment). A session's user
//! name and each group that lists the user are compared with the role names; for each
//! matching role, in the order the roles are written, its `allow` regular expressions are
//! tried in order against the command line (format prefix removed, words separated by single
//! spaces); the first match allows the command, no match denies it. `broadcast COMMAND`,
//! `subcluster broadcast SC COMMAND` and `unicast NODE COMMAND` are allowed only if their
//! inner COMMAND is allowed as well, so nothing reaches a node that the user could not run.
//!
//! The groups file is read at start (an unreadable or malformed file stops the start) and read
//! again when it changes; a change that does not read keeps the last good groups, with a
//! warning. No other I/O here.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use eccluster_proto::node::Command;
use eccluster_proto::Role as MemberRole;
use regex::Regex;
use tracing::warn;

use crate::config::{ConfigError, Scope};

/// Largest groups file read, in bytes.
const MAX_GROUPS_BYTES: u64 = 1 << 20;

/// One `Role "NAME" { allow = ( ... ) }`.
#[derive(Debug, Clone)]
struct Role {
    name: String,
    allow: Vec<Regex>,
}

/// The roles of a configuration, as written; checked (every regex compiles) when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesConfig {
    /// (role name, allow patterns), in file order.
    pub roles: Vec<(String, Vec<String>)>,
}

impl RolesConfig {
    /// Reads every `Authorization { Role "NAME" { allow = ( ... ) } }` of `root`. A role
    /// without a name, a pattern that is not a regular expression, or an `allow` that is not a
    /// list stops with FILE:LINE:COLUMN.
    pub fn read(root: &Scope) -> Result<RolesConfig, ConfigError> {
        let mut roles = Vec::new();
        for authorization in root.scopes("Authorization") {
            for role in authorization.scopes("Role") {
                let Some(name) = role.name.clone() else {
                    return Err(ConfigError::Invalid {
                        span: role.span.clone(),
                        message: "a Role needs a name: Role \"admin\" { allow = ( \"^show\" ) }".into(),
                    });
                };
                let mut patterns = Vec::new();
                if let Some(allow) = role.option("allow") {
                    for pattern in allow.as_list()? {
                        if let Err(error) = Regex::new(pattern) {
                            return Err(ConfigError::Invalid {
                                span: allow.span.clone(),
                                message: format!(
                                    "Role \"{name}\": allow pattern \"{pattern}\" is not a regular expression: {}",
                                    one_line(&error.to_string())
                                ),
                            });
                        }
                        patterns.push(pattern.clone());
                    }
                }
                roles.push((name, patterns));
            }
        }
        Ok(RolesConfig { roles })
    }
}

/// Regex errors span several lines (the pattern, a caret); a configuration error is one line.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The groups file: which groups list which users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Groups {
    /// (group, members), in file order.
    groups: Vec<(String, Vec<String>)>,
}

impl Groups {
    fn parse(text: &str, origin: &Path) -> Result<Groups, String> {
        let mut groups = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((group, members)) = line.split_once(':') else {
                return Err(format!("{}:{}: expected GROUP:USER1,USER2", origin.display(), i + 1));
            };
            let group = group.trim();
            if group.is_empty() {
                return Err(format!("{}:{}: the group name is empty", origin.display(), i + 1));
            }
            let members = members.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect();
            groups.push((group.to_owned(), members));
        }
        Ok(Groups { groups })
    }

    fn load(path: &Path) -> Result<Groups, String> {
        let bytes = crate::config::read_regular_file(path, MAX_GROUPS_BYTES)
            .map_err(|error| format!("reading the groups file {}: {error}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
        Groups::parse(&text, path)
    }

    fn of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.groups.iter().filter(move |(_, members)| members.iter().any(|m| m == user)).map(|(g, _)| g.as_str())
    }
}

/// What identifies a version of the groups file on disk.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|meta| Some((meta.modified().ok()?, meta.len())))
}

/// The checker of one daemon: the roles, and the groups file read again when it changes.
#[derive(Debug)]
pub struct Authorization {
    roles: Vec<Role>,
    groups_path: Option<PathBuf>,
    groups: Mutex<(Stamp, Groups)>,
}

impl Authorization {
    /// Compiles `roles` and reads the groups file at `groups_path`, if any.
    pub fn new(roles: &RolesConfig, groups_path: Option<PathBuf>) -> anyhow::Result<Authorization> {
        let mut compiled = Vec::new();
        for (name, patterns) in &roles.roles {
            let allow = patterns.iter().map(|p| Regex::new(p)).collect::<Result<Vec<_>, _>>()?;
            compiled.push(Role { name: name.clone(), allow });
        }
        let groups = match &groups_path {
            Some(path) => (stamp(path), Groups::load(path).map_err(anyhow::Error::msg)?),
            None => (None, Groups::default()),
        };
        Ok(Authorization { roles: compiled, groups_path, groups: Mutex::new(groups) })
    }

    /// The groups that list `user`, reading the groups file again if it changed.
    fn groups_of(&self, user: &str) -> Vec<String> {
        let mut held = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = &self.groups_path {
            let now = stamp(path);
            if now != held.0 {
                match Groups::load(path) {
                    Ok(groups) => *held = (now, groups),
                    Err(error) => {
                        warn!(%error, "groups file changed but does not read; keeping the groups read before");
                        held.0 = now;
                    }
                }
            }
        }
        held.1.of(user).map(str::to_owned).collect()
    }

    /// Whether `user` may run `line` (a command line, format prefix removed): `Err` with the
    /// refusal to show the operator when not. `words` are the line's words, to find the inner
    /// command of `broadcast`, `subcluster broadcast` and `unicast`.
    pub fn check(&self, user: &str, line: &str, words: &[String]) -> Result<(), String> {
        let groups = self.groups_of(user);
        let names: Vec<&str> = std::iter::once(user).chain(groups.iter().map(String::as_str)).collect();
        let allowed = |command: &str| {
            self.roles
                .iter()
                .filter(|role| names.contains(&role.name.as_str()))
                .any(|role| role.allow.iter().any(|re| re.is_match(command)))
        };
        if !allowed(line) {
            return Err(format!("command \"{line}\" not allowed for user {user}"));
        }
        if let Some(inner) = inner_command(words) {
            if !allowed(&inner) {
                return Err(format!("command \"{inner}\" (inside \"{line}\") not allowed for user {user}"));
            }
        }
        Ok(())
    }
}

/// The command a `broadcast`, `subcluster broadcast` or `unicast` line sends to nodes, as the
/// manager reads it.
pub fn inner_command(words: &[String]) -> Option<String> {
    match Command::parse(MemberRole::Manager, words) {
        Some(Ok(Command::Submit { command, .. })) => Some(command),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn checker(groups: &str) -> (tempfile::TempDir, Authorization) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups");
        std::fs::write(&path, groups).unwrap();
        let roles = RolesConfig {
            roles: vec![
                ("admin".into(), vec!["^show".into(), "^broadcast".into(), "^summary$".into(), "^subcluster broadcast".into()]),
                ("root".into(), vec![".*".into()]),
            ],
        };
        (dir, Authorization::new(&roles, Some(path)).unwrap())
    }

    #[test]
    fn roles_match_the_user_and_its_groups_and_inner_commands_are_checked() {
        let (_dir, authz) = checker("# ops\nadmin:alice,bob\nroot:carol\n");
        let check = |user: &str, line: &str| authz.check(user, line, &words(line));
        assert_eq!(check("alice", "show cluster membership"), Ok(()));
        assert_eq!(check("alice", "summary"), Ok(()));
        assert_eq!(check("alice", "shutdown"), Err("command \"shutdown\" not allowed for user alice".into()));
        assert_eq!(
            check("alice", "broadcast shutdown"),
            Err("command \"shutdown\" (inside \"broadcast shutdown\") not allowed for user alice".into())
        );
        assert_eq!(check("alice", "broadcast show version"), Ok(()));
        assert_eq!(
            check("bob", "subcluster broadcast east shutdown"),
            Err("command \"shutdown\" (inside \"subcluster broadcast east shutdown\") not allowed for user bob".into())
        );
        assert_eq!(check("carol", "broadcast shutdown"), Ok(()));
        // A user named like a role has it.
        assert_eq!(check("root", "shutdown"), Ok(()));
        assert!(check("mallory", "show cluster membership").is_err());
    }

    #[test]
    fn a_bad_pattern_names_the_role_and_the_place() {
        let root = crate::config::parse_str("Authorization {\n  Role \"x\" { allow = ( \"(\" ) }\n}\n", Path::new("t.conf")).unwrap();
        let error = RolesConfig::read(&root).unwrap_err().to_string();
        assert!(error.starts_with("t.conf:2:14: Role \"x\": allow pattern \"(\" is not a regular expression"), "{error}");
    }
}
