//! Console commands of a member daemon (manager or node) that are the shell's own — help,
//! version, membership, info, shutdown, declared programs — answered from the node core's
//! getters; and the rendering of the answers the node core gives to its own commands
//! ([`render`]). Commands are quick; nothing blocks.
//!
//! # Layout
//!
//! - `mod.rs`: dispatch of the shell's commands.
//! - [`output`]: membership and key/value output in text, XML and JSON.
//! - [`render`]: the node core's answers (operations, results, DuraVIP) as text, XML, JSON.
//! - [`config`]: the `config` command (running configuration, transactions) and its answers;
//!   the daemon loop applies what it plans.
//! - [`holders`]: the manager's `show cluster duravip`: who holds each DuraVIP address, as
//!   the nodes report it.
//! - [`revisions`]: the manager's `cluster config announce` and `show cluster config` (they
//!   change the node core, so the daemon loop runs them before the commands here).

use std::path::Path;
use std::time::Instant;

use eccluster_proto::membership::MemberState;
use eccluster_proto::node::Node;
use eccluster_proto::segments::Segments;
use eccluster_proto::Role;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::console::frame::Reply;
use crate::console::request::{Format, Request};
use crate::registry::{ExternalCommand, Registry};
use crate::transport::Transport;

pub mod config;
pub mod holders;
pub mod output;
pub mod render;
pub mod revisions;

/// How a command is answered.
pub enum Dispatch {
    /// At once.
    Reply(Reply),
    /// By running an operator-declared program (with the words typed after its name).
    External(ExternalCommand, Vec<String>),
}

/// What a command may look at.
pub struct CommandContext<'a> {
    /// Node or manager.
    pub role: Role,
    /// The member's node core.
    pub node: &'a Node,
    /// Operator-declared commands (nodes).
    pub registry: &'a Registry,
    /// The segment file.
    pub segments: &'a Segments,
    /// Where the segment file came from.
    pub segments_path: &'a Path,
    /// Our console socket.
    pub console: &'a Path,
    /// When the daemon started.
    pub started: Instant,
    /// The QUIC transport (connection counts, `debug drop connections`).
    pub transport: &'a mut Transport,
    /// Cancelled by `shutdown`.
    pub shutdown: &'a CancellationToken,
    /// Nodes following the configuration repository: lines for `cluster info`.
    pub config_info: Vec<(&'static str, String)>,
}

/// The program name operators know for a role.
pub fn program(role: Role) -> &'static str {
    match role {
        Role::Manager => "eccmgr",
        Role::Node => "ecnode",
    }
}

/// The manager's commands: (usage, what it does).
const MANAGER_HELP: &[(&str, &str)] = &[
    ("help", "show this list"),
    ("version", "show version information"),
    ("info", "show the cluster group and this manager"),
    ("show cluster membership", "list every member, its subcluster, role and state"),
    ("show cluster config", "newest revisions, what each node runs"),
    ("show cluster duravip", "who holds each DuraVIP address, as the nodes report"),
    ("cluster config announce REPO REV...", "tell the nodes REV of REPO is newest"),
    ("broadcast COMMAND", "run COMMAND on every live node, in order everywhere"),
    ("subcluster broadcast SC COMMAND", "run COMMAND on every live node of subcluster SC"),
    ("unicast NODE COMMAND", "run COMMAND on one node"),
    ("retrieve COMMAND", "the answers to the latest broadcast of COMMAND"),
    ("subcluster retrieve SC COMMAND", "the same, for the nodes of subcluster SC"),
    ("retrieve_node NODE COMMAND", "NODE's latest answer to COMMAND"),
    ("flush control cache", "forget every stored answer"),
];

/// The last of eccmgr's built-in commands, after the `config` commands.
const MANAGER_TAIL: &[(&str, &str)] = &[
    ("shutdown", "leave the cluster and stop eccmgr"),
    ("debug drop connections", "close every QUIC connection (peers reconnect)"),
];

/// The `config` commands, the same on managers and nodes.
const CONFIG_HELP: &[(&str, &str)] = &[
    ("config get [SCOPE...] OPTION", "an option as its scope sets it"),
    ("config eval [SCOPE...] OPTION", "the value in effect: enclosing scopes, then the default"),
    ("config set [SCOPE...] OPTION [=] VALUE", "change the running configuration"),
    ("config unset [SCOPE...] [OPTION]", "remove an option, or a scope with all it holds"),
    ("config show [SCOPE...] [OPTION]", "a scope's options and subscopes, or one option"),
    ("config showrecurse [SCOPE...]", "a scope and everything in it, in file syntax"),
    ("config locate SCOPE [REGEX]", "the path of every scope of a kind"),
    ("config begin [from scratch]", "start a transaction on this console"),
    ("config commit | rollback", "apply the transaction (the first commit wins) or drop it"),
    ("config replay", "the set and unset commands of the open transaction"),
    ("config reload [PATH]", "read the configuration file again and apply it"),
    ("config writeback [PATH]", "write the running configuration to its files"),
];

/// A node's built-in commands: (usage, what it does).
const NODE_HELP: &[(&str, &str)] = &[
    ("help", "show this list"),
    ("version", "show version information"),
    ("cluster help", "show the cluster commands"),
    ("cluster membership", "list every member, its subcluster, role and state"),
    ("cluster info", "show the operating status of this node"),
    ("cluster nodename", "show the name of this node"),
    ("cluster nodeaddr", "show the cluster protocol address of this node"),
    ("cluster oplog", "list the ids of the operations this node applied, in order"),
    ("cluster duravip show [tables]", "the DuraVIP addresses, who owns each, and the view"),
    ("cluster duravip explain IP", "why the view elects the owner of IP"),
    ("cluster duravip move IP to HOST", "move IP to HOST (ordered by the manager for every node)"),
    ("cluster duravip announce view", "restate what this node holds to the other nodes"),
];

/// The last of ecnode's built-in commands, after the `config` commands.
const NODE_TAIL: &[(&str, &str)] = &[
    ("shutdown", "leave the cluster and stop ecnode"),
    ("debug drop connections", "close every QUIC connection (peers reconnect)"),
];

/// A role's built-in commands, in help order.
fn help_rows(role: Role) -> Vec<(&'static str, &'static str)> {
    let (head, tail) = match role {
        Role::Manager => (MANAGER_HELP, MANAGER_TAIL),
        Role::Node => (NODE_HELP, NODE_TAIL),
    };
    [head, CONFIG_HELP, tail].concat()
}

/// `Commands:` and one line per command, the descriptions in one column.
fn command_list(commands: &[(&str, &str)]) -> String {
    let width = commands.iter().map(|(usage, _)| usage.len()).max().unwrap_or(0) + 2;
    let mut out = String::from("Commands:\n");
    for (usage, what) in commands {
        out.push_str(&format!("  {usage:<width$}{what}\n"));
    }
    out
}

const FORMAT_HELP: &str = "Prefix any command with 'xml' or 'json' for structured output.\n";

fn is(words: &[String], pattern: &[&str]) -> bool {
    words.len() == pattern.len() && words.iter().zip(pattern).all(|(w, p)| w.eq_ignore_ascii_case(p))
}

/// Answers one console request the node core does not own (from a console, or an operation
/// a node applies).
pub fn handle(ctx: &mut CommandContext<'_>, req: &Request) -> Dispatch {
    if ctx.role == Role::Node {
        if let Some((cmd, rest)) = ctx.registry.find(&req.words) {
            return Dispatch::External(cmd.clone(), rest.to_vec());
        }
    }
    Dispatch::Reply(builtin(ctx, req))
}

fn help(ctx: &CommandContext<'_>) -> String {
    match ctx.role {
        Role::Manager => format!("{}{FORMAT_HELP}", command_list(&help_rows(Role::Manager))),
        Role::Node => {
            let mut h = format!("{}{FORMAT_HELP}", command_list(&help_rows(Role::Node)));
            let names = ctx.registry.names();
            if !names.is_empty() {
                h.push_str("Declared commands (Control_Command):\n");
                for n in names {
                    h.push_str(&format!("  {n}\n"));
                }
            }
            h
        }
    }
}

fn builtin(ctx: &mut CommandContext<'_>, req: &Request) -> Reply {
    let w = &req.words;
    let manager = ctx.role == Role::Manager;
    if is(w, &["help"]) || (!manager && is(w, &["cluster", "help"])) {
        return Reply::ok(help(ctx));
    }
    if is(w, &["debug", "drop", "connections"]) {
        let n = ctx.transport.drop_connections();
        return Reply::ok(format!("dropped {n} connections\n"));
    }
    if is(w, &["version"]) {
        return version(ctx.role, req.format);
    }
    if is(w, &["shutdown"]) {
        ctx.shutdown.cancel();
        return Reply::ok(format!("{} shutting down\n", program(ctx.role)));
    }
    if (manager && is(w, &["show", "cluster", "membership"])) || (!manager && is(w, &["cluster", "membership"])) {
        return membership(ctx, req.format);
    }
    if (manager && is(w, &["info"])) || (!manager && is(w, &["cluster", "info"])) {
        return info(ctx, req.format);
    }
    if !manager && is(w, &["cluster", "nodename"]) {
        let name = &ctx.node.identity().name;
        return scalar("NodeName", "nodename", name, req.format);
    }
    if !manager && is(w, &["cluster", "nodeaddr"]) {
        let addr = ctx.node.identity().addr.to_string();
        return scalar("NodeAddr", "nodeaddr", &addr, req.format);
    }
    if manager && w.first().is_some_and(|f| f.eq_ignore_ascii_case("cluster")) {
        return Reply::failed(format!(
            "'{}' is a node command; on the manager use 'show cluster membership' or 'info'\n",
            req.line
        ));
    }
    Reply::failed(format!("unknown command '{}'; type 'help' for the list\n", req.line))
}

fn version(role: Role, format: Format) -> Reply {
    let v = env!("CARGO_PKG_VERSION");
    let p = program(role);
    Reply::ok(match format {
        Format::Text => format!(
            "##############################################\n\
             # {p} version: {v}\n\
             # eccluster: cluster membership and control over QUIC\n\
             ##############################################\n"
        ),
        Format::Xml => format!("<Version program=\"{p}\">{v}</Version>\n"),
        Format::Json => output::pretty(&json!({ "program": p, "version": v })),
    })
}

fn scalar(tag: &str, key: &str, value: &str, format: Format) -> Reply {
    Reply::ok(match format {
        Format::Text => format!("{value}\n"),
        Format::Xml => format!("<{tag}>{}</{tag}>\n", output::xml_escape(value)),
        Format::Json => output::pretty(&json!({ key: value })),
    })
}

fn membership(ctx: &CommandContext<'_>, format: Format) -> Reply {
    let rows = ctx.node.members();
    let now = tokio::time::Instant::now().into_std();
    Reply::ok(match format {
        Format::Text => output::membership_text(&rows, now),
        Format::Xml => output::membership_xml(&rows, now),
        Format::Json => output::membership_json(&rows, now),
    })
}

fn info(ctx: &mut CommandContext<'_>, format: Format) -> Reply {
    let me = ctx.node.identity();
    let rows = ctx.node.members();
    let count = |s: MemberState| rows.iter().filter(|r| r.state == s).count();
    let leader = rows
        .iter()
        .filter(|r| r.state == MemberState::Up)
        .map(|r| r.id.name.as_str())
        .min()
        .unwrap_or("nobody");
    let cfg = ctx.node.membership_config();
    let mut items = vec![
        ("Daemon", format!("{} [quic, swim]", me.addr)),
        ("Node Name", me.name.clone()),
        ("Node Type", if ctx.role == Role::Manager { "Manager" } else { "Momentum" }.to_owned()),
        ("Subcluster", me.subcluster.clone()),
        ("Incarnation", me.incarnation.to_string()),
        ("Uptime", format!("{}s", ctx.started.elapsed().as_secs())),
        (
            "Segments",
            format!(
                "{} ({} subclusters, {} hosts)",
                ctx.segments_path.display(),
                ctx.segments.subclusters.len(),
                ctx.segments.hosts.len()
            ),
        ),
        (
            "Members",
            format!(
                "{} known: {} up, {} suspect, {} down",
                rows.len(),
                count(MemberState::Up),
                count(MemberState::Suspect),
                count(MemberState::Down)
            ),
        ),
        ("Peers Connected", ctx.transport.connected().to_string()),
        (
            "Probe",
            format!(
                "every {} ms, ack within {} ms, down after {} ms of suspicion",
                cfg.probe_period.as_millis(),
                cfg.probe_rtt.as_millis(),
                cfg.suspect_to_down_after.as_millis()
            ),
        ),
        ("Control Group", "ec_console".to_owned()),
        ("Cluster Group", format!("ec_cluster ({leader} is leader)")),
        ("Console", ctx.console.display().to_string()),
    ];
    if let Some(seq) = ctx.node.sequencer() {
        items.push(("Epoch", seq.epoch().to_string()));
        items.push(("Operations In Flight", seq.in_flight().to_string()));
        items.push(("Results Buffered", seq.results().len().to_string()));
    }
    if let Some(applier) = ctx.node.applier() {
        items.push(("Operations Applied", applier.applied_total().to_string()));
        items.push(("Operations Waiting", applier.waiting().to_string()));
        let running = applier.running().map(|op| format!("{} ({})", op.id, op.command));
        items.push(("Operation Running", running.unwrap_or_else(|| "none".to_owned())));
    }
    if let Some(vip) = ctx.node.duravip() {
        items.push(("DuraVIP Addresses", format!("{} ({} held here)", ctx.node.bindings().len(), vip.held().count())));
    }
    items.extend(std::mem::take(&mut ctx.config_info));
    Reply::ok(output::fields("ClusterInfo", &items, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lines_put_every_description_in_one_column() {
        for role in [Role::Manager, Role::Node] {
            let list = help_rows(role);
            let text = command_list(&list);
            let columns: Vec<usize> = text
                .lines()
                .skip(1)
                .zip(&list)
                .map(|(line, (_, what))| line.find(what).expect("the description"))
                .collect();
            assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
            assert!(text.contains("  broadcast COMMAND") || role == Role::Node, "{text}");
            assert!(text.contains("  config writeback [PATH]") && text.contains("  shutdown "), "{text}");
        }
    }

    #[test]
    fn the_revision_commands_are_in_the_managers_help_only_and_fit_in_80_columns() {
        let manager = command_list(&help_rows(Role::Manager));
        let node = command_list(&help_rows(Role::Node));
        for usage in ["show cluster config", "cluster config announce REPO REV..."] {
            let line = manager.lines().find(|l| l.trim_start().starts_with(usage)).expect("a help row");
            assert!(line.len() <= 80, "{line}");
            assert!(!node.contains(usage), "{node}");
        }
    }
}
