//! The listener against real unix sockets in temporary directories, with a fake daemon.

use super::*;
use crate::console::frame::{batch_request, read_reply, split_batch_reply, write_request, Status};
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

/// Answers `echo WORDS` with the words (prefixed by the format), `big N` with N bytes,
/// `drop` by dropping the job, `hang` never (it keeps the job until the channel closes),
/// anything else with a failure; the commands of a batch one after the other.
async fn fake_daemon(mut rx: mpsc::Receiver<Job>) {
    let mut hung = Vec::new();
    let mut jobs = std::collections::VecDeque::new();
    loop {
        let Some(Job { request, reply, .. }) = jobs.pop_front() else {
            match rx.recv().await {
                Some(job) => jobs.extend(job.into_batch()),
                None => break,
            }
            continue;
        };
        let answer = if request.matches(&["big"]) {
            let n: usize = request.args(1).first().and_then(|n| n.parse().ok()).expect("big N");
            Reply::ok("x".repeat(n))
        } else if request.matches(&["hang"]) {
            hung.push(reply);
            continue;
        } else if request.matches(&["echo"]) {
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
    let Job { request, reply, .. } = rx.recv().await.expect("a job");
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
    let Job { request, reply, .. } = rx.recv().await.expect("the job is in flight");
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

/// Starts a listener served by [`fake_daemon`] with `tweak`ed bounds.
async fn start_with(tweak: impl FnOnce(&mut ListenerConfig)) -> Harness {
    let (harness, rx) = Harness::with_jobs(tweak).await;
    tokio::spawn(fake_daemon(rx));
    harness
}

/// Waits for the listener to return, failing (not hanging) the test after `limit`.
async fn stopped_within(server: JoinHandle<anyhow::Result<()>>, limit: Duration) {
    match tokio::time::timeout(limit, server).await {
        Ok(joined) => joined.expect("join").expect("serve"),
        Err(_) => panic!("the listener did not return within {limit:?} of shutdown"),
    }
}

#[tokio::test]
async fn a_connection_over_the_limit_is_told_busy_and_a_freed_slot_serves_again() {
    let harness = start_with(|cfg| cfg.max_connections = 2).await;
    let mut a = harness.connect().await;
    let mut b = harness.connect().await;
    assert_eq!(call(&mut a, "echo a").await, Reply::ok("a"));
    assert_eq!(call(&mut b, "echo b").await, Reply::ok("b"));

    let mut c = harness.connect().await;
    let busy = call(&mut c, "echo c").await;
    assert_eq!(busy.status, Status::Failed);
    assert_eq!(
        busy.body,
        "console busy: it serves 2 connections at once (Control_Listener Concurrency = 2) and all are in use; \
         try again later"
    );
    assert_eq!(read_reply(&mut c).await.expect("clean close"), None);

    // `a` leaves; the server closes its side only after its slot is free.
    a.shutdown().await.expect("shutdown write half");
    assert_eq!(read_reply(&mut a).await.expect("clean close"), None);
    let mut d = harness.connect().await;
    assert_eq!(call(&mut d, "echo d").await, Reply::ok("d"));
    assert_eq!(call(&mut b, "echo still b").await, Reply::ok("still b"));
    drop((b, c, d));
    harness.stop().await;
}

#[tokio::test]
async fn a_smaller_request_limit_is_enforced_per_connection() {
    let harness = start_with(|cfg| cfg.max_request = 1024).await;
    let mut stream = harness.connect().await;
    let reply = call(&mut stream, &format!("echo {}", "y".repeat(1020))).await;
    assert_eq!(reply, Reply::bad_request("request of 1025 bytes exceeds the limit of 1024 bytes"));
    assert_eq!(call(&mut stream, "echo fits").await, Reply::ok("fits"));
    drop(stream);
    harness.stop().await;
}

#[tokio::test]
async fn a_reply_over_the_limit_is_replaced_by_an_error_naming_the_option() {
    let harness = start_with(|cfg| cfg.max_reply = 65_536).await;
    let mut stream = harness.connect().await;
    assert_eq!(call(&mut stream, "big 65536").await.body.len(), 65_536);
    let reply = call(&mut stream, "big 65537").await;
    assert_eq!(
        reply,
        Reply::failed(
            "reply of 65537 bytes exceeds the console's limit of 65536 bytes (Control_Listener Max_Reply_Size)"
        )
    );
    drop(stream);
    harness.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_its_reply_is_disconnected_after_the_write_timeout() {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(fake_daemon(rx));
    let limits = ConnectionLimits { write_timeout: Duration::from_millis(200), ..ConnectionLimits::of(&ListenerConfig::default()) };
    // A pipe far smaller than the reply: the write blocks until the client reads.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let (shutdown, abort) = (CancellationToken::new(), CancellationToken::new());
    let session = tokio::spawn(async move {
        serve_connection(server, &tx, Stop { shutdown: &shutdown, abort: &abort }, &limits).await
    });
    write_request(&mut client, "big 8000000").await.expect("write");
    // The session ends by itself, the client having read nothing.
    let error = session.await.expect("join").expect_err("a write that timed out");
    assert_eq!(
        format!("{error:#}"),
        "the client took no 8000000-byte reply within 200 ms (Write_Timeout); closing"
    );
    assert!(matches!(read_reply(&mut client).await, Err(FrameError::Truncated { .. })));
}

#[tokio::test]
async fn shutdown_answers_an_abandoned_command_at_once() {
    let (harness, mut rx) = Harness::with_jobs(|_| {}).await;
    let mut stream = harness.connect().await;
    write_request(&mut stream, "echo never answered").await.expect("write");
    let Job { reply, .. } = rx.recv().await.expect("the job is in flight");
    harness.shutdown.cancel();
    // The daemon, stopping, drops what it will not run.
    drop(reply);
    assert_eq!(read_reply(&mut stream).await.expect("read"), Some(Reply::failed(SHUTTING_DOWN)));
    assert_eq!(read_reply(&mut stream).await.expect("clean close"), None);
    stopped_within(harness.server, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_whatever_the_clients_and_the_daemon_do() {
    let grace = Duration::from_millis(300);
    let harness = start_with(|cfg| cfg.close_grace = grace).await;
    // A command the daemon never answers, and a client that never reads a large reply.
    let mut waiting = harness.connect().await;
    write_request(&mut waiting, "hang").await.expect("write");
    let mut stalled = harness.connect().await;
    write_request(&mut stalled, "big 8000000").await.expect("write");
    // Both requests have reached the daemon once a later one on a third connection is answered.
    let mut probe = harness.connect().await;
    assert_eq!(call(&mut probe, "echo probe").await, Reply::ok("probe"));

    let started = Instant::now();
    harness.shutdown.cancel();
    assert_eq!(read_reply(&mut waiting).await.expect("read"), Some(Reply::failed(SHUTTING_DOWN)));
    stopped_within(harness.server, Duration::from_secs(10)).await;
    assert!(started.elapsed() >= grace, "in-flight commands had the grace: {:?}", started.elapsed());
    assert!(matches!(read_reply(&mut stalled).await, Err(FrameError::Truncated { .. })));
    assert_eq!(read_reply(&mut probe).await.expect("clean close"), None);
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
    assert_eq!(cfg.max_connections, 64);
    assert!(ConnectionLimits::of(&cfg).max_reply < MAX_REPLY);
    assert_eq!(Status::Ok, Reply::ok("").status);
}

/// Sends `lines` as one batch request; the whole reply.
async fn call_batch(stream: &mut UnixStream, lines: &[&str]) -> Reply {
    call(stream, &batch_request(lines).expect("lines without line breaks")).await
}

#[tokio::test]
async fn a_batch_is_one_job_answered_in_order_with_bad_lines_answered_alone() {
    let (harness, mut rx) = Harness::with_jobs(|_| {}).await;
    let mut stream = harness.connect().await;
    let sent = tokio::spawn(async move {
        let reply = call_batch(&mut stream, &["echo a", "xml", "json echo b", "echo c"]).await;
        (stream, reply)
    });
    let job = rx.recv().await.expect("the batch");
    let batch = job.into_batch();
    let lines: Vec<&str> = batch.iter().map(|job| job.request.line.as_str()).collect();
    assert_eq!(lines, ["echo a", "echo b", "echo c"], "one job, in order, the bad line left out");
    assert_eq!(batch[1].request.format, Format::Json);
    for (job, answer) in batch.into_iter().zip(["A", "B", "C"]) {
        job.reply.send(Reply::ok(answer)).expect("the listener waits");
    }
    let (mut stream, reply) = sent.await.expect("client");
    assert_eq!(reply.status, Status::Batch);
    let replies = split_batch_reply(&reply).expect("a batch reply");
    assert_eq!(
        replies,
        [
            Reply::ok("A"),
            Reply::bad_request("xml: a command must follow, e.g. 'xml show cluster membership'"),
            Reply::ok("B"),
            Reply::ok("C")
        ]
    );
    // The session goes on with single commands, and an empty batch is a bad request.
    tokio::spawn(fake_daemon(rx));
    assert_eq!(call(&mut stream, "echo after").await, Reply::ok("after"));
    assert_eq!(call_batch(&mut stream, &[]).await.status, Status::BadRequest);
    drop(stream);
    harness.stop().await;
}

#[tokio::test]
async fn a_batch_over_max_batch_is_refused_whole_and_nothing_runs() {
    let (harness, mut rx) = Harness::with_jobs(|cfg| cfg.max_batch = 3).await;
    let mut stream = harness.connect().await;
    let reply = call_batch(&mut stream, &["echo 1", "echo 2", "echo 3", "echo 4"]).await;
    assert_eq!(
        reply,
        Reply::bad_request(
            "batch of 4 commands exceeds the limit of 3 commands (Control_Listener Max_Batch_Commands); nothing ran"
        )
    );
    assert!(rx.try_recv().is_err(), "nothing reached the daemon");
    tokio::spawn(fake_daemon(rx));
    let reply = call_batch(&mut stream, &["echo 1", "echo 2", "echo 3"]).await;
    assert_eq!(split_batch_reply(&reply).expect("batch"), [Reply::ok("1"), Reply::ok("2"), Reply::ok("3")]);
    drop(stream);
    harness.stop().await;
}

#[tokio::test]
async fn the_replies_of_a_batch_share_max_reply() {
    let (harness, rx) = Harness::with_jobs(|cfg| cfg.max_reply = 64 * 1024).await;
    tokio::spawn(fake_daemon(rx));
    let mut stream = harness.connect().await;
    let reply = call_batch(&mut stream, &["big 40000", "big 40000", "echo fits", "big 70000"]).await;
    assert!(reply.body.len() <= 64 * 1024, "{} bytes", reply.body.len());
    let replies = split_batch_reply(&reply).expect("batch");
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[0], Reply::ok("x".repeat(40000)));
    assert_eq!(replies[1], Reply::failed(batch::OVER_BATCH), "no room left for it");
    assert_eq!(replies[2], Reply::ok("fits"));
    assert_eq!(
        replies[3],
        Reply::failed("reply of 70000 bytes exceeds the console's limit of 65536 bytes (Control_Listener Max_Reply_Size)")
    );
    drop(stream);
    harness.stop().await;
}

#[tokio::test]
async fn a_denied_command_in_a_batch_is_refused_alone_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ListenerConfig::new(dir.path().join("console"));
    // The unix socket's user is the peer's OS user: this test's.
    let user = os_user_name(nix::unistd::getuid().as_raw());
    let roles = super::super::authz::RolesConfig { roles: vec![(user.clone(), vec!["^echo".to_owned()])] };
    let authorization = super::super::authz::Authorization::new(&roles, None).expect("roles");
    let gate = Gate { authorization: Some(std::sync::Arc::new(authorization)), ..Gate::open() };
    let listener = Listener::bind(&cfg).await.expect("bind").with_gate(gate);
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(listener.run(tx, shutdown.clone()));
    let mut stream = UnixStream::connect(&cfg.path).await.expect("connect");
    let sent = tokio::spawn(async move { call_batch(&mut stream, &["echo one", "shutdown", "echo two"]).await });
    let batch = rx.recv().await.expect("the batch").into_batch();
    let lines: Vec<&str> = batch.iter().map(|job| job.request.line.as_str()).collect();
    assert_eq!(lines, ["echo one", "echo two"], "the denied command never reaches the daemon");
    for job in batch {
        let answer = job.request.args(1).join(" ");
        job.reply.send(Reply::ok(answer)).expect("the listener waits");
    }
    let replies = split_batch_reply(&sent.await.expect("client")).expect("batch");
    assert_eq!(
        replies,
        [Reply::ok("one"), Reply::failed(format!("command \"shutdown\" not allowed for user {user}")), Reply::ok("two")]
    );
    shutdown.cancel();
    server.await.expect("join").expect("serve");
}
