//! eccluster: cluster membership and control for fleets of mail servers.
//!
//! This crate is the shell around the sans-io cores of `eccluster-proto`: it binds the QUIC
//! endpoint, speaks mutual TLS, runs the timers, serves the console, and starts the daemons.
//!
//! # Layout
//!
//! - [`tls`]: the cluster CA, member certificates, rustls configurations.
//! - [`transport`]: the quinn endpoint and peer connections (SWIM over QUIC datagrams).
//! - [`console`]: the Control_Listener protocol, server and `ec_console` client.
//! - [`commands`]: the shell's console commands and the text / XML / JSON output of every
//!   answer.
//! - [`config`]: Momentum configuration syntax parsed into a tree with file, line, column.
//! - [`confrepo`]: the configuration repository: `ecconfigd` (git repositories over HTTPS) and
//!   `eccfg` (working copies, pull with atomic swap, commit on the newest revision only).
//! - [`daemon`], [`cli`]: start-up of `eccmgr` / `ecnode`, the one loop per daemon that drives
//!   the node core (`daemon::driver`), and the command lines.
//! - [`registry`]: a node's operator-declared commands (external programs).
//! - [`local`]: `eccluster local up`.
//! - [`metrics`]: Prometheus metrics over HTTP (`GET /metrics`) for every daemon.
//! - [`stdout`]: the tools' output, where a reader that went away is no panic.
//! - [`actuator`]: DuraVIP addresses applied to the machine (rtnetlink, announcements, scripts).
#![forbid(unsafe_code)]

pub mod actuator;
pub mod cli;
pub mod commands;
pub mod config;
pub mod confrepo;
pub mod console;
pub mod daemon;
pub mod local;
pub mod metrics;
pub mod page;
pub mod registry;
pub mod stdout;
pub mod tls;
pub mod transport;
