//! ecconfigd: the configuration server. All the work is in the library (`confrepo`).
#![forbid(unsafe_code)]

use clap::Parser;
use eccluster::cli::EcconfigdCli;

fn main() -> std::process::ExitCode {
    eccluster::confrepo::ecconfigd::main(EcconfigdCli::parse())
}
