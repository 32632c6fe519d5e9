//! The node core's answers to its own commands — operations sequenced, the results buffer,
//! `cluster oplog`, `cluster duravip show | explain | move | announce view` — rendered as text
//! (as Momentum prints it), XML (through quick-xml's serde serializer) or JSON (serde_json).
//! Only formatting here; the data comes from `eccluster_proto::node::Reply`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use eccluster_proto::duravip::{Announced, Moved, VipExplanation, VipTable};
use eccluster_proto::node::{Format, Reply};
use eccluster_proto::ops::{OpId, ResultStatus, RetrieveRow, Target};
use serde::Serialize;
use serde_json::json;

use super::output::pretty;
use crate::config::duravip::Plumbing;

/// What rendering may look at besides the reply.
pub struct View<'a> {
    /// Per DuraVIP address: its names (a binding's and its listeners').
    pub plumbing: &'a BTreeMap<IpAddr, Plumbing>,
    /// Per DuraVIP address: the actuator's last failure, if any.
    pub errors: &'a BTreeMap<IpAddr, String>,
    /// The time the reply is rendered at.
    pub now: Instant,
}

/// Renders `reply` in `format`.
pub fn reply(reply: &Reply, format: Format, view: &View<'_>) -> String {
    match reply {
        Reply::Submitted { id, target, targets, command } => submitted(*id, target, targets, command, format),
        Reply::Retrieved { command, rows } => retrieved(command, rows, view.now, format),
        Reply::Flushed(n) => match format {
            Format::Json => pretty(&json!({ "flushed": n })),
            Format::Xml => xml("Flushed", &n),
            Format::Text => format!("Control cache flushed ({n} entries)\n"),
        },
        Reply::OpLog { total, applied } => {
            let ids: Vec<String> = applied.iter().map(ToString::to_string).collect();
            match format {
                Format::Text => ids.iter().map(|i| format!("{i}\n")).collect(),
                Format::Xml => xml("OpLog", &XmlOpLog { total: *total, op: ids }),
                Format::Json => pretty(&json!({ "total": total, "applied": ids })),
            }
        }
        Reply::Vips { table, tables } => match (format, tables) {
            (Format::Json, _) => json_of(table),
            (Format::Xml, _) | (Format::Text, true) => vip_tables_xml(table, view),
            (Format::Text, false) => vip_table_text(table, view),
        },
        Reply::Moved(moved) => match format {
            Format::Json => json_of(moved),
            Format::Xml => xml("DuraVIPMove", moved),
            Format::Text => moved_text(moved),
        },
        Reply::Announced(a) => match format {
            Format::Json => json_of(a),
            Format::Xml => xml("DuraVIPAnnounce", a),
            Format::Text => announced_text(a),
        },
        Reply::Explained(e) => match format {
            Format::Json => json_of(e),
            Format::Xml => xml("DuraVIPExplain", e),
            Format::Text => explain_text(e, view),
        },
    }
}

/// A refused or failed command as the console prints it: `NAME: why`, or the usage.
pub fn error(name: &str, e: &eccluster_proto::node::CommandError) -> String {
    match e {
        eccluster_proto::node::CommandError::Usage(_) => format!("{e}\n"),
        _ => format!("{name}: {e}\n"),
    }
}

fn json_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(v) => pretty(&v),
        Err(e) => format!("{{\"error\": \"cannot render: {e}\"}}\n"),
    }
}

/// `value` as one XML element named `root`, indented, with a trailing newline.
fn xml<T: Serialize>(root: &str, value: &T) -> String {
    let mut out = String::new();
    let written = quick_xml::se::Serializer::with_root(&mut out, Some(root)).and_then(|mut ser| {
        ser.indent(' ', 2);
        value.serialize(ser)
    });
    match written {
        Ok(_) => {
            out.push('\n');
            out
        }
        Err(e) => format!("<Error>cannot render: {}</Error>\n", quick_xml::escape::escape(e.to_string())),
    }
}

#[derive(Serialize)]
struct XmlOpLog {
    #[serde(rename = "@total")]
    total: u64,
    #[serde(rename = "Op")]
    op: Vec<String>,
}

#[derive(Serialize)]
struct XmlOperation<'a> {
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@count")]
    count: usize,
    #[serde(rename = "Target")]
    target: &'a [String],
}

fn submitted(id: OpId, target: &Target, targets: &[String], command: &str, format: Format) -> String {
    match format {
        Format::Json => pretty(&json!({
            "id": id.to_string(), "target": target.to_string(), "count": targets.len(), "targets": targets,
        })),
        Format::Xml => xml("Operation", &XmlOperation { id: id.to_string(), count: targets.len(), target: targets }),
        Format::Text => {
            let plural = if targets.len() == 1 { "" } else { "s" };
            let mut out = format!("Operation {id} sent to {} node{plural} ({target}): {}\n", targets.len(), targets.join(", "));
            match target {
                _ if command.is_empty() => {}
                Target::Node(node) => {
                    out.push_str(&format!("Use 'retrieve_node {node} {command}' to read the answer.\n"));
                }
                _ => {
                    out.push_str(&format!("Use 'retrieve {command}' to read the answers.\n"));
                }
            }
            out
        }
    }
}

/// When `at` was, as microseconds since the Unix epoch (for machine readers of JSON output).
fn unix_micros(at: Instant, now: Instant) -> u128 {
    let when = SystemTime::now() - now.saturating_duration_since(at);
    when.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn wall_clock(at: Instant, now: Instant) -> String {
    let when = SystemTime::now() - now.saturating_duration_since(at);
    chrono::DateTime::<chrono::Local>::from(when).format("%H:%M:%S").to_string()
}

#[derive(Serialize)]
struct XmlResponses {
    #[serde(rename = "@command")]
    command: String,
    #[serde(rename = "Response")]
    response: Vec<XmlResponse>,
}

#[derive(Serialize)]
struct XmlResponse {
    #[serde(rename = "@node")]
    node: String,
    #[serde(rename = "@subcluster")]
    subcluster: String,
    #[serde(rename = "@id")]
    id: String,
    #[serde(rename = "@status")]
    status: &'static str,
    #[serde(rename = "@time")]
    time: String,
    #[serde(rename = "$text")]
    answer: String,
}

/// Renders a retrieve: one section per node, missing answers marked.
fn retrieved(cmd: &str, rows: &[RetrieveRow], now: Instant, format: Format) -> String {
    match format {
        Format::Text => {
            let mut out = String::new();
            for r in rows {
                let at = wall_clock(r.result.at, now);
                out.push_str(&format!("--- {} ({}, {at}, op {}) ---\n", r.node, r.result.status.as_str(), r.result.id));
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
                out.push_str(&format!("(no node answers for '{cmd}')\n"));
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
        Format::Xml => xml(
            "Responses",
            &XmlResponses {
                command: cmd.to_owned(),
                response: rows
                    .iter()
                    .map(|r| XmlResponse {
                        node: r.node.clone(),
                        subcluster: r.result.subcluster.clone(),
                        id: r.result.id.to_string(),
                        status: r.result.status.as_str(),
                        time: wall_clock(r.result.at, now),
                        answer: r.result.body.clone(),
                    })
                    .collect(),
            },
        ),
    }
}

/// Every name of an address: its binding's, then any listeners' on the same address.
fn names(addr: IpAddr, binding: &str, view: &View<'_>) -> Vec<String> {
    let mut names = vec![binding.to_owned()];
    if let Some(p) = view.plumbing.get(&addr) {
        names.extend(p.names.iter().filter(|n| *n != binding).cloned());
    }
    names
}

/// `cluster duravip show` as Momentum prints it: per address `IP/name...: (ownership,safety)
/// multivip`, how long the view and the configuration have been stable, the move in force,
/// then one line per live candidate with `*` in front of the owner.
fn vip_table_text(table: &VipTable, view: &View<'_>) -> String {
    let mut out = String::from("DuraVIP State:\n");
    for vip in &table.vips {
        out.push_str(&format!("{}/{}: ({},{}) multivip\n", vip.addr, names(vip.addr, &vip.binding, view).join("/"), vip.ownership, vip.safety));
        out.push_str(&format!("\t[view stable for {} seconds]\n", table.view_stable_secs));
        out.push_str(&format!("\t[configuration stable for {} seconds]\n", table.config_stable_secs));
        if let Some(m) = &vip.moved {
            out.push_str(&format!("\t[moved to {} by operation {}]\n", m.host, m.operation));
        }
        if let Some(e) = view.errors.get(&vip.addr) {
            out.push_str(&format!("\t[on this machine: {e}]\n"));
        }
        let mut listed = vip.candidates.clone();
        if let Some(owner) = vip.owner.as_ref().filter(|o| !listed.contains(o)) {
            listed.push(owner.clone());
        }
        for name in listed {
            let mark = if vip.owner.as_deref() == Some(name.as_str()) { " *  " } else { "    " };
            out.push_str(&format!("{mark}\t{name} multivip\n"));
        }
    }
    out
}

#[derive(Serialize)]
struct XmlVipStateTable {
    group_vips_by_name: XmlGroup,
}

#[derive(Serialize)]
struct XmlGroup {
    #[serde(rename = "VIPs")]
    vips: XmlVips,
}

#[derive(Serialize)]
struct XmlVips {
    #[serde(rename = "VIP")]
    vip: Vec<XmlVip>,
}

#[derive(Serialize)]
struct XmlVip {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "IP")]
    ip: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Owner", skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(rename = "Last_View_Change")]
    last_view_change: u64,
    #[serde(rename = "ViewsForParticipants")]
    views: XmlViews,
}

#[derive(Serialize)]
struct XmlViews {
    #[serde(rename = "ParticipantView")]
    participant: Vec<XmlParticipant>,
}

#[derive(Serialize)]
struct XmlParticipant {
    #[serde(rename = "Private_Name")]
    private_name: String,
    #[serde(rename = "IP")]
    ip: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "State")]
    state: &'static str,
}

/// `cluster duravip show tables`: Momentum's state table as XML (`VIPStateTable`, addresses
/// grouped by name, each with the participants this node sees).
fn vip_tables_xml(table: &VipTable, view: &View<'_>) -> String {
    let vip = table
        .vips
        .iter()
        .map(|v| XmlVip {
            name: names(v.addr, &v.binding, view).join("/"),
            ip: v.addr.to_string(),
            state: format!("{},{}", v.ownership, v.safety),
            owner: v.owner.clone(),
            last_view_change: table.view_stable_secs,
            views: XmlViews {
                participant: v
                    .candidates
                    .iter()
                    .map(|n| XmlParticipant {
                        private_name: format!("#ec0#{n}"),
                        ip: v.addr.to_string(),
                        name: v.binding.clone(),
                        state: if v.owner.as_deref() == Some(n.as_str()) { "owner" } else { "standby" },
                    })
                    .collect(),
            },
        })
        .collect();
    xml("VIPStateTable", &XmlVipStateTable { group_vips_by_name: XmlGroup { vips: XmlVips { vip } } })
}

fn moved_text(m: &Moved) -> String {
    if !m.applied {
        let newer = m.superseded_by.as_deref().unwrap_or("?");
        return format!("{} ({}) not moved: a newer move (operation {newer}) is already known\n", m.addr, m.binding);
    }
    let here = match m.holding {
        eccluster_proto::duravip::HoldingState::Held => "held here",
        eccluster_proto::duravip::HoldingState::Acquiring => "acquiring here",
        eccluster_proto::duravip::HoldingState::Idle => "not held here",
    };
    format!("{} ({}) moved to {} by operation {}; {here}\n", m.addr, m.binding, m.host, m.operation)
}

fn announced_text(a: &Announced) -> String {
    let by = if a.from_operation() { format!(" (operation {})", a.operation) } else { String::new() };
    format!(
        "announced view{by} to {} node(s): holding {} of {} address(es), {} move(s) known\n",
        a.peers, a.holding, a.addresses, a.moves
    )
}

fn explain_text(e: &VipExplanation, view: &View<'_>) -> String {
    let mut out = String::new();
    let why = match e.why {
        Some(eccluster_proto::duravip::Why::Moved) => "a move names it",
        Some(eccluster_proto::duravip::Why::Preferred) => "it is the preferred node",
        Some(eccluster_proto::duravip::Why::Spread) => "spread by quota and score",
        Some(eccluster_proto::duravip::Why::Overflow) => "its candidates with room were full; least loaded",
        None => "no live candidate",
    };
    out.push_str(&format!("{} ({}): elected {} ({why}); held by {}\n",
        e.addr,
        names(e.addr, &e.binding, view).join("/"),
        e.elected.as_deref().unwrap_or("nobody"),
        e.owner.as_deref().unwrap_or("nobody"),));
    let yes = |b: bool| if b { "yes" } else { "no" };
    out.push_str(&format!("  policy {}; view settled {}; matured {}; majority in view {}\n",
        match e.policy {
            eccluster_proto::duravip::Policy::Available => "available",
            eccluster_proto::duravip::Policy::Majority => "majority",
        },
        yes(e.settled),
        yes(e.mature),
        yes(e.quorum)));
    match &e.moved {
        Some(m) => {
            out.push_str(&format!("  move: to {} by operation {}\n", m.host, m.operation));
        }
        None => out.push_str("  move: none\n"),
    }
    match &e.preference {
        Some(p) => {
            out.push_str(&format!("  preference: {p} ({})\n", if e.preference_live { "live" } else { "not live" }));
        }
        None => out.push_str("  preference: none\n"),
    }
    out.push_str(&format!("  spread: {} address(es) per node, {} node(s) one more\n", e.quota, e.quota_extra));
    out.push_str("  candidates, highest score first:\n");
    for c in &e.candidates {
        let claim = match &c.claim {
            Some(h) if h.released => format!("released {} ms ago", h.age_ms),
            Some(h) => format!(
                "claimed (move {}) {} ms ago{}",
                h.operation,
                h.age_ms,
                if h.active { "" } else { ", lapsed" }
            ),
            None => "no claim heard".to_owned(),
        };
        let pref = if c.preferred { ", preferred" } else { "" };
        out.push_str(&format!("    {:<16} score {}  load {}{pref}  {claim}\n", c.name, c.score, c.load));
    }
    out.push_str(&format!("  this node: {}\n", e.holding.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use eccluster_proto::duravip::{HoldingState, MoveRecord, Policy, VipState};

    fn table() -> VipTable {
        VipTable {
            node: "east1".into(),
            policy: Policy::Available,
            settled: true,
            view: vec!["east1".into(), "east2".into()],
            view_stable_secs: 5420,
            config_stable_secs: 5409,
            vips: vec![VipState {
                addr: "10.1.1.1".parse().expect("ip"),
                binding: "b<1>".into(),
                owner: Some("east2".into()),
                elected: Some("east2".into()),
                holding: HoldingState::Idle,
                ownership: "owned",
                safety: "safe",
                moved: Some(MoveRecord { host: "east2".into(), operation: "3.4".into() }),
                preference: None,
                candidates: vec!["east1".into(), "east2".into()],
            }],
        }
    }

    fn view(plumbing: &BTreeMap<IpAddr, Plumbing>) -> View<'_> {
        static NONE: BTreeMap<IpAddr, String> = BTreeMap::new();
        View { plumbing, errors: &NONE, now: Instant::now() }
    }

    #[test]
    fn duravip_show_text_is_momentums_layout_with_the_owner_starred() {
        let plumbing = BTreeMap::new();
        let text = reply(&Reply::Vips { table: table(), tables: false }, Format::Text, &view(&plumbing));
        assert_eq!(
            text,
            "DuraVIP State:\n10.1.1.1/b<1>: (owned,safe) multivip\n\t[view stable for 5420 seconds]\n\
             \t[configuration stable for 5409 seconds]\n\t[moved to east2 by operation 3.4]\n    \teast1 multivip\n \
             *  \teast2 multivip\n"
        );
    }

    #[test]
    fn duravip_tables_are_well_formed_xml_in_momentums_shape() {
        let plumbing = BTreeMap::new();
        let x = reply(&Reply::Vips { table: table(), tables: true }, Format::Text, &view(&plumbing));
        assert!(x.starts_with("<VIPStateTable>\n  <group_vips_by_name>\n    <VIPs>\n      <VIP>\n"), "{x}");
        assert!(x.contains("<Name>b&lt;1&gt;</Name>"), "escaped: {x}");
        assert!(x.contains("<Private_Name>#ec0#east2</Private_Name>"), "{x}");
        let mut reader = quick_xml::Reader::from_str(&x);
        let mut depth = 0i32;
        loop {
            match reader.read_event().expect("well-formed") {
                quick_xml::events::Event::Start(_) => depth += 1,
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
    }

    #[test]
    fn a_unicast_points_to_retrieve_node_and_a_broadcast_to_retrieve() {
        let plumbing = BTreeMap::new();
        let id = OpId { epoch: 7, seq: 2 };
        let unicast = Reply::Submitted { id, target: Target::Node("east1".into()), targets: vec!["east1".into()], command: "version".into() };
        let text = reply(&unicast, Format::Text, &view(&plumbing));
        assert_eq!(text, "Operation 7.2 sent to 1 node (node east1): east1\nUse 'retrieve_node east1 version' to read the answer.\n");
        let broadcast = Reply::Submitted { id, target: Target::Cluster, targets: vec!["a".into(), "b".into()], command: "version".into() };
        let text = reply(&broadcast, Format::Text, &view(&plumbing));
        assert!(text.ends_with("Use 'retrieve version' to read the answers.\n"), "{text}");
    }

    #[test]
    fn errors_name_the_command_and_usage_stands_alone() {
        use eccluster_proto::node::CommandError;
        assert_eq!(error("unicast", &CommandError::NotAHost("x".into())), "unicast: x is not a member of the cluster\n");
        assert_eq!(error("retrieve", &CommandError::Usage("retrieve COMMAND")), "usage: retrieve COMMAND\n");
    }
}
