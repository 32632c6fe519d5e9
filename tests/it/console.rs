//! The console of real daemons through the real `ec_console` binary.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eccluster::console::frame::{read_reply, write_request, FrameError, Reply};
use eccluster::console::listener::SHUTTING_DOWN;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::support::{converged, eventually, topology, Cluster};

fn ec_console(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec_console"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ec_console");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("ec_console output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_batch_mode_errors_and_structured_output() {
    let mut c = Cluster::new(&topology(24, 4803, &[("east", 1), ("west", 1)]));
    c.start_all();
    converged(&c, 3, Duration::from_secs(30)).await;
    let mgr = c.console("mgr");
    let mgr = mgr.to_str().expect("utf-8 path");

    // One command on the command line.
    let (code, out, _) = ec_console(&[mgr, "version"], "");
    assert_eq!(code, 0);
    assert!(out.contains("# eccmgr version: "), "{out}");

    // A script on stdin: one reply per line, in order.
    let (code, out, err) = ec_console(&[mgr], "version\njson show cluster membership\ninfo\n");
    assert_eq!(code, 0, "{err}");
    let v = out.find("# eccmgr version").expect("version first");
    let j = out.find("\"name\": \"east1\"").expect("membership second");
    let i = out.find("Cluster Group: ec_cluster").expect("info third");
    assert!(v < j && j < i, "{out}");

    // A bad command: clear error, non-zero exit, later commands still run.
    let (code, out, err) = ec_console(&[mgr], "frobnicate the cluster\nversion\n");
    assert_eq!(code, 1);
    assert!(err.contains("unknown command 'frobnicate the cluster'"), "{err}");
    assert!(out.contains("# eccmgr version"), "{out}");

    // A bare `xml` is an error, not a crash; the daemon keeps answering.
    let (code, _, err) = ec_console(&[mgr, "xml"], "");
    assert_ne!(code, 0);
    assert!(err.contains("xml: a command must follow"), "{err}");
    let (code, out, _) = ec_console(&[mgr, "xml", "show", "cluster", "membership"], "");
    assert_eq!(code, 0);
    assert!(out.starts_with("<ClusterMembership>"), "{out}");
    assert_eq!(out.matches("<Member>").count(), 3, "{out}");

    // An oversize request line is refused; the session and the daemon carry on.
    let long = format!("version {}\nversion\n", "x".repeat(100 * 1024));
    let (code, out, err) = ec_console(&[mgr], &long);
    assert_ne!(code, 0);
    assert!(err.contains("exceeds the limit of 65536 bytes"), "{err}");
    assert!(out.contains("# eccmgr version"), "{out}");

    // Node console commands.
    let node = c.console("west1");
    let node = node.to_str().expect("utf-8 path");
    let (code, out, _) = ec_console(&[node], "cluster nodename\ncluster nodeaddr\njson cluster info\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("west1\n127.24.2.11:4803\n"), "{out}");
    assert!(out.contains("\"node_name\": \"west1\""), "{out}");
    // A node command on the manager is refused with a hint.
    let (code, _, err) = ec_console(&[mgr, "cluster", "membership"], "");
    assert_eq!(code, 1);
    assert!(err.contains("is a node command"), "{err}");

    // The console socket is owner-only.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(c.console("mgr")).expect("socket").permissions());
    assert_eq!(mode & 0o777, 0o600);

    // `shutdown` stops the daemon cleanly.
    let (code, out, _) = ec_console(&[node, "shutdown"], "");
    assert_eq!(code, 0, "{out}");
    let mut p = c.procs.remove("west1").expect("west1");
    let status = p.child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

// ---- Stopping a daemon whatever its console clients do, and the console's bounds ----

/// The graceful stop finishes within the daemon's own bound (`daemon::stop::HARD_DEADLINE`);
/// the tests below check it with SIGTERM while clients do their worst.
const STOP_BOUND: Duration = eccluster::daemon::stop::HARD_DEADLINE;

/// A manager and one node (`east1`) on 127.`net`.1.0/24, converged, the node with `node_config`.
async fn pair(net: u8, node_config: &str) -> Cluster {
    let mut c = Cluster::new(&topology(net, 4803, &[("east", 1)]));
    c.set_node_config(node_config);
    c.start_all();
    converged(&c, 2, Duration::from_secs(30)).await;
    c
}

/// Waits for member `name` to exit, at most `limit`: its status and how long it took. A member
/// still running after `limit` is killed and the test fails.
async fn exit_within(c: &mut Cluster, name: &str, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let mut p = c.procs.remove(name).expect("running member");
    let pid = Pid::from_raw(p.child.id() as i32);
    let started = Instant::now();
    let waiter = tokio::task::spawn_blocking(move || p.child.wait());
    match tokio::time::timeout(limit, waiter).await {
        Ok(status) => (status.expect("waiter").expect("wait"), started.elapsed()),
        Err(_) => {
            kill(pid, Signal::SIGKILL).expect("SIGKILL");
            panic!("{name} did not exit within {limit:?}; log:\n{}", c.log_text(name));
        }
    }
}

/// Whether process `pid` has ended: no such process, or a zombie nobody has reaped yet.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `PID (COMMAND) STATE ...`: the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Reads one reply, failing (not hanging) the test after `limit`.
async fn reply_within(stream: &mut UnixStream, limit: Duration) -> Result<Option<Reply>, FrameError> {
    tokio::time::timeout(limit, read_reply(stream)).await.expect("an answer or a close in time")
}

/// Connects to member `name`'s console once it listens, with the first request answered.
async fn connected(c: &Cluster, name: &str) -> UnixStream {
    let path = c.console(name);
    let mut stream = UnixStream::connect(&path).await.expect("connect");
    write_request(&mut stream, "cluster nodename").await.expect("write");
    let reply = read_reply(&mut stream).await.expect("read").expect("reply");
    assert_eq!(reply, Reply::ok(format!("{name}\n")));
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_command_in_flight_answers_it_and_stops_in_time() {
    let marks = tempfile::tempdir().expect("tempdir");
    let mark = marks.path().join("slow.pid");
    // A program that says it runs (its pid), then sleeps far longer than any stop may take.
    let mut c = pair(
        71,
        &format!(
            "Control_Command \"slow\" {{ Program = \"/bin/sh\" Args = ( \"-c\" \"echo $$ > {}; exec sleep 120\" ) Timeout = 300 }}\n",
            mark.display()
        ),
    )
    .await;
    let mut stream = connected(&c, "east1").await;
    write_request(&mut stream, "slow").await.expect("write");
    let pid = eventually("the slow program to run", Duration::from_secs(10), || async {
        std::fs::read_to_string(&mark).ok()?.trim().parse::<i32>().ok()
    })
    .await;

    c.signal("east1", Signal::SIGTERM);
    let reply = reply_within(&mut stream, STOP_BOUND).await.expect("read");
    assert_eq!(reply, Some(Reply::failed(SHUTTING_DOWN)));
    let (status, took) = exit_within(&mut c, "east1", STOP_BOUND).await;
    assert!(status.success(), "a graceful stop, not a forced one: {status}; log:\n{}", c.log_text("east1"));
    assert!(took < STOP_BOUND, "{took:?}");
    // The program was killed with the command, not left behind.
    eventually("the slow program to be gone", Duration::from_secs(5), || async { gone(pid).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_a_large_reply_does_not_hold_up_the_stop() {
    // About 8 MB of output, far more than a socket buffers; the default Write_Timeout (30 s)
    // is longer than a stop may take, so only the stop's own bound can end the write.
    let mut c = pair(
        72,
        "Control_Command \"flood\" { Program = \"/bin/sh\" Args = ( \"-c\" \"yes | head -c 8000000\" ) Max_Output = 9000000 }\n",
    )
    .await;
    let mut stream = connected(&c, "east1").await;
    write_request(&mut stream, "flood").await.expect("write");
    // The reply has begun: its header arrives. Then the client reads no more.
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await.expect("reply header");
    assert_eq!(u32::from_be_bytes([header[0], header[1], header[2], header[3]]), 8_000_001);

    c.signal("east1", Signal::SIGTERM);
    let (status, took) = exit_within(&mut c, "east1", STOP_BOUND).await;
    assert!(status.success(), "{status}; log:\n{}", c.log_text("east1"));
    assert!(took < STOP_BOUND, "{took:?}");
    // What the client reads now ends before the announced 8 MB: the daemon closed it.
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest).await.map(|_| rest.len());
    assert!(!matches!(read, Ok(8_000_000)), "the whole reply was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once() {
    let mut c = pair(
        73,
        "Control_Command \"flood\" { Program = \"/bin/sh\" Args = ( \"-c\" \"yes | head -c 8000000\" ) Max_Output = 9000000 }\n",
    )
    .await;
    // A client that never reads keeps the graceful stop busy for its grace.
    let mut stream = connected(&c, "east1").await;
    write_request(&mut stream, "flood").await.expect("write");
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await.expect("reply header");

    c.signal("east1", Signal::SIGTERM);
    // The stop has begun once the console socket file is gone (the first thing it removes).
    let socket = c.console("east1");
    eventually("the first SIGTERM to be taken", Duration::from_secs(5), || async { (!socket.exists()).then_some(()) })
        .await;
    let p = c.procs.get_mut("east1").expect("east1");
    assert!(p.child.try_wait().expect("try_wait").is_none(), "still stopping gracefully");
    c.signal("east1", Signal::SIGTERM);
    let (status, took) = exit_within(&mut c, "east1", STOP_BOUND).await;
    assert_eq!(status.code(), Some(1), "a forced exit: {status}");
    assert!(took < Duration::from_secs(2), "at once: {took:?}");
    assert!(c.log_text("east1").contains("second signal: exiting at once"), "{}", c.log_text("east1"));
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_the_connection_limit_gets_a_clear_error() {
    let mut c = Cluster::new(&topology(74, 4803, &[("east", 1)]));
    c.set_node_config("Control_Listener {\n  Concurrency = 2\n}\n");
    c.start("east1");
    let console = c.console("east1");
    let console = console.to_str().expect("utf-8 path");
    let mut a = eventually("the console to listen", Duration::from_secs(10), || async {
        UnixStream::connect(c.console("east1")).await.ok()
    })
    .await;
    write_request(&mut a, "cluster nodename").await.expect("write");
    assert_eq!(read_reply(&mut a).await.expect("read"), Some(Reply::ok("east1\n")));
    let b = connected(&c, "east1").await;

    let (code, out, err) = ec_console(&[console, "cluster nodename"], "");
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("console busy: it serves 2 connections at once (Control_Listener Concurrency = 2)"),
        "{err}"
    );

    // One leaves; the server closes its side once the slot is free; the next client is served.
    a.shutdown().await.expect("close write half");
    assert_eq!(read_reply(&mut a).await.expect("clean close"), None);
    let (code, out, err) = ec_console(&[console, "cluster nodename"], "");
    assert_eq!((code, out.as_str()), (0, "east1\n"), "{err}");
    drop(b);

    // A bound out of range stops the daemon at start, naming the place.
    c.set_node_config("Control_Listener {\n  Concurrency = 0\n}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ecnode"))
        .args(["--check-config", "--name", "east1", "--segments"])
        .arg(&c.segments)
        .arg("--tls-dir")
        .arg(&c.tls)
        .arg("-c")
        .arg(c.node_config.as_ref().expect("config"))
        .output()
        .expect("ecnode --check-config");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.conf:2:3: Concurrency = 0 is out of range; use 1 to 4096 connections"), "{err}");
}
