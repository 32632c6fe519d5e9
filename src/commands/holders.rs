//! The manager's console view of who holds each DuraVIP address: `show cluster duravip`.
//!
//! The manager holds no address and hears no claims; every node with bindings reports where
//! it stands with its addresses (`eccluster_proto::holders`), and the node core keeps what
//! they said ([`Node::duravip_holders`]). This lists, per address of the manager's bindings,
//! the nodes that hold or are acquiring it, with the term they claim under and how long ago
//! the manager heard them take that state; two nodes holding one address is a conflict and
//! said so. On a node the command is refused with a word on `cluster duravip show`, the
//! node's own view. The cluster page's DuraVIP table is built from the same rows.

use std::fmt::Write;
use std::time::Instant;

use eccluster_proto::duravip::{term_text, HoldingState};
use eccluster_proto::node::{Format, Node};
use serde::Serialize;
use serde_json::json;

use super::output::{pretty, xml_escape};
use crate::console::frame::Reply;
use crate::console::request::Request;

/// One node holding or acquiring an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderCell {
    /// The node.
    pub name: String,
    /// `held` or `acquiring`.
    pub state: &'static str,
    /// The term it claims under, as `epoch.seq` (`0.0`: by election, no move).
    pub term: String,
    /// Seconds since the manager heard it take this state.
    pub since_seconds: u64,
}

/// One address of the manager's bindings and its holders as the nodes reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressHolders {
    /// The address.
    pub address: String,
    /// The binding's name.
    pub binding: String,
    /// The one node holding it, when exactly one does.
    pub holder: Option<String>,
    /// More than one node holds it.
    pub conflict: bool,
    /// Every node holding or acquiring it, by name.
    pub holders: Vec<HolderCell>,
}

/// The rows of `show cluster duravip`, one per binding of the manager, in address order;
/// `None` on a node.
pub fn rows(node: &Node, now: Instant) -> Option<Vec<AddressHolders>> {
    let book = node.duravip_holders()?;
    Some(
        node.bindings()
            .values()
            .map(|b| {
                let holders: Vec<HolderCell> = book
                    .holders(b.addr)
                    .into_iter()
                    .map(|h| HolderCell {
                        state: h.state.as_str(),
                        term: term_text(h.term),
                        since_seconds: now.saturating_duration_since(h.since).as_secs(),
                        name: h.node,
                    })
                    .collect();
                let held: Vec<&HolderCell> = holders.iter().filter(|h| h.state == HoldingState::Held.as_str()).collect();
                AddressHolders {
                    address: b.addr.to_string(),
                    binding: b.name.clone(),
                    holder: (held.len() == 1).then(|| held[0].name.clone()),
                    conflict: held.len() > 1,
                    holders,
                }
            })
            .collect(),
    )
}

fn is_word(word: Option<&String>, want: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(want))
}

/// Runs `request` if it is `show cluster duravip` (`None` otherwise): on a manager from the
/// holders the nodes reported, on a node refused.
pub fn handle(node: &Node, now: Instant, request: &Request) -> Option<Reply> {
    let words = &request.words;
    if !(is_word(words.first(), "show") && is_word(words.get(1), "cluster") && is_word(words.get(2), "duravip")) {
        return None;
    }
    if words.len() != 3 {
        return Some(Reply::failed("usage: show cluster duravip\n"));
    }
    let Some(rows) = rows(node, now) else {
        return Some(Reply::failed(
            "'show cluster duravip' is the manager's (eccmgr) view of every node; on a node, \
             'cluster duravip show' shows this node's own view\n",
        ));
    };
    Some(Reply::ok(render(&rows, request.format)))
}

/// The answer to `show cluster duravip`.
pub fn render(rows: &[AddressHolders], format: Format) -> String {
    match format {
        Format::Text => text(rows),
        Format::Xml => xml(rows),
        Format::Json => pretty(&json!(rows)),
    }
}

fn text(rows: &[AddressHolders]) -> String {
    if rows.is_empty() {
        return "No DuraVIP bindings in the manager's configuration.\n".to_owned();
    }
    let header = ["Address", "Binding", "Holder", "State", "Term", "Since"];
    let mut lines: Vec<[String; 6]> = Vec::new();
    for row in rows {
        if row.holders.is_empty() {
            lines.push([row.address.clone(), row.binding.clone(), "none".to_owned(), "-".into(), "-".into(), "-".into()]);
        }
        for h in &row.holders {
            lines.push([
                row.address.clone(),
                row.binding.clone(),
                h.name.clone(),
                h.state.to_owned(),
                h.term.clone(),
                format!("{}s ago", h.since_seconds),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut put = |cells: [&str; 6]| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    put(header);
    for line in &lines {
        put([&line[0], &line[1], &line[2], &line[3], &line[4], &line[5]].map(String::as_str));
    }
    for row in rows.iter().filter(|r| r.conflict) {
        let names: Vec<&str> = row.holders.iter().filter(|h| h.state == "held").map(|h| h.name.as_str()).collect();
        let _ = writeln!(out, "Conflict: {} is held by {}", row.address, names.join(", "));
    }
    out
}

fn xml(rows: &[AddressHolders]) -> String {
    let mut out = String::from("<ClusterDuravip>\n");
    for row in rows {
        let _ = writeln!(
            out,
            "  <Address ip=\"{}\" binding=\"{}\" conflict=\"{}\">",
            xml_escape(&row.address),
            xml_escape(&row.binding),
            row.conflict
        );
        for h in &row.holders {
            let _ = writeln!(
                out,
                "    <Holder name=\"{}\" state=\"{}\" term=\"{}\" sinceSeconds=\"{}\"/>",
                xml_escape(&h.name),
                h.state,
                h.term,
                h.since_seconds
            );
        }
        out.push_str("  </Address>\n");
    }
    out.push_str("</ClusterDuravip>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<AddressHolders> {
        let cell = |name: &str, state: &'static str| HolderCell { name: name.to_owned(), state, term: "0.0".to_owned(), since_seconds: 4 };
        vec![
            AddressHolders { address: "10.1.1.1".into(), binding: "a&b".into(), holder: Some("n1".into()), conflict: false, holders: vec![cell("n1", "held")] },
            AddressHolders { address: "10.1.1.2".into(), binding: "b".into(), holder: None, conflict: true, holders: vec![cell("n1", "held"), cell("n2", "held")] },
            AddressHolders { address: "10.1.1.3".into(), binding: "c".into(), holder: None, conflict: false, holders: Vec::new() },
        ]
    }

    #[test]
    fn every_format_names_the_holders_and_the_conflict() {
        let text = render(&rows(), Format::Text);
        assert!(text.starts_with("Address   Binding  Holder  State  Term  Since\n"), "{text}");
        assert!(text.contains("10.1.1.1  a&b      n1      held   0.0   4s ago\n"), "{text}");
        assert!(text.contains("10.1.1.3  c        none    -      -     -\n"), "{text}");
        assert!(text.ends_with("Conflict: 10.1.1.2 is held by n1, n2\n"), "{text}");
        let xml = render(&rows(), Format::Xml);
        assert!(xml.contains("<Address ip=\"10.1.1.1\" binding=\"a&amp;b\" conflict=\"false\">"), "{xml}");
        assert!(xml.contains("<Holder name=\"n2\" state=\"held\" term=\"0.0\" sinceSeconds=\"4\"/>"), "{xml}");
        let json: serde_json::Value = serde_json::from_str(&render(&rows(), Format::Json)).expect("json");
        assert_eq!(json[0]["holder"], "n1");
        assert_eq!(json[1]["conflict"], true);
        assert_eq!(json[1]["holders"][1]["name"], "n2");
        assert!(json[2]["holder"].is_null());
        assert_eq!(render(&[], Format::Text), "No DuraVIP bindings in the manager's configuration.\n");
    }
}
