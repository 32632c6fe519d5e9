//! The console: what operators type at `ec_console` and how it reaches a daemon.
//!
//! # Layout
//! - `frame`: the wire protocol of the console socket (length-prefixed request and reply
//!   frames with a status byte, login frames, batch requests and their replies); bytes only.
//! - `request`: parsing one command line into words and an output format (`xml` / `json`
//!   prefixes, double quotes); no I/O.
//! - `listener`: the Control_Listener, the server side of the unix socket; hands each parsed
//!   request to the daemon as a [`listener::Job`] and writes back its reply. It knows no
//!   commands. Every buffer a console user can grow has a bound there. Its sessions (unix or
//!   TCP) pass through an [`access::Gate`].
//! - `limits`: those bounds as `Control_Listener` options (`Concurrency`, `Timeout`,
//!   `Write_Timeout`, `Max_Request_Size`, `Max_Reply_Size`, `Max_Batch_Commands`), read and
//!   range-checked; no I/O.
//! - `remote`: the remote console as configured (TCP `Listen` scopes, TLS, logins, roles, the
//!   audit log), read and checked with FILE:LINE:COLUMN; builds the gates.
//! - `tcp`: the TCP listeners: TLS 1.3 (rustls, ring) or plain TCP on loopback, the same
//!   frames and bounds as the unix socket, client certificates as logins.
//! - `access`: the gate of a listener: the login (users file of Argon2id hashes, the same
//!   answer and cost for an unknown user and a wrong password, failures throttled per source
//!   address), authorization and audit for each command.
//! - `authz`: `Authorization { Role "NAME" { allow = ( REGEX ... ) } }` and the groups file;
//!   `broadcast` / `subcluster broadcast` / `unicast` checked for their inner command too.
//! - `audit`: one record per command and login: the `audit` tracing target and `Audit_Log`
//!   (JSON lines, owner-only).
//! - `client`: `ec_console`, the client (endpoints, batch mode, the interactive shell).
//! - `connect`: the client's TLS (CA, server name, client certificate) and login (password
//!   file or prompt), with one-line errors.
//!
//! # Sessions and users
//! A session's user is the peer's OS user on the unix socket (`SO_PEERCRED`), the name in a
//! TLS client certificate, or the user of a login frame (`frame.rs`); a listener with
//! `Enable_Authentication` (the default for TCP) answers every command of a session without a
//! user with status 3, `Authorization required for console session`, and runs nothing.
//!
//! # Contract with a daemon
//! The daemon owns the receiving end of the `mpsc` given to [`listener::serve`] and answers
//! every [`listener::Job`], and every job of its `then` (the rest of a batch request, to run
//! after it in order), by sending one [`frame::Reply`] on its oneshot: `Reply::ok` with
//! the command's output, `Reply::failed` with an error message (lowercase, naming what was
//! wrong). Replies must stay under [`frame::MAX_REPLY`]. A job dropped unanswered is reported
//! to the operator as an internal error, or as [`listener::SHUTTING_DOWN`] once the daemon
//! stops; a stopping daemon answers or drops every job it holds at once.

pub mod access;
pub mod audit;
pub mod authz;
pub mod client;
pub mod connect;
pub mod frame;
pub mod limits;
pub mod listener;
pub mod remote;
pub mod request;
pub mod tcp;
