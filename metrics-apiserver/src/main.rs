//! `ebb-metrics-apiserver` entry point: parses flags and hands over to [`ebb_metrics_apiserver::run`].

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match ebb_metrics_apiserver::run(ebb_metrics_apiserver::Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ebb-metrics-apiserver: {error:#}");
            ExitCode::FAILURE
        }
    }
}
