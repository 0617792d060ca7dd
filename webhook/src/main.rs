//! `ebb-webhook` entry point: parses flags and hands over to [`ebb_webhook::run`].

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match ebb_webhook::run(ebb_webhook::Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb-webhook: {error:#}");
            ExitCode::FAILURE
        }
    }
}
