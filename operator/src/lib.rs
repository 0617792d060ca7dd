//! `ebb-operator`: reconciles ScaledObjects into HorizontalPodAutoscalers and runs the scale
//! loop. This module owns the program's flags ([`Args`]) and its lifecycle ([`run`]): logging,
//! signal handling, the `prometheus_client` registry with `keda_build_info`, and the admin
//! server (`/livez`, `/readyz`, `/metrics`) that runs until SIGTERM/SIGINT.

use ebb_plumbing::admin::Readiness;
use ebb_plumbing::args::CommonArgs;
use ebb_plumbing::server::{self, Server};
use ebb_plumbing::shutdown::Shutdown;

/// Program name, used in logs and as the `name` label of `keda_build_info`.
pub const NAME: &str = "ebb-operator";

/// Program version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Command-line flags; each can also be set through the environment variable named in
/// `--help`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = NAME, version, about = "ebb operator: reconciles ScaledObjects into HorizontalPodAutoscalers and runs the scale loop")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Sets up logging and signal handling, then runs until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = server::start(&args.common)?;
    serve(args, shutdown).await
}

/// Runs the program until `shutdown` is requested; logging must already be set up.
pub async fn serve(args: Args, shutdown: Shutdown) -> anyhow::Result<()> {
    let server = Server::new(NAME, VERSION);
    server.serve_admin(args.common.admin_addr, &shutdown, Readiness::set_ready).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn common_flags_parse() {
        let args = Args::try_parse_from([
            NAME,
            "--admin-addr",
            "127.0.0.1:18080",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(args.common.admin_addr.to_string(), "127.0.0.1:18080");
        assert_eq!(args.common.log_format, ebb_plumbing::logging::LogFormat::Json);
        assert_eq!(args.common.log_level, "debug");
    }
}
