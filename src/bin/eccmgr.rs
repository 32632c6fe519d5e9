//! eccmgr: the cluster manager. All the work is in the library.
#![forbid(unsafe_code)]

use clap::Parser;
use eccluster::cli::EccmgrCli;
use eccluster_proto::Role;

// The results buffer comes and goes in large strings (answers of up to 64 KiB); mimalloc hands
// freed memory back to the system, so `flush control cache` and evictions lower the RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = EccmgrCli::parse();
    eccluster::daemon::main(Role::Manager, cli.daemon)
}
