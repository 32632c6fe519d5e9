//! The node's registry of operator-declared console commands: external programs run with
//! a timeout and an output limit, like keepalived notify scripts or Serf handlers. Declared
//! in the node configuration:
//!
//! ```text
//! Control_Command "mailq" {
//!   Program = "/usr/sbin/mailq"        # run directly, no shell
//!   Args = ( "-n" )                    # fixed arguments; words typed after the name follow
//!   Timeout = 10                       # seconds, 0.1 to 3600 (default 10)
//!   Max_Output = 65536                 # bytes kept of stdout + stderr, 1 to 16 MiB (default 64 KiB)
//! }
//! ```
//!
//! A command name may be several words (`"sieve:sieve1 flush cache"`); the longest declared
//! name that prefixes what was typed wins (prefix dispatch, as Momentum's console).
//! The program sees `EC_COMMAND` (the whole line), `EC_NODE_NAME` and `EC_SUB_CLUSTER`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::config::{ConfigError, Scope, Span};

/// One declared external command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCommand {
    /// The command name as words, lowercase.
    pub name: Vec<String>,
    /// The program to run.
    pub program: PathBuf,
    /// Fixed arguments before the typed ones.
    pub args: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
    /// Output kept, in bytes.
    pub max_output: usize,
    /// Where it was declared.
    pub span: Span,
}

/// The declared commands of a node.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    commands: Vec<ExternalCommand>,
}

/// Most output a declared command may keep (`Max_Output`): answers travel to the manager and
/// sit in its results buffer, so more than this is a mistake.
const MAX_OUTPUT_LIMIT: u64 = 16 << 20;

fn invalid(span: &Span, message: String) -> ConfigError {
    ConfigError::Syntax { span: span.clone(), message }
}

impl Registry {
    /// Reads every `Control_Command` scope of a configuration.
    pub fn from_config(root: &Scope) -> Result<Registry, ConfigError> {
        let mut commands: Vec<ExternalCommand> = Vec::new();
        for scope in root.scopes("Control_Command") {
            let Some(name) = scope.name.as_deref() else {
                return Err(invalid(&scope.span, "Control_Command needs a name: Control_Command \"name\" { ... }".into()));
            };
            let words: Vec<String> = name.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
            if words.is_empty() {
                return Err(invalid(&scope.span, "Control_Command has an empty name".into()));
            }
            if let Some(other) = commands.iter().find(|c| c.name == words) {
                return Err(invalid(&scope.span, format!("Control_Command \"{name}\" is already declared at {}", other.span)));
            }
            let program = match scope.option("Program") {
                Some(o) => PathBuf::from(o.as_str()?),
                None => return Err(invalid(&scope.span, format!("Control_Command \"{name}\" needs Program = \"/path/to/program\""))),
            };
            if !program.is_absolute() {
                let span = scope.option("Program").map(|o| o.span.clone()).unwrap_or_else(|| scope.span.clone());
                return Err(invalid(&span, format!("Program of Control_Command \"{name}\" must be an absolute path")));
            }
            let args = match scope.option("Args") {
                Some(o) => match o.as_list() {
                    Ok(l) => l.to_vec(),
                    Err(_) => vec![o.as_str()?.to_owned()],
                },
                None => Vec::new(),
            };
            let timeout = match scope.option("Timeout") {
                Some(o) => o.as_secs_in(Duration::from_millis(100), Duration::from_secs(3600))?,
                None => Duration::from_secs(10),
            };
            let max_output = match scope.option("Max_Output") {
                Some(o) => usize::try_from(o.as_u64_in(1..=MAX_OUTPUT_LIMIT, " bytes")?).unwrap_or(usize::MAX),
                None => 64 * 1024,
            };
            commands.push(ExternalCommand { name: words, program, args, timeout, max_output, span: scope.span.clone() });
        }
        commands.sort_by_key(|c| std::cmp::Reverse(c.name.len()));
        Ok(Registry { commands })
    }

    /// The declared command that the typed words start with (longest name first), and the
    /// words after it.
    pub fn find<'a>(&self, words: &'a [String]) -> Option<(&ExternalCommand, &'a [String])> {
        self.commands.iter().find_map(|c| {
            let n = c.name.len();
            let prefix = words.get(..n)?;
            prefix.iter().zip(&c.name).all(|(w, p)| w.eq_ignore_ascii_case(p)).then(|| (c, &words[n..]))
        })
    }

    /// Declared command names, for `help`.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.commands.iter().map(|c| c.name.join(" ")).collect();
        v.sort();
        v
    }
}

/// The outcome of running an external command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// True if it exited with status 0 in time.
    pub ok: bool,
    /// What it printed (stdout, then stderr), possibly truncated, plus a note on failure.
    pub body: String,
}

async fn read_limited<R: tokio::io::AsyncRead + Unpin>(mut r: R, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Runs `cmd` with the typed `extra` words appended to its arguments.
pub async fn run(cmd: &ExternalCommand, extra: &[String], env: &[(&str, String)]) -> Outcome {
    let mut command = Command::new(&cmd.program);
    command.args(&cmd.args).args(extra).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome { ok: false, body: format!("cannot run {}: {e}\n", cmd.program.display()) },
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome { ok: false, body: "cannot capture the program's output\n".into() };
    };
    let limit = cmd.max_output;
    let work = async {
        let (out, err) = tokio::join!(read_limited(stdout, limit), read_limited(stderr, limit));
        let status = child.wait().await;
        (out, err, status)
    };
    match tokio::time::timeout(cmd.timeout, work).await {
        Err(_) => {
            // kill_on_drop reaps the child when `work` is dropped here.
            Outcome { ok: false, body: format!("{} timed out after {:?} and was killed\n", cmd.program.display(), cmd.timeout) }
        }
        Ok(((out, t1), (err, t2), status)) => {
            let mut bytes = out;
            let room = limit.saturating_sub(bytes.len());
            let t3 = err.len() > room;
            bytes.extend_from_slice(&err[..err.len().min(room)]);
            let mut body = String::from_utf8_lossy(&bytes).into_owned();
            if t1 || t2 || t3 {
                body.push_str(&format!("\n[output truncated at {limit} bytes]\n"));
            }
            match status {
                Ok(s) if s.success() => Outcome { ok: true, body },
                Ok(s) => {
                    body.push_str(&format!("[{} exited with {s}]\n", cmd.program.display()));
                    Outcome { ok: false, body }
                }
                Err(e) => Outcome { ok: false, body: format!("{body}[waiting for {}: {e}]\n", cmd.program.display()) },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn registry(text: &str) -> Result<Registry, ConfigError> {
        Registry::from_config(&crate::config::parse_str(text, Path::new("node.conf"))?)
    }

    #[test]
    fn longest_declared_prefix_wins() {
        let r = registry(
            "Control_Command \"sieve:sieve1\" { Program = /bin/echo }\n\
             Control_Command \"sieve:sieve1 flush cache\" { Program = /bin/true }\n",
        )
        .expect("valid");
        let words: Vec<String> = ["SIEVE:sieve1", "flush", "cache", "now"].iter().map(|s| s.to_string()).collect();
        let (c, rest) = r.find(&words).expect("found");
        assert_eq!(c.program, PathBuf::from("/bin/true"));
        assert_eq!(rest, &["now".to_string()]);
        let words: Vec<String> = ["sieve:sieve1", "reload"].iter().map(|s| s.to_string()).collect();
        assert_eq!(r.find(&words).expect("found").0.program, PathBuf::from("/bin/echo"));
        assert!(r.find(&["other".to_string()]).is_none());
    }

    #[test]
    fn bad_declarations_name_file_line_and_column() {
        let e = registry("\n  Control_Command \"x\" { Args = ( a ) }\n").expect_err("no program");
        assert_eq!(e.to_string(), "node.conf:2:3: Control_Command \"x\" needs Program = \"/path/to/program\"");
        let e = registry("Control_Command \"x\" { Program = relative/prog }").expect_err("relative");
        assert_eq!(e.to_string(), "node.conf:1:23: Program of Control_Command \"x\" must be an absolute path");
        let e = registry("Control_Command \"x\" { Program = /bin/true }\nControl_Command \"X\" { Program = /bin/true }")
            .expect_err("duplicate");
        assert!(e.to_string().starts_with("node.conf:2:1: Control_Command \"X\" is already declared at node.conf:1:1"), "{e}");
    }

    #[test]
    fn timeout_and_output_limit_are_checked_against_their_ranges() {
        let error = |text: &str| registry(text).expect_err("out of range").to_string();
        assert_eq!(
            error("Control_Command \"x\" {\n  Program = /bin/true\n  Timeout = 0.01\n}"),
            "node.conf:3:3: Timeout = 0.01 is out of range; use 0.1 to 3600 seconds"
        );
        assert_eq!(
            error("Control_Command \"x\" { Program = /bin/true Timeout = 18446744073709551615 }"),
            "node.conf:1:43: Timeout = 18446744073709551615 is out of range; use 0.1 to 3600 seconds"
        );
        assert_eq!(
            error("Control_Command \"x\" { Program = /bin/true Max_Output = 0 }"),
            "node.conf:1:43: Max_Output = 0 is out of range; use 1 to 16777216 bytes"
        );
        assert_eq!(
            error("Control_Command \"x\" { Program = /bin/true Max_Output = 16777217 }"),
            "node.conf:1:43: Max_Output = 16777217 is out of range; use 1 to 16777216 bytes"
        );
        registry("Control_Command \"x\" { Program = /bin/true Timeout = 3600 Max_Output = 16777216 }").expect("the ends");
    }

    #[tokio::test]
    async fn runs_with_timeout_and_output_limit() {
        let r = registry(
            "Control_Command \"say\" { Program = /bin/echo Args = ( hello ) }\n\
             Control_Command \"fail\" { Program = /bin/sh Args = ( -c \"echo oops >&2; exit 3\" ) }\n\
             Control_Command \"slow\" { Program = /bin/sleep Args = ( 5 ) Timeout = 0.2 }\n\
             Control_Command \"big\" { Program = /bin/sh Args = ( -c \"yes | head -c 100000\" ) Max_Output = 100 }\n",
        )
        .expect("valid");
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let words = w("say world");
        let (c, rest) = r.find(&words).expect("say");
        assert_eq!(run(c, rest, &[]).await, Outcome { ok: true, body: "hello world\n".into() });
        let words = w("fail");
        let (c, rest) = r.find(&words).expect("fail");
        let o = run(c, rest, &[]).await;
        assert!(!o.ok && o.body.starts_with("oops\n[/bin/sh exited with exit status: 3]"), "{o:?}");
        let words = w("slow");
        let (c, rest) = r.find(&words).expect("slow");
        let o = run(c, rest, &[]).await;
        assert!(!o.ok && o.body.contains("timed out after 200ms"), "{o:?}");
        let words = w("big");
        let (c, rest) = r.find(&words).expect("big");
        let o = run(c, rest, &[]).await;
        assert!(o.ok && o.body.starts_with(&"y\n".repeat(50)) && o.body.contains("[output truncated at 100 bytes]"), "{o:?}");
    }
}
