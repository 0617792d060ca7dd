//! `ebb-operator` entry point: parses flags and hands over to [`ebb_operator::run`].

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match ebb_operator::run(ebb_operator::Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb-operator: {error:#}");
            ExitCode::FAILURE
        }
    }
}
