//! Integration tests: real `eccmgr` / `ecnode` processes, real QUIC with mutual TLS on
//! loopback addresses, real unix-socket consoles. One binary, several modules.

mod console;
mod console_client;
mod membership;
mod ops;
mod support;
