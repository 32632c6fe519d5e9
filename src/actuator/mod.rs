//! The DuraVIP actuator: applies the ownership core's "acquire ADDR" / "release ADDR" to the
//! machine, away from the daemon's event loop. It decides nothing: which node holds what is
//! the core's business (`eccluster_proto::duravip`).
//!
//! # Contract
//!
//! - [`Actuator::start`] spawns one tracked worker task and returns the handle and a receiver
//!   of [`ActuatorReport`]s. The worker first makes a clean slate — it removes every DuraVIP
//!   address and follower it finds on the machine, as Momentum does at start, reporting each
//!   ([`Action::CleanSlate`]) — then performs requests strictly in the order they were made.
//! - [`Actuator::acquire`] and [`Actuator::release`] never wait: they queue the request on a
//!   bounded channel, and if it is full they log an error and return [`RequestError`]. The
//!   loop reads the outcome later from the reports: every acquire and release gets exactly one
//!   report; renewals and announcements report only failures (and a renewal that works again
//!   after failing). The loop must keep draining reports: while the report channel is full
//!   the worker waits, renewals included.
//! - Acquiring an address also plumbs its followers (the address first); releasing removes
//!   them (the followers first). A follower with no interface of its own uses its address's
//!   interface. If the address itself cannot be plumbed its followers are left alone; a
//!   follower that fails does not undo the address. A request for an address the settings do
//!   not know is reported as an error.
//! - Shutdown (the token) stops the worker at once, leaving held addresses in place: under the
//!   netlink actuator they expire on their own within `lifetime`, and the next start's clean
//!   slate removes whatever remains. Dropping the [`Actuator`] instead lets the worker finish
//!   the requests already queued (say, releases on a graceful leave) and then stop.
//!
//! # Kinds
//!
//! - [`ActuatorKind::None`]: requests are logged and reported as done; nothing is touched.
//! - [`ActuatorKind::Netlink`] (`netlink.rs`, `announce.rs`): addresses added over rtnetlink
//!   with a valid and preferred lifetime the worker renews every `lifetime / 3` (IPv6 without
//!   duplicate address detection), then announced with gratuitous ARP / unsolicited neighbour
//!   advertisements, `repeat` at once and `repeat` again after `delay`, on a timer that does
//!   not hold up other requests. Release and clean slate delete the address from whichever
//!   interface holds it; an address already gone is not an error.
//! - [`ActuatorKind::Script`] (`script.rs`): `PROGRAM add|del IP INTERFACE`, no renewal and no
//!   announcement (the program does what it needs); clean slate runs `del` for every address.
//!
//! The rtnetlink socket belongs to the network namespace of the thread that calls
//! [`Actuator::start`]; raw sockets and programs to that of the runtime threads running the
//! worker. They are the same but in tests that move a single-threaded runtime into a
//! namespace of its own.

mod announce;
mod netlink;
mod script;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::config::duravip::{ActuatorKind, Announce, DuravipSettings, Plumbing};

/// Requests and reports a channel holds at least.
const MIN_QUEUE: usize = 64;
/// Shortest lifetime the netlink actuator accepts: renewing every third of it must leave
/// whole seconds for the kernel's one-second granularity.
const MIN_LIFETIME: Duration = Duration::from_secs(3);

/// What the actuator did, or tried to do, to an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Plumb an address and its followers (a request).
    Acquire,
    /// Remove an address and its followers (a request).
    Release,
    /// Remove an address found on the machine at start.
    CleanSlate,
    /// Renew the lifetime of a held address.
    Renew,
    /// Announce a held address on its link.
    Announce,
    /// Take new plumbing after a configuration reload.
    Reconfigure,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Acquire => "acquire",
            Action::Release => "release",
            Action::CleanSlate => "clean slate",
            Action::Renew => "renew",
            Action::Announce => "announce",
            Action::Reconfigure => "reconfigure",
        })
    }
}

/// The outcome of one action, for the loop to log and show operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActuatorReport {
    /// The address acted on: the DuraVIP address for requests, renewals and announcements,
    /// the address removed for clean slate (a DuraVIP address or a follower).
    pub addr: IpAddr,
    /// What was done.
    pub action: Action,
    /// `Ok`, or what went wrong (every failure, followers' included, in one text).
    pub outcome: Result<(), String>,
}

/// A request the actuator could not take. Nothing changed on the machine; the error has
/// already been logged.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The queue is full (the worker is far behind). Not expected in normal operation.
    #[error("duravip actuator queue full ({capacity} requests): {action} {addr} dropped")]
    Full {
        /// The address of the dropped request.
        addr: IpAddr,
        /// The dropped request.
        action: Action,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The worker has stopped (shutdown). Expected only while the daemon stops.
    #[error("duravip actuator stopped: {action} {addr} dropped")]
    Stopped {
        /// The address of the dropped request.
        addr: IpAddr,
        /// The dropped request.
        action: Action,
    },
}

/// Why an action on the machine failed; reports carry it as text. Whether state changed is
/// said per variant; none is expected in normal operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActuatorError {
    /// A request for an address the settings do not plumb; nothing changed.
    #[error("{addr} is not a duravip address of this node")]
    UnknownAddress {
        /// The address requested.
        addr: IpAddr,
    },
    /// The address has no interface to go on; nothing changed.
    #[error("{addr} has no interface")]
    NoInterface {
        /// The address.
        addr: IpAddr,
    },
    /// The interface does not exist (now); nothing changed.
    #[error("interface {interface} not found")]
    InterfaceMissing {
        /// Its name.
        interface: String,
    },
    /// Looking the interface up failed; nothing changed.
    #[error("looking up interface {interface}")]
    Link {
        /// Its name.
        interface: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Adding (or renewing) the address failed; it is as it was.
    #[error("adding {addr}/{prefix_len} on {interface}")]
    Add {
        /// The address.
        addr: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface.
        interface: String,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Listing the machine's addresses failed; nothing changed.
    #[error("listing addresses")]
    Dump {
        /// The kernel's answer.
        source: io::Error,
    },
    /// Deleting an address failed; it is still there.
    #[error("deleting {} from interface index {index}", display_addr(.addr))]
    Delete {
        /// The address (`None` if the kernel's message had none).
        addr: Option<IpAddr>,
        /// The interface index.
        index: u32,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Sending announcements failed; the address is plumbed but neighbours may not know yet.
    #[error("announcing {addr} on {interface}")]
    Announce {
        /// The address.
        addr: IpAddr,
        /// The interface.
        interface: String,
        /// What failed.
        source: io::Error,
    },
    /// The interface is not running, so announcements would be lost; the address is plumbed
    /// but neighbours may not know yet.
    #[error("not announcing {addr}: interface {interface} is not running")]
    LinkDown {
        /// The address.
        addr: IpAddr,
        /// The interface.
        interface: String,
    },
    /// The program could not be started; nothing ran.
    #[error("starting {}", .program.display())]
    ScriptStart {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Waiting for the program failed; what it did is unknown.
    #[error("waiting for {}", .program.display())]
    ScriptWait {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The program exited unsuccessfully; what it did is unknown.
    #[error("{} {verb} {addr} failed ({status}){}", .program.display(), stderr_suffix(.stderr))]
    ScriptFailed {
        /// The program.
        program: PathBuf,
        /// `add` or `del`.
        verb: &'static str,
        /// The address.
        addr: IpAddr,
        /// How it exited.
        status: ExitStatus,
        /// The start of its stderr.
        stderr: String,
    },
    /// The program ran past its timeout and was killed; what it did is unknown.
    #[error("{} {verb} {addr} killed after {timeout:?}{}", .program.display(), stderr_suffix(.stderr))]
    ScriptTimeout {
        /// The program.
        program: PathBuf,
        /// `add` or `del`.
        verb: &'static str,
        /// The address.
        addr: IpAddr,
        /// The timeout.
        timeout: Duration,
        /// The start of its stderr.
        stderr: String,
    },
}

fn display_addr(addr: &Option<IpAddr>) -> String {
    addr.map_or_else(|| "an address".to_owned(), |addr| addr.to_string())
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": stderr: {stderr}")
    }
}

/// An error and its sources on one line, `outer: inner: innermost`.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A request for the worker.
#[derive(Debug, Clone)]
enum Request {
    Acquire(IpAddr),
    Release(IpAddr),
    /// New plumbing and announcement settings (a configuration reload); requests queued
    /// before it are done with the old plumbing.
    Reconfigure(Box<(BTreeMap<IpAddr, Plumbing>, Announce)>),
    /// Announce a held address again (another holder gave it up).
    Announce(IpAddr),
}

/// The event loop's handle on the actuator worker. See the module documentation for the
/// contract.
#[derive(Debug)]
pub struct Actuator {
    requests: mpsc::Sender<Request>,
}

impl Actuator {
    /// Checks `settings` against the actuator kind, opens what the kind needs (the netlink
    /// socket) and spawns the worker on `tracker`. The worker stops when `shutdown` is
    /// cancelled or once this handle is dropped and the queue is empty. Call it from within a
    /// Tokio runtime.
    pub fn start(
        settings: &DuravipSettings,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Actuator, mpsc::Receiver<ActuatorReport>)> {
        validate(settings)?;
        let capacity = MIN_QUEUE.max(4 * settings.plumbing.len());
        let (requests_tx, requests_rx) = mpsc::channel(capacity);
        let (reports_tx, reports_rx) = mpsc::channel(capacity);
        let worker = worker::Worker::new(settings, reports_tx).context("starting the duravip actuator")?;
        tracker.spawn(worker.run(requests_rx, shutdown));
        Ok((Actuator { requests: requests_tx }, reports_rx))
    }

    /// Queues the acquisition of `addr` (with its followers). Never waits.
    pub fn acquire(&self, addr: IpAddr) -> Result<(), RequestError> {
        self.request(Request::Acquire(addr), addr, Action::Acquire)
    }

    /// Queues the release of `addr` (with its followers). Never waits.
    pub fn release(&self, addr: IpAddr) -> Result<(), RequestError> {
        self.request(Request::Release(addr), addr, Action::Release)
    }

    /// Queues one more round of announcements for a held address (netlink; the others have
    /// nothing to announce). Never waits.
    pub fn announce(&self, addr: IpAddr) -> Result<(), RequestError> {
        self.request(Request::Announce(addr), addr, Action::Announce)
    }

    /// Queues new plumbing after a configuration reload: addresses, interfaces, followers and
    /// announcements. The kind of actuator and the lifetime need a restart: refused here.
    pub fn reconfigure(&self, old: &DuravipSettings, new: &DuravipSettings) -> anyhow::Result<()> {
        if old.actuator != new.actuator || old.lifetime != new.lifetime {
            bail!("duravip_actuator, duravip_script and duravip_address_lifetime take effect only at a restart");
        }
        validate(new)?;
        let request = Request::Reconfigure(Box::new((new.plumbing.clone(), new.announce)));
        let any = IpAddr::from([0, 0, 0, 0]);
        self.request(request, any, Action::Reconfigure)?;
        Ok(())
    }

    /// How many requests the queue holds.
    pub fn capacity(&self) -> usize {
        self.requests.max_capacity()
    }

    fn request(&self, request: Request, addr: IpAddr, action: Action) -> Result<(), RequestError> {
        let refused = match self.requests.try_send(request) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                RequestError::Full { addr, action, capacity: self.capacity() }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => RequestError::Stopped { addr, action },
        };
        error!(error = %refused, "duravip request not queued");
        Err(refused)
    }
}

/// What the kind needs from the settings, checked before anything starts.
fn validate(settings: &DuravipSettings) -> anyhow::Result<()> {
    match &settings.actuator {
        ActuatorKind::None => {}
        ActuatorKind::Netlink => {
            if settings.lifetime < MIN_LIFETIME {
                bail!(
                    "duravip lifetime is {:?}: the netlink actuator needs at least {:?}",
                    settings.lifetime,
                    MIN_LIFETIME
                );
            }
            if let Some((addr, _)) = settings.plumbing.iter().find(|(_, p)| p.interface.is_none()) {
                bail!("duravip address {addr} has no interface: the netlink actuator needs a topology entry covering it");
            }
        }
        ActuatorKind::Script { program, timeout } => {
            if timeout.is_zero() {
                bail!("duravip actuator script {} has a zero timeout", program.display());
            }
        }
    }
    Ok(())
}
