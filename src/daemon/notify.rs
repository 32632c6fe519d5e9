//! Telling the service manager (systemd's `Type=notify`, sd_notify(3)) that a daemon is ready and
//! that it is stopping: one datagram of `KEY=value` lines to the unix socket `$NOTIFY_SOCKET`
//! names, a path or, with a leading `@`, an abstract name.
//!
//! Without `NOTIFY_SOCKET` nothing happens: a daemon started by hand, by a test or by `eccluster
//! local up` is told nothing and tells nothing. A notification that cannot be sent is logged and
//! otherwise ignored: the daemon serves the same whether the service manager heard it or not.
//!
//! Written here rather than taken from the `sd-notify` crate, whose `notify` (0.5) connects to the
//! variable's value as a path and so cannot reach the abstract names systemd uses in containers
//! and user sessions. The send is non-blocking: a service manager that does not read its socket
//! costs a log line, never a stalled daemon loop. No thread is started here.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use tracing::{debug, warn};

/// The environment variable that names the service manager's socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// The daemon serves: `READY=1` with `status` as its `STATUS=` line.
pub fn ready(status: &str) {
    send(&format!("READY=1\nSTATUS={}\n", one_line(status)));
}

/// A stop has begun: `STOPPING=1` with `status` as its `STATUS=` line.
pub fn stopping(status: &str) {
    send(&format!("STOPPING=1\nSTATUS={}\n", one_line(status)));
}

/// A `STATUS=` value is one line.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

fn send(message: &str) {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET) else { return };
    match send_to(&target, message) {
        Ok(()) => debug!(socket = %target.to_string_lossy(), message = message.trim_end(), "told the service manager"),
        Err(error) => warn!(
            socket = %target.to_string_lossy(),
            %error,
            message = message.trim_end(),
            "telling the service manager failed; going on"
        ),
    }
}

/// Sends `message` as one datagram to `target`, an absolute path or `@abstract-name`.
pub fn send_to(target: &OsStr, message: &str) -> io::Result<()> {
    let addr = match target.as_bytes().split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name)?,
        Some((b'/', _)) => SocketAddr::from_pathname(Path::new(target))?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an absolute path nor an abstract name (@NAME); other kinds of socket are not supported",
            ))
        }
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    let sent = socket.send_to_addr(message.as_bytes(), &addr)?;
    if sent != message.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("sent {sent} of {} bytes", message.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn reaches_a_path_and_an_abstract_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let by_path = UnixDatagram::bind(&path).expect("bind path");
        send_to(path.as_os_str(), "READY=1\nSTATUS=serving\n").expect("send to path");
        assert_eq!(receive(&by_path), "READY=1\nSTATUS=serving\n");

        let name = format!("eccluster-notify-test-{}", std::process::id());
        let by_name = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract"))
            .expect("bind abstract");
        send_to(&OsString::from(format!("@{name}")), "STOPPING=1\n").expect("send to abstract name");
        assert_eq!(receive(&by_name), "STOPPING=1\n");
    }

    #[test]
    fn a_target_that_is_not_a_socket_is_an_error_not_a_panic() {
        for target in ["", "relative/path", "vsock:2:1234"] {
            let error = send_to(OsStr::new(target), "READY=1\n").expect_err(target);
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{target}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nobody-listens");
        assert!(send_to(missing.as_os_str(), "READY=1\n").is_err());
    }

    #[test]
    fn status_stays_on_one_line() {
        assert_eq!(one_line("a\nb\rc"), "a b c");
    }
}
