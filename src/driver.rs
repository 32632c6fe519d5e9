//! The one loop of a member daemon: it owns the membership core, the operations core
//! (sequencer on the manager, applier on a node), the transport and the timers, and answers
//! console commands. Every turn is short: decode, call a core, drain its outputs. Nothing
//! here blocks; external programs run in tracked tasks and report back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use eccluster_proto::membership::{ClusterEvent, Membership, MembershipConfig, Output, Roster, Timer};
use eccluster_proto::ops::{AnswerStatus, Applier, ApplierOutput, OpId, OpsConfig, Sequencer, SequencerOutput, SequencerTimer};
use eccluster_proto::segments::Segments;
use eccluster_proto::{wire, MemberId, Role};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;
use tracing::{debug, error, info, warn};

use crate::commands::{self, CommandContext, Dispatch, RoleState};
use crate::console::frame::Reply;
use crate::console::listener::{Job, Listener, ListenerConfig};
use crate::console::request::{parse_line, Request};
use crate::registry::{self, ExternalCommand, Registry};
use crate::tls::TlsIdentity;
use crate::transport::{Received, Transport};

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
    /// The Control_Listener socket path.
    pub console: PathBuf,
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
}

enum DriverTimer {
    Swim(Timer),
    Ops(SequencerTimer),
}

/// An external program finished.
enum Done {
    Op(OpId, registry::Outcome),
    Console(oneshot::Sender<Reply>, registry::Outcome),
}

enum RoleCore {
    Manager(Sequencer),
    Node(Applier),
}

/// The state of one daemon, owned by its loop.
struct Daemon {
    cfg: DaemonConfig,
    core: Membership,
    role: RoleCore,
    transport: Transport,
    timers: DelayQueue<DriverTimer>,
    addrs: BTreeMap<String, SocketAddr>,
    managers: BTreeSet<String>,
    started: Instant,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    done: mpsc::Sender<Done>,
}

/// Runs a member until `shutdown` is cancelled (or a console `shutdown`), then leaves the
/// cluster gracefully.
pub async fn run(cfg: DaemonConfig, shutdown: CancellationToken) -> Result<()> {
    let host = cfg
        .segments
        .host(&cfg.name)
        .with_context(|| format!("{} is not a host of {}", cfg.name, cfg.segments_path.display()))?
        .clone();
    let mut roster = Roster::new();
    let mut addrs = BTreeMap::new();
    for h in &cfg.segments.hosts {
        roster.insert(&h.name, h.socket_addr(), &h.subcluster);
        addrs.insert(h.name.clone(), h.socket_addr());
    }
    let managers = cfg.segments.subclusters.iter().filter_map(|s| s.manager.clone()).collect();
    let tracker = TaskTracker::new();
    let (transport, mut net_rx) =
        Transport::bind(host.socket_addr(), &cfg.tls, addrs.clone(), tracker.clone(), shutdown.clone())?;

    // Bind the console before joining: a daemon whose console cannot listen fails at start.
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<Job>(1024);
    let console = Listener::bind(&ListenerConfig::new(cfg.console.clone())).await?;
    let listener_shutdown = shutdown.clone();
    tracker.spawn(async move {
        if let Err(e) = console.run(jobs_tx, listener_shutdown.clone()).await {
            error!(error = %format!("{e:#}"), "console listener failed; shutting down");
            listener_shutdown.cancel();
        }
    });

    let id = MemberId {
        name: cfg.name.clone(),
        addr: host.socket_addr(),
        role: cfg.role,
        subcluster: host.subcluster.clone(),
        incarnation: cfg.incarnation,
    };
    info!(member = %id, role = %cfg.role, subcluster = %id.subcluster, "starting");
    let core = Membership::new(id, roster, cfg.membership.clone(), rand::make_rng());
    let role = match cfg.role {
        Role::Manager => {
            info!(epoch = cfg.epoch, "sequencing operations");
            RoleCore::Manager(Sequencer::new(cfg.epoch, cfg.ops.clone()))
        }
        Role::Node => RoleCore::Node(Applier::new(cfg.incarnation, cfg.ops.clone())),
    };
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(1024);
    let mut d = Daemon {
        cfg,
        core,
        role,
        transport,
        timers: DelayQueue::new(),
        addrs,
        managers,
        started: Instant::now(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        done: done_tx,
    };
    d.core.start(now());
    d.drain();

    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(expired) = d.timers.next(), if !d.timers.is_empty() => {
                match expired.into_inner() {
                    DriverTimer::Swim(t) => d.core.handle_timer(now(), t),
                    DriverTimer::Ops(t) => {
                        if let RoleCore::Manager(seq) = &mut d.role {
                            seq.handle_timer(now(), t);
                        }
                    }
                }
            }
            Some(event) = net_rx.recv() => d.handle_net(event),
            Some(done) = done_rx.recv() => d.handle_done(done),
            Some(job) = jobs_rx.recv() => {
                d.handle_job(job);
                // Take whatever else is queued in the same turn: operations submitted
                // together travel together.
                for _ in 0..255 {
                    match jobs_rx.try_recv() {
                        Ok(job) => d.handle_job(job),
                        Err(_) => break,
                    }
                }
            }
        }
        d.drain();
    }

    info!("leaving the cluster");
    d.core.leave(now());
    d.drain();
    // QUIC datagrams have no delivery event to await; give the leave notices a moment on the
    // wire before the endpoint closes (closing discards what is still queued).
    tokio::time::sleep(Duration::from_millis(100)).await;
    d.transport.close().await;
    tracker.close();
    tracker.wait().await;
    Ok(())
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Daemon {
    fn handle_net(&mut self, event: crate::transport::TransportEvent) {
        match self.transport.handle(event) {
            Some(Received::Datagram(peer, bytes)) => {
                if let Err(error) = self.core.handle_datagram(now(), &peer, &bytes) {
                    warn!(%peer, %error, "dropping datagram");
                }
            }
            Some(Received::Message(peer, bytes)) => {
                let message = match wire::decode_ops(&bytes) {
                    Ok(m) => m,
                    Err(error) => {
                        warn!(%peer, %error, "dropping undecodable operations message");
                        return;
                    }
                };
                let result = match &mut self.role {
                    RoleCore::Manager(seq) => seq.handle_message(now(), &peer, message),
                    RoleCore::Node(applier) => {
                        if !self.managers.contains(&peer) {
                            warn!(%peer, "dropping operations from a member that is not a manager");
                            return;
                        }
                        applier.handle_message(&peer, message)
                    }
                };
                if let Err(error) = result {
                    warn!(%peer, %error, "refused operations message");
                }
            }
            None => {}
        }
    }

    fn handle_done(&mut self, done: Done) {
        match done {
            Done::Op(id, outcome) => {
                if let RoleCore::Node(applier) = &mut self.role {
                    let status = if outcome.ok { AnswerStatus::Ok } else { AnswerStatus::Error };
                    applier.handle_executed(id, status, outcome.body);
                }
            }
            Done::Console(reply, outcome) => {
                let r = if outcome.ok { Reply::ok(outcome.body) } else { Reply::failed(outcome.body) };
                if reply.send(r).is_err() {
                    debug!("console client went away before its answer");
                }
            }
        }
    }

    fn dispatch(&mut self, request: &Request) -> Dispatch {
        let role_state = match &mut self.role {
            RoleCore::Manager(seq) => RoleState::Manager(seq),
            RoleCore::Node(applier) => RoleState::Node { applier, registry: &self.cfg.registry },
        };
        let mut ctx = CommandContext {
            role: self.cfg.role,
            membership: &self.core,
            segments: &self.cfg.segments,
            segments_path: &self.cfg.segments_path,
            console: &self.cfg.console,
            started: self.started,
            transport: &mut self.transport,
            shutdown: &self.shutdown,
            role_state,
        };
        commands::handle(&mut ctx, request)
    }

    fn handle_job(&mut self, (request, reply): Job) {
        match self.dispatch(&request) {
            Dispatch::Reply(answer) => {
                if reply.send(answer).is_err() {
                    debug!("console client went away before its answer");
                }
            }
            Dispatch::External(cmd, rest) => self.spawn_external(cmd, rest, &request.line, move |o| Done::Console(reply, o)),
        }
    }

    fn spawn_external(&self, cmd: ExternalCommand, rest: Vec<String>, line: &str, done: impl FnOnce(registry::Outcome) -> Done + Send + 'static) {
        let tx = self.done.clone();
        let id = self.core.identity();
        let env = vec![("EC_COMMAND", line.to_owned()), ("EC_NODE_NAME", id.name.clone()), ("EC_SUB_CLUSTER", id.subcluster.clone())];
        self.tracker.spawn(async move {
            let outcome = registry::run(&cmd, &rest, &env).await;
            if tx.send(done(outcome)).await.is_err() {
                debug!("daemon loop gone; dropping a command result");
            }
        });
    }

    /// Runs one operation on this node: built-in commands at once, declared programs in a task.
    fn execute(&mut self, op: eccluster_proto::ops::Op) {
        let request = match parse_line(&op.command) {
            Ok(r) => r,
            Err(e) => {
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.handle_executed(op.id, AnswerStatus::Error, format!("{e}\n"));
                }
                return;
            }
        };
        match self.dispatch(&request) {
            Dispatch::Reply(r) => {
                let status = if r.status == crate::console::frame::Status::Ok { AnswerStatus::Ok } else { AnswerStatus::Error };
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.handle_executed(op.id, status, r.body);
                }
            }
            Dispatch::External(cmd, rest) => {
                let id = op.id;
                self.spawn_external(cmd, rest, &op.command, move |o| Done::Op(id, o));
            }
        }
    }

    fn send_ops(&mut self, to: &str, message: &eccluster_proto::ops::OpMessage) {
        let Some(addr) = self.addrs.get(to).copied() else {
            warn!(member = to, "no address for operations message");
            return;
        };
        match wire::encode_ops(message) {
            Ok(bytes) => self.transport.send_message(to, addr, bytes),
            Err(error) => error!(member = to, %error, "cannot encode operations message"),
        }
    }

    /// Drains every core's outputs until all are empty (one core's output can feed another).
    fn drain(&mut self) {
        loop {
            let mut progress = false;
            while let Some(output) = self.core.poll_output() {
                progress = true;
                match output {
                    Output::Send { to, payload } => self.transport.send(&to.name, to.addr, payload),
                    Output::SetTimer { after, timer } => {
                        self.timers.insert(DriverTimer::Swim(timer), after);
                    }
                    Output::Event(event) => self.handle_event(event),
                }
            }
            match &mut self.role {
                RoleCore::Manager(seq) => {
                    if let Some(output) = seq.poll_output() {
                        progress = true;
                        match output {
                            SequencerOutput::Send { to, message } => self.send_ops(&to, &message),
                            SequencerOutput::SetTimer { after, timer } => {
                                self.timers.insert(DriverTimer::Ops(timer), after);
                            }
                            SequencerOutput::Completed(id) => debug!(op = %id, "operation complete"),
                        }
                    }
                }
                RoleCore::Node(applier) => {
                    if let Some(output) = applier.poll_output() {
                        progress = true;
                        match output {
                            ApplierOutput::Execute(op) => self.execute(op),
                            ApplierOutput::Send { to, message } => self.send_ops(&to, &message),
                        }
                    }
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn handle_event(&mut self, event: ClusterEvent) {
        let t = now();
        match &event {
            ClusterEvent::MemberUp(m) => {
                info!(member = %m.name, incarnation = m.incarnation, "member up");
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_member_up(t, m);
                }
            }
            ClusterEvent::MemberDown(m) => {
                info!(member = %m.name, incarnation = m.incarnation, "member down");
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_member_down(t, &m.name);
                }
            }
            ClusterEvent::MemberRenewed { from, to } => {
                info!(member = %to.name, from = from.incarnation, to = to.incarnation, "member restarted");
                if let RoleCore::Manager(seq) = &mut self.role {
                    seq.handle_member_up(t, to);
                }
            }
            ClusterEvent::Joined => info!("joined the cluster"),
            ClusterEvent::Isolated => warn!("no live peers: isolated"),
            ClusterEvent::Rejoined(m) => {
                warn!(incarnation = m.incarnation, "we were declared down; rejoined");
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.set_incarnation(m.incarnation);
                }
            }
        }
    }
}
