//! The console commands that belong to the cores of a member — on a manager `broadcast`,
//! `subcluster broadcast`, `unicast`, `retrieve`, `subcluster retrieve`, `retrieve_node`,
//! `flush control cache`; on a node `cluster oplog` and `cluster duravip ...` — parsed from
//! console words into [`Command`]s, run by [`Node`](super::Node), and answered with data
//! ([`Reply`]) that the shells render. No I/O and no console text here.

use std::net::IpAddr;
use std::time::Instant;

use super::line::join_words;
use super::{Forward, Node, Output, Requester, RoleCore};
use crate::duravip::{Announced, Moved, VipExplanation, VipTable, NO_TERM};
use crate::error::{DuraVipError, OpsError};
use crate::ids::Role;
use crate::ops::{OpId, OpMessage, RetrieveRow, Target};

/// Which answers a `retrieve` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveScope {
    /// `retrieve CMD`: the latest cluster or subcluster broadcast.
    Cluster,
    /// `subcluster retrieve SC CMD`.
    Subcluster(String),
    /// `retrieve_node NODE CMD`.
    Node(String),
}

/// A console command of the cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Manager: sequence `command` for `target` (`broadcast`, `subcluster broadcast`,
    /// `unicast`).
    Submit {
        /// Who it is for.
        target: Target,
        /// The command the nodes run, normalised ([`join_words`]).
        command: String,
    },
    /// Manager: read the results buffer.
    Retrieve {
        /// Whose answers.
        scope: RetrieveScope,
        /// The command text, normalised as when it was sent.
        command: String,
    },
    /// Manager: `flush control cache`.
    FlushResults,
    /// Node: `cluster oplog`.
    OpLog,
    /// Node: `cluster duravip show`, or `show tables` when `tables`.
    DuravipShow {
        /// `show tables` (Momentum prints it as XML).
        tables: bool,
    },
    /// Node: `cluster duravip move IP to HOST`. Applied as an operation it moves the
    /// address; typed at a node's console it is sent to the manager to be ordered for the
    /// whole cluster.
    DuravipMove {
        /// The address.
        addr: IpAddr,
        /// The host it goes to.
        host: String,
    },
    /// Node: `cluster duravip announce view`.
    DuravipAnnounce,
    /// Node: `cluster duravip explain IP`: why the view elects the owner it elects.
    DuravipExplain(IpAddr),
}

/// The answer to a command, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An operation was sequenced (or, from a node, forwarded and sequenced).
    Submitted {
        /// The operation.
        id: OpId,
        /// Who it is for.
        target: Target,
        /// Its fixed target set, by name.
        targets: Vec<String>,
        /// The command.
        command: String,
    },
    /// Rows of the results buffer.
    Retrieved {
        /// The command the rows answer.
        command: String,
        /// One row per target node.
        rows: Vec<RetrieveRow>,
    },
    /// `flush control cache`: entries dropped.
    Flushed(usize),
    /// `cluster oplog`.
    OpLog {
        /// Operations applied by this incarnation in all.
        total: u64,
        /// The most recent applied ids, oldest first.
        applied: Vec<OpId>,
    },
    /// `cluster duravip show` / `show tables`.
    Vips {
        /// The state table.
        table: VipTable,
        /// `show tables` was asked for.
        tables: bool,
    },
    /// `cluster duravip move` applied as an operation.
    Moved(Moved),
    /// `cluster duravip announce view`.
    Announced(Announced),
    /// `cluster duravip explain`.
    Explained(Box<VipExplanation>),
}

/// Why a command was refused or failed. Unless the variant says otherwise nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The words do not make the command; the usage says what does.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A word that must be an IP address is not one.
    #[error("'{0}' is not an IP address")]
    NotAnAddress(String),
    /// No host of the segment file has this name.
    #[error("{0} is not a member of the cluster")]
    NotAHost(String),
    /// `unicast` to a manager: operations are applied by nodes.
    #[error("{0} is a manager; unicast runs a command on a node (the manager's own console answers it directly)")]
    NotANode(String),
    /// No subcluster has this name.
    #[error("no subcluster named {0}")]
    NoSubcluster(String),
    /// The operations core refused.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// The DuraVIP core refused.
    #[error(transparent)]
    DuraVip(#[from] DuraVipError),
    /// The node runs no DuraVIP core.
    #[error("DuraVIP is not enabled on this node (no Binding with Enable_Duravip = true)")]
    DuravipOff,
    /// Nothing was broadcast with this command text (or it was flushed).
    #[error("no broadcast of '{0}' in the results buffer (never sent, or flushed)")]
    NotSent(String),
    /// Nothing was broadcast with this command text to this subcluster.
    #[error("no broadcast of '{command}' to subcluster {subcluster} in the results buffer")]
    NotSentTo {
        /// The subcluster.
        subcluster: String,
        /// The command.
        command: String,
    },
    /// The node has no answer to this command.
    #[error("no answer from {node} to '{command}' in the results buffer")]
    NoAnswer {
        /// The node.
        node: String,
        /// The command.
        command: String,
    },
    /// The manager refused a `duravip move` before sequencing it; nothing moves.
    #[error("duravip move refused: {0}")]
    MoveRefused(String),
    /// No manager is up to order a command typed at a node.
    #[error("no manager is reachable to order this command; run it from eccmgr as 'broadcast {0}'")]
    NoManager(String),
    /// The manager refused a command forwarded to it.
    #[error("the manager refused it: {0}")]
    Forwarded(String),
    /// The manager did not answer a forwarded command in time; it may still have run.
    #[error("the manager {0} did not answer in time; check 'retrieve' on the manager")]
    ForwardTimeout(String),
}

fn eq(word: Option<&String>, want: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(want))
}

fn is(words: &[String], pattern: &[&str]) -> bool {
    words.len() == pattern.len() && words.iter().zip(pattern).all(|(w, p)| w.eq_ignore_ascii_case(p))
}

fn rest(words: &[String], from: usize) -> Option<String> {
    let r = words.get(from..)?;
    (!r.is_empty()).then(|| join_words(r))
}

fn address(word: &str) -> Result<IpAddr, CommandError> {
    word.parse().map_err(|_| CommandError::NotAnAddress(word.to_owned()))
}

impl Command {
    /// The command of the cores of a member of `role` that `words` (format prefix removed)
    /// make; `None` when they are not one (the shell's own commands). Wrong arguments to one
    /// of these commands are an error saying the usage.
    pub fn parse(role: Role, words: &[String]) -> Option<Result<Command, CommandError>> {
        match role {
            Role::Manager => Self::parse_manager(words),
            Role::Node => Self::parse_node(words),
        }
    }

    fn parse_manager(w: &[String]) -> Option<Result<Command, CommandError>> {
        let first = w.first()?;
        let usage = |u| Some(Err(CommandError::Usage(u)));
        if first.eq_ignore_ascii_case("broadcast") {
            let Some(command) = rest(w, 1) else { return usage("broadcast COMMAND") };
            return Some(Ok(Command::Submit { target: Target::Cluster, command }));
        }
        if first.eq_ignore_ascii_case("unicast") {
            let (Some(node), Some(command)) = (w.get(1), rest(w, 2)) else { return usage("unicast NODE COMMAND") };
            return Some(Ok(Command::Submit { target: Target::Node(node.to_ascii_lowercase()), command }));
        }
        if first.eq_ignore_ascii_case("subcluster") && eq(w.get(1), "broadcast") {
            let (Some(sc), Some(command)) = (w.get(2), rest(w, 3)) else {
                return usage("subcluster broadcast SUBCLUSTER COMMAND");
            };
            return Some(Ok(Command::Submit { target: Target::Subcluster(sc.clone()), command }));
        }
        if first.eq_ignore_ascii_case("subcluster") && eq(w.get(1), "retrieve") {
            let (Some(sc), Some(command)) = (w.get(2), rest(w, 3)) else {
                return usage("subcluster retrieve SUBCLUSTER COMMAND");
            };
            return Some(Ok(Command::Retrieve { scope: RetrieveScope::Subcluster(sc.clone()), command }));
        }
        if first.eq_ignore_ascii_case("retrieve") {
            let Some(command) = rest(w, 1) else { return usage("retrieve COMMAND") };
            return Some(Ok(Command::Retrieve { scope: RetrieveScope::Cluster, command }));
        }
        if first.eq_ignore_ascii_case("retrieve_node") {
            let (Some(node), Some(command)) = (w.get(1), rest(w, 2)) else { return usage("retrieve_node NODE COMMAND") };
            return Some(Ok(Command::Retrieve { scope: RetrieveScope::Node(node.to_ascii_lowercase()), command }));
        }
        if is(w, &["flush", "control", "cache"]) {
            return Some(Ok(Command::FlushResults));
        }
        None
    }

    fn parse_node(w: &[String]) -> Option<Result<Command, CommandError>> {
        if is(w, &["cluster", "oplog"]) {
            return Some(Ok(Command::OpLog));
        }
        if !(eq(w.first(), "cluster") && eq(w.get(1), "duravip")) {
            return None;
        }
        let args = &w[2..];
        Some(if is(args, &["show"]) {
            Ok(Command::DuravipShow { tables: false })
        } else if is(args, &["show", "tables"]) {
            Ok(Command::DuravipShow { tables: true })
        } else if is(args, &["announce", "view"]) {
            Ok(Command::DuravipAnnounce)
        } else if args.len() == 4 && eq(args.first(), "move") && eq(args.get(2), "to") {
            address(&args[1]).map(|addr| Command::DuravipMove { addr, host: args[3].clone() })
        } else if args.len() == 2 && eq(args.first(), "explain") {
            address(&args[1]).map(Command::DuravipExplain)
        } else {
            Err(CommandError::Usage(
                "cluster duravip show [tables] | move IP to HOST | announce view | explain IP",
            ))
        })
    }

    /// The command as a node runs it (the text a forwarded command is broadcast with).
    fn text(&self) -> Option<String> {
        match self {
            Command::DuravipMove { addr, host } => Some(format!("cluster duravip move {addr} to {host}")),
            _ => None,
        }
    }
}

impl Node {
    /// Runs a command of the cores for `to`; the answer goes out as [`Output::Reply`] (later,
    /// for a forwarded command).
    pub(super) fn run_command(&mut self, now: Instant, to: Requester, command: Command) {
        if let Some(result) = self.execute(now, &to, command) {
            // What the command journaled goes out first: it must be on disk before the answer.
            self.take_journal();
            self.outputs.push_back(Output::Reply { to, result });
        }
    }

    /// Runs `command`; `None` when the answer comes later.
    fn execute(&mut self, now: Instant, to: &Requester, command: Command) -> Option<Result<Reply, CommandError>> {
        let term = match to {
            Requester::Operation { id, .. } => (id.epoch, id.seq),
            Requester::Console(_) => NO_TERM,
        };
        Some(match command {
            Command::Submit { target, command } => self.submit(now, target, command),
            Command::Retrieve { scope, command } => self.retrieve(scope, command),
            Command::FlushResults => match &mut self.role {
                RoleCore::Manager(seq) => Ok(Reply::Flushed(seq.flush_results())),
                RoleCore::Node(_) => Err(CommandError::Usage("flush control cache (on the manager)")),
            },
            Command::OpLog => match &self.role {
                RoleCore::Node(applier) => {
                    Ok(Reply::OpLog { total: applier.applied_total(), applied: applier.applied().copied().collect() })
                }
                RoleCore::Manager(_) => Err(CommandError::Usage("cluster oplog (on a node)")),
            },
            Command::DuravipShow { tables } => match &self.duravip {
                Some(vip) => Ok(Reply::Vips { table: vip.table(now), tables }),
                None => Err(CommandError::DuravipOff),
            },
            Command::DuravipExplain(addr) => match &self.duravip {
                Some(vip) => vip
                    .explain(now, addr)
                    .map(|e| Reply::Explained(Box::new(e)))
                    .ok_or(CommandError::DuraVip(DuraVipError::UnknownAddress(addr))),
                None => Err(CommandError::DuravipOff),
            },
            Command::DuravipAnnounce => match &mut self.duravip {
                Some(vip) => Ok(Reply::Announced(vip.announce_view(now, term))),
                None => Err(CommandError::DuravipOff),
            },
            Command::DuravipMove { addr, host } => {
                if matches!(to, Requester::Console(_)) {
                    let text = Command::DuravipMove { addr, host }.text().unwrap_or_default();
                    return self.forward(to.clone(), text);
                }
                match &mut self.duravip {
                    Some(vip) => vip.move_to(now, term, addr, &host).map(Reply::Moved).map_err(CommandError::from),
                    None => Err(CommandError::DuravipOff),
                }
            }
        })
    }

    pub(super) fn submit(&mut self, now: Instant, target: Target, command: String) -> Result<Reply, CommandError> {
        let target = match target {
            Target::Node(n) if self.managers.contains(&n) => return Err(CommandError::NotANode(n)),
            Target::Node(n) if self.roster.contains(&n) => Target::Node(n),
            Target::Node(n) => return Err(CommandError::NotAHost(n)),
            Target::Subcluster(sc) => match self.roster.subcluster(&sc) {
                Some(canonical) => Target::Subcluster(canonical.to_owned()),
                None => return Err(CommandError::NoSubcluster(sc)),
            },
            Target::Cluster => Target::Cluster,
        };
        self.check_move(&target, &command)?;
        let RoleCore::Manager(seq) = &mut self.role else {
            return Err(CommandError::Usage("broadcast COMMAND (on the manager)"));
        };
        let submitted = seq.submit(now, &command, target.clone())?;
        Ok(Reply::Submitted { id: submitted.id, target, targets: submitted.targets, command })
    }

    /// A `cluster duravip move` is checked before it is sequenced: the address must be a
    /// binding the manager knows, the host a live node that may hold it, and the operation
    /// must reach every node (only then do the old and the new owner switch in the same step).
    fn check_move(&self, target: &Target, command: &str) -> Result<(), CommandError> {
        let Ok(request) = super::line::parse_line(command) else { return Ok(()) };
        let Some(parsed) = Command::parse_node(&request.words) else { return Ok(()) };
        let (addr, host) = match parsed {
            Ok(Command::DuravipMove { addr, host }) => (addr, host),
            Ok(_) => return Ok(()),
            Err(e) => return Err(CommandError::MoveRefused(e.to_string())),
        };
        let refuse = |why: String| Err(CommandError::MoveRefused(why));
        if *target != Target::Cluster {
            return refuse(format!(
                "a move must reach every node so the old and the new owner switch in the same step: \
                 use 'broadcast cluster duravip move {addr} to {host}'"
            ));
        }
        let Some(binding) = self.bindings.get(&addr) else {
            if self.bindings.is_empty() {
                return refuse(format!(
                    "{addr}: the manager knows no DuraVIP binding (give eccmgr the nodes' configuration with -c)"
                ));
            }
            let known: Vec<String> = self.bindings.keys().map(ToString::to_string).collect();
            return refuse(format!("{addr} is not a DuraVIP address of the cluster (addresses: {})", known.join(", ")));
        };
        let RoleCore::Manager(seq) = &self.role else { return Ok(()) };
        let live: Vec<&str> = seq.live_nodes().map(|(name, _)| name).collect();
        if !live.contains(&host.as_str()) {
            let short = host.split('.').next().unwrap_or(&host);
            let hint = if short != host && live.contains(&short) {
                format!(" (node names are short names: did you mean {short}?)")
            } else if self.managers.contains(&host.to_ascii_lowercase()) {
                " (it is a manager; managers hold no addresses)".to_owned()
            } else if self.roster.contains(&host.to_ascii_lowercase()) {
                " (it is down)".to_owned()
            } else {
                String::new()
            };
            return refuse(format!("{host} is not a live node of the cluster{hint}"));
        }
        if !(binding.candidates.is_empty() || binding.candidates.contains(&host)) {
            return refuse(format!(
                "{host} is not a candidate for {addr} (binding {}; candidates: {})",
                binding.name,
                binding.candidates.join(", ")
            ));
        }
        Ok(())
    }

    fn retrieve(&self, scope: RetrieveScope, command: String) -> Result<Reply, CommandError> {
        let RoleCore::Manager(seq) = &self.role else {
            return Err(CommandError::Usage("retrieve COMMAND (on the manager)"));
        };
        let results = seq.results();
        let rows = match scope {
            RetrieveScope::Cluster => results.retrieve(&command).ok_or_else(|| CommandError::NotSent(command.clone()))?,
            RetrieveScope::Subcluster(sc) => {
                let sc = self.roster.subcluster(&sc).ok_or_else(|| CommandError::NoSubcluster(sc.clone()))?.to_owned();
                results
                    .retrieve_subcluster(&sc, &command)
                    .ok_or_else(|| CommandError::NotSentTo { subcluster: sc, command: command.clone() })?
            }
            RetrieveScope::Node(node) => match results.retrieve_node(&node, &command) {
                Some(row) => vec![row],
                None if !self.roster.contains(&node) => return Err(CommandError::NotAHost(node)),
                None => return Err(CommandError::NoAnswer { node, command }),
            },
        };
        Ok(Reply::Retrieved { command, rows })
    }

    /// Sends a command typed at this node to a live manager to be broadcast; the answer comes
    /// back as [`OpMessage::Submitted`].
    fn forward(&mut self, to: Requester, command: String) -> Option<Result<Reply, CommandError>> {
        let live = self.membership.members();
        let manager = live
            .iter()
            .find(|m| m.id.role == Role::Manager && m.state == crate::membership::MemberState::Up && !m.local)
            .map(|m| m.id.name.clone());
        let Some(manager) = manager else { return Some(Err(CommandError::NoManager(command))) };
        self.next_forward += 1;
        let request = self.next_forward;
        self.send_ops(&manager, &OpMessage::Submit { request, command });
        self.outputs.push_back(Output::SetTimer {
            after: self.ops.answer_timeout,
            timer: super::Timer::Forwarded(request),
        });
        self.forwards.insert(request, Forward { to, manager });
        None
    }
}
