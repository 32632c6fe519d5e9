//! The bounds of a Control_Listener as an operator writes them in the configuration: how many
//! connections it serves at once, how large a request and a reply may be, how long a client may
//! idle or take to read a reply.
//!
//! ```text
//! Control_Listener {
//!   Concurrency = 64              # connections served at once; one more is told "console busy"
//!   Timeout = 3600                # seconds a connection may send nothing before it is closed
//!   Write_Timeout = 30            # seconds a client has to take a reply before it is closed
//!   Max_Request_Size = 65536      # bytes of one command line
//!   Max_Reply_Size = 67108864     # bytes of one answer held for a client
//!   Max_Batch_Commands = 512      # command lines in one batch request
//!   Listen "/tmp/2025" {
//!     Concurrency = 8             # a Listen scope overrides the listener's value for its socket
//!     File_Mode = 0660            # permission bits of the socket file, octal (default 0600)
//!   }
//! }
//! ```
//!
//! Every such option in every `Control_Listener` and `Listen` scope is checked, so a wrong value
//! stops the daemon at start with `FILE:LINE:COLUMN`; only the listener's own values and those
//! of the `Listen` scope naming the console socket are applied. Reading only; no I/O here.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::{ConfigError, ConfigOption, Scope};

use super::frame::MAX_REPLY;
use super::listener::{ListenerConfig, MAX_BATCH};

/// `Concurrency`: connections served at once.
const CONCURRENCY: RangeInclusive<u64> = 1..=4096;
/// `Timeout` (idle), in seconds.
const IDLE_SECS: RangeInclusive<u64> = 1..=86_400;
/// `Write_Timeout`, in seconds.
const WRITE_SECS: RangeInclusive<u64> = 1..=3600;
/// `Max_Request_Size`, in bytes.
const REQUEST_BYTES: RangeInclusive<u64> = 1024..=16 * 1024 * 1024;
/// `Max_Reply_Size`, in bytes: at most what a client accepts (one byte of the frame is the status).
const REPLY_BYTES: RangeInclusive<u64> = 64 * 1024..=MAX_REPLY as u64 - 1;
/// `Max_Batch_Commands`: command lines in one batch request. The daemon takes a batch in one
/// turn of its loop, so this bounds that turn too; and at the smallest `Max_Reply_Size` every
/// command of the largest batch still has room for its answer, or for the short error that
/// replaces an answer over the limit (see `listener/batch.rs`).
const BATCH_COMMANDS: RangeInclusive<u64> = 1..=MAX_BATCH as u64;

/// `File_Mode`: permission bits of the socket file. Connecting needs write permission, so the
/// owner (the daemon's user) must keep it; set-id and sticky bits mean nothing on a socket.
const FILE_MODE: RangeInclusive<u32> = 0o200..=0o777;

/// The values one scope sets; `None` for what it leaves alone.
#[derive(Debug, Default)]
struct Overrides {
    file_mode: Option<u32>,
    max_connections: Option<usize>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    max_request: Option<usize>,
    max_reply: Option<usize>,
    max_batch: Option<usize>,
}

impl Overrides {
    fn apply(self, cfg: &mut ListenerConfig) {
        let Overrides { file_mode, max_connections, idle_timeout, write_timeout, max_request, max_reply, max_batch } = self;
        cfg.file_mode = file_mode.unwrap_or(cfg.file_mode);
        cfg.max_connections = max_connections.unwrap_or(cfg.max_connections);
        cfg.idle_timeout = idle_timeout.unwrap_or(cfg.idle_timeout);
        cfg.write_timeout = write_timeout.unwrap_or(cfg.write_timeout);
        cfg.max_request = max_request.unwrap_or(cfg.max_request);
        cfg.max_reply = max_reply.unwrap_or(cfg.max_reply);
        cfg.max_batch = max_batch.unwrap_or(cfg.max_batch);
    }
}

/// Sets the bounds of `cfg` from the `Control_Listener` scopes of `root`: first the listener's
/// own options, then those of its `Listen` scope whose name is `cfg.path`.
pub fn apply(root: &Scope, cfg: &mut ListenerConfig) -> Result<(), ConfigError> {
    let path = cfg.path.to_string_lossy().into_owned();
    for listener in root.scopes("Control_Listener") {
        read(listener)?.apply(cfg);
        for listen in listener.scopes("Listen") {
            let overrides = read(listen)?;
            if listen.name.as_deref() == Some(path.as_str()) {
                overrides.apply(cfg);
            }
        }
    }
    Ok(())
}

fn read(scope: &Scope) -> Result<Overrides, ConfigError> {
    let count = |name, range: &RangeInclusive<u64>, unit, why: &str| -> Result<Option<usize>, ConfigError> {
        scope.option(name).map(|o| whole(o, range, unit, why)).transpose()
    };
    let secs = |name, range: &RangeInclusive<u64>| -> Result<Option<Duration>, ConfigError> {
        scope.option(name).map(|o| seconds(o, range)).transpose()
    };
    Ok(Overrides {
        file_mode: scope.option("File_Mode").map(file_mode).transpose()?,
        max_connections: count(
            "Concurrency",
            &CONCURRENCY,
            "connections",
            " (0, unlimited, is not accepted: every connection holds a request and a reply in memory)",
        )?,
        idle_timeout: secs("Timeout", &IDLE_SECS)?,
        write_timeout: secs("Write_Timeout", &WRITE_SECS)?,
        max_request: count("Max_Request_Size", &REQUEST_BYTES, "bytes", "")?,
        max_reply: count("Max_Reply_Size", &REPLY_BYTES, "bytes", "")?,
        max_batch: count("Max_Batch_Commands", &BATCH_COMMANDS, "commands", "")?,
    })
}

fn out_of_range(option: &ConfigOption, range: &RangeInclusive<u64>, unit: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        span: option.span.clone(),
        message: format!(
            "{} = {} is out of range; use {} to {} {unit}{why}",
            option.name,
            option.value,
            range.start(),
            range.end()
        ),
    }
}

fn file_mode(option: &ConfigOption) -> Result<u32, ConfigError> {
    let mode = option.as_octal()?;
    if !FILE_MODE.contains(&mode) || mode & 0o200 == 0 {
        return Err(ConfigError::Invalid {
            span: option.span.clone(),
            message: format!(
                "File_Mode = {} is not a socket mode; use octal permission bits up to 0777 that keep \
                 the owner's write bit (0200), e.g. 0600 or 0660",
                option.value
            ),
        });
    }
    Ok(mode)
}

fn whole(option: &ConfigOption, range: &RangeInclusive<u64>, unit: &str, why: &str) -> Result<usize, ConfigError> {
    let n = option.as_u64()?;
    if !range.contains(&n) {
        return Err(out_of_range(option, range, unit, if n == 0 { why } else { "" }));
    }
    usize::try_from(n).map_err(|_| out_of_range(option, range, unit, ""))
}

fn seconds(option: &ConfigOption, range: &RangeInclusive<u64>) -> Result<Duration, ConfigError> {
    let d = option.as_duration_secs()?;
    let (low, high) = (Duration::from_secs(*range.start()), Duration::from_secs(*range.end()));
    if d < low || d > high {
        return Err(out_of_range(option, range, "seconds", ""));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn read_config(text: &str, socket: &str) -> Result<ListenerConfig, String> {
        let root = crate::config::parse_str(text, Path::new("eccluster.conf")).map_err(|e| e.to_string())?;
        let mut cfg = ListenerConfig::new(socket);
        apply(&root, &mut cfg).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn defaults_stand_without_options() {
        let cfg = read_config("Control_Listener { Listen \"/tmp/2025\" { } }\n", "/tmp/2025").expect("valid");
        assert_eq!(cfg, ListenerConfig::new("/tmp/2025"));
        assert_eq!(cfg.max_connections, 64);
        assert_eq!(cfg.max_request, 64 * 1024);
        assert_eq!(cfg.max_reply, 64 * 1024 * 1024);
        assert_eq!(cfg.max_batch, 512);
        assert_eq!(cfg.write_timeout, Duration::from_secs(30));
        assert_eq!(cfg.file_mode, 0o600);
    }

    #[test]
    fn file_mode_is_read_as_octal_for_our_socket_only() {
        let text = "Control_Listener {\n\
                    \x20 Listen \"/tmp/2025\" { File_Mode = 0660 }\n\
                    \x20 Listen \"/tmp/other\" { File_Mode = 0666 }\n\
                    }\n";
        assert_eq!(read_config(text, "/tmp/2025").expect("valid").file_mode, 0o660);
        assert_eq!(read_config(text, "/tmp/other").expect("valid").file_mode, 0o666);
        assert_eq!(read_config(text, "/tmp/third").expect("valid").file_mode, 0o600);
    }

    #[test]
    fn listener_values_apply_and_the_listen_scope_of_our_socket_overrides_them() {
        let text = "Control_Listener {\n\
                    \x20 Concurrency = 10\n\
                    \x20 Timeout = 60\n\
                    \x20 Write_Timeout = 5\n\
                    \x20 Max_Request_Size = 4096\n\
                    \x20 Max_Reply_Size = 1048576\n\
                    \x20 Max_Batch_Commands = 100\n\
                    \x20 Listen \"/tmp/2025\" { Concurrency = 3 }\n\
                    \x20 Listen \"/tmp/other\" { Concurrency = 7 Timeout = 2 }\n\
                    }\n";
        let cfg = read_config(text, "/tmp/2025").expect("valid");
        assert_eq!(cfg.max_connections, 3);
        assert_eq!(cfg.idle_timeout, Duration::from_secs(60));
        assert_eq!(cfg.write_timeout, Duration::from_secs(5));
        assert_eq!(cfg.max_request, 4096);
        assert_eq!(cfg.max_reply, 1024 * 1024);
        assert_eq!(cfg.max_batch, 100);
        let other = read_config(text, "/tmp/other").expect("valid");
        assert_eq!((other.max_connections, other.idle_timeout), (7, Duration::from_secs(2)));
    }

    #[test]
    fn out_of_range_values_name_file_line_column_and_the_range() {
        let cases = [
            (
                "Control_Listener {\n  Concurrency = 0\n}\n",
                "eccluster.conf:2:3: Concurrency = 0 is out of range; use 1 to 4096 connections (0, unlimited, is \
                 not accepted: every connection holds a request and a reply in memory)",
            ),
            (
                "Control_Listener {\n  Listen \"/elsewhere\" {\n    Max_Reply_Size = 100\n  }\n}\n",
                "eccluster.conf:3:5: Max_Reply_Size = 100 is out of range; use 65536 to 268435455 bytes",
            ),
            (
                "Control_Listener { Write_Timeout = 0.5 }\n",
                "eccluster.conf:1:20: Write_Timeout = 0.5 is out of range; use 1 to 3600 seconds",
            ),
            (
                "Control_Listener {\n  Listen \"/tmp/2025\" { File_Mode = 0999 }\n}\n",
                "eccluster.conf:2:24: expected an octal number such as 0644 for option 'File_Mode' but found '0999'",
            ),
            (
                "Control_Listener {\n  Listen \"/elsewhere\" { File_Mode = 0444 }\n}\n",
                "eccluster.conf:2:25: File_Mode = 0444 is not a socket mode; use octal permission bits up to 0777 \
                 that keep the owner's write bit (0200), e.g. 0600 or 0660",
            ),
            (
                "Control_Listener { File_Mode = 4770 }\n",
                "eccluster.conf:1:20: File_Mode = 4770 is not a socket mode; use octal permission bits up to 0777 \
                 that keep the owner's write bit (0200), e.g. 0600 or 0660",
            ),
            (
                "Control_Listener { Max_Batch_Commands = 1025 }\n",
                "eccluster.conf:1:20: Max_Batch_Commands = 1025 is out of range; use 1 to 1024 commands",
            ),
            (
                "Control_Listener { Max_Request_Size = 1e9 }\n",
                "eccluster.conf:1:20: expected a whole number for option 'Max_Request_Size' but found '1e9'",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(read_config(text, "/tmp/2025").expect_err(text), expected, "{text}");
        }
    }
}
