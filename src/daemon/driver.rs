//! The one loop of a member daemon: it owns the member's node core (`eccluster_proto::node`),
//! the transport, the timers and the DuraVIP actuator, and answers console requests. Every
//! turn is short: hand an input to the core, then perform what it outputs. Nothing here
//! blocks; external programs run in tracked tasks and report back, and a manager's journal is
//! written and fsynced by its own thread while the outputs that must wait for it are held
//! (`group_commit`). The running configuration and the `config` command are in `config.rs`:
//! its file reads and writes run on blocking threads and report back like programs do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use eccluster_proto::membership::{ClusterEvent, MembershipConfig, Roster};
use eccluster_proto::node::{Channel, DuravipSetup, Format, Input, Node, NodeConfig, Output, Requester, Timer};
use eccluster_proto::ops::{AnswerStatus, Op, OpsConfig};
use eccluster_proto::segments::Segments;
use eccluster_proto::{MemberId, Role};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;
use tracing::{debug, error, info, warn};

mod config;
mod console;
mod follow;

use super::control_cache::ControlCache;
use super::group_commit::{Held, JournalWriter, Progress};
use crate::actuator::{Action, Actuator, ActuatorReport};
use crate::commands::{self, render, CommandContext, Dispatch};
use crate::config::duravip::DuravipSettings;
use super::stop::StopProgress;
use crate::console::frame::{Reply, Status};
use crate::console::listener::{Job, Listener, ListenerConfig};
use crate::console::tcp::TcpConsole;
use crate::console::request::{parse_line, Request};
use crate::registry::{self, ExternalCommand, Registry};
use crate::tls::TlsIdentity;
use crate::transport::{Received, Transport, TransportEvent};

/// Everything a member daemon needs, validated.
pub struct DaemonConfig {
    /// Node or manager.
    pub role: Role,
    /// Our member name (a host of the segment file).
    pub name: String,
    /// The segment file, parsed.
    pub segments: Segments,
    /// Where the segment file came from (for `info`).
    pub segments_path: PathBuf,
    /// Our certificate, key and the cluster CA.
    pub tls: TlsIdentity,
    /// The Control_Listener: socket path and bounds.
    pub console: ListenerConfig,
    /// The Control_Listener's TCP listeners, logins, authorization and audit log.
    pub access: crate::console::remote::AccessConfig,
    /// Our incarnation for this run.
    pub incarnation: u64,
    /// The manager epoch of this run (managers only).
    pub epoch: u64,
    /// SWIM tuning.
    pub membership: MembershipConfig,
    /// Operations tuning.
    pub ops: OpsConfig,
    /// Operator-declared commands (nodes).
    pub registry: Registry,
    /// DuraVIP bindings, policy and plumbing.
    pub duravip: DuravipSettings,
    /// The configuration file, re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    /// Limits on incoming QUIC connections (`ECCluster_Listener { }`).
    pub listener: crate::transport::Limits,
    /// `Metrics_Listener { }`: where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<crate::config::metrics::MetricsListener>,
    /// Managers: the journal of operations and results (`Control_Cache`); `None` keeps them
    /// in memory only.
    pub control_cache: Option<PathBuf>,
    /// Managers: the cluster page (`Cluster_Page { }`).
    pub page: Option<crate::page::PageConfig>,
    /// The configuration as read at start (an empty tree without `-c`): the running
    /// configuration the `config` command starts from.
    pub tree: crate::config::Scope,
    /// What `tree` says. The fields above are what is in effect; they differ from these only
    /// for settings that wait for a restart.
    pub settings: super::Settings,
    /// Reads settings from configuration trees the way the start did.
    pub reader: super::SettingsReader,
    /// Nodes following the configuration repository (`--cluster-boot`), and whether the
    /// configuration read at start is the working copy's.
    pub follow: Option<(super::follow::FollowSettings, bool)>,
}

/// An external program, or file work of the `config` command, finished; a console session
/// with an open transaction closed; or a console batch can go on.
enum Done {
    Op(eccluster_proto::ops::OpId, registry::Outcome),
    Console(oneshot::Sender<Reply>, registry::Outcome),
    Config(config::ConfigDone),
    SessionClosed(u64),
    Fetched(Result<super::follow::Fetched, super::follow::FetchError>),
    /// The rest of a console batch, once the command it waited for is answered.
    Resume(std::collections::VecDeque<Job>),
}

/// A console request answered by the core, waiting for its reply.
struct Pending {
    format: Format,
    /// The command's name (`unicast`, `cluster duravip move`), to prefix errors with.
    name: String,
    reply: oneshot::Sender<Reply>,
}

/// The name of the command `words` start with: its keywords before the first argument.
fn command_name(words: &[String]) -> String {
    let lower: Vec<String> = words.iter().take(3).map(|w| w.to_ascii_lowercase()).collect();
    let n = match lower.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["cluster", "duravip", ..] => 3,
        ["subcluster", ..] => 2,
        _ => 1,
    };
    lower[..n.min(lower.len())].join(" ")
}

/// The state of one daemon, owned by its loop.
struct Daemon {
    cfg: DaemonConfig,
    node: Node,
    transport: Transport,
    timers: DelayQueue<Timer>,
    pending: BTreeMap<u64, Pending>,
    next_request: u64,
    started: Instant,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    done: mpsc::Sender<Done>,
    /// Applies DuraVIP ownership to the machine (members with bindings).
    actuator: Option<Actuator>,
    /// The last failure of the actuator per address, shown by `cluster duravip show`.
    plumbing_errors: BTreeMap<std::net::IpAddr, String>,
    /// Managers: the journal file's writer.
    journal: Option<JournalWriter>,
    /// Outputs waiting for journal writes before them to be on disk.
    held: Held<Output>,
    /// How many of them are console replies.
    held_replies: usize,
    /// Why the journal cannot be written, as last told to the core.
    journal_fault: Option<String>,
    /// The running configuration and the `config` transactions of the console sessions.
    config: crate::commands::config::ConfigStore,
    /// Sessions with a transaction whose closing is being watched.
    watched: std::collections::BTreeSet<u64>,
    /// `config` commands of operations, run once the drain that found them is over: applying
    /// a configuration drains the core itself, and a drain must not run inside another.
    deferred: std::collections::VecDeque<(Request, eccluster_proto::ops::OpId)>,
    /// Nodes: following the configuration repository.
    following: Option<follow::Following>,
    /// Managers with a cluster page: its snapshots.
    page: Option<crate::page::Publisher>,
}

/// The node core's configuration for this daemon.
fn node_config(cfg: &DaemonConfig, id: MemberId) -> NodeConfig {
    let mut roster = Roster::new();
    for h in &cfg.segments.hosts {
        roster.insert(&h.name, h.socket_addr(), &h.subcluster);
    }
    NodeConfig {
        id,
        roster,
        managers: cfg.segments.managers(),
        membership: cfg.membership.clone(),
        ops: cfg.ops.clone(),
        epoch: cfg.epoch,
        duravip: DuravipSetup { bindings: cfg.duravip.bindings.clone(), config: cfg.duravip.core.clone() },
    }
}

/// Runs a member until `shutdown` is cancelled (or a console `shutdown`), then leaves the
/// cluster gracefully, recording in `progress` what the stop is doing. The stop takes at most
/// `STOP_BUDGET`: console requests still waiting are answered at once, programs still running
/// are killed, and nothing is awaited without a bound.
pub async fn run(cfg: DaemonConfig, shutdown: CancellationToken, progress: StopProgress) -> Result<()> {
    let host = cfg
        .segments
        .host(&cfg.name)
        .with_context(|| format!("{} is not a host of {}", cfg.name, cfg.segments_path.display()))?
        .clone();
    let addrs = cfg.segments.hosts.iter().map(|h| (h.name.clone(), h.socket_addr())).collect();
    let tracker = TaskTracker::new();
    let (transport, mut net_rx) = Transport::bind(host.socket_addr(), &cfg.tls, addrs, cfg.listener, tracker.clone(), shutdown.clone())?;

    // Bind the console before joining: a daemon whose console cannot listen fails at start.
    // Each connection has at most one request in flight, so the channel never needs more room
    // than the console has connections; when it is full a connection waits (back-pressure).
    let slots = cfg.console.max_connections + cfg.access.tcp.iter().map(|t| t.bounds.max_connections).sum::<usize>();
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<Job>(slots.max(1));
    let gates = cfg.access.build()?;
    let console = Listener::bind(&cfg.console).await?.with_gate(gates.gate(cfg.access.unix));
    let mut remote = Vec::new();
    for tcp in &cfg.access.tcp {
        remote.push(TcpConsole::bind(tcp, &cfg.tls, gates.gate(tcp.policy)).await?);
    }
    let remote_addrs: Vec<String> = remote.iter().map(|r| r.local_addr().to_string()).collect();
    for tcp in remote {
        let (jobs_tx, listener_shutdown) = (jobs_tx.clone(), shutdown.clone());
        tracker.spawn(async move {
            if let Err(e) = tcp.run(jobs_tx, listener_shutdown.clone()).await {
                error!(error = %format!("{e:#}"), "console listener failed; shutting down");
                listener_shutdown.cancel();
            }
        });
    }
    let mut scrapes = crate::metrics::member::start(cfg.metrics.as_ref(), &cfg.name, &tracker, &shutdown).await?;
    let listener_shutdown = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = console.run(jobs_tx, listener_shutdown.clone()).await {
            error!(error = %format!("{e:#}"), "console listener failed; shutting down");
            listener_shutdown.cancel();
        }
    });

    // The cluster page, like the console, is bound before joining: one that cannot listen
    // stops the start.
    let page = match &cfg.page {
        Some(page) => Some(crate::page::start(page, &cfg.tls, &tracker, shutdown.clone())?),
        None => None,
    };

    let id = MemberId {
        name: cfg.name.clone(),
        addr: host.socket_addr(),
        role: cfg.role,
        subcluster: host.subcluster.clone(),
        incarnation: cfg.incarnation,
    };
    info!(member = %id, role = %cfg.role, subcluster = %id.subcluster, "starting");
    if cfg.role == Role::Manager {
        info!(epoch = cfg.epoch, "sequencing operations");
    }
    if !cfg.duravip.bindings.is_empty() {
        info!(addresses = cfg.duravip.bindings.len(), policy = ?cfg.duravip.core.policy, "managing DuraVIP addresses");
    }
    let mut node = Node::new(node_config(&cfg, id), rand::make_rng()).context("DuraVIP configuration")?;
    let journal = match (&cfg.control_cache, cfg.role) {
        (Some(path), Role::Manager) => {
            let (cache, records) = ControlCache::open(path)?;
            if !records.is_empty() {
                node.recover(now(), &records);
            }
            Some(JournalWriter::start(cache)?)
        }
        (None, Role::Manager) => {
            warn!("no state directory and no Logs {{ Control_Cache }}: operations and results do not survive a manager restart");
            None
        }
        _ => None,
    };
    // The actuator outlives the loop: after the graceful leave it still releases what this
    // node held, then stops once its queue is empty (or after ACTUATOR_GRACE).
    // Every node runs one, with bindings or not, so a reload can add the first binding.
    let actuator_stop = CancellationToken::new();
    let actuator_tracker = TaskTracker::new();
    let (actuator, mut reports) = if cfg.role == Role::Node {
        let (a, r) = Actuator::start(&cfg.duravip, &actuator_tracker, actuator_stop.clone())?;
        (Some(a), Some(r))
    } else {
        (None, None)
    };
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(1024);
    let store = crate::commands::config::ConfigStore::new(cfg.config_path.clone(), cfg.tree.clone(), commands::program(cfg.role));
    let following = cfg.follow.clone().map(|(settings, loaded)| follow::Following::new(settings, cfg.reader.clone(), loaded));
    let mut d = Daemon {
        cfg,
        node,
        transport,
        timers: DelayQueue::new(),
        pending: BTreeMap::new(),
        next_request: 0,
        started: Instant::now(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        done: done_tx,
        actuator,
        plumbing_errors: BTreeMap::new(),
        journal,
        held: Held::default(),
        held_replies: 0,
        journal_fault: None,
        config: store,
        watched: std::collections::BTreeSet::new(),
        deferred: std::collections::VecDeque::new(),
        following,
        page,
    };
    let mut synced = d.journal.as_ref().map(JournalWriter::subscribe);
    d.node.start(now());
    d.report_running();
    if let Some(timing) = d.following.as_ref().map(follow::Following::timing) {
        d.node.config_follow(now(), timing);
    }
    d.drain();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing SIGHUP handler")?;
    // The console is bound and the endpoint up; the loop below answers from its first turn.
    let remote_console = remote_addrs.iter().map(|a| format!(" and {a}")).collect::<String>();
    super::notify::ready(&format!(
        "{} {} serving: console {}{remote_console}, cluster {}",
        commands::program(d.cfg.role),
        d.cfg.name,
        d.cfg.console.path.display(),
        host.socket_addr()
    ));

    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(()) = hangup.recv() => d.sighup(),
            Some(expired) = d.timers.next(), if !d.timers.is_empty() => {
                d.input(Input::Timer(expired.into_inner()));
            }
            Some(event) = net_rx.recv() => d.handle_net(event),
            Some(done) = done_rx.recv() => d.handle_done(done),
            Some(report) = next_report(&mut reports) => d.handle_report(report),
            () = crate::page::tick(&mut d.page) => {
                if let Some(page) = &mut d.page {
                    page.publish(&d.node);
                }
                continue;
            }
            // Journal writes reached the disk: what waited for them goes out (in the drain).
            Some(()) = next_sync(&mut synced) => d.journal_progress(),
            // A scrape of the metrics: a copy of the counters, made here, encoded elsewhere.
            Some(request) = crate::metrics::member::next_request(&mut scrapes) => {
                if request.send(d.node.stats()).is_err() {
                    debug!("a metrics scrape went away before its figures");
                }
            }
            // While console replies wait for an fsync, new requests wait in the channel: they
            // could not be journaled before the next fsync anyway, and taken together once it
            // is done, their operations travel to each node in one message. Not while the
            // journal fails: then they are taken, and refused at once.
            Some(job) = jobs_rx.recv(), if d.held_replies == 0 || d.journal_fault.is_some() => {
                let mut taken = d.take_job(job);
                // Take whatever else is queued in the same turn, up to a bound on the turn's
                // commands (a batch is taken whole): operations submitted together travel
                // together.
                while taken < TURN_COMMANDS {
                    match jobs_rx.try_recv() {
                        Ok(job) => taken += d.take_job(job),
                        Err(_) => break,
                    }
                }
            }
        }
        d.drain();
        d.run_deferred();
    }

    // The stop. Each step is bounded, and the whole within STOP_BUDGET: the process's hard
    // deadline (daemon::stop) must never be what ends a stop.
    let stopping = Instant::now();
    super::notify::stopping(&format!("{} {} stopping: leaving the cluster", commands::program(d.cfg.role), d.cfg.name));
    // Operations already sequenced are acknowledged once on disk, not refused.
    progress.set("writing the journal");
    d.settle_journal(JOURNAL_GRACE).await;
    progress.set("answering the console requests in flight");
    d.abandon_console(&mut jobs_rx);
    info!("leaving the cluster");
    progress.set("leaving the cluster");
    d.node.leave(now());
    d.drain();
    d.settle_journal(JOURNAL_GRACE).await;
    if let Some(writer) = d.journal.take() {
        if writer.synced() == writer.submitted() {
            writer.stop();
        } else {
            // The disk did not answer in time: the thread is left to finish on its own.
            warn!("the control cache is still being written; not waiting for it");
        }
    }
    // Dropping the handle lets the actuator finish the releases queued by the leave.
    d.actuator = None;
    // QUIC datagrams have no delivery event to await; give the leave notices a moment on the
    // wire before the endpoint closes (closing discards what is still queued).
    tokio::time::sleep(Duration::from_millis(100)).await;
    progress.set("closing the QUIC endpoint");
    d.transport.close().await;
    progress.set("waiting for the DuraVIP actuator's releases");
    actuator_tracker.close();
    if tokio::time::timeout(ACTUATOR_GRACE, actuator_tracker.wait()).await.is_err() {
        warn!("the DuraVIP actuator did not finish its releases in time; stopping it (the addresses expire on their own)");
        actuator_stop.cancel();
        let left = STOP_BUDGET.saturating_sub(stopping.elapsed());
        if tokio::time::timeout(left, actuator_tracker.wait()).await.is_err() {
            warn!("the DuraVIP actuator did not stop; leaving it");
        }
    }
    tracker.close();
    progress.set(format!("waiting for {} tasks (console connections, peer connections, commands)", tracker.len()));
    let left = STOP_BUDGET.saturating_sub(stopping.elapsed());
    if tokio::time::timeout(left, tracker.wait()).await.is_err() {
        warn!(tasks = tracker.len(), "tasks still running at the end of the stop budget; exiting without them");
    }
    Ok(())
}

/// Console commands one turn of the loop takes, besides the rest of a batch it started.
const TURN_COMMANDS: usize = 256;

/// How long a stopping manager waits for the journal writes it has queued to reach the disk.
const JOURNAL_GRACE: Duration = Duration::from_secs(2);

/// How long a stopping daemon waits for the actuator to release its addresses.
const ACTUATOR_GRACE: Duration = Duration::from_secs(5);

/// The longest the stop of the loop may take; below `stop::HARD_DEADLINE`, so that the
/// deadline only ever ends a stop that is stuck where nothing can time it out.
const STOP_BUDGET: Duration = Duration::from_secs(9);

/// The next actuator report, or never when there is no actuator.
async fn next_report(reports: &mut Option<mpsc::Receiver<ActuatorReport>>) -> Option<ActuatorReport> {
    match reports {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The next change of the journal's synced ticket, or never when there is no journal (or its
/// writer is gone).
async fn next_sync(synced: &mut Option<watch::Receiver<Progress>>) -> Option<()> {
    match synced {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Daemon {
    /// Hands an input to the core, logging what it refuses.
    fn input(&mut self, input: Input<'_>) {
        let peer = match &input {
            Input::Datagram { from, .. } | Input::Message { from, .. } => *from,
            _ => "-",
        };
        if let Err(error) = self.node.handle(now(), input) {
            warn!(%peer, %error, "refused input");
        }
    }

    fn handle_net(&mut self, event: TransportEvent) {
        match self.transport.handle(event) {
            Some(Received::Datagram(peer, bytes)) => self.input(Input::Datagram { from: &peer, payload: &bytes }),
            Some(Received::Message(peer, bytes)) => self.input(Input::Message { from: &peer, payload: &bytes }),
            None => {}
        }
    }

    /// The actuator did (or failed to do) something to an address.
    fn handle_report(&mut self, report: ActuatorReport) {
        let ActuatorReport { addr, action, outcome } = report;
        match outcome {
            Ok(()) => {
                if matches!(action, Action::Acquire | Action::Release) {
                    self.plumbing_errors.remove(&addr);
                }
                match action {
                    Action::Renew | Action::Announce => debug!(%addr, %action, "duravip actuator"),
                    _ => info!(%addr, %action, "duravip actuator"),
                }
            }
            Err(why) => {
                error!(%addr, %action, error = %why, "duravip actuator failed");
                self.plumbing_errors.insert(addr, format!("{action} failed: {why}"));
            }
        }
    }

    fn handle_done(&mut self, done: Done) {
        match done {
            Done::Op(op, outcome) => {
                let status = if outcome.ok { AnswerStatus::Ok } else { AnswerStatus::Error };
                self.input(Input::Executed { op, status, body: outcome.body });
            }
            Done::Console(reply, outcome) => {
                let r = if outcome.ok { Reply::ok(outcome.body) } else { Reply::failed(outcome.body) };
                if reply.send(r).is_err() {
                    debug!("console client went away before its answer");
                }
            }
            Done::Config(done) => self.config_done(done),
            Done::SessionClosed(session) => self.session_closed(session),
            Done::Fetched(result) => self.fetched(result),
            Done::Resume(batch) => self.run_batch(batch),
        }
    }

    fn dispatch(&mut self, request: &Request) -> Dispatch {
        if let Some(reply) = commands::revisions::handle(&mut self.node, now(), request) {
            return Dispatch::Reply(reply);
        }
        if let Some(reply) = commands::holders::handle(&self.node, now(), request) {
            return Dispatch::Reply(reply);
        }
        let config_info = match &self.following {
            Some(f) => f.info(self.node.config_follower().map(|follower| follower.newest())),
            None => Vec::new(),
        };
        let mut ctx = CommandContext {
            role: self.cfg.role,
            node: &self.node,
            registry: &self.cfg.registry,
            segments: &self.cfg.segments,
            segments_path: &self.cfg.segments_path,
            console: &self.cfg.console.path,
            started: self.started,
            transport: &mut self.transport,
            shutdown: &self.shutdown,
            config_info,
        };
        commands::handle(&mut ctx, request)
    }

    fn spawn_external(
        &self,
        cmd: ExternalCommand,
        rest: Vec<String>,
        line: &str,
        done: impl FnOnce(registry::Outcome) -> Done + Send + 'static,
    ) {
        let tx = self.done.clone();
        let id = self.node.identity();
        let env = vec![
            ("EC_COMMAND", line.to_owned()),
            ("EC_NODE_NAME", id.name.clone()),
            ("EC_SUB_CLUSTER", id.subcluster.clone()),
        ];
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            // A stopping daemon does not wait for programs: dropping the run kills the program,
            // and dropping `done` with it lets the console answer that the daemon is stopping.
            let outcome = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    debug!(program = %cmd.program.display(), "stopping: killing a running program");
                    return;
                }
                outcome = registry::run(&cmd, &rest, &env) => outcome,
            };
            if tx.send(done(outcome)).await.is_err() {
                debug!("daemon loop gone; dropping a command result");
            }
        });
    }

    /// Runs an operation's command that is the shell's: built-in commands at once, declared
    /// programs in a task.
    fn execute(&mut self, op: Op) {
        let request = match parse_line(&op.command) {
            Ok(r) => r,
            Err(e) => {
                self.input(Input::Executed { op: op.id, status: AnswerStatus::Error, body: format!("{e}\n") });
                return;
            }
        };
        if crate::commands::config::is_config(&request.words) {
            self.deferred.push_back((request, op.id));
            return;
        }
        match self.dispatch(&request) {
            Dispatch::Reply(r) => {
                let status = if r.status == Status::Ok { AnswerStatus::Ok } else { AnswerStatus::Error };
                self.input(Input::Executed { op: op.id, status, body: r.body });
            }
            Dispatch::External(cmd, rest) => {
                let id = op.id;
                self.spawn_external(cmd, rest, &op.command, move |o| Done::Op(id, o));
            }
        }
    }

    /// Performs the core's outputs until it has none left, and those held for journal writes
    /// now on disk. The outputs are taken a batch at a time: the batch's journal writes go to
    /// the writer thread as one submission, and the rest of the batch is held behind them (and
    /// behind anything held already) until the writer reports them durable; a batch with
    /// nothing to wait for is performed at once. So nothing is sent or acknowledged before
    /// what it depends on is on disk, and the loop does not wait for the disk meanwhile.
    fn drain(&mut self) {
        let mut batch = Vec::new();
        loop {
            if let Some(synced) = self.journal.as_ref().map(JournalWriter::synced) {
                while let Some(output) = self.held.pop_ready(synced) {
                    if is_console_reply(&output) {
                        self.held_replies -= 1;
                    }
                    self.perform(output);
                }
            }
            batch.extend(std::iter::from_fn(|| self.node.poll_output()));
            if batch.is_empty() {
                return;
            }
            if self.journal.is_some() {
                // A refusal acknowledges nothing: it is not held behind the disk.
                let (refusals, rest): (Vec<_>, Vec<_>) = batch.drain(..).partition(Output::is_refusal);
                batch = rest;
                for refusal in refusals {
                    self.perform(refusal);
                }
            }
            if let Some(journal) = &mut self.journal {
                let mut writes = Vec::new();
                let mut rest = Vec::with_capacity(batch.len());
                for output in batch.drain(..) {
                    match output {
                        Output::Journal(write) => writes.push(write),
                        other => rest.push(other),
                    }
                }
                batch = rest;
                if !writes.is_empty() {
                    journal.submit(writes);
                }
                if !self.held.is_empty() || journal.synced() < journal.submitted() {
                    let ticket = journal.submitted();
                    for output in batch.drain(..) {
                        self.held_replies += usize::from(is_console_reply(&output));
                        self.held.push(ticket, output);
                    }
                    continue;
                }
            }
            for output in batch.drain(..) {
                self.perform(output);
            }
        }
    }

    /// The journal writer published progress: tells the core when its writes start or stop
    /// failing (the drain that follows performs what was released).
    fn journal_progress(&mut self) {
        let fault = self.journal.as_ref().and_then(JournalWriter::fault);
        if fault != self.journal_fault {
            self.journal_fault = fault.clone();
            self.node.journal_failed(now(), fault);
        }
    }

    /// At the stop: waits (at most `within`) until every journal write queued is on disk, and
    /// performs what was held for it.
    async fn settle_journal(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while let Some(journal) = &self.journal {
            let target = journal.submitted();
            let mut synced = journal.subscribe();
            let caught_up = tokio::time::timeout_at(deadline, synced.wait_for(|s| s.synced >= target)).await;
            self.drain();
            match caught_up {
                Ok(Ok(_)) if self.held.is_empty() => return,
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    warn!(held = self.held.len(), "the control cache did not reach the disk in time; what waits for it is not performed");
                    return;
                }
            }
        }
    }

    /// Performs one output (journal writes go to the writer thread in [`Daemon::drain`]).
    fn perform(&mut self, output: Output) {
        match output {
            Output::Send { to, addr, channel: Channel::Datagram, payload } => self.transport.send(&to, addr, payload),
            Output::Send { to, addr, channel: Channel::Stream, payload } => {
                self.transport.send_message(&to, addr, payload)
            }
            Output::SetTimer { after, timer } => {
                self.timers.insert(timer, after);
            }
            Output::Event(event) => log_event(&event),
            Output::Execute(op) => self.execute(op),
            Output::Reply { to, result } => self.reply(to, result),
            Output::Acquire(addr) => {
                info!(%addr, "holding DuraVIP address");
                if let Some(Err(e)) = self.actuator.as_ref().map(|a| a.acquire(addr)) {
                    self.plumbing_errors.insert(addr, e.to_string());
                }
            }
            Output::Release(addr) => {
                info!(%addr, "released DuraVIP address");
                if let Some(Err(e)) = self.actuator.as_ref().map(|a| a.release(addr)) {
                    self.plumbing_errors.insert(addr, e.to_string());
                }
            }
            Output::Announce(addr) => {
                info!(%addr, "another holder gave way: announcing DuraVIP address again");
                if let Some(Err(e)) = self.actuator.as_ref().map(|a| a.announce(addr)) {
                    self.plumbing_errors.insert(addr, e.to_string());
                }
            }
            Output::Completed(id) => debug!(op = %id, "operation complete"),
            Output::ConfigFetch(revisions) => {
                if self.following.is_some() {
                    debug!(revisions = %super::follow::show(&revisions), "newer configuration revisions announced; pulling");
                    self.start_fetch();
                } else {
                    debug!(revisions = %super::follow::show(&revisions), "newer configuration revisions announced; this node follows no repository (no --cluster-boot)");
                    // Said as the reason it runs none, so the manager stops telling it.
                    self.node.config_running(now(), eccluster_proto::revisions::Revisions::new(), Some(follow::NOT_FOLLOWING.to_owned()));
                }
            }
            Output::Journal(_) => {}
        }
    }

    /// Renders a core's answer for the console that asked, or as an operation's answer.
    fn reply(&mut self, to: Requester, result: Result<eccluster_proto::node::Reply, eccluster_proto::node::CommandError>) {
        let view = render::View { plumbing: &self.cfg.duravip.plumbing, errors: &self.plumbing_errors, now: now() };
        match to {
            Requester::Console(n) => {
                let Some(pending) = self.pending.remove(&n) else { return };
                let answer = match &result {
                    Ok(reply) => Reply::ok(render::reply(reply, pending.format, &view)),
                    Err(e) => Reply::failed(render::error(&pending.name, e)),
                };
                if pending.reply.send(answer).is_err() {
                    debug!("console client went away before its answer");
                }
            }
            Requester::Operation { id, format } => {
                let (status, body) = match &result {
                    Ok(reply) => (AnswerStatus::Ok, render::reply(reply, format, &view)),
                    Err(e) => (AnswerStatus::Error, format!("{e}\n")),
                };
                self.input(Input::Executed { op: id, status, body });
            }
        }
    }
}

fn is_console_reply(output: &Output) -> bool {
    matches!(output, Output::Reply { to: Requester::Console(_), .. })
}

fn log_event(event: &ClusterEvent) {
    match event {
        ClusterEvent::MemberUp(m) => info!(member = %m.name, incarnation = m.incarnation, "member up"),
        ClusterEvent::MemberDown(m) => info!(member = %m.name, incarnation = m.incarnation, "member down"),
        ClusterEvent::MemberRenewed { from, to } => {
            info!(member = %to.name, from = from.incarnation, to = to.incarnation, "member restarted")
        }
        ClusterEvent::Joined => info!("joined the cluster"),
        ClusterEvent::Isolated => warn!("no live peers: isolated"),
        ClusterEvent::Rejoined(m) => warn!(incarnation = m.incarnation, "we were declared down; rejoined"),
    }
}
