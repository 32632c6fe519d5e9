//! Integration tests: real `eccmgr` / `ecnode` processes, real QUIC with mutual TLS on
//! loopback addresses, real unix-socket consoles, real network namespaces for the DuraVIP
//! actuator. One binary, several modules.

mod actuator;
mod announce;
mod config;
mod confrepo;
mod console;
mod console_client;
mod duravip;
mod flood;
mod follow;
mod holders;
#[path = "../../benches/support/initials.rs"]
mod initials;
mod fuzz_corpus;
mod local;
mod membership;
mod metrics;
mod netns;
mod ops;
mod remote_console;
mod page;
mod repo_support;
mod service;
mod support;
