//! eccluster: tooling — certificates, local clusters, the simulator. The work is in the
//! libraries.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
#[cfg(feature = "sim")]
use eccluster::cli::SimCommand;
use eccluster::cli::{CaCommand, ConsoleUserCommand, EcclusterCli, EcclusterCommand, LocalCommand};

fn main() -> ExitCode {
    let cli = EcclusterCli::parse();
    let result = match cli.command {
        EcclusterCommand::Ca { command: CaCommand::Init { dir, cluster } } => eccluster::tls::ca_init(&dir, &cluster),
        EcclusterCommand::Ca { command: CaCommand::Issue { dir, names } } => eccluster::tls::ca_issue(&dir, &names),
        EcclusterCommand::ConsoleUser { command: ConsoleUserCommand::Add { file, name, password_file } } => {
            eccluster::console::access::add_user(&file, &name, password_file.as_deref())
        }
        EcclusterCommand::Local { command: LocalCommand::Up { segments, dir, config } } => {
            eccluster::daemon::init_tracing();
            tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(eccluster::local::up(&segments, &dir, config.as_deref())))
        }
        #[cfg(feature = "sim")]
        EcclusterCommand::Sim { command: SimCommand::Run { scenario, seed, nodes, out } } => {
            // The simulator prints its own report; its exit code says pass (0) or fail (1).
            let args = eccluster_simulations::RunArgs { scenario, seed, nodes, out };
            match eccluster_simulations::run(&args) {
                Ok(outcome) => return ExitCode::from(outcome.exit_code()),
                Err(e) => Err(e),
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
