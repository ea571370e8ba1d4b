use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use flowexec_server::cli::Cli;

fn main() -> ExitCode {
    flowexec_persistence::prepare_client_library();
    let cli = Cli::parse();
    match flowexec_server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "flowexec: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
