//! eccluster: tooling — certificates and local clusters. All the work is in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use eccluster::cli::{CaCommand, EcclusterCli, EcclusterCommand, LocalCommand};

fn main() -> ExitCode {
    let cli = EcclusterCli::parse();
    eccluster::daemon::init_tracing();
    let result = match cli.command {
        EcclusterCommand::Ca { command: CaCommand::Init { dir, cluster } } => eccluster::tls::ca_init(&dir, &cluster),
        EcclusterCommand::Ca { command: CaCommand::Issue { dir, names } } => eccluster::tls::ca_issue(&dir, &names),
        EcclusterCommand::Local { command: LocalCommand::Up { segments, dir, config } } => {
            match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(eccluster::local::up(&segments, &dir, config.as_deref())),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eccluster: {e:#}");
            ExitCode::from(2)
        }
    }
}
