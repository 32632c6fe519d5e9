//! The manager's console view of configuration revisions, fed by the node core's publisher
//! (`eccluster_proto::revisions`):
//!
//! - `cluster config announce REPO REV [REPO REV ...]`: revision REV of repository REPO is the
//!   newest; every live node that does not run it is told, and told again until it does.
//!   `ecconfigd --announce` sends it after every commit and periodically; an operator may type
//!   it too. Announcing a revision that is not newer changes nothing and says so.
//! - `show cluster config`: the newest revision of each repository, and per live node what it
//!   runs, whether that is `current` or `behind`, the error it reported and when it last
//!   reported.
//!
//! Both are the manager's; on a node they are refused with a word on where they belong. The
//! parsing and the rendering are plain functions over the core's data, so they are tested
//! without a daemon; [`handle`] is what the daemon loop calls with its node core.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use eccluster_proto::node::{Format, Node};
use eccluster_proto::revisions::{covers, followed_by, NodeRevisions, Revisions, MAX_NAME, MAX_REPOS};
use serde_json::{json, Value};

use super::output::{pretty, single_line, xml_escape};
use crate::console::frame::Reply;
use crate::console::request::Request;

/// The usage of the announce command.
pub const ANNOUNCE_USAGE: &str = "cluster config announce REPO REV [REPO REV ...]";

/// A configuration-revision command of the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionCommand {
    /// `cluster config announce`: (repository, revision) pairs, in the order given.
    Announce(Vec<(String, u64)>),
    /// `show cluster config`.
    Show,
}

fn is_word(word: Option<&String>, want: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(want))
}

/// The command `words` make (format prefix removed): `None` when they are not one of these
/// commands (`cluster config ...` or `show cluster config ...`), an error naming the bad word
/// when they are one with wrong arguments.
pub fn parse(words: &[String]) -> Option<Result<RevisionCommand, String>> {
    if is_word(words.first(), "show") && is_word(words.get(1), "cluster") && is_word(words.get(2), "config") {
        return Some(match words.len() {
            3 => Ok(RevisionCommand::Show),
            _ => Err("usage: show cluster config".to_owned()),
        });
    }
    if !(is_word(words.first(), "cluster") && is_word(words.get(1), "config")) {
        return None;
    }
    if !is_word(words.get(2), "announce") {
        return Some(Err(format!("usage: {ANNOUNCE_USAGE}")));
    }
    Some(parse_pairs(&words[3..]).map(RevisionCommand::Announce))
}

/// `REPO REV` pairs: every name within the bounds a revision message carries, every revision
/// a number from 1 (0 is a repository without commits: nothing to announce).
fn parse_pairs(args: &[String]) -> Result<Vec<(String, u64)>, String> {
    if args.is_empty() {
        return Err(format!("usage: {ANNOUNCE_USAGE}"));
    }
    if args.len() / 2 > MAX_REPOS {
        return Err(format!("{} repositories in one announcement; at most {MAX_REPOS}", args.len() / 2));
    }
    let mut pairs = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let repo = &pair[0];
        if repo.is_empty() || repo.len() > MAX_NAME || repo.chars().any(char::is_control) {
            return Err(format!(
                "'{}' is not a repository name (1 to {MAX_NAME} bytes, no control characters)",
                single_line(repo)
            ));
        }
        let Some(rev) = pair.get(1) else {
            return Err(format!("'{}' has no revision: give REPO REV pairs, e.g. west 7", single_line(repo)));
        };
        let number = rev.bytes().all(|b| b.is_ascii_digit()).then(|| rev.parse::<u64>().ok()).flatten();
        match number {
            Some(n) if n > 0 => pairs.push((repo.clone(), n)),
            _ => {
                return Err(format!(
                    "'{}' is not a revision number of {} (a whole number from 1)",
                    single_line(rev),
                    single_line(repo)
                ))
            }
        }
    }
    Ok(pairs)
}

/// Runs `request` if it is one of these commands (`None` otherwise): on a manager against
/// its publisher, on a node refused.
pub fn handle(node: &mut Node, now: Instant, request: &Request) -> Option<Reply> {
    let command = parse(&request.words)?;
    if node.config_publisher().is_none() {
        let what = if is_word(request.words.first(), "show") { "show cluster config" } else { "cluster config announce" };
        return Some(Reply::failed(format!(
            "'{what}' is not available on a node: configuration revisions are followed by the manager \
             (eccmgr), which ecconfigd tells of every commit\n"
        )));
    }
    let command = match command {
        Ok(command) => command,
        Err(e) => return Some(Reply::failed(format!("{e}\n"))),
    };
    Some(match command {
        RevisionCommand::Show => {
            let publisher = node.config_publisher()?;
            Reply::ok(render_show(publisher.newest(), publisher.nodes(), now, request.format))
        }
        RevisionCommand::Announce(pairs) => {
            let mut outcomes = Vec::with_capacity(pairs.len());
            for (repo, rev) in pairs {
                let newer = node.config_published(now, &repo, rev);
                let publisher = node.config_publisher()?;
                let told = publisher.nodes().values().filter(|n| n.running.get(&repo).is_none_or(|r| *r < rev)).count();
                let newest = publisher.newest().get(&repo).copied();
                outcomes.push(Announced { repo, rev, newer, newest, told });
            }
            let body = render_announced(&outcomes, request.format);
            if outcomes.iter().any(|o| !o.newer && o.newest.is_none()) {
                Reply::failed(body)
            } else {
                Reply::ok(body)
            }
        }
    })
}

/// What one announced pair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The repository.
    pub repo: String,
    /// The revision announced.
    pub rev: u64,
    /// It was newer than the newest known: the nodes are told.
    pub newer: bool,
    /// The newest revision known now (`None`: the repository is not followed, which happens
    /// only when the manager already follows as many repositories as a message carries).
    pub newest: Option<u64>,
    /// How many live nodes do not run it yet (told when it was newer).
    pub told: usize,
}

fn nodes(n: usize) -> String {
    if n == 1 {
        "1 node".to_owned()
    } else {
        format!("{n} nodes")
    }
}

/// The answer to `cluster config announce`, one line (or element, or object) per pair.
pub fn render_announced(outcomes: &[Announced], format: Format) -> String {
    let verdict = |o: &Announced| match (o.newer, o.newest) {
        (true, _) => "announced",
        (false, Some(_)) => "known",
        (false, None) => "refused",
    };
    match format {
        Format::Text => {
            let mut out = String::new();
            for o in outcomes {
                let _ = match (o.newer, o.newest) {
                    (true, _) => writeln!(out, "{} {}: announced to {}", o.repo, o.rev, nodes(o.told)),
                    (false, Some(newest)) => writeln!(out, "{} {}: already known (newest {newest})", o.repo, o.rev),
                    (false, None) => writeln!(
                        out,
                        "{} {}: refused: the manager already follows {MAX_REPOS} repositories",
                        o.repo, o.rev
                    ),
                };
            }
            out
        }
        Format::Xml => {
            let mut out = String::from("<ConfigAnnounce>\n");
            for o in outcomes {
                let newest = o.newest.map(|n| format!(" newest=\"{n}\"")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  <Repository name=\"{}\" revision=\"{}\" outcome=\"{}\"{newest} nodes=\"{}\"/>",
                    xml_escape(&o.repo),
                    o.rev,
                    verdict(o),
                    o.told
                );
            }
            out.push_str("</ConfigAnnounce>\n");
            out
        }
        Format::Json => pretty(&Value::Array(
            outcomes
                .iter()
                .map(|o| {
                    json!({
                        "repo": o.repo,
                        "revision": o.rev,
                        "outcome": verdict(o),
                        "newest": o.newest,
                        "nodes": o.told,
                    })
                })
                .collect(),
        )),
    }
}

/// `default 3, global 2, west 7`, or `none`.
fn listed(revisions: &Revisions) -> String {
    if revisions.is_empty() {
        return "none".to_owned();
    }
    revisions.iter().map(|(repo, rev)| format!("{repo} {rev}")).collect::<Vec<_>>().join(", ")
}

fn state(node: &NodeRevisions, newest: &Revisions) -> &'static str {
    if covers(&node.running, &followed_by(newest, &node.subcluster)) {
        "current"
    } else {
        "behind"
    }
}

fn reported_secs(node: &NodeRevisions, now: Instant) -> Option<u64> {
    node.heard.map(|at| now.saturating_duration_since(at).as_secs())
}

/// The answer to `show cluster config`. The error a node reported is printed on one line with
/// its control characters escaped (`\x0a`, as the console client escapes what it prints) in
/// text and XML; JSON carries it as reported, its own escaping keeping it on one line.
pub fn render_show(newest: &Revisions, nodes: &BTreeMap<String, NodeRevisions>, now: Instant, format: Format) -> String {
    match format {
        Format::Text => show_text(newest, nodes, now),
        Format::Xml => show_xml(newest, nodes, now),
        Format::Json => {
            let rows: Vec<Value> = nodes
                .iter()
                .map(|(name, n)| {
                    json!({
                        "name": name,
                        "state": state(n, newest),
                        "running": n.running,
                        "error": n.error,
                        "reported_seconds": reported_secs(n, now),
                    })
                })
                .collect();
            pretty(&json!({ "newest": newest, "nodes": rows }))
        }
    }
}

fn show_text(newest: &Revisions, nodes: &BTreeMap<String, NodeRevisions>, now: Instant) -> String {
    let mut out = match newest.is_empty() {
        true => "Newest: none announced yet (ecconfigd announces every commit)\n".to_owned(),
        false => format!("Newest: {}\n", listed(newest)),
    };
    if nodes.is_empty() {
        out.push_str("No live nodes.\n");
        return out;
    }
    let header = ["Node", "State", "Reported", "Running", "Error"];
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|(name, n)| {
            let reported = reported_secs(n, now).map_or_else(|| "never".to_owned(), |s| format!("{s}s ago"));
            let error = n.error.as_deref().map_or_else(|| "-".to_owned(), single_line);
            [name.clone(), state(n, newest).to_owned(), reported, listed(&n.running), error]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]].map(String::as_str));
    }
    out
}

fn show_xml(newest: &Revisions, nodes: &BTreeMap<String, NodeRevisions>, now: Instant) -> String {
    let repos = |out: &mut String, indent: &str, revisions: &Revisions| {
        for (repo, rev) in revisions {
            let _ = writeln!(out, "{indent}<Repository name=\"{}\" revision=\"{rev}\"/>", xml_escape(repo));
        }
    };
    let mut out = String::from("<ClusterConfig>\n  <Newest>\n");
    repos(&mut out, "    ", newest);
    out.push_str("  </Newest>\n");
    for (name, n) in nodes {
        out.push_str("  <Node>\n");
        let _ = writeln!(out, "    <NodeName>{}</NodeName>", xml_escape(name));
        let _ = writeln!(out, "    <State>{}</State>", state(n, newest));
        if let Some(s) = reported_secs(n, now) {
            let _ = writeln!(out, "    <ReportedSeconds>{s}</ReportedSeconds>");
        }
        out.push_str("    <Running>\n");
        repos(&mut out, "      ", &n.running);
        out.push_str("    </Running>\n");
        if let Some(e) = &n.error {
            let _ = writeln!(out, "    <Error>{}</Error>", xml_escape(&single_line(e)));
        }
        out.push_str("  </Node>\n");
    }
    out.push_str("</ClusterConfig>\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
