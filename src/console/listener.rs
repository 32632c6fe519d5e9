//! The Control_Listener: the server side of the console socket.
//!
//! It owns the unix socket file (binding, permissions, stale-file replacement, removal on
//! shutdown) and the connections: it reads request frames, parses each line with
//! [`parse_line`], hands the parsed [`Request`] to the daemon as a [`Job`] over a bounded mpsc
//! and writes back the [`Reply`] the daemon sends on the job's oneshot. It knows no commands:
//! what a command does is the daemon's business, and a line that does not parse is answered
//! here without reaching the daemon.
//!
//! # Bounds
//! Nothing a console user does grows without limit (the values are in [`ListenerConfig`], set
//! from `Control_Listener` options, see `limits.rs`):
//! - connections: at most `max_connections` are served; one more gets a "console busy" answer
//!   to its first request and is closed (and at most [`MAX_REFUSING`] are being told so at once);
//! - requests in flight: one per connection. The next request is read only once the reply to
//!   the last one is written, so a client that sends many without reading is held back by its
//!   own socket, not by memory here; and the job channel to the daemon is bounded;
//! - request size: `max_request` bytes (an oversize line is read through a small buffer,
//!   thrown away and answered as a bad request); a batch request (`frame.rs`) is one request,
//!   of at most `max_batch` command lines besides (more are refused whole, nothing runs);
//! - output: one reply per connection, at most `max_reply` bytes, which the client must take
//!   within `write_timeout` or be disconnected; the replies of a batch share that bound
//!   (`listener/batch.rs`);
//! - time: a connection that sends nothing for `idle_timeout` is closed.
//!
//! # Shutdown (the cancellation token)
//! Stop accepting, remove the socket file, close idle connections, and give commands in flight
//! [`ListenerConfig::close_grace`] to be answered and written. A command the daemon abandons
//! (its reply channel dropped) is answered [`SHUTTING_DOWN`]. When the grace is over, a
//! connection still waiting for its reply gets [`SHUTTING_DOWN`] if the client takes it at once,
//! and every connection is closed: [`Listener::run`] returns within the grace and a moment.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, debug_span, info, trace, warn, Instrument as _};

use super::access::{Gate, Peer};
use super::audit::Outcome;
use super::frame::{parse_batch, parse_login, read_request_within, write_reply, FrameError, Reply, Status, MAX_REPLY, MAX_REQUEST};
use super::request::{parse_line, Request};

/// The console socket Momentum operators expect.
pub const DEFAULT_PATH: &str = "/tmp/2025";

/// One console command for the daemon: the parsed request, where to send its reply, and the
/// console session (connection) it came from; for a batch request, the commands that follow it
/// in the batch.
///
/// Dropping the sender without replying makes the listener answer
/// `internal error: command dropped`, or [`SHUTTING_DOWN`] once shutdown has begun.
#[derive(Debug)]
pub struct Job {
    /// The command.
    pub request: Request,
    /// Where its reply goes.
    pub reply: oneshot::Sender<Reply>,
    /// The connection it came on.
    pub session: Session,
    /// The commands of the same batch request after this one, in order (empty for a request
    /// of one command). The daemon runs them after this one, in order, each answered on its
    /// own reply channel; see `batch.rs`.
    pub then: Vec<Job>,
}

impl Job {
    /// This job and those that follow it in its batch, in order.
    pub fn into_batch(mut self) -> Vec<Job> {
        let then = std::mem::take(&mut self.then);
        let mut all = Vec::with_capacity(1 + then.len());
        all.push(self);
        all.extend(then);
        all
    }
}

/// One console connection, as the daemon sees it: an id unique in the process, and a token
/// cancelled when the connection ends (for state a daemon keeps per connection, such as an
/// open `config begin` transaction).
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique among the connections of this process.
    pub id: u64,
    /// Cancelled when the connection is gone.
    pub closed: CancellationToken,
}

/// The largest `Max_Batch_Commands` a listener takes.
pub const MAX_BATCH: usize = 1024;

/// Distinguishes console sessions of one process.
static SESSION_SEQ: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// A new session; its `closed` token is cancelled when the guard it comes with drops.
    pub fn open() -> (Session, tokio_util::sync::DropGuard) {
        let closed = CancellationToken::new();
        let guard = closed.clone().drop_guard();
        (Session { id: SESSION_SEQ.fetch_add(1, Ordering::Relaxed), closed }, guard)
    }
}

/// Reply sent when the daemon drops a job without answering it.
const DROPPED: &str = "internal error: command dropped";

/// The answer to a command that will not finish because the daemon is stopping.
pub const SHUTTING_DOWN: &str = "shutting down: the daemon is stopping and did not finish this command";

/// How long the stale-socket probe waits for a connection before assuming a live server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most this many connections over the limit are being told "console busy" at once; more
/// are closed without a word.
pub const MAX_REFUSING: usize = 16;

/// How long a connection over the limit has to send its request (so that it reads the refusal
/// instead of a broken pipe) and to take the answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// After the shutdown grace, how long a client has to take a last [`SHUTTING_DOWN`] answer.
const LAST_WRITE: Duration = Duration::from_millis(250);

/// Where and how the console listens, and its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Path of the unix socket.
    pub path: PathBuf,
    /// Permission bits of the socket file; connecting needs write permission. Owner-only by
    /// default, since the console can shut the daemon down and change its configuration.
    pub file_mode: u32,
    /// A connection that sends no complete request for this long is closed (`Timeout`).
    pub idle_timeout: Duration,
    /// Connections served at once (`Concurrency`).
    pub max_connections: usize,
    /// Largest request line in bytes (`Max_Request_Size`).
    pub max_request: usize,
    /// Largest reply body in bytes held for one client (`Max_Reply_Size`); a larger answer is
    /// replaced by an error saying so. At most [`MAX_REPLY`] - 1, what a client accepts.
    pub max_reply: usize,
    /// A client that does not take a whole reply within this time is disconnected
    /// (`Write_Timeout`).
    pub write_timeout: Duration,
    /// Most command lines in one batch request (`Max_Batch_Commands`), at most [`MAX_BATCH`].
    pub max_batch: usize,
    /// After shutdown, how long commands in flight have to be answered and written before every
    /// connection is closed. Part of the daemon's stop budget, not an operator's option.
    pub close_grace: Duration,
}

impl ListenerConfig {
    /// The defaults at `path`: mode 0600, one hour idle timeout, 64 connections, requests of
    /// 64 KiB, replies of 64 MiB taken within 30 s, batches of 512 commands, 5 s to finish at
    /// shutdown.
    pub fn new(path: impl Into<PathBuf>) -> ListenerConfig {
        ListenerConfig {
            path: path.into(),
            file_mode: 0o600,
            idle_timeout: Duration::from_secs(3600),
            max_connections: 64,
            max_request: MAX_REQUEST,
            max_reply: 64 * 1024 * 1024,
            write_timeout: Duration::from_secs(30),
            max_batch: 512,
            close_grace: Duration::from_secs(5),
        }
    }
}

impl Default for ListenerConfig {
    /// The defaults at [`DEFAULT_PATH`].
    fn default() -> ListenerConfig {
        ListenerConfig::new(DEFAULT_PATH)
    }
}

/// The bounds one connection is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// See [`ListenerConfig::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`ListenerConfig::max_request`].
    pub max_request: usize,
    /// See [`ListenerConfig::max_reply`].
    pub max_reply: usize,
    /// See [`ListenerConfig::write_timeout`].
    pub write_timeout: Duration,
    /// See [`ListenerConfig::max_batch`].
    pub max_batch: usize,
}

impl ConnectionLimits {
    /// The per-connection part of `cfg`.
    pub fn of(cfg: &ListenerConfig) -> ConnectionLimits {
        ConnectionLimits {
            idle_timeout: cfg.idle_timeout,
            max_request: cfg.max_request,
            max_reply: cfg.max_reply.min(MAX_REPLY - 1),
            write_timeout: cfg.write_timeout,
            max_batch: cfg.max_batch.clamp(1, MAX_BATCH),
        }
    }
}

/// How a connection learns that the daemon stops: `shutdown` first (finish what is in flight,
/// take nothing new), then `abort` when the grace is over (close now).
#[derive(Debug, Clone, Copy)]
pub struct Stop<'a> {
    /// Cancelled when the daemon begins to stop.
    pub shutdown: &'a CancellationToken,
    /// Cancelled when the shutdown grace is over.
    pub abort: &'a CancellationToken,
}

/// Binds the socket and serves it until `shutdown` is cancelled; see [`Listener`].
pub async fn serve(cfg: ListenerConfig, jobs: mpsc::Sender<Job>, shutdown: CancellationToken) -> anyhow::Result<()> {
    Listener::bind(&cfg).await?.run(jobs, shutdown).await
}

/// A bound console socket, not yet accepting.
///
/// Binding separately from [`Listener::run`] lets a daemon fail before it starts anything else
/// and lets a caller (or a test) connect as soon as `bind` returns.
#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    socket: SocketFile,
    limits: ConnectionLimits,
    max_connections: usize,
    close_grace: Duration,
    gate: Gate,
}

impl Listener {
    /// Binds the unix socket at `cfg.path` with `cfg.file_mode`.
    ///
    /// A socket file nobody answers on (left by a crashed daemon) is replaced; a socket a live
    /// server answers on, or a path that is not a socket, is an error naming the path.
    pub async fn bind(cfg: &ListenerConfig) -> anyhow::Result<Listener> {
        let path = &cfg.path;
        clear_stale_socket(path).await?;
        let listener = bind_with_mode(path, cfg.file_mode)?;
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading the console socket {} after binding it", path.display()))?;
        let socket = SocketFile { path: path.clone(), dev: meta.dev(), ino: meta.ino() };
        Ok(Listener {
            listener,
            socket,
            limits: ConnectionLimits::of(cfg),
            max_connections: cfg.max_connections.max(1),
            close_grace: cfg.close_grace,
            gate: Gate::open(),
        })
    }

    /// Puts `gate` (login, authorization, audit) in front of the sessions; without it a
    /// session's user is the peer's OS user and every command runs.
    pub fn with_gate(mut self, gate: Gate) -> Listener {
        self.gate = gate;
        self
    }

    /// Path of the socket file.
    pub fn path(&self) -> &Path {
        &self.socket.path
    }

    /// Accepts connections until `shutdown` is cancelled, then removes the socket file, gives
    /// the commands in flight the close grace to be answered, and closes what is left.
    pub async fn run(self, jobs: mpsc::Sender<Job>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Listener { listener, socket, limits, max_connections, close_grace, gate } = self;
        info!(path = %socket.path.display(), max_connections, "console listening");
        let connections = TaskTracker::new();
        let refusals = TaskTracker::new();
        let abort = CancellationToken::new();
        let mut next_id: u64 = 0;
        loop {
            let accepted = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "accepting a console connection failed; pausing");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            next_id += 1;
            // Unix-socket peers are identified by their uid, as Momentum's console does.
            let uid = stream.peer_cred().ok().map(|cred| cred.uid());
            let span = debug_span!("conn", id = next_id, uid);
            if connections.len() >= max_connections {
                if refusals.len() >= MAX_REFUSING {
                    debug!(parent: &span, "console connection over the limit closed at once");
                    continue;
                }
                warn!(parent: &span, open = connections.len(), max_connections, "console busy: connection refused");
                refusals.spawn(refuse(stream, max_connections, shutdown.clone()).instrument(span));
                continue;
            }
            let (jobs, shutdown, abort, gate) = (jobs.clone(), shutdown.clone(), abort.clone(), gate.clone());
            let from = match uid {
                Some(uid) => format!("unix:{} uid={uid}", socket.path.display()),
                None => format!("unix:{}", socket.path.display()),
            };
            connections.spawn(
                async move {
                    debug!("console connection accepted");
                    // The session user of the unix socket is the peer's OS user, unless the
                    // listener asks for a login.
                    let user = if gate.authenticate { None } else { uid.map(os_user_name) };
                    let peer = Peer { from, ip: None, user };
                    let stop = Stop { shutdown: &shutdown, abort: &abort };
                    match serve_session(stream, &jobs, stop, &limits, &gate, peer).await {
                        Ok(()) => debug!("console connection closed"),
                        Err(error) => debug!(error = format!("{error:#}"), "console connection ended"),
                    }
                }
                .instrument(span),
            );
        }
        drop(listener);
        // Remove the file first, so a new daemon can bind while this one drains.
        drop(socket);
        drop(jobs);
        drain(connections, refusals, abort, close_grace).await;
        Ok(())
    }
}

/// The user name of `uid` from the system's user database, else `uid:UID`.
fn os_user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => format!("uid:{uid}"),
    }
}

/// The end of a listener, once it accepts no more: gives the connections `close_grace` to
/// finish the commands in flight, then aborts what is left and waits for it.
pub(super) async fn drain(connections: TaskTracker, refusals: TaskTracker, abort: CancellationToken, close_grace: Duration) {
    connections.close();
    refusals.close();
    if !connections.is_empty() {
        info!(connections = connections.len(), "console closed; waiting for commands in flight");
    }
    if tokio::time::timeout(close_grace, connections.wait()).await.is_err() {
        warn!(
            connections = connections.len(),
            grace_ms = close_grace.as_millis() as u64,
            "console connections still busy after the shutdown grace; closing them"
        );
        abort.cancel();
        connections.wait().await;
    }
    refusals.wait().await;
    info!("console stopped");
}

/// Tells a connection over the limit why it is not served: the answer goes out at once, then
/// the connection stays open until the client has sent its request (or [`REFUSAL_TIME`]), so
/// that a client which writes before it reads sees the answer rather than a broken pipe.
pub(super) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: S, limit: usize, shutdown: CancellationToken) {
    let reply = Reply::failed(format!(
        "console busy: it serves {limit} connections at once (Control_Listener Concurrency = {limit}) \
         and all are in use; try again later"
    ));
    let mut io = BufReader::new(stream);
    let work = async {
        write_reply(&mut io, &reply).await?;
        let mut scratch = [0u8; 512];
        io.read(&mut scratch).await.map(drop)
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        done = tokio::time::timeout(REFUSAL_TIME, work) => match done {
            Ok(Ok(())) => debug!("refused console connection told and closed"),
            Ok(Err(error)) => debug!(%error, "refused console connection ended"),
            Err(_) => debug!("refused console connection sent nothing; closed"),
        },
    }
}

/// Serves one console connection (unix socket or anything else framed the same way) until
/// the peer leaves, the connection idles for `limits.idle_timeout`, or `stop.shutdown` is
/// cancelled between commands. A command already sent to the daemon is answered, with
/// [`SHUTTING_DOWN`] if the daemon abandons it, until `stop.abort`.
///
/// Errors are the ends of the session that are the peer's fault or the network's (a frame
/// cut short, a failed or timed-out write); bad requests are answered and the session goes on.
pub async fn serve_connection<S>(
    stream: S,
    jobs: &mpsc::Sender<Job>,
    stop: Stop<'_>,
    limits: &ConnectionLimits,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    serve_session(stream, jobs, stop, limits, &Gate::open(), Peer::unknown("-")).await
}

/// [`serve_connection`] with `gate` in front of the commands of `peer`: a session that must
/// log in is answered [`Reply::login_required`] until it has; a login frame is checked; each
/// command is authorized, then run, and recorded in the audit log.
pub async fn serve_session<S>(
    stream: S,
    jobs: &mpsc::Sender<Job>,
    stop: Stop<'_>,
    limits: &ConnectionLimits,
    gate: &Gate,
    mut peer: Peer,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = BufReader::new(stream);
    // Dropped when the connection ends, however it ends: the daemon learns the session closed.
    let (session, _closed) = Session::open();
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.shutdown.cancelled() => return Ok(()),
            next = tokio::time::timeout(limits.idle_timeout, read_request_within(&mut io, limits.max_request)) => next,
        };
        let reply = match next {
            Err(_elapsed) => {
                debug!(timeout_secs = limits.idle_timeout.as_secs(), "closing idle console connection");
                return Ok(());
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(line))) => tokio::select! {
                biased;
                _ = stop.abort.cancelled() => {
                    debug!("shutdown grace over with the command still running");
                    Reply::failed(SHUTTING_DOWN)
                }
                reply = async {
                    match parse_login(&line) {
                        Some(Ok((user, password))) => gate.login(&mut peer, user, password).await,
                        Some(Err(why)) => Reply::bad_request(why),
                        None if gate.authenticate && peer.user.is_none() => Reply::login_required(),
                        None => match parse_batch(&line) {
                            Some(lines) => batch::answer(&lines, jobs, &session, stop.shutdown, limits, gate, &peer).await,
                            None => answer(&line, jobs, &session, stop.shutdown, limits.max_reply, gate, &peer).await,
                        },
                    }
                } => reply,
            },
            Ok(Err(error)) if error.is_recoverable() => {
                debug!(%error, "bad console request");
                Reply::bad_request(error.to_string())
            }
            Ok(Err(FrameError::Io(error))) => return Err(error).context("reading a request"),
            Ok(Err(error)) => return Err(error.into()),
        };
        // A reply the client does not take in time ends the session: a frame half written
        // cannot be taken back, and the daemon holds nothing more for a client that stalls.
        if stop.abort.is_cancelled() {
            let written = tokio::time::timeout(LAST_WRITE.min(limits.write_timeout), write_reply(&mut io, &reply)).await;
            return match written {
                Ok(result) => result.context("writing the last reply"),
                Err(_) => Err(anyhow!("the client did not take the last reply; closing")),
            };
        }
        let written = tokio::select! {
            biased;
            _ = stop.abort.cancelled() => return Err(anyhow!("shutdown grace over while a reply was being written; closing")),
            written = tokio::time::timeout(limits.write_timeout, write_reply(&mut io, &reply)) => written,
        };
        match written {
            Ok(result) => result.context("writing a reply")?,
            Err(_) => bail!(
                "the client took no {}-byte reply within {} ms (Write_Timeout); closing",
                reply.body.len(),
                limits.write_timeout.as_millis()
            ),
        }
    }
}

/// Parses `line`, has `gate` authorize it for `peer`, runs it through the daemon, records it
/// in the audit log and returns the reply to send.
async fn answer(
    line: &str,
    jobs: &mpsc::Sender<Job>,
    session: &Session,
    shutdown: &CancellationToken,
    max_reply: usize,
    gate: &Gate,
    peer: &Peer,
) -> Reply {
    let started = Instant::now();
    let request = match parse_line(line) {
        Ok(request) => request,
        Err(error) => {
            debug!(%error, "unparsable console line");
            gate.audit.record(peer.user.as_deref(), &peer.from, line, Outcome::Error, started.elapsed());
            return Reply::bad_request(error.to_string());
        }
    };
    if let Err(refusal) = gate.authorize(peer, &request.line, &request.words) {
        return refusal;
    }
    let reply = run(request, jobs, session, shutdown, max_reply).await;
    let outcome = if reply.status == Status::Ok { Outcome::Ok } else { Outcome::Error };
    gate.audit.record(peer.user.as_deref(), &peer.from, line, outcome, started.elapsed());
    reply
}

/// Runs `request` through the daemon and returns the reply to send.
async fn run(request: Request, jobs: &mpsc::Sender<Job>, session: &Session, shutdown: &CancellationToken, max_reply: usize) -> Reply {
    let kind = request.words.first().map(|word| word.to_ascii_lowercase()).unwrap_or_default();
    let span = debug_span!("cmd", kind = %kind);
    async move {
        trace!(line = %request.line, format = ?request.format, "console command");
        let started = Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        // If the daemon is gone the job, oneshot included, is dropped: same answer as a drop.
        let abandoned = || Reply::failed(if shutdown.is_cancelled() { SHUTTING_DOWN } else { DROPPED });
        let job = Job { request, reply: reply_tx, session: session.clone(), then: Vec::new() };
        let reply = match jobs.send(job).await {
            Ok(()) => reply_rx.await.unwrap_or_else(|_| abandoned()),
            Err(_) => abandoned(),
        };
        let reply = within(reply, max_reply);
        debug!(status = ?reply.status, elapsed_ms = started.elapsed().as_millis() as u64, "console command done");
        reply
    }
    .instrument(span)
    .await
}

/// `reply`, or an error saying so when its body is over `max_reply` bytes.
fn within(reply: Reply, max_reply: usize) -> Reply {
    if reply.body.len() <= max_reply {
        return reply;
    }
    warn!(len = reply.body.len(), max_reply, "console reply over the limit");
    Reply::failed(format!(
        "reply of {} bytes exceeds the console's limit of {max_reply} bytes (Control_Listener Max_Reply_Size)",
        reply.body.len()
    ))
}

/// The socket file this listener created; removed on drop unless something replaced it.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(error) = std::fs::remove_file(&self.path) {
                    warn!(path = %self.path.display(), %error, "could not remove the console socket");
                }
            }
            Ok(_) => warn!(path = %self.path.display(), "console socket was replaced by another; leaving it"),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => warn!(path = %self.path.display(), %error, "could not check the console socket"),
        }
    }
}

/// Removes a socket file at `path` that no server answers on; fails if one does, or if the
/// path is something other than a socket.
async fn clear_stale_socket(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(error).with_context(|| format!("checking the console socket path {}", path.display()))
        }
    };
    if !meta.file_type().is_socket() {
        bail!("console socket path {} exists and is not a socket; refusing to replace it", path.display());
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_live)) => bail!("another console server is already listening on {}", path.display()),
        Err(_elapsed) => {
            bail!("another console server is already listening on {} (it accepts no connections)", path.display())
        }
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing stale console socket");
            match std::fs::remove_file(path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    Err(error).with_context(|| format!("removing the stale console socket {}", path.display()))
                }
                _ => Ok(()),
            }
        }
        Ok(Err(error)) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(Err(error)) => Err(error).with_context(|| format!("checking whether {} is in use", path.display())),
    }
}

/// Distinguishes the staging directories of listeners bound by one process.
static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

/// Longest socket path we attempt to stage: `sun_path` holds 108 bytes with the terminator.
const MAX_SOCKET_PATH: usize = 100;

/// Binds `path` with permission bits `mode`, without a moment where the socket is reachable
/// with looser permissions (the umask is process-wide and cannot be changed without unsafe
/// code): the socket is bound in a fresh owner-only directory next to `path`, given its mode,
/// then renamed into place. Falls back to bind-then-chmod when the staging path would be too
/// long for a socket address.
fn bind_with_mode(path: &Path, mode: u32) -> anyhow::Result<UnixListener> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let staging_dir = || {
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        parent.join(format!(".ecc-console-{}-{seq}", std::process::id()))
    };
    let mut staging = staging_dir();
    let permissions = std::fs::Permissions::from_mode(mode);
    if staging.join("s").as_os_str().len() > MAX_SOCKET_PATH {
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding the console socket {}", path.display()))?;
        std::fs::set_permissions(path, permissions)
            .with_context(|| format!("setting mode {mode:o} on the console socket {}", path.display()))?;
        return Ok(listener);
    }
    // A directory left by a crash of an earlier process with the same pid is skipped over.
    let mut attempts = 0;
    loop {
        match std::fs::DirBuilder::new().mode(0o700).create(&staging) {
            Ok(()) => break,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
                staging = staging_dir();
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "binding the console socket {}: creating a directory in {}",
                        path.display(),
                        parent.display()
                    )
                })
            }
        }
    }
    let staged = staging.join("s");
    let bound = UnixListener::bind(&staged)
        .with_context(|| format!("binding the console socket {}", path.display()))
        .and_then(|listener| {
            std::fs::set_permissions(&staged, permissions)
                .with_context(|| format!("setting mode {mode:o} on the console socket {}", path.display()))?;
            std::fs::rename(&staged, path)
                .with_context(|| format!("moving the console socket into {}", path.display()))?;
            Ok(listener)
        });
    if bound.is_err() {
        if let Err(error) = std::fs::remove_file(&staged) {
            if error.kind() != io::ErrorKind::NotFound {
                warn!(path = %staged.display(), %error, "could not remove a staged console socket");
            }
        }
    }
    if let Err(error) = std::fs::remove_dir(&staging) {
        warn!(path = %staging.display(), %error, "could not remove the console staging directory");
    }
    bound
}

mod batch;
#[cfg(test)]
mod tests;
