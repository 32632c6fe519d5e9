//! Running the daemons as services: real `eccmgr`, `ecnode` and `ecconfigd` processes tell a
//! service manager — here a unix datagram socket the test binds and names in `NOTIFY_SOCKET`,
//! as systemd does for `Type=notify` — `READY=1` once they serve and `STOPPING=1` when a
//! SIGTERM begins their stop; and the console socket takes the `File_Mode` of the configuration.
//! Addresses on 127.44.0.0/16.

use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{topology, Cluster};

/// The next notification, or `None` when none arrives within `limit`.
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A socket the test binds as the service manager's: a path under `dir`, or an abstract name.
fn manager_socket(dir: &Path, name: &str, abstract_name: bool) -> (UnixDatagram, String) {
    if abstract_name {
        let unique = format!("eccluster-it-{name}-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(unique.as_bytes()).expect("abstract name");
        (UnixDatagram::bind_addr(&addr).expect("bind abstract"), format!("@{unique}"))
    } else {
        let path = dir.join(format!("{name}.notify"));
        (UnixDatagram::bind(&path).expect("bind notify socket"), path.display().to_string())
    }
}

/// Waits (at most `limit`) for `child` to exit and returns its status.
fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "process still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_daemons_notify_ready_once_the_console_answers_and_stopping_on_sigterm() {
    let mut c = Cluster::new(&topology(44, 4803, &[("east", 1)]));
    for (name, abstract_name) in [("mgr", false), ("east1", true)] {
        let (socket, target) = manager_socket(c.dir.path(), name, abstract_name);
        c.member_env.insert(name.to_owned(), vec![("NOTIFY_SOCKET".to_owned(), target)]);
        c.start(name);
        let message = next_message(&socket, Duration::from_secs(30)).unwrap_or_else(|| panic!("{name}: no READY=1\n{}", c.log_text(name)));
        // The moment READY=1 arrives, the console answers.
        let answer = c.ask(name, "version").await;
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.first(), Some(&"READY=1"), "{name}: {message}");
        assert!(lines.iter().any(|l| l.starts_with("STATUS=") && l.contains(name)), "{name}: {message}");
        assert!(answer.is_ok(), "{name}: READY=1 came before the console answered: {answer:?}");

        c.signal(name, Signal::SIGTERM);
        let message = next_message(&socket, Duration::from_secs(10)).unwrap_or_else(|| panic!("{name}: no STOPPING=1"));
        assert_eq!(message.lines().next(), Some("STOPPING=1"), "{name}: {message}");
        let mut p = c.procs.remove(name).expect("running");
        assert!(exit_within(&mut p.child, Duration::from_secs(15)).success(), "{name}: {}", c.log_text(name));
        assert_eq!(next_message(&socket, Duration::from_millis(200)), None, "{name}: one READY, one STOPPING");
    }
}

#[test]
fn ecconfigd_notifies_ready_once_it_listens_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, target) = manager_socket(dir.path(), "ecconfigd", false);
    let addr = "127.44.9.1:2027";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecconfigd"))
        .args(["--listen", addr, "--subcluster", "east", "--state-dir"])
        .arg(dir.path().join("state"))
        .env("NOTIFY_SOCKET", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ecconfigd");
    let message = next_message(&socket, Duration::from_secs(60));
    let connected = std::net::TcpStream::connect(addr);
    let message = message.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("ecconfigd: no READY=1")
    });
    assert_eq!(message.lines().next(), Some("READY=1"), "{message}");
    assert!(message.contains(&format!("STATUS=ecconfigd serving on {addr}")), "{message}");
    assert!(connected.is_ok(), "READY=1 came before ecconfigd listened: {connected:?}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let message = next_message(&socket, Duration::from_secs(10));
    let status = exit_within(&mut child, Duration::from_secs(15));
    assert_eq!(message.as_deref().and_then(|m| m.lines().next()), Some("STOPPING=1"), "{message:?}");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_socket_takes_file_mode_and_a_bad_one_stops_the_start() {
    let mut c = Cluster::new(&topology(44, 4804, &[("west", 1)]));
    let console = c.console("west1");
    let config = format!("Control_Listener {{\n  Listen \"{}\" {{ File_Mode = 0640 }}\n}}\n", console.display());
    c.set_member_config("west1", &config);
    c.start("west1");
    crate::support::eventually("west1's console", Duration::from_secs(30), || async {
        c.ask("west1", "version").await.ok()
    })
    .await;
    let mode = fs::metadata(&console).expect("console socket").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640, "File_Mode = 0640 gave {mode:o}");
    assert!(c.terminate("west1").success());

    let path = c.set_member_config("west1", "Control_Listener {\n  Listen \"/x\" { }\n  File_Mode = 0999\n}\n");
    c.start("west1");
    let mut p = c.procs.remove("west1").expect("started");
    let status = exit_within(&mut p.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(2), "{}", c.log_text("west1"));
    let log = c.log_text("west1");
    let place = format!("{}:3:3: expected an octal number such as 0644 for option 'File_Mode' but found '0999'", path.display());
    assert!(log.contains(&place), "{log}");
}
