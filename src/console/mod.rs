//! The console: what operators type at `ec_console` and how it reaches a daemon.
//!
//! # Layout
//! - `frame`: the wire protocol of the console socket (length-prefixed request and reply
//!   frames with a status byte); bytes only.
//! - `request`: parsing one command line into words and an output format (`xml` / `json`
//!   prefixes, double quotes); no I/O.
//! - `listener`: the Control_Listener, the server side of the unix socket; hands each parsed
//!   request to the daemon as a [`listener::Job`] and writes back its reply. It knows no
//!   commands. Every buffer a console user can grow has a bound there.
//! - `limits`: those bounds as `Control_Listener` options (`Concurrency`, `Timeout`,
//!   `Write_Timeout`, `Max_Request_Size`, `Max_Reply_Size`), read and range-checked; no I/O.
//! - `client`: `ec_console`, the client (endpoints, batch mode, the interactive shell).
//!
//! # Contract with a daemon
//! The daemon owns the receiving end of the `mpsc` given to [`listener::serve`] and answers
//! every [`listener::Job`] by sending one [`frame::Reply`] on its oneshot: `Reply::ok` with
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
