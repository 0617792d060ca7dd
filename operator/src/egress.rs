//! The operator's egress flags and their installation: which destinations the scalers may
//! connect to (`ebb_scalers::egress` owns the decision and enforces it at connect time). On by
//! default: the cloud metadata services and link-local addresses, loopback, unspecified
//! addresses and the Kubernetes API server are refused; `--egress-deny-cidrs` adds networks,
//! `--egress-allow-cidrs` carves exceptions out of the deny list (not out of the API server),
//! `--egress-policy=off` turns it all off.
//!
//! The API server is known from the client configuration the operator itself uses (the
//! kubeconfig's or in-cluster server URL, with its resolved addresses) and from
//! `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`; its Service names
//! (`kubernetes.default.svc`, …) are refused by name.

use std::net::{IpAddr, SocketAddr};

use ebb_scalers::egress::{self, Cidr, Policy};

/// Whether the egress policy is enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Refuse the deny list and the API server.
    Enforce,
    /// Scalers may connect anywhere.
    Off,
}

/// Flags of the egress policy; each also an environment variable.
#[derive(Clone, Debug, clap::Args)]
pub struct EgressArgs {
    /// Whether scalers are kept from the deny list and the Kubernetes API server.
    #[arg(long, env = "EBB_EGRESS_POLICY", value_enum, default_value = "enforce")]
    pub egress_policy: Mode,
    /// Networks scalers may not connect to, in addition to the defaults (link-local and cloud
    /// metadata addresses, loopback, unspecified); comma-separated CIDRs or addresses.
    #[arg(long, env = "EBB_EGRESS_DENY_CIDRS", value_delimiter = ',', value_parser = parse_cidr)]
    pub egress_deny_cidrs: Vec<Cidr>,
    /// Networks scalers may connect to even where the deny list (defaults included) covers them;
    /// comma-separated CIDRs or addresses. The API server stays refused.
    #[arg(long, env = "EBB_EGRESS_ALLOW_CIDRS", value_delimiter = ',', value_parser = parse_cidr)]
    pub egress_allow_cidrs: Vec<Cidr>,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
}

/// Installs the policy the flags describe for every scaler of the process, with the API server
/// of the client configuration. Returns a one-line summary for the log.
pub async fn install(args: &EgressArgs) -> String {
    if args.egress_policy == Mode::Off {
        egress::install(None);
        return "egress policy off: scalers may connect anywhere".to_owned();
    }
    let mut policy = Policy::default_deny()
        .deny(args.egress_deny_cidrs.iter().copied())
        .allow(args.egress_allow_cidrs.iter().copied());
    let servers = api_servers().await;
    for s in &servers {
        policy = match s {
            ApiServer::Addr(a) => policy.api_server(*a),
            ApiServer::Name(host, port) => policy.api_server_name(host, *port),
        };
    }
    egress::install(Some(policy));
    let shown: Vec<String> = servers.iter().map(ToString::to_string).collect();
    format!(
        "egress policy enforced: extra deny {:?}, allow {:?}, API server {}",
        args.egress_deny_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        args.egress_allow_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        if shown.is_empty() { "unknown".to_owned() } else { shown.join(", ") }
    )
}

/// An address or name by which the API server is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ApiServer {
    Addr(SocketAddr),
    Name(String, u16),
}

impl std::fmt::Display for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Addr(a) => write!(f, "{a}"),
            Self::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// The API server as this process reaches it: the client configuration's server URL (a name
/// also by its resolved addresses) and the in-cluster Service's environment.
async fn api_servers() -> Vec<ApiServer> {
    let mut out = Vec::new();
    if let (Ok(host), Ok(port)) =
        (std::env::var("KUBERNETES_SERVICE_HOST"), std::env::var("KUBERNETES_SERVICE_PORT"))
        && let (Ok(ip), Ok(port)) = (host.parse::<IpAddr>(), port.parse::<u16>())
    {
        out.push(ApiServer::Addr(SocketAddr::new(ip, port)));
    }
    if let Ok(config) = kube::Config::infer().await
        && let Some(host) = config.cluster_url.host()
    {
        let port = config.cluster_url.port_u16().unwrap_or(match config.cluster_url.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => out.push(ApiServer::Addr(SocketAddr::new(ip, port))),
            Err(_) => {
                out.push(ApiServer::Name(bare.to_owned(), port));
                if let Ok(addrs) = tokio::net::lookup_host((bare, port)).await {
                    out.extend(addrs.map(ApiServer::Addr));
                }
            }
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        egress: EgressArgs,
    }

    #[test]
    fn flags_parse_with_defaults_on() {
        let a = Cli::try_parse_from(["x"]).unwrap().egress;
        assert_eq!(a.egress_policy, Mode::Enforce);
        assert!(a.egress_deny_cidrs.is_empty() && a.egress_allow_cidrs.is_empty());
        let a = Cli::try_parse_from([
            "x",
            "--egress-allow-cidrs=127.0.0.0/8,::1",
            "--egress-deny-cidrs",
            "10.0.0.0/8",
            "--egress-policy=off",
        ])
        .unwrap()
        .egress;
        assert_eq!(a.egress_policy, Mode::Off);
        assert_eq!(a.egress_allow_cidrs, vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert_eq!(a.egress_deny_cidrs, vec!["10.0.0.0/8".parse().unwrap()]);
        let e = Cli::try_parse_from(["x", "--egress-deny-cidrs=10.0.0.0/40"]).unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/40"), "{e}");
    }
}
