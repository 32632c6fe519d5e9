//! ecnode: the node agent of an MTA host. All the work is in the library.
#![forbid(unsafe_code)]

use clap::Parser;
use eccluster::cli::EcnodeCli;
use eccluster_proto::Role;

fn main() -> std::process::ExitCode {
    let cli = EcnodeCli::parse();
    eccluster::daemon::main(Role::Node, cli.daemon)
}
