//! Runs the real `ec_console` binary in batch mode against a real console listener.
//!
//! Each test binds `eccluster::console::listener` on a unix socket in a temporary directory,
//! answers its jobs with a small fake daemon defined here (`echo`, `fail`, `stop`), and checks
//! what the binary prints and how it exits. Only the library's public console API is used.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use eccluster::console::frame::Reply;
use eccluster::console::listener::{Job, Listener, ListenerConfig};
use eccluster::console::request::join_words;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A console listener with the fake daemon behind it.
struct Server {
    _dir: tempfile::TempDir,
    path: PathBuf,
    shutdown: CancellationToken,
    listener: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console");
        let listener = Listener::bind(&ListenerConfig::new(&path)).await.expect("bind the console");
        let (jobs, rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        tokio::spawn(fake_daemon(rx, shutdown.clone()));
        let listener = tokio::spawn(listener.run(jobs, shutdown.clone()));
        Server { _dir: dir, path, shutdown, listener }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.listener.await.expect("join").expect("listener");
    }
}

/// `echo WORDS` answers the words; `fail WORDS` fails with them; `stop` answers and then
/// shuts the listener down; anything else is an unknown command.
async fn fake_daemon(mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
    let mut jobs = std::collections::VecDeque::new();
    loop {
        // The commands of a batch request come as one job: answered one after the other.
        let Some(Job { request, reply, .. }) = jobs.pop_front() else {
            match rx.recv().await {
                Some(job) => jobs.extend(job.into_batch()),
                None => break,
            }
            continue;
        };
        let answer = if request.matches(&["echo"]) {
            Reply::ok(join_words(request.args(1)))
        } else if request.matches(&["fail"]) {
            Reply::failed(format!("failed: {}", join_words(request.args(1))))
        } else if request.matches(&["stop"]) {
            Reply::ok("stopping")
        } else {
            Reply::failed(format!("unknown command: {}", request.line))
        };
        if request.matches(&["stop"]) {
            // Before the reply, so the connection sees the shutdown once it has answered.
            shutdown.cancel();
            // As the daemons do: the rest of a batch after a shutdown does not run.
            for Job { reply, .. } in jobs.drain(..) {
                reply.send(Reply::failed(eccluster::console::listener::SHUTTING_DOWN)).ok();
            }
        }
        // The client may have gone; nothing to do about it here.
        reply.send(answer).ok();
    }
}

/// Runs `ec_console ARGS` with `stdin` as its standard input.
async fn ec_console(args: &[&str], stdin: impl AsRef<[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec_console"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("HOME")
        .spawn()
        .expect("spawn ec_console");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.as_ref().to_vec();
    let writer = tokio::spawn(async move {
        // The client may exit before reading everything; a broken pipe is fine then.
        input.write_all(&data).await.ok();
    });
    let output = child.wait_with_output().await.expect("wait for ec_console");
    writer.await.expect("stdin writer");
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sock(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_prints_its_reply_and_exits_zero() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path), "echo", "hi"], "").await;
    assert_eq!(text(&output.stdout), "hi\n");
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));

    // One argument is sent as typed; several are re-quoted where they hold spaces.
    let output = ec_console(&[sock(&server.path), "echo \"a b\" c"], "").await;
    assert_eq!(text(&output.stdout), "\"a b\" c\n");
    let output = ec_console(&[sock(&server.path), "echo", "a b", "c"], "").await;
    assert_eq!(text(&output.stdout), "\"a b\" c\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_are_run_in_order() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path)], "echo one\necho two\r\n\n# a comment\n   echo three\n").await;
    assert_eq!(text(&output.stdout), "one\ntwo\nthree\n");
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_utf8_is_skipped_and_counts_as_a_failure() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path)], b"echo a\n\xff\xfe\necho b\n").await;
    assert_eq!(text(&output.stdout), "a\nb\n");
    assert_eq!(text(&output.stderr), "ec_console: line 2 of standard input is not valid UTF-8; skipped\n");
    assert_eq!(output.status.code(), Some(1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_ends_the_batch() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path)], "echo before\nQUIT\necho after\n").await;
    assert_eq!(text(&output.stdout), "before\n");
    assert_eq!(output.status.code(), Some(0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_command_goes_to_stderr_and_exits_one() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path), "fail", "now"], "").await;
    assert_eq!(text(&output.stdout), "");
    assert_eq!(text(&output.stderr), "failed: now\n");
    assert_eq!(output.status.code(), Some(1));

    // Later commands still run; the exit code remembers the failure.
    let output = ec_console(&[sock(&server.path)], "fail first\necho second\nxml\n").await;
    assert_eq!(text(&output.stdout), "second\n");
    assert_eq!(text(&output.stderr), "failed: first\nxml: a command must follow, e.g. 'xml show cluster membership'\n");
    assert_eq!(output.status.code(), Some(1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_socket_exits_two_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nobody-here");
    let output = ec_console(&[sock(&path), "echo", "hi"], "").await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with(&format!("ec_console: cannot connect to {}: ", path.display())), "{stderr}");
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert_eq!(text(&output.stdout), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_endpoint_exits_two() {
    let output = ec_console(&["[::1]", "echo", "hi"], "").await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stderr), "ec_console: bad endpoint '[::1]': expected [v6addr]:port\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_line_is_refused_and_the_next_line_is_answered() {
    let server = Server::start().await;
    let big = format!("echo {}", "x".repeat(100 * 1024 - 5));
    let output = ec_console(&[sock(&server.path)], &format!("{big}\necho after\n")).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "request of 102400 bytes exceeds the limit of 65536 bytes\n");
    assert_eq!(text(&output.stdout), "after\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_ends_the_batch_with_one() {
    let server = Server::start().await;
    let output = ec_console(&[sock(&server.path)], "echo a\nstop\necho b\n").await;
    assert_eq!(text(&output.stdout), "a\nstopping\n");
    // Sent in the batch with `stop`, `echo b` is answered that the console is stopping; sent
    // after it, it finds the connection closed. Either way it does not run.
    let stderr = text(&output.stderr);
    let stopping = format!("{}\n", eccluster::console::listener::SHUTTING_DOWN);
    assert!(stderr == "connection closed by server\n" || stderr == stopping, "{stderr}");
    assert_eq!(output.status.code(), Some(1));
    let path = server.path.clone();
    server.listener.await.expect("join").expect("listener");
    assert!(!path.exists());
}

/// A console whose daemon records how many commands came in each job (one request), and
/// answers `echo`; `max_batch` is the listener's `Max_Batch_Commands`.
async fn counting_server(max_batch: usize) -> (Server, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("console");
    let mut cfg = ListenerConfig::new(&path);
    cfg.max_batch = max_batch;
    let listener = Listener::bind(&cfg).await.expect("bind the console");
    let (jobs, mut rx) = mpsc::channel::<Job>(16);
    let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = sizes.clone();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let batch = job.into_batch();
            seen.lock().expect("sizes").push(batch.len());
            for Job { request, reply, .. } in batch {
                reply.send(Reply::ok(join_words(request.args(1)))).ok();
            }
        }
    });
    let shutdown = CancellationToken::new();
    let listener = tokio::spawn(listener.run(jobs, shutdown.clone()));
    (Server { _dir: dir, path, shutdown, listener }, sizes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_commands_travel_in_one_batch_and_a_smaller_limit_splits_them() {
    let input: String = (0..10).map(|i| format!("echo {i}\n")).collect();
    let expected: String = (0..10).map(|i| format!("{i}\n")).collect();

    let (server, sizes) = counting_server(512).await;
    let output = ec_console(&[sock(&server.path)], &input).await;
    assert_eq!((text(&output.stdout), output.status.code()), (expected.clone(), Some(0)), "{}", text(&output.stderr));
    assert_eq!(*sizes.lock().expect("sizes"), [10], "ten commands, one request");
    server.stop().await;

    // A console that takes at most 4 refuses the batch whole (nothing runs); the client sends
    // the same commands again in smaller batches, in order, each once.
    let (server, sizes) = counting_server(4).await;
    let output = ec_console(&[sock(&server.path)], &input).await;
    assert_eq!((text(&output.stdout), output.status.code()), (expected, Some(0)), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    assert_eq!(*sizes.lock().expect("sizes"), [2, 2, 2, 2, 2]);
    server.stop().await;
}
