//! `ec_console`, the console client: endpoints, sessions, batch mode and the interactive shell.
//!
//! `ec_console [ENDPOINT [COMMAND...]]` connects to a console (a unix socket, or TCP with the
//! same framing) and either runs commands non-interactively — when a COMMAND is given or
//! standard input is not a terminal — or opens an interactive session with Momentum's banner,
//! the `HH:MM:SS ENDPOINT> ` prompt, history in `~/.ec_console_history` and tab completion of
//! the command names the server's `help` lists. Commands read from standard input travel
//! many to a request (batch requests, `frame.rs`; see `client/batch.rs`).
//!
//! Exit codes follow the interface contract: 0 every command succeeded, 1 a command failed
//! (or the server went away), 2 bad usage or an endpoint that cannot be reached. The client
//! knows no commands besides `quit` and `exit`; everything else goes to the server as typed.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, IsTerminal as _, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpStream, UnixStream};

use self::batch::Source;
use super::connect::RemoteOptions;
use super::frame::{batch_request, login_request, read_reply, split_batch_reply, write_request, FrameError, Reply, Status};
use super::listener::DEFAULT_PATH;
use super::request::join_words;

mod batch;

/// Exit code when a command failed or the server went away.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage or an endpoint that cannot be reached.
pub const EXIT_USAGE: u8 = 2;

/// How long to wait for a TCP connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// History file, in the home directory.
const HISTORY_FILE: &str = ".ec_console_history";

/// Lines of history kept.
const HISTORY_SIZE: usize = 1000;

/// Command line of `ec_console`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "ec_console", version, about = "Console client for eccmgr and ecnode")]
pub struct Args {
    /// Console endpoint: a unix socket path (/tmp/2025), a number N meaning /tmp/N, or
    /// [USER@]host:port / [USER@][v6addr]:port for a remote console (TLS)
    #[arg(value_name = "ENDPOINT")]
    pub endpoint: Option<String>,

    /// The user to log in as (also USER@ before the endpoint)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// A file whose first line is the password (else it is asked on the terminal)
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,

    /// The cluster CA that verifies a remote console's certificate (default: $EC_CONSOLE_CA)
    #[arg(long, value_name = "PATH")]
    pub ca: Option<PathBuf>,

    /// A TLS directory whose ca.pem is the CA, when --ca is not given (default:
    /// $EC_CONSOLE_TLS_DIR)
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,

    /// The member name the console's certificate carries (default: the host, if a name)
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,

    /// A client certificate (PEM) to log in with, issued by the console's client CA
    #[arg(long, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The client certificate's private key (PEM)
    #[arg(long, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Plain TCP, for a loopback console configured with TLS = false
    #[arg(long)]
    pub no_tls: bool,

    /// Command to run once instead of an interactive session. A single argument is sent as
    /// typed; several are joined with spaces, quoting any that contain spaces
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Runs `ec_console` and returns its exit code. Errors are failures of the client itself
/// (terminal, standard output); the caller prints them and exits 1.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let given = args.endpoint.as_deref().unwrap_or(DEFAULT_PATH);
    // USER@ENDPOINT, unless the endpoint is a path (which may hold an '@').
    let (user, text) = match given.rsplit_once('@') {
        Some((user, rest)) if !given.contains('/') => (Some(user.to_owned()), rest),
        _ => (None, given),
    };
    let endpoint = match Endpoint::parse(text) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            eprintln!("ec_console: {error}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let remote = RemoteOptions {
        user: args.user.clone().or(user),
        password_file: args.password_file.clone(),
        ca: args
            .ca
            .clone()
            .or_else(|| std::env::var_os("EC_CONSOLE_CA").map(PathBuf::from))
            .or_else(|| {
                let dir = args.tls_dir.clone().or_else(|| std::env::var_os("EC_CONSOLE_TLS_DIR").map(PathBuf::from));
                dir.map(|dir| dir.join("ca.pem"))
            }),
        server_name: args.server_name.clone(),
        client_cert: args.cert.clone().zip(args.key.clone()),
        plain: args.no_tls,
    };
    let mut session = match Session::connect_with(&endpoint, remote).await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("ec_console: cannot connect to {endpoint}: {error:#}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if session.remote.user.is_some() {
        if let Err(error) = session.login().await {
            eprintln!("ec_console: {error:#}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    }
    if !args.command.is_empty() {
        let line = match args.command.as_slice() {
            [one] => one.clone(),
            words => join_words(words),
        };
        return batch::run(&mut session, Source::One(Some(line))).await;
    }
    if !io::stdin().is_terminal() {
        return batch::run(&mut session, Source::stdin()).await;
    }
    interactive(&mut session, &endpoint).await
}

/// Where a console is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address; `host` is a name or an address (IPv6 without brackets).
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

/// Why an endpoint argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad endpoint '{endpoint}': {reason}")]
pub struct EndpointError {
    /// The argument as given.
    pub endpoint: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// Parses an endpoint argument: a path (anything with a `/`), a bare number `N` for the
    /// socket `/tmp/N`, `host:port`, or `[v6addr]:port`.
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let refuse = |reason: &str| EndpointError { endpoint: text.to_string(), reason: reason.to_string() };
        if text.is_empty() {
            return Err(refuse("expected a socket path (/tmp/2025), a number (2025) or host:port"));
        }
        if text.contains("://") {
            return Err(refuse("tunnelled endpoints are not supported; run ec_console on the host, or use host:port"));
        }
        if text.contains('/') {
            return Ok(Endpoint::Unix(PathBuf::from(text)));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Endpoint::Unix(PathBuf::from(format!("/tmp/{text}"))));
        }
        if text.contains('@') {
            return Err(refuse("give the user once, before host:port (USER@HOST:PORT)"));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((host, port)) = rest.split_once("]:") else {
                return Err(refuse("expected [v6addr]:port"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(refuse("the part in brackets is not an IPv6 address"));
            }
            (host, port)
        } else {
            let Some((host, port)) = text.rsplit_once(':') else {
                return Err(refuse("expected a socket path (/tmp/2025 or ./console), a number (2025) or host:port"));
            };
            if host.contains(':') {
                return Err(refuse("an IPv6 address must be in brackets, e.g. [::1]:2025"));
            }
            if host.is_empty() {
                return Err(refuse("the host is missing"));
            }
            (host, port)
        };
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Endpoint::Tcp { host: host.to_string(), port }),
            _ => Err(refuse("the port must be a number from 1 to 65535")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// A byte stream the console protocol can run over.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection to a console: one request, one reply, in turn.
pub struct Session {
    io: BufReader<Box<dyn Stream>>,
    /// How to log in when the console asks.
    remote: RemoteOptions,
    /// A login was made (or refused) on this connection.
    logged_in: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// Why a command got no reply.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The server closed the connection; the session is over.
    #[error("connection closed by server")]
    Closed,
    /// Sending the request failed; the session is over.
    #[error("sending the command: {0}")]
    Send(io::Error),
    /// The reply could not be read; unless the error is recoverable the session is over.
    #[error("reading the reply: {0}")]
    Receive(FrameError),
    /// The console asked for a login, and it failed (or there was no way to make it).
    #[error("{0}")]
    Login(String),
    /// The commands cannot travel in one batch request; nothing was sent.
    #[error("{0}")]
    Unsendable(String),
}

/// How a console answered a batch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batched {
    /// Each command's reply, in order.
    Replies(Vec<Reply>),
    /// The batch was refused as a whole; none of its commands ran.
    Refused(Reply),
}

impl Session {
    /// Connects to `endpoint`: a unix socket, or plain TCP (no TLS, no login).
    pub async fn connect(endpoint: &Endpoint) -> anyhow::Result<Session> {
        Session::connect_with(endpoint, RemoteOptions { plain: true, ..RemoteOptions::default() }).await
    }

    /// Connects to `endpoint`, in TLS for TCP unless `remote.plain`.
    pub async fn connect_with(endpoint: &Endpoint, remote: RemoteOptions) -> anyhow::Result<Session> {
        let stream: Box<dyn Stream> = match endpoint {
            Endpoint::Unix(path) => Box::new(UnixStream::connect(path).await?),
            Endpoint::Tcp { host, port } => {
                let connect = TcpStream::connect((host.as_str(), *port));
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
                })??;
                stream.set_nodelay(true)?;
                if remote.plain {
                    Box::new(stream)
                } else {
                    let handshake = remote.handshake(stream, host);
                    Box::new(tokio::time::timeout(CONNECT_TIMEOUT, handshake).await.map_err(|_| {
                        anyhow::anyhow!("no TLS handshake within {} s", CONNECT_TIMEOUT.as_secs())
                    })??)
                }
            }
        };
        Ok(Session { io: BufReader::new(stream), remote, logged_in: false })
    }

    /// Logs in with the user and password of the session's options.
    pub async fn login(&mut self) -> Result<(), SessionError> {
        let failed = |e: anyhow::Error| SessionError::Login(format!("{e:#}"));
        let user = self.remote.user_or_default().map_err(failed)?;
        let password = self.remote.password(&user).map_err(failed)?;
        self.logged_in = true;
        let reply = self.exchange(&login_request(&user, &password)).await?;
        match reply.status {
            Status::Ok => Ok(()),
            _ => Err(SessionError::Login(reply.body)),
        }
    }

    /// Sends one command line and waits for its reply; logs in first if the console asks.
    pub async fn call(&mut self, line: &str) -> Result<Reply, SessionError> {
        let reply = self.exchange(line).await?;
        if reply.status != Status::LoginRequired || self.logged_in {
            return Ok(reply);
        }
        eprintln!("{}", reply.body);
        self.login().await?;
        self.exchange(line).await
    }

    /// Sends `lines` as one batch request and returns each command's reply, or the refusal of
    /// the whole batch (over the console's bounds: nothing ran); logs in first if the console
    /// asks. A console that answers another number of replies than commands is an error.
    pub async fn call_batch<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<Batched, SessionError> {
        let request = batch_request(lines).map_err(|e| SessionError::Unsendable(e.to_string()))?;
        let reply = self.call(&request).await?;
        if reply.status != Status::Batch {
            return Ok(Batched::Refused(reply));
        }
        let replies = split_batch_reply(&reply).map_err(SessionError::Receive)?;
        if replies.len() != lines.len() {
            return Err(SessionError::Receive(FrameError::BadBatch {
                entry: 0,
                what: format!("{} replies to a batch of {} commands", replies.len(), lines.len()),
            }));
        }
        Ok(Batched::Replies(replies))
    }

    /// Sends one request frame and reads its reply.
    async fn exchange(&mut self, line: &str) -> Result<Reply, SessionError> {
        if let Err(error) = write_request(&mut self.io, line).await {
            return Err(if is_disconnect(&error) { SessionError::Closed } else { SessionError::Send(error) });
        }
        match read_reply(&mut self.io).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(SessionError::Closed),
            Err(FrameError::Io(error)) if is_disconnect(&error) => Err(SessionError::Closed),
            Err(error) => Err(SessionError::Receive(error)),
        }
    }
}

/// Whether an I/O error means the peer went away.
fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

/// Whether `line` is a client command that ends the session.
fn is_quit(line: &str) -> bool {
    let line = line.trim();
    line.eq_ignore_ascii_case("quit") || line.eq_ignore_ascii_case("exit")
}

/// Prints a reply body (ok to stdout, otherwise stderr) ending in a newline; true if ok.
fn show(reply: &Reply) -> anyhow::Result<bool> {
    let ok = reply.status == Status::Ok;
    let written = if ok {
        print_body(&mut io::stdout().lock(), &reply.body)
    } else {
        print_body(&mut io::stderr().lock(), &reply.body)
    };
    written.context(if ok { "writing to standard output" } else { "writing to standard error" })?;
    Ok(ok)
}

/// Writes `body`, adding a final newline when it lacks one; nothing for an empty body.
/// Control characters other than newline and tab are written escaped (`\x1b`), so what a node
/// or a declared program printed cannot drive the operator's terminal.
fn print_body(out: &mut dyn Write, body: &str) -> io::Result<()> {
    if body.is_empty() {
        return Ok(());
    }
    out.write_all(escape_controls(body).as_bytes())?;
    if !body.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// `text` with every control character but newline and tab as `\xNN` (C1 controls as
/// `\u{NN}`).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The interactive shell: banner, prompt, history, completion.
async fn interactive(session: &mut Session, endpoint: &Endpoint) -> anyhow::Result<ExitCode> {
    let closed = || {
        eprintln!("connection closed by server");
        Ok(ExitCode::from(EXIT_FAILED))
    };
    match session.call("version").await {
        Ok(banner) => {
            show(&banner)?;
        }
        Err(SessionError::Closed) => return closed(),
        Err(SessionError::Login(why)) => {
            eprintln!("ec_console: {why}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        Err(error) => return Err(error).context("asking the server for its version"),
    }
    let commands = match session.call("help").await {
        Ok(reply) if reply.is_ok() => completion_phrases(&reply.body),
        Ok(_) => Vec::new(),
        Err(SessionError::Closed) => return closed(),
        Err(error) => return Err(error).context("asking the server for its commands"),
    };

    // List completion (common prefix, then all choices on a second Tab) is what libedit,
    // and so Momentum's console, does.
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)
        .context("configuring the history")?
        .history_ignore_dups(true)
        .context("configuring the history")?
        .build();
    let mut editor: Editor<CommandCompleter, DefaultHistory> =
        Editor::with_config(config).context("setting up the terminal")?;
    editor.set_helper(Some(CommandCompleter { phrases: commands }));
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(HISTORY_FILE));
    if let Some(path) = &history {
        // A missing or unreadable history file is normal on first use; start empty.
        if editor.load_history(path).is_err() {
            editor.clear_history().context("clearing the history")?;
        }
    }

    let outcome = loop {
        let prompt = format!("{} {endpoint}> ", chrono::Local::now().format("%H:%M:%S"));
        // rustyline blocks on the terminal; keep that off the runtime's thread.
        let (returned, read) = tokio::task::spawn_blocking(move || {
            let read = editor.readline(&prompt);
            (editor, read)
        })
        .await
        .context("reading the terminal")?;
        editor = returned;
        let line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => {
                println!();
                break Ok(ExitCode::SUCCESS);
            }
            Err(error) => break Err(anyhow::Error::new(error).context("reading the terminal")),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Err(error) = editor.add_history_entry(line) {
            eprintln!("ec_console: warning: could not add to the history: {error}");
        }
        if is_quit(line) {
            break Ok(ExitCode::SUCCESS);
        }
        match session.call(line).await {
            Ok(reply) => {
                show(&reply)?;
            }
            Err(SessionError::Receive(error)) if error.is_recoverable() => eprintln!("ec_console: {error}"),
            Err(SessionError::Closed) => break closed(),
            Err(error) => break Err(anyhow::Error::new(error)),
        }
    };
    if let Some(path) = &history {
        if let Err(error) = editor.save_history(path) {
            eprintln!("ec_console: warning: could not save the history to {}: {error}", path.display());
        }
    }
    outcome
}

/// Command phrases (up to three words) offered for completion, from a `help` reply.
///
/// From each line: the words before the description (which starts after a run of two spaces,
/// a tab, or ` - `), as long as they look like command words — lower-case letters, digits and
/// `_ : . -`, not ending in `:` — so placeholders such as `IP` or `<node>` are left out.
/// `quit`, `exit`, `xml` and `json` are always offered.
pub fn completion_phrases(help: &str) -> Vec<Vec<String>> {
    let mut phrases = BTreeSet::new();
    for word in ["quit", "exit", "xml", "json"] {
        phrases.insert(vec![word.to_string()]);
    }
    for line in help.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let end = ["  ", "\t", " - "].iter().filter_map(|gap| line.find(gap)).min().unwrap_or(line.len());
        let words: Vec<String> = line[..end]
            .split_whitespace()
            .take_while(|word| is_command_word(word))
            .take(3)
            .map(str::to_string)
            .collect();
        if !words.is_empty() {
            phrases.insert(words);
        }
    }
    phrases.into_iter().collect()
}

/// Whether `word` looks like part of a command name rather than a placeholder or prose.
fn is_command_word(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && !word.ends_with(':')
        && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:.-".contains(c))
}

/// Completes the word under the cursor from the phrases of the server's `help`.
struct CommandCompleter {
    phrases: Vec<Vec<String>>,
}

impl CommandCompleter {
    /// Candidates for the word starting at `start` of `before` (the line up to the cursor).
    fn candidates(&self, before: &str, start: usize) -> Vec<String> {
        let mut typed: Vec<&str> = before[..start].split_whitespace().collect();
        if typed.first().is_some_and(|first| first.eq_ignore_ascii_case("xml") || first.eq_ignore_ascii_case("json")) {
            typed.remove(0);
        }
        let partial = before[start..].to_ascii_lowercase();
        let mut out = BTreeSet::new();
        for phrase in &self.phrases {
            let Some(next) = phrase.get(typed.len()) else { continue };
            let same_so_far = phrase.iter().zip(&typed).all(|(want, got)| want.eq_ignore_ascii_case(got));
            if same_so_far && next.starts_with(&partial) {
                out.insert(next.clone());
            }
        }
        out.into_iter().collect()
    }
}

impl Completer for CommandCompleter {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start =
            before.rfind(char::is_whitespace).map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8));
        let mut candidates = self.candidates(before, start);
        // A unique completion ends the word: add the space so the next Tab goes on to the
        // following word of the phrase (`show cl<Tab><Tab>` → `show cluster membership`).
        if let [only] = candidates.as_mut_slice() {
            only.push(' ');
        }
        Ok((start, candidates))
    }
}

impl Hinter for CommandCompleter {
    type Hint = String;
}

impl Highlighter for CommandCompleter {}

impl Validator for CommandCompleter {}

impl Helper for CommandCompleter {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser as _};

    #[test]
    fn endpoints_parse_like_momentum() {
        assert_eq!(Endpoint::parse("/tmp/2030"), Ok(Endpoint::Unix("/tmp/2030".into())));
        assert_eq!(Endpoint::parse("./console"), Ok(Endpoint::Unix("./console".into())));
        assert_eq!(Endpoint::parse("2030"), Ok(Endpoint::Unix("/tmp/2030".into())));
        assert_eq!(Endpoint::parse("10.2.4.1:2025"), Ok(Endpoint::Tcp { host: "10.2.4.1".into(), port: 2025 }));
        assert_eq!(
            Endpoint::parse("mgr.example.com:2025"),
            Ok(Endpoint::Tcp { host: "mgr.example.com".into(), port: 2025 })
        );
        assert_eq!(Endpoint::parse("[fd82::1]:2424"), Ok(Endpoint::Tcp { host: "fd82::1".into(), port: 2424 }));
    }

    #[test]
    fn bad_endpoints_say_why() {
        for (text, reason) in [
            ("", "expected a socket path"),
            ("fd82::1:2424", "must be in brackets"),
            ("[fd82::1]", "expected [v6addr]:port"),
            ("[nothost]:1", "not an IPv6 address"),
            ("host:0", "from 1 to 65535"),
            ("host:http", "from 1 to 65535"),
            (":2025", "host is missing"),
            ("admin@localhost:2025", "USER@HOST:PORT"),
            ("ssh://u@h/e@h:2025", "not supported"),
            ("console", "expected a socket path"),
        ] {
            let error = Endpoint::parse(text).expect_err(text);
            assert!(error.to_string().starts_with(&format!("bad endpoint '{text}': ")), "{error}");
            assert!(error.reason.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn endpoints_display_as_given() {
        for text in ["/tmp/2025", "10.2.4.1:2025", "[fd82::1]:2424", "localhost:2025"] {
            assert_eq!(Endpoint::parse(text).expect(text).to_string(), text);
        }
        assert_eq!(Endpoint::parse("2030").expect("number").to_string(), "/tmp/2030");
    }

    #[test]
    fn control_characters_are_shown_escaped_not_sent_to_the_terminal() {
        assert_eq!(escape_controls("plain\tline\n"), "plain\tline\n");
        assert_eq!(escape_controls("\x1b[2Jcleared\r\u{7f}\u{9b}"), "\\x1b[2Jcleared\\x0d\\x7f\\u{9b}");
        let mut out = Vec::new();
        print_body(&mut out, "\x1b]0;title\x07").expect("write");
        assert_eq!(String::from_utf8(out).expect("utf-8"), "\\x1b]0;title\\x07\n");
    }

    #[test]
    fn arguments_parse() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["ec_console"]).expect("no args");
        assert_eq!((args.endpoint, args.command.len()), (None, 0));
        let args =
            Args::try_parse_from(["ec_console", "/tmp/x", "config", "set", "Foo", "a b", "--flag"]).expect("args");
        assert_eq!(args.endpoint.as_deref(), Some("/tmp/x"));
        assert_eq!(args.command, ["config", "set", "Foo", "a b", "--flag"]);
        assert_eq!(join_words(&args.command), r#"config set Foo "a b" --flag"#);
    }

    #[test]
    fn help_lines_give_command_phrases() {
        let help = "\
##############################################
Commands:
  broadcast COMMAND              run COMMAND on every node
  show cluster membership        list the members
  subcluster broadcast NAME CMD  run CMD on one subcluster
\tretrieve_node <node> <cmd>
  duravip move IP to HOST
  version - print the version
  sieve:sieve1 flush cache
";
        let phrases = completion_phrases(help);
        let has = |words: &[&str]| phrases.iter().any(|phrase| phrase == words);
        assert!(has(&["broadcast"]));
        assert!(has(&["show", "cluster", "membership"]));
        assert!(has(&["subcluster", "broadcast"]));
        assert!(has(&["retrieve_node"]));
        assert!(has(&["duravip", "move"]));
        assert!(has(&["version"]));
        assert!(has(&["sieve:sieve1", "flush", "cache"]));
        assert!(has(&["quit"]) && has(&["json"]));
        assert!(!phrases.iter().flatten().any(|word| word.contains('#') || word.starts_with('C')));
    }

    #[test]
    fn completion_follows_the_words_typed() {
        let completer = CommandCompleter {
            phrases: completion_phrases("show cluster membership\nshow version\nsubcluster broadcast\nsummary"),
        };
        let complete = |line: &str| {
            let start = line.rfind(' ').map_or(0, |i| i + 1);
            (start, completer.candidates(line, start))
        };
        assert_eq!(complete("s"), (0, vec!["show".to_string(), "subcluster".into(), "summary".into()]));
        assert_eq!(complete("sh"), (0, vec!["show".to_string()]));
        assert_eq!(complete("show "), (5, vec!["cluster".to_string(), "version".into()]));
        assert_eq!(complete("SHOW c"), (5, vec!["cluster".to_string()]));
        assert_eq!(complete("json show cluster m"), (18, vec!["membership".to_string()]));
        assert_eq!(complete("show cluster membership "), (24, Vec::<String>::new()));
        assert_eq!(complete("nothing "), (8, Vec::<String>::new()));
    }

    #[test]
    fn bodies_end_in_exactly_one_newline() {
        let mut out = Vec::new();
        print_body(&mut out, "one").expect("write");
        print_body(&mut out, "two\n").expect("write");
        print_body(&mut out, "").expect("write");
        assert_eq!(out, b"one\ntwo\n");
    }

    #[test]
    fn quit_and_exit_end_a_session() {
        assert!(is_quit("quit") && is_quit(" EXIT ") && !is_quit("quit now"));
    }
}
