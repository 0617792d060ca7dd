//! `ebb-webhook`: validating admission for ScaledObject, TriggerAuthentication and
//! ClusterTriggerAuthentication. This module owns the program's flags ([`Args`]) and its
//! lifecycle ([`run`], [`bind`]): logging, signals, the Kubernetes client, the watches feeding
//! the index, the HTTPS admission endpoint (certificate reloaded from disk) and the admin server
//! (`/livez`, `/readyz` — ready once both watches have listed —, `/metrics`).

pub mod admission;
pub mod index;
pub mod metrics;
pub mod review;
pub mod rules;
pub mod server;
pub mod watch;
pub mod workload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ebb_plumbing::admin::{AdminServer, Readiness};
use ebb_plumbing::args::CommonArgs;
use ebb_plumbing::server::{self as plumbing_server, Server};
use ebb_plumbing::shutdown::Shutdown;
use ebb_plumbing::task::AbortOnDropHandle;
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};
use kube::Client;

use crate::admission::Webhook;
use crate::index::Index;

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

    /// Address of the HTTPS admission endpoint (`POST /validate`).
    #[arg(long, env = "EBB_SECURE_ADDR", default_value = "0.0.0.0:9443")]
    pub secure_addr: SocketAddr,

    /// Serving certificate (PEM chain, leaf first); reloaded when the file changes.
    #[arg(long, env = "EBB_TLS_CERT_FILE", default_value = "/certs/tls.crt")]
    pub tls_cert_file: PathBuf,

    /// Private key of the serving certificate; reloaded when the file changes.
    #[arg(long, env = "EBB_TLS_KEY_FILE", default_value = "/certs/tls.key")]
    pub tls_key_file: PathBuf,
}

/// Sets up logging and signal handling, then runs until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = plumbing_server::start(&args.common)?;
    let client = Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot build a Kubernetes client (KUBECONFIG or in-cluster): {e}"))?;
    bind(&args, client).await?.serve(shutdown).await
}

/// The program with its sockets bound, not serving yet.
pub struct Bound {
    https: HttpsServer,
    admin: AdminServer,
    webhook: Arc<Webhook>,
    client: Client,
    readiness: Readiness,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("secure_addr", &self.secure_addr())
            .field("admin_addr", &self.admin_addr())
            .finish_non_exhaustive()
    }
}

/// Loads the TLS files and binds both ports (failing fast on either).
pub async fn bind(args: &Args, client: Client) -> anyhow::Result<Bound> {
    let mut server = Server::new(NAME, VERSION);
    let metrics = metrics::Metrics::register(&mut server.registry);
    let readiness = server.readiness.clone();
    readiness.set_not_ready("waiting for the first ScaledObject and HorizontalPodAutoscaler lists");
    let files = ServerFiles {
        cert_file: args.tls_cert_file.clone(),
        key_file: args.tls_key_file.clone(),
        client_auth: ClientAuth::None,
    };
    let https = HttpsServer::bind(args.secure_addr, files, NAME).await?;
    let admin =
        AdminServer::bind(args.common.admin_addr, Arc::new(server.registry), readiness.clone()).await?;
    let webhook = Arc::new(Webhook::new(Arc::new(Index::default()), metrics, Some(client.clone())));
    Ok(Bound { https, admin, webhook, client, readiness })
}

impl Bound {
    /// Address of the HTTPS admission endpoint.
    pub fn secure_addr(&self) -> SocketAddr {
        self.https.local_addr()
    }

    /// Address of the admin server.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// The admission handler (its index and metrics).
    pub fn webhook(&self) -> Arc<Webhook> {
        self.webhook.clone()
    }

    /// Runs the watches and both servers until `shutdown` is requested.
    pub async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self { https, admin, webhook, client, readiness } = self;
        let index = webhook.index.clone();
        let watches = AbortOnDropHandle::new(tokio::spawn(watch::run(client, index.clone())));
        let ready = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut synced = index.subscribe();
            loop {
                if *synced.borrow_and_update() {
                    readiness.set_ready();
                }
                if synced.changed().await.is_err() {
                    break;
                }
            }
        }));
        let https = https.serve(server::router(webhook), shutdown.wait());
        let admin = admin.serve(shutdown.wait());
        let (_, admin) = tokio::join!(https, admin);
        drop((watches, ready));
        admin?;
        tracing::info!("{NAME} stopped");
        Ok(())
    }
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
    fn flags_and_defaults() {
        // --admin-addr 127.0.0.1:18080, --log-format json and --log-level debug reach args.common.
        let args = ebb_plumbing::testing::check_server_flags::<Args>(NAME, &[], |a| &a.common);
        assert_eq!(args.secure_addr, "0.0.0.0:9443".parse::<SocketAddr>().unwrap());
        assert_eq!(args.tls_cert_file, PathBuf::from("/certs/tls.crt"));
        assert_eq!(args.tls_key_file, PathBuf::from("/certs/tls.key"));
        let args = Args::try_parse_from([
            NAME,
            "--secure-addr",
            "127.0.0.1:7443",
            "--tls-cert-file",
            "/x/c.pem",
            "--tls-key-file",
            "/x/k.pem",
        ])
        .unwrap();
        assert_eq!(args.secure_addr, "127.0.0.1:7443".parse::<SocketAddr>().unwrap());
        assert_eq!(args.tls_cert_file, PathBuf::from("/x/c.pem"));
        assert!(Args::try_parse_from([NAME, "--secure-addr", "nowhere"]).is_err());
    }
}
