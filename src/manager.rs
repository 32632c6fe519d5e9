//! The manager's console commands for ordered operations — `broadcast`, `unicast`,
//! `subcluster broadcast`, `retrieve`, `retrieve_node`, `subcluster retrieve`,
//! `flush control cache` — on top of the sequencer the driver owns, and their output.

use std::fmt::Write;
use std::time::{Instant, SystemTime};

use eccluster_proto::ops::{ResultStatus, RetrieveRow, Sequencer, Target};
use eccluster_proto::segments::Segments;
use serde_json::json;

use crate::console::frame::Reply;
use crate::console::request::{Format, Request};
use crate::output::{pretty, xml_escape};

/// Help lines of the operations commands.
pub const HELP: &str = "\
  broadcast COMMAND             run COMMAND on every live node, in order everywhere
  subcluster broadcast SC COMMAND   run COMMAND on every live node of subcluster SC
  unicast NODE COMMAND          run COMMAND on one node
  retrieve COMMAND              the answers to the latest broadcast of COMMAND
  subcluster retrieve SC COMMAND    the same, for the nodes of subcluster SC
  retrieve_node NODE COMMAND    NODE's latest answer to COMMAND
  flush control cache           forget every stored answer
";

fn word(req: &Request, i: usize) -> Option<&str> {
    req.words.get(i).map(String::as_str)
}

fn rest(req: &Request, from: usize) -> Option<String> {
    let r = req.words.get(from..)?;
    (!r.is_empty()).then(|| r.join(" "))
}

fn eq(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// Handles the operations commands; `None` if `req` is not one of them.
pub fn handle(seq: &mut Sequencer, segments: &Segments, req: &Request) -> Option<Reply> {
    let now = tokio::time::Instant::now().into_std();
    let first = word(req, 0)?;
    let usage = |u: &str| Some(Reply::failed(format!("usage: {u}\n")));
    if first.eq_ignore_ascii_case("broadcast") {
        let Some(cmd) = rest(req, 1) else { return usage("broadcast COMMAND") };
        return Some(submit(seq, now, &cmd, Target::Cluster, req.format));
    }
    if first.eq_ignore_ascii_case("unicast") {
        let (Some(node), Some(cmd)) = (word(req, 1), rest(req, 2)) else { return usage("unicast NODE COMMAND") };
        let node = node.to_ascii_lowercase();
        if segments.host(&node).is_none() {
            return Some(Reply::failed(format!("unicast: {node} is not a member of the cluster\n")));
        }
        return Some(submit(seq, now, &cmd, Target::Node(node), req.format));
    }
    if first.eq_ignore_ascii_case("subcluster") && eq(word(req, 1), "broadcast") {
        let (Some(sc), Some(cmd)) = (word(req, 2), rest(req, 3)) else {
            return usage("subcluster broadcast SUBCLUSTER COMMAND");
        };
        let Some(sc) = segments.subcluster(sc).map(|s| s.name.clone()) else {
            return Some(Reply::failed(format!("subcluster broadcast: no subcluster named {sc}\n")));
        };
        return Some(submit(seq, now, &cmd, Target::Subcluster(sc), req.format));
    }
    if first.eq_ignore_ascii_case("subcluster") && eq(word(req, 1), "retrieve") {
        let (Some(sc), Some(cmd)) = (word(req, 2), rest(req, 3)) else {
            return usage("subcluster retrieve SUBCLUSTER COMMAND");
        };
        let Some(sc) = segments.subcluster(sc).map(|s| s.name.clone()) else {
            return Some(Reply::failed(format!("subcluster retrieve: no subcluster named {sc}\n")));
        };
        return Some(match seq.results().retrieve_subcluster(&sc, &cmd) {
            Some(rows) => Reply::ok(render(&cmd, &rows, now, req.format)),
            None => Reply::failed(format!("no broadcast of '{cmd}' to subcluster {sc} in the results buffer\n")),
        });
    }
    if first.eq_ignore_ascii_case("retrieve") {
        let Some(cmd) = rest(req, 1) else { return usage("retrieve COMMAND") };
        return Some(match seq.results().retrieve(&cmd) {
            Some(rows) => Reply::ok(render(&cmd, &rows, now, req.format)),
            None => Reply::failed(format!("no broadcast of '{cmd}' in the results buffer (never sent, or flushed)\n")),
        });
    }
    if first.eq_ignore_ascii_case("retrieve_node") {
        let (Some(node), Some(cmd)) = (word(req, 1), rest(req, 2)) else { return usage("retrieve_node NODE COMMAND") };
        let node = node.to_ascii_lowercase();
        return Some(match seq.results().retrieve_node(&node, &cmd) {
            Some(row) => Reply::ok(render(&cmd, &[row], now, req.format)),
            None if segments.host(&node).is_none() => {
                Reply::failed(format!("retrieve_node: {node} is not a member of the cluster\n"))
            }
            None => Reply::failed(format!("no answer from {node} to '{cmd}' in the results buffer\n")),
        });
    }
    if first.eq_ignore_ascii_case("flush") && eq(word(req, 1), "control") && eq(word(req, 2), "cache") && req.words.len() == 3 {
        let n = seq.flush_results();
        return Some(Reply::ok(match req.format {
            Format::Json => pretty(&json!({ "flushed": n })),
            Format::Xml => format!("<Flushed>{n}</Flushed>\n"),
            Format::Text => format!("Control cache flushed ({n} entries)\n"),
        }));
    }
    None
}

fn submit(seq: &mut Sequencer, now: Instant, cmd: &str, target: Target, format: Format) -> Reply {
    match seq.submit(now, cmd, target.clone()) {
        Ok(s) => Reply::ok(match format {
            Format::Json => pretty(&json!({ "id": s.id.to_string(), "target": target.to_string(), "count": s.targets.len(), "targets": s.targets })),
            Format::Xml => {
                let mut x = format!("<Operation id=\"{}\" count=\"{}\">\n", s.id, s.targets.len());
                for t in &s.targets {
                    let _ = writeln!(x, "  <Target>{}</Target>", xml_escape(t));
                }
                x.push_str("</Operation>\n");
                x
            }
            Format::Text => format!(
                "Operation {} sent to {} node{} ({}): {}\nUse 'retrieve {cmd}' to read the answers.\n",
                s.id,
                s.targets.len(),
                if s.targets.len() == 1 { "" } else { "s" },
                target,
                s.targets.join(", ")
            ),
        }),
        Err(e) => Reply::failed(format!("{e}\n")),
    }
}

/// When `at` was, as microseconds since the Unix epoch (for machine readers of JSON output).
fn unix_micros(at: Instant, now: Instant) -> u128 {
    let when = SystemTime::now() - now.saturating_duration_since(at);
    when.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn wall_clock(at: Instant, now: Instant) -> String {
    let ago = now.saturating_duration_since(at);
    let when = SystemTime::now() - ago;
    chrono::DateTime::<chrono::Local>::from(when).format("%H:%M:%S").to_string()
}

/// Renders a retrieve: one section per node, missing answers marked.
fn render(cmd: &str, rows: &[RetrieveRow], now: Instant, format: Format) -> String {
    match format {
        Format::Text => {
            let mut out = String::new();
            for r in rows {
                let at = wall_clock(r.result.at, now);
                let _ = writeln!(out, "--- {} ({}, {at}, op {}) ---", r.node, r.result.status.as_str(), r.result.id);
                match r.result.status {
                    ResultStatus::Ok | ResultStatus::Error => {
                        out.push_str(&r.result.body);
                        if !r.result.body.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                    ResultStatus::Pending => out.push_str("(waiting for an answer)\n"),
                    ResultStatus::NoAnswer => out.push_str("(no answer within the timeout)\n"),
                    ResultStatus::NodeLeft => out.push_str("(the node left before answering)\n"),
                }
            }
            if rows.is_empty() {
                let _ = writeln!(out, "(no node answers for '{cmd}')");
            }
            out
        }
        Format::Json => pretty(&serde_json::Value::Array(
            rows.iter()
                .map(|r| {
                    json!({
                        "node": r.node,
                        "subcluster": r.result.subcluster,
                        "id": r.result.id.to_string(),
                        "status": r.result.status.as_str(),
                        "time": wall_clock(r.result.at, now),
                        "time_unix_us": unix_micros(r.result.at, now),
                        "answer": r.result.body,
                    })
                })
                .collect(),
        )),
        Format::Xml => {
            let mut out = format!("<Responses command=\"{}\">\n", xml_escape(cmd));
            for r in rows {
                let _ = writeln!(
                    out,
                    "  <Response node=\"{}\" subcluster=\"{}\" id=\"{}\" status=\"{}\" time=\"{}\">{}</Response>",
                    xml_escape(&r.node),
                    xml_escape(&r.result.subcluster),
                    r.result.id,
                    r.result.status.as_str(),
                    wall_clock(r.result.at, now),
                    xml_escape(&r.result.body)
                );
            }
            out.push_str("</Responses>\n");
            out
        }
    }
}
