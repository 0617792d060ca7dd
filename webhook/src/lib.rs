//! `ebb-webhook`: validating admission for ScaledObject and TriggerAuthentication. This
//! module owns the program's flags ([`Args`]) and its lifecycle ([`run`]): logging, signal
//! handling, the `prometheus_client` registry with `keda_build_info`, and the admin server
//! (`/livez`, `/readyz`, `/metrics`) that runs until SIGTERM/SIGINT. The TLS endpoint
//! (`--secure-addr`) is accepted but not served yet.

use ebb_plumbing::admin::Readiness;
use ebb_plumbing::args::CommonArgs;
use ebb_plumbing::server::{self, Server};
use ebb_plumbing::shutdown::Shutdown;
use std::net::SocketAddr;

/// Program name, used in logs and as the `name` label of `keda_build_info`.
pub const NAME: &str = "ebb-webhook";

/// Program version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Command-line flags; each can also be set through the environment variable named in
/// `--help`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = NAME, version, about = "ebb admission webhook: validates ScaledObjects and TriggerAuthentications")]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Address of the TLS endpoint (not served yet).
    #[arg(long, env = "EBB_SECURE_ADDR", default_value = "0.0.0.0:9443")]
    pub secure_addr: SocketAddr,
}

/// Sets up logging and signal handling, then runs until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = server::start(&args.common)?;
    serve(args, shutdown).await
}

/// Runs the program until `shutdown` is requested; logging must already be set up.
pub async fn serve(args: Args, shutdown: Shutdown) -> anyhow::Result<()> {
    let server = Server::new(NAME, VERSION);
    tracing::info!(secure_addr = %args.secure_addr, "secure endpoint not served yet");
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

    #[test]
    fn secure_addr_default_and_flag() {
        let args = Args::try_parse_from(["ebb-webhook"]).unwrap();
        assert_eq!(args.secure_addr, "0.0.0.0:9443".parse::<SocketAddr>().unwrap());
        let args = Args::try_parse_from(["ebb-webhook", "--secure-addr", "127.0.0.1:7443"]).unwrap();
        assert_eq!(args.secure_addr, "127.0.0.1:7443".parse::<SocketAddr>().unwrap());
        assert!(Args::try_parse_from(["ebb-webhook", "--secure-addr", "nowhere"]).is_err());
    }
}
