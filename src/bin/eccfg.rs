//! eccfg: the configuration client. All the work is in the library (`confrepo`).
#![forbid(unsafe_code)]

use clap::Parser;
use eccluster::cli::EccfgCli;

fn main() -> std::process::ExitCode {
    eccluster::confrepo::eccfg::main(EccfgCli::parse())
}
