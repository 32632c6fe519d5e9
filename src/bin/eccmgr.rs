//! eccmgr: the cluster manager. All the work is in the library.
#![forbid(unsafe_code)]

use clap::Parser;
use eccluster::cli::EccmgrCli;
use eccluster_proto::Role;

fn main() -> std::process::ExitCode {
    let cli = EccmgrCli::parse();
    eccluster::daemon::main(Role::Manager, cli.daemon)
}
