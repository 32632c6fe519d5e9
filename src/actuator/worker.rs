//! The actuator's worker task: the clean slate at start, then requests one at a time in
//! order, with the timers of held addresses (lifetime renewal, second announcement round)
//! served between requests. The only place that changes the machine, through the kind's
//! backend; it never talks to the event loop except through reports.

use std::collections::{BTreeMap, BTreeSet};
use std::future;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::Connection;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::netlink::{lifetime_secs, local_addr, Netlink};
use super::script::{Script, Verb};
use super::{announce, error_text, Action, ActuatorError, ActuatorReport, Request};
use crate::config::duravip::{ActuatorKind, Announce, DuravipSettings, Plumbing};

/// How the worker changes the machine.
enum Backend {
    /// Nothing changes; requests are only reported.
    Record,
    Netlink(Netlink),
    Script(Script),
}

/// An address put on the machine: the DuraVIP address or one of its followers.
#[derive(Debug, Clone)]
struct Target {
    addr: IpAddr,
    prefix_len: u8,
    interface: Option<String>,
    /// How a follower is named in messages; `None` for the DuraVIP address itself.
    follower: Option<String>,
}

impl Target {
    /// Prefixes `error` with the follower's name, if this is a follower.
    fn describe(&self, error: &ActuatorError) -> String {
        match &self.follower {
            Some(name) => format!("follower {name}: {}", error_text(error)),
            None => error_text(error),
        }
    }
}

/// The DuraVIP address first, then its followers; a follower without an interface of its
/// own goes on its address's interface.
fn targets(vip: IpAddr, plumbing: &Plumbing) -> Vec<Target> {
    let own = Target {
        addr: vip,
        prefix_len: plumbing.prefix_len,
        interface: plumbing.interface.clone(),
        follower: None,
    };
    let followers = plumbing.followers.iter().map(|follower| Target {
        addr: follower.addr,
        prefix_len: follower.prefix_len,
        interface: follower.interface.clone().or_else(|| plumbing.interface.clone()),
        follower: Some(follower.name.clone()),
    });
    std::iter::once(own).chain(followers).collect()
}

/// How soon an address that could not be added is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Timers of an address this node holds.
#[derive(Debug, Default)]
struct Held {
    /// When to renew its lifetime (netlink only).
    renew_at: Option<Instant>,
    /// When to send the second round of announcements (netlink only).
    announce_at: Option<Instant>,
    /// Targets whose last add or renewal failed (and was reported); they are not announced.
    failed: BTreeSet<IpAddr>,
}

impl Held {
    fn next(&self) -> Option<Instant> {
        [self.renew_at, self.announce_at].into_iter().flatten().min()
    }
}

/// The worker's state; owned by its task.
pub(super) struct Worker {
    backend: Backend,
    /// The rtnetlink connection, polled alongside the worker (netlink only).
    connection: Option<Connection<RouteNetlinkMessage>>,
    plumbing: BTreeMap<IpAddr, Plumbing>,
    announce: Announce,
    renew_every: Duration,
    held: BTreeMap<IpAddr, Held>,
    reports: mpsc::Sender<ActuatorReport>,
}

impl Worker {
    /// Opens what the kind needs, in the caller's network namespace.
    pub(super) fn new(
        settings: &DuravipSettings,
        reports: mpsc::Sender<ActuatorReport>,
    ) -> anyhow::Result<Worker> {
        let (backend, connection) = match &settings.actuator {
            ActuatorKind::None => (Backend::Record, None),
            ActuatorKind::Netlink => {
                let (netlink, connection) =
                    Netlink::open(settings.lifetime).context("opening the rtnetlink socket")?;
                (Backend::Netlink(netlink), Some(connection))
            }
            ActuatorKind::Script { program, timeout } => {
                (Backend::Script(Script { program: program.clone(), timeout: *timeout }), None)
            }
        };
        Ok(Worker {
            backend,
            connection,
            plumbing: settings.plumbing.clone(),
            announce: settings.announce,
            // From the lifetime the kernel is given (whole seconds, bounded), so that adding it
            // to an instant cannot overflow.
            renew_every: Duration::from_secs(u64::from(lifetime_secs(settings.lifetime))) / 3,
            held: BTreeMap::new(),
            reports,
        })
    }

    /// The task: runs until `shutdown`, or until the request channel is closed and drained.
    pub(super) async fn run(mut self, requests: mpsc::Receiver<Request>, shutdown: CancellationToken) {
        let connection = self.connection.take();
        let netlink_io = async move {
            match connection {
                Some(connection) => connection.await,
                None => future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.cancelled() => debug!("duravip actuator stopped by shutdown"),
            () = netlink_io => error!("rtnetlink connection closed: duravip actuator stopped"),
            () = self.serve(requests) => debug!("duravip actuator stopped: queue closed and drained"),
        }
    }

    async fn serve(&mut self, mut requests: mpsc::Receiver<Request>) {
        self.clean_slate().await;
        loop {
            let next = self.held.values().filter_map(Held::next).min();
            tokio::select! {
                // Timers first: a renewal that waits behind a burst of requests could let a
                // held address expire.
                biased;
                () = at(next) => self.handle_timers().await,
                request = requests.recv() => match request {
                    Some(Request::Acquire(addr)) => self.acquire(addr).await,
                    Some(Request::Release(addr)) => self.release(addr).await,
                    Some(Request::Announce(addr)) => {
                        if let (Some(plumbing), true) = (self.plumbing.get(&addr), self.held.contains_key(&addr)) {
                            let targets = targets(addr, plumbing);
                            self.announce_round(addr, &targets).await;
                        }
                    }
                    Some(Request::Reconfigure(new)) => {
                        let (plumbing, announce) = *new;
                        self.plumbing = plumbing;
                        self.announce = announce;
                        self.report(IpAddr::from([0, 0, 0, 0]), Action::Reconfigure, Ok(())).await;
                    }
                    None => return,
                },
            }
        }
    }

    async fn report(&self, addr: IpAddr, action: Action, outcome: Result<(), String>) {
        debug!(%addr, %action, ?outcome, "duravip actuator report");
        let report = ActuatorReport { addr, action, outcome };
        if let Err(unread) = self.reports.send(report).await {
            let report = unread.0;
            match &report.outcome {
                Ok(()) => {
                    info!(addr = %report.addr, action = %report.action, "duravip action done (no reader)")
                }
                Err(error) => {
                    error!(addr = %report.addr, action = %report.action, %error, "duravip action failed (no reader)")
                }
            }
        }
    }

    /// Removes every configured address and follower found on the machine (netlink), or runs
    /// `del` for each (script).
    async fn clean_slate(&self) {
        match &self.backend {
            Backend::Record => {}
            Backend::Netlink(netlink) => {
                let wanted: BTreeSet<IpAddr> =
                    self.plumbing.iter().flat_map(|(vip, p)| targets(*vip, p)).map(|t| t.addr).collect();
                let found = match netlink.find(&wanted).await {
                    Ok(found) => found,
                    Err(error) => {
                        let text = error_text(&error);
                        for vip in self.plumbing.keys() {
                            self.report(*vip, Action::CleanSlate, Err(text.clone())).await;
                        }
                        return;
                    }
                };
                for message in found {
                    let Some(addr) = local_addr(&message) else { continue };
                    let index = message.header.index;
                    let outcome = netlink.delete(message).await.map_err(|error| error_text(&error));
                    if outcome.is_ok() {
                        info!(%addr, index, "duravip address left from an earlier run removed");
                    }
                    self.report(addr, Action::CleanSlate, outcome).await;
                }
            }
            Backend::Script(script) => {
                for (vip, plumbing) in &self.plumbing {
                    let outcome = run_script(script, Verb::Del, targets(*vip, plumbing).iter().rev()).await;
                    self.report(*vip, Action::CleanSlate, outcome).await;
                }
            }
        }
    }

    async fn acquire(&mut self, vip: IpAddr) {
        let Some(plumbing) = self.plumbing.get(&vip).cloned() else {
            let error = ActuatorError::UnknownAddress { addr: vip };
            return self.report(vip, Action::Acquire, Err(error_text(&error))).await;
        };
        let targets = targets(vip, &plumbing);
        let Some((own, followers)) = targets.split_first() else { return };
        let now = Instant::now();
        let own_outcome = match &self.backend {
            Backend::Record => Ok(()),
            Backend::Script(script) => run_script(script, Verb::Add, [own].into_iter()).await,
            Backend::Netlink(netlink) => add(netlink, own).await.map_err(|error| own.describe(&error)),
        };
        if let Err(error) = own_outcome {
            // Without the address itself its followers serve no one: they are left alone. The
            // netlink actuator keeps trying (an interface that comes up a moment later, a
            // transient netlink error) at every retry until the address is released.
            if matches!(self.backend, Backend::Netlink(_)) {
                let held = Held { renew_at: Some(now + RETRY), announce_at: None, failed: BTreeSet::from([vip]) };
                self.held.insert(vip, held);
            }
            return self.report(vip, Action::Acquire, Err(error)).await;
        }
        let mut failed = BTreeSet::new();
        let outcome = match &self.backend {
            Backend::Record => {
                info!(%vip, "duravip acquire recorded (no actuator)");
                Ok(())
            }
            Backend::Script(script) => run_script(script, Verb::Add, followers.iter()).await,
            Backend::Netlink(netlink) => {
                let mut errors = Vec::new();
                for follower in followers {
                    if let Err(error) = add(netlink, follower).await {
                        failed.insert(follower.addr);
                        errors.push(follower.describe(&error));
                    }
                }
                joined(errors)
            }
        };
        let netlink = matches!(self.backend, Backend::Netlink(_));
        let held = if netlink {
            let second_round = self.announce.repeat > 0 && !self.announce.delay.is_zero();
            Held {
                renew_at: Some(now + self.renew_every),
                announce_at: second_round.then(|| now.checked_add(self.announce.delay)).flatten(),
                failed,
            }
        } else {
            Held::default()
        };
        self.held.insert(vip, held);
        self.report(vip, Action::Acquire, outcome).await;
        if netlink {
            self.announce_round(vip, &targets).await;
        }
    }

    async fn release(&mut self, vip: IpAddr) {
        self.held.remove(&vip);
        let Some(plumbing) = self.plumbing.get(&vip).cloned() else {
            let error = ActuatorError::UnknownAddress { addr: vip };
            return self.report(vip, Action::Release, Err(error_text(&error))).await;
        };
        // Followers first, the address itself last: the reverse of acquiring.
        let targets = targets(vip, &plumbing);
        let outcome = match &self.backend {
            Backend::Record => {
                info!(%vip, "duravip release recorded (no actuator)");
                Ok(())
            }
            Backend::Script(script) => run_script(script, Verb::Del, targets.iter().rev()).await,
            Backend::Netlink(netlink) => {
                let mut errors = Vec::new();
                for target in targets.iter().rev() {
                    if let Err(error) = netlink.remove(target.addr).await {
                        errors.push(target.describe(&error));
                    }
                }
                joined(errors)
            }
        };
        self.report(vip, Action::Release, outcome).await;
    }

    /// Renews and announces the held addresses whose time has come.
    async fn handle_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<IpAddr> = self
            .held
            .iter()
            .filter(|(_, held)| held.next().is_some_and(|at| at <= now))
            .map(|(vip, _)| *vip)
            .collect();
        for vip in due {
            let (Some(plumbing), Some(held)) = (self.plumbing.get(&vip), self.held.get(&vip)) else {
                // Its plumbing went with a reload: nothing left to renew.
                self.held.remove(&vip);
                continue;
            };
            let targets = targets(vip, plumbing);
            let renew = held.renew_at.is_some_and(|at| at <= now);
            let announce = held.announce_at.is_some_and(|at| at <= now);
            if renew {
                self.renew(vip, &targets, now).await;
            }
            if announce {
                if let Some(held) = self.held.get_mut(&vip) {
                    held.announce_at = None;
                }
                self.announce_round(vip, &targets).await;
            }
        }
    }

    /// Adds every target again (replacing, so the lifetime starts over). Reports when the set
    /// of failing targets changes, not at every renewal.
    async fn renew(&mut self, vip: IpAddr, targets: &[Target], now: Instant) {
        let Backend::Netlink(netlink) = &self.backend else { return };
        let mut failed = BTreeSet::new();
        let mut errors = Vec::new();
        for target in targets {
            if let Err(error) = add(netlink, target).await {
                failed.insert(target.addr);
                errors.push(target.describe(&error));
            }
        }
        let Some(held) = self.held.get_mut(&vip) else { return };
        // Targets that failed before and are plumbed now were never announced: announce them.
        let recovered: Vec<Target> =
            targets.iter().filter(|t| held.failed.contains(&t.addr) && !failed.contains(&t.addr)).cloned().collect();
        // An address that could not be added is retried soon; a plumbed one at the renewal.
        let wait = if failed.contains(&vip) { RETRY.min(self.renew_every) } else { self.renew_every };
        held.renew_at = Some(now + wait);
        if held.failed != failed {
            held.failed = failed;
            self.report(vip, Action::Renew, joined(errors)).await;
        }
        if !recovered.is_empty() {
            self.announce_round(vip, &recovered).await;
        }
    }

    /// Sends one round of announcements for the targets that are plumbed; reports failures.
    async fn announce_round(&self, vip: IpAddr, targets: &[Target]) {
        let Backend::Netlink(netlink) = &self.backend else { return };
        if self.announce.repeat == 0 {
            return;
        }
        let failed = self.held.get(&vip).map(|held| held.failed.clone()).unwrap_or_default();
        let mut errors = Vec::new();
        for target in targets.iter().filter(|target| !failed.contains(&target.addr)) {
            if let Err(error) = announce_one(netlink, target, self.announce.repeat).await {
                errors.push(target.describe(&error));
            }
        }
        if !errors.is_empty() {
            self.report(vip, Action::Announce, joined(errors)).await;
        }
    }
}

/// When `deadline` passes; never if there is none.
async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => future::pending().await,
    }
}

/// Sends `repeat` announcements of one target on its interface, from a blocking thread
/// (raw sockets block, if only briefly). Interfaces without ARP or an Ethernet address have
/// no neighbours to tell; frames sent on a link that is not running would be dropped
/// silently, so that is an error.
async fn announce_one(netlink: &Netlink, target: &Target, repeat: u32) -> Result<(), ActuatorError> {
    let interface = target.interface.as_deref().ok_or(ActuatorError::NoInterface { addr: target.addr })?;
    let link = netlink.link(interface).await?;
    let mac = match link.mac.filter(|mac| !mac.is_zero()) {
        Some(mac) if !link.noarp => mac,
        _ => {
            debug!(addr = %target.addr, interface, "no link-layer neighbours: nothing to announce");
            return Ok(());
        }
    };
    if !link.running {
        return Err(ActuatorError::LinkDown { addr: target.addr, interface: interface.to_owned() });
    }
    let frames = vec![announce::frame(mac, target.addr)];
    let sent = tokio::task::spawn_blocking(move || announce::send(&link, mac, &frames, repeat)).await;
    sent.unwrap_or_else(|join| Err(io::Error::other(format!("announcement thread failed: {join}")))).map_err(
        |source| ActuatorError::Announce { addr: target.addr, interface: interface.to_owned(), source },
    )
}

/// Adds one target on its interface (or renews it).
async fn add(netlink: &Netlink, target: &Target) -> Result<(), ActuatorError> {
    let interface = target.interface.as_deref().ok_or(ActuatorError::NoInterface { addr: target.addr })?;
    let link = netlink.link(interface).await?;
    netlink.add(&link, target.addr, target.prefix_len).await
}

/// Runs the program for each target in turn, carrying on past failures.
async fn run_script<'a>(
    script: &Script,
    verb: Verb,
    targets: impl Iterator<Item = &'a Target>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for target in targets {
        if let Err(error) = script.run(verb, target.addr, target.interface.as_deref()).await {
            errors.push(target.describe(&error));
        }
    }
    joined(errors)
}

/// `Ok` if nothing failed, else every failure in one text.
fn joined(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
