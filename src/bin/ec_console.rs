//! `ec_console`: the console client for eccmgr and ecnode.
//!
//! Thin main: parse the command line, build a single-threaded runtime, run
//! [`eccluster::console::client::run`] and exit with its code. Everything else lives in the
//! library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use eccluster::console::client::{self, Args};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2, as the interface contract wants.
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ec_console: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(client::run(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ec_console: {error:#}");
            ExitCode::FAILURE
        }
    }
}
