//! The Control_Listener: the server side of the console socket.
//!
//! It owns the unix socket file (binding, permissions, stale-file replacement, removal on
//! shutdown) and the connections: it reads request frames, parses each line with
//! [`parse_line`], hands the parsed [`Request`] to the daemon as a [`Job`] over a bounded mpsc
//! and writes back the [`Reply`] the daemon sends on the job's oneshot. It knows no commands:
//! what a command does is the daemon's business, and a line that does not parse is answered
//! here without reaching the daemon.
//!
//! Shutdown (the cancellation token): stop accepting, remove the socket file, close idle
//! connections, let commands in flight finish and deliver their replies, then return.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, debug_span, info, trace, warn, Instrument as _};

use super::frame::{read_request, write_reply, FrameError, Reply, MAX_REPLY};
use super::request::{parse_line, Request};

/// The console socket Momentum operators expect.
pub const DEFAULT_PATH: &str = "/tmp/2025";

/// One console command for the daemon: the parsed request and where to send its reply.
///
/// Dropping the sender without replying makes the listener answer
/// `internal error: command dropped`.
pub type Job = (Request, oneshot::Sender<Reply>);

/// Reply sent when the daemon drops a job without answering it.
const DROPPED: &str = "internal error: command dropped";

/// How long the stale-socket probe waits for a connection before assuming a live server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where and how the console listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Path of the unix socket.
    pub path: PathBuf,
    /// Permission bits of the socket file; connecting needs write permission. Owner-only by
    /// default, since the console can shut the daemon down and change its configuration.
    pub file_mode: u32,
    /// A connection that sends no complete request for this long is closed.
    pub idle_timeout: Duration,
}

impl ListenerConfig {
    /// The defaults (mode 0600, one hour idle timeout) at `path`.
    pub fn new(path: impl Into<PathBuf>) -> ListenerConfig {
        ListenerConfig { path: path.into(), file_mode: 0o600, idle_timeout: Duration::from_secs(3600) }
    }
}

impl Default for ListenerConfig {
    /// The defaults at [`DEFAULT_PATH`].
    fn default() -> ListenerConfig {
        ListenerConfig::new(DEFAULT_PATH)
    }
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
    idle_timeout: Duration,
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
        Ok(Listener { listener, socket, idle_timeout: cfg.idle_timeout })
    }

    /// Path of the socket file.
    pub fn path(&self) -> &Path {
        &self.socket.path
    }

    /// Accepts connections until `shutdown` is cancelled, then removes the socket file and
    /// waits for the commands in flight to be answered.
    pub async fn run(self, jobs: mpsc::Sender<Job>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Listener { listener, socket, idle_timeout } = self;
        info!(path = %socket.path.display(), "console listening");
        let tracker = TaskTracker::new();
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
            let (jobs, shutdown) = (jobs.clone(), shutdown.clone());
            tracker.spawn(
                async move {
                    debug!("console connection accepted");
                    match serve_connection(stream, &jobs, &shutdown, idle_timeout).await {
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
        tracker.close();
        if !tracker.is_empty() {
            info!(connections = tracker.len(), "console closed; waiting for commands in flight");
        }
        tracker.wait().await;
        info!("console stopped");
        Ok(())
    }
}

/// Serves one console connection (unix socket or anything else framed the same way) until
/// the peer leaves, the connection idles for `idle_timeout`, or `shutdown` is cancelled
/// between commands. A command already sent to the daemon is always answered.
///
/// Errors are the ends of the session that are the peer's fault or the network's (a frame
/// cut short, a failed write); bad requests are answered and the session goes on.
pub async fn serve_connection<S>(
    stream: S,
    jobs: &mpsc::Sender<Job>,
    shutdown: &CancellationToken,
    idle_timeout: Duration,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = BufReader::new(stream);
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            next = tokio::time::timeout(idle_timeout, read_request(&mut io)) => next,
        };
        let reply = match next {
            Err(_elapsed) => {
                debug!(timeout_secs = idle_timeout.as_secs(), "closing idle console connection");
                return Ok(());
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(line))) => answer(&line, jobs).await,
            Ok(Err(error)) if error.is_recoverable() => {
                debug!(%error, "bad console request");
                Reply::bad_request(error.to_string())
            }
            Ok(Err(FrameError::Io(error))) => return Err(error).context("reading a request"),
            Ok(Err(error)) => return Err(error.into()),
        };
        write_reply(&mut io, &reply).await.context("writing a reply")?;
    }
}

/// Parses `line`, runs it through the daemon and returns the reply to send.
async fn answer(line: &str, jobs: &mpsc::Sender<Job>) -> Reply {
    let request = match parse_line(line) {
        Ok(request) => request,
        Err(error) => {
            debug!(%error, "unparsable console line");
            return Reply::bad_request(error.to_string());
        }
    };
    let kind = request.words.first().map(|word| word.to_ascii_lowercase()).unwrap_or_default();
    let span = debug_span!("cmd", kind = %kind);
    async move {
        trace!(line = %request.line, format = ?request.format, "console command");
        let started = Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        // If the daemon is gone the job, oneshot included, is dropped: same answer as a drop.
        let reply = match jobs.send((request, reply_tx)).await {
            Ok(()) => reply_rx.await.unwrap_or_else(|_| Reply::failed(DROPPED)),
            Err(_) => Reply::failed(DROPPED),
        };
        let reply = if reply.body.len() >= MAX_REPLY {
            warn!(len = reply.body.len(), "console reply too large for the protocol");
            Reply::failed(format!("reply of {} bytes exceeds the limit of {MAX_REPLY} bytes", reply.body.len()))
        } else {
            reply
        };
        debug!(status = ?reply.status, elapsed_ms = started.elapsed().as_millis() as u64, "console command done");
        reply
    }
    .instrument(span)
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::frame::{read_reply, write_request, Status};
    use crate::console::request::{join_words, Format};
    use tokio::io::AsyncWriteExt;
    use tokio::task::JoinHandle;

    /// A listener on a socket in a fresh temporary directory.
    struct Harness {
        _dir: tempfile::TempDir,
        path: PathBuf,
        shutdown: CancellationToken,
        server: JoinHandle<anyhow::Result<()>>,
    }

    impl Harness {
        /// Starts a listener whose jobs go to `rx`'s receiver, returned for the test to drive.
        async fn with_jobs(tweak: impl FnOnce(&mut ListenerConfig)) -> (Harness, mpsc::Receiver<Job>) {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cfg = ListenerConfig::new(dir.path().join("console"));
            tweak(&mut cfg);
            let (tx, rx) = mpsc::channel(16);
            let listener = Listener::bind(&cfg).await.expect("bind");
            let shutdown = CancellationToken::new();
            let server = tokio::spawn(listener.run(tx, shutdown.clone()));
            (Harness { _dir: dir, path: cfg.path, shutdown, server }, rx)
        }

        /// Starts a listener served by [`fake_daemon`].
        async fn start() -> Harness {
            let (harness, rx) = Harness::with_jobs(|_| {}).await;
            tokio::spawn(fake_daemon(rx));
            harness
        }

        async fn connect(&self) -> UnixStream {
            UnixStream::connect(&self.path).await.expect("connect")
        }

        /// Cancels the listener and waits for it to return.
        async fn stop(self) {
            self.shutdown.cancel();
            self.server.await.expect("join").expect("serve");
        }
    }

    /// Answers `echo WORDS` with the words (prefixed by the format), `drop` by dropping the
    /// job, anything else with a failure.
    async fn fake_daemon(mut rx: mpsc::Receiver<Job>) {
        while let Some((request, reply)) = rx.recv().await {
            let answer = if request.matches(&["echo"]) {
                let text = join_words(request.args(1));
                match request.format {
                    Format::Text => Reply::ok(text),
                    Format::Xml => Reply::ok(format!("<echo>{text}</echo>")),
                    Format::Json => Reply::ok(format!("{{\"echo\":\"{text}\"}}")),
                }
            } else if request.matches(&["drop"]) {
                continue;
            } else {
                Reply::failed(format!("unknown command: {}", request.line))
            };
            // The client may have gone; nothing to do about it here.
            reply.send(answer).ok();
        }
    }

    async fn call(stream: &mut UnixStream, line: &str) -> Reply {
        write_request(stream, line).await.expect("write request");
        read_reply(stream).await.expect("read reply").expect("a reply, not EOF")
    }

    #[tokio::test]
    async fn normal_command_round_trips() {
        let harness = Harness::start().await;
        let mut stream = harness.connect().await;
        assert_eq!(call(&mut stream, "echo hi").await, Reply::ok("hi"));
        assert_eq!(call(&mut stream, r#"ECHO  "a b"   c"#).await, Reply::ok(r#""a b" c"#));
        assert_eq!(call(&mut stream, "json echo hi").await, Reply::ok(r#"{"echo":"hi"}"#));
        assert_eq!(call(&mut stream, "xml echo hi").await, Reply::ok("<echo>hi</echo>"));
        assert_eq!(call(&mut stream, "frobnicate now").await, Reply::failed("unknown command: frobnicate now"));
        drop(stream);
        harness.stop().await;
    }

    #[tokio::test]
    async fn bad_lines_get_bad_request_without_reaching_the_daemon() {
        let (harness, mut rx) = Harness::with_jobs(|_| {}).await;
        let mut stream = harness.connect().await;
        let cases = [
            ("xml", "xml: a command must follow, e.g. 'xml show cluster membership'"),
            ("   ", "empty command line"),
            (r#"config set Foo "a b"#, "unterminated quote: the '\"' at column 16 is never closed"),
        ];
        for (line, message) in cases {
            assert_eq!(call(&mut stream, line).await, Reply::bad_request(message), "{line:?}");
        }
        write_request(&mut stream, "echo first").await.expect("write");
        let (request, reply) = rx.recv().await.expect("a job");
        assert_eq!(request.words, ["echo", "first"], "the daemon saw no bad line before this one");
        reply.send(Reply::ok("first")).expect("send reply");
        assert_eq!(read_reply(&mut stream).await.expect("read"), Some(Reply::ok("first")));
        drop(stream);
        harness.stop().await;
    }

    #[tokio::test]
    async fn oversize_request_is_refused_and_the_same_connection_goes_on() {
        let harness = Harness::start().await;
        let mut stream = harness.connect().await;
        let big = format!("echo {}", "x".repeat(100 * 1024 - 5));
        let reply = call(&mut stream, &big).await;
        assert_eq!(reply, Reply::bad_request("request of 102400 bytes exceeds the limit of 65536 bytes"));
        assert_eq!(call(&mut stream, "echo after").await, Reply::ok("after"));
        drop(stream);
        harness.stop().await;
    }

    #[tokio::test]
    async fn invalid_utf8_request_gets_bad_request_and_the_connection_goes_on() {
        let harness = Harness::start().await;
        let mut stream = harness.connect().await;
        stream.write_all(&[0, 0, 0, 6, b'e', b'c', b'h', b'o', b' ', 0xff]).await.expect("write");
        let reply = read_reply(&mut stream).await.expect("read").expect("reply");
        assert_eq!(reply, Reply::bad_request("request is not valid UTF-8 (invalid byte at offset 5)"));
        assert_eq!(call(&mut stream, "echo fine").await, Reply::ok("fine"));
        drop(stream);
        harness.stop().await;
    }

    #[tokio::test]
    async fn truncated_frame_closes_only_that_connection() {
        let harness = Harness::start().await;
        let mut stream = harness.connect().await;
        stream.write_all(&[0, 0, 0, 20, b'e', b'c']).await.expect("write");
        stream.shutdown().await.expect("shutdown write half");
        assert_eq!(read_reply(&mut stream).await.expect("clean close"), None);
        let mut other = harness.connect().await;
        assert_eq!(call(&mut other, "echo still here").await, Reply::ok("still here"));
        drop(other);
        harness.stop().await;
    }

    #[tokio::test]
    async fn dropped_job_is_answered_as_an_internal_error() {
        let harness = Harness::start().await;
        let mut stream = harness.connect().await;
        assert_eq!(call(&mut stream, "drop this").await, Reply::failed("internal error: command dropped"));
        assert_eq!(call(&mut stream, "echo next").await, Reply::ok("next"));
        drop(stream);
        harness.stop().await;
    }

    #[tokio::test]
    async fn bind_errors_name_the_socket_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("console");
        let error = Listener::bind(&ListenerConfig::new(&path)).await.expect_err("no parent directory");
        assert!(format!("{error:#}").contains(&*path.to_string_lossy()), "{error:#}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_clients_each_get_their_own_answers() {
        let harness = Harness::start().await;
        let mut clients = Vec::new();
        for client in 0..50 {
            let path = harness.path.clone();
            clients.push(tokio::spawn(async move {
                let mut stream = UnixStream::connect(&path).await.expect("connect");
                for n in 0..20 {
                    let reply = call(&mut stream, &format!("echo client-{client} message-{n}")).await;
                    assert_eq!(reply, Reply::ok(format!("client-{client} message-{n}")));
                }
            }));
        }
        for client in clients {
            client.await.expect("client task");
        }
        harness.stop().await;
    }

    #[tokio::test]
    async fn socket_file_is_owner_only_by_default_and_mode_is_configurable() {
        let harness = Harness::start().await;
        let mode = std::fs::metadata(&harness.path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        harness.stop().await;

        let (harness, _rx) = Harness::with_jobs(|cfg| cfg.file_mode = 0o660).await;
        let mode = std::fs::metadata(&harness.path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let leftovers: Vec<_> = std::fs::read_dir(harness.path.parent().expect("parent"))
            .expect("read dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["console"], "no staging directory is left behind");
        harness.stop().await;
    }

    #[tokio::test]
    async fn shutdown_removes_the_socket_and_answers_commands_in_flight() {
        let (harness, mut rx) = Harness::with_jobs(|_| {}).await;
        let mut busy = harness.connect().await;
        let mut idle = harness.connect().await;
        // A bad line is answered by the listener itself: proof the connection was accepted.
        assert_eq!(call(&mut idle, "xml").await.status, Status::BadRequest);
        write_request(&mut busy, "echo slow").await.expect("write");
        let (request, reply) = rx.recv().await.expect("the job is in flight");
        assert_eq!(request.line, "echo slow");

        harness.shutdown.cancel();
        // The idle connection is closed; the listener waits for the busy one.
        assert_eq!(read_reply(&mut idle).await.expect("clean close"), None);
        reply.send(Reply::ok("slow")).expect("send");
        assert_eq!(read_reply(&mut busy).await.expect("read"), Some(Reply::ok("slow")));
        assert_eq!(read_reply(&mut busy).await.expect("clean close"), None);

        let path = harness.path.clone();
        harness.server.await.expect("join").expect("serve");
        assert!(!path.exists(), "socket file removed");
        assert!(UnixStream::connect(&path).await.is_err());
    }

    #[tokio::test]
    async fn stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console");
        // A socket file nobody listens on, as a crashed daemon leaves behind.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
        assert!(path.exists());
        let listener = Listener::bind(&ListenerConfig::new(&path)).await.expect("stale socket replaced");
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(fake_daemon(rx));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(listener.run(tx, shutdown.clone()));
        let mut stream = UnixStream::connect(&path).await.expect("connect");
        assert_eq!(call(&mut stream, "echo fresh").await, Reply::ok("fresh"));
        shutdown.cancel();
        server.await.expect("join").expect("serve");
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn live_socket_or_non_socket_path_is_refused_by_name() {
        let harness = Harness::start().await;
        let error = Listener::bind(&ListenerConfig::new(&harness.path)).await.expect_err("live server");
        let expected = format!("another console server is already listening on {}", harness.path.display());
        assert_eq!(format!("{error:#}"), expected);
        let mut stream = harness.connect().await;
        assert_eq!(call(&mut stream, "echo unharmed").await, Reply::ok("unharmed"));
        drop(stream);
        harness.stop().await;

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "keep me").expect("write");
        let error = Listener::bind(&ListenerConfig::new(&path)).await.expect_err("regular file");
        assert!(format!("{error:#}").contains("exists and is not a socket"), "{error:#}");
        assert!(format!("{error:#}").contains(&*path.to_string_lossy()), "{error:#}");
        assert_eq!(std::fs::read_to_string(&path).expect("untouched"), "keep me");
    }

    // tokio's paused clock needs the `test-util` feature, which the crate does not enable, so
    // this one test waits for a short real timeout.
    #[tokio::test]
    async fn idle_connection_is_closed_after_the_timeout() {
        let timeout = Duration::from_millis(200);
        let (harness, _rx) = Harness::with_jobs(|cfg| cfg.idle_timeout = timeout).await;
        let mut stream = harness.connect().await;
        let started = Instant::now();
        assert_eq!(read_reply(&mut stream).await.expect("clean close"), None);
        assert!(started.elapsed() >= timeout);
        harness.stop().await;
    }

    #[test]
    fn default_config_is_owner_only_at_tmp_2025() {
        let cfg = ListenerConfig::default();
        assert_eq!(cfg.path, Path::new("/tmp/2025"));
        assert_eq!(cfg.file_mode, 0o600);
        assert_eq!(cfg.idle_timeout, Duration::from_secs(3600));
        assert_eq!(Status::Ok, Reply::ok("").status);
    }
}
