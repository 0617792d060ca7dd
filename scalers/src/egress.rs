//! The egress policy: which addresses a scaler may connect to. Trigger metadata names the
//! endpoints (`serverAddress`, `awsEndpoint`, `bootstrapServers`), and a program that runs
//! scalers for many tenants must not let one of them reach what only the program can reach — the
//! cloud metadata service (and the node's credentials behind it), the program's own loopback
//! listeners, or the Kubernetes API server.
//!
//! This module owns the pure decision ([`Policy`]: a deny list of CIDRs on by default, allow
//! CIDRs that override it, and the API server's addresses and names, which only turning the
//! policy off lifts), the process-wide installed policy ([`install`], [`installed`]), and the
//! enforcement points the scalers use at connect time, on the addresses actually dialled:
//! [`Resolver`] (DNS for the prometheus and AWS HTTP clients: denied addresses are dropped from
//! each answer, so a name that resolves, or later rebinds, to a denied address never reaches
//! it), [`check_url`] (IP-literal URLs, which HTTP clients dial without resolving) and
//! [`connect_tcp`] (the Kafka connections).
//!
//! A program that never installs a policy is unrestricted: the operator installs one at start
//! (see its `--egress-*` flags); `ebb check` runs on the user's own machine with the user's own
//! reach and installs none.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpStream;

/// An IP network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits (host bits are cleared).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("prefix /{prefix} is longer than {max} bits"));
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies in this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are
    /// compared as the IPv4 address they reach.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a single address (`169.254.169.254`, a /32 or /128).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a CIDR such as \"10.0.0.0/8\", \"fd00::/8\" or an address");
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix = prefix.unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        Self::new(ip, prefix).map_err(|e| format!("{s:?}: {e}"))
    }
}

/// The deny list in force unless the operator changes it, with why each entry is there.
pub const DEFAULT_DENY: &[(&str, &str)] = &[
    (
        "169.254.0.0/16",
        "link-local, where the cloud metadata service (169.254.169.254) and node credential agents listen",
    ),
    ("fe80::/10", "IPv6 link-local"),
    ("fd00:ec2::254/128", "the AWS metadata service over IPv6"),
    ("fd00:ec2::23/128", "the EKS Pod Identity agent over IPv6"),
    ("100.100.100.200/32", "the Alibaba Cloud metadata service"),
    ("168.63.129.16/32", "the Azure platform endpoint (WireServer)"),
    ("127.0.0.0/8", "loopback, the operator's own listeners"),
    ("::1/128", "IPv6 loopback"),
    ("0.0.0.0/8", "unspecified (0.0.0.0 reaches the local host)"),
    ("::/128", "IPv6 unspecified"),
];

/// Host names of the in-cluster API server Service, denied whatever they resolve to.
const API_SERVER_NAMES: &[&str] = &["kubernetes", "kubernetes.default", "kubernetes.default.svc"];

/// Why a destination is denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// In a `--egress-deny-cidrs` entry: a default one (with why) or one the operator added.
    Cidr { cidr: Cidr, why: Option<&'static str> },
    /// An address and port of the Kubernetes API server.
    ApiServer,
    /// A name of the Kubernetes API server.
    ApiServerName,
}

/// A destination the policy refuses, and which trigger parameter named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The address (`169.254.169.254`, `10.96.0.1:443`) or host name refused.
    pub target: String,
    /// The parameter the destination came from, e.g. `serverAddress`.
    pub source: &'static str,
    pub rule: Rule,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, target, source) = match self.rule {
            Rule::ApiServerName => ("host", &self.target, self.source),
            _ => ("address", &self.target, self.source),
        };
        write!(f, "{what} {target} (from {source}) is denied by the operator's egress policy")?;
        match &self.rule {
            Rule::Cidr { cidr, why: Some(why) } => write!(
                f,
                " (--egress-deny-cidrs, default entry {cidr}: {why}); the operator can allow it with \
                 --egress-allow-cidrs"
            ),
            Rule::Cidr { cidr, why: None } => write!(
                f,
                " (--egress-deny-cidrs entry {cidr}); the operator can allow it with --egress-allow-cidrs"
            ),
            Rule::ApiServer => f.write_str(
                ": it is the Kubernetes API server, which scalers never query (only --egress-policy=off lifts this)",
            ),
            Rule::ApiServerName => f.write_str(
                ": it names the Kubernetes API server, which scalers never query (only --egress-policy=off lifts this)",
            ),
        }
    }
}

impl std::error::Error for Denied {}

/// Which destinations scalers may connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    deny: Vec<(Cidr, Option<&'static str>)>,
    allow: Vec<Cidr>,
    api_servers: Vec<SocketAddr>,
    api_server_names: Vec<(String, u16)>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::default_deny()
    }
}

impl Policy {
    /// [`DEFAULT_DENY`] and the API server's Service names; nothing allowed over them.
    pub fn default_deny() -> Self {
        let deny =
            DEFAULT_DENY.iter().filter_map(|(c, why)| Some((c.parse::<Cidr>().ok()?, Some(*why)))).collect();
        Self { deny, allow: Vec::new(), api_servers: Vec::new(), api_server_names: Vec::new() }
    }

    /// Denies `cidrs` as well.
    pub fn deny(mut self, cidrs: impl IntoIterator<Item = Cidr>) -> Self {
        self.deny.extend(cidrs.into_iter().map(|c| (c, None)));
        self
    }

    /// Allows `cidrs` even where a deny entry covers them (not the API server).
    pub fn allow(mut self, cidrs: impl IntoIterator<Item = Cidr>) -> Self {
        self.allow.extend(cidrs);
        self
    }

    /// Denies the API server at `addr` (that address and port), even where allowed.
    pub fn api_server(mut self, addr: SocketAddr) -> Self {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        if !self.api_servers.contains(&addr) {
            self.api_servers.push(addr);
        }
        self
    }

    /// Denies the API server's host name `host` on `port`.
    pub fn api_server_name(mut self, host: &str, port: u16) -> Self {
        self.api_server_names.push((normalize(host), port));
        self
    }

    /// Whether connecting to `addr` is allowed; the rule that denies it otherwise.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), Rule> {
        let ip = addr.ip().to_canonical();
        if self.api_servers.iter().any(|a| a.ip() == ip && a.port() == addr.port()) {
            return Err(Rule::ApiServer);
        }
        if self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match self.deny.iter().find(|(c, _)| c.contains(ip)) {
            Some((cidr, why)) => Err(Rule::Cidr { cidr: *cidr, why: *why }),
            None => Ok(()),
        }
    }

    /// Whether host name `host` may be resolved and dialled on `port` (its addresses are
    /// checked once resolved).
    pub fn check_name(&self, host: &str, port: u16) -> Result<(), Rule> {
        let host = normalize(host);
        let service = API_SERVER_NAMES.iter().any(|n| {
            host == *n
                || host
                    .strip_prefix(n)
                    .is_some_and(|rest| *n == "kubernetes.default.svc" && rest.starts_with('.'))
        });
        if service || self.api_server_names.iter().any(|(n, p)| *n == host && *p == port) {
            return Err(Rule::ApiServerName);
        }
        Ok(())
    }

    /// The allowed addresses of `addrs` (resolved from `host`); an error naming the first
    /// denied one when none is left.
    pub fn filter(&self, addrs: Vec<SocketAddr>, source: &'static str) -> Result<Vec<SocketAddr>, Denied> {
        let mut first_denied = None;
        let mut allowed = Vec::with_capacity(addrs.len());
        for a in addrs {
            match self.check_addr(a) {
                Ok(()) => allowed.push(a),
                Err(rule) => {
                    first_denied.get_or_insert_with(|| denied_addr(a, source, rule));
                }
            }
        }
        match first_denied {
            Some(d) if allowed.is_empty() => Err(d),
            _ => Ok(allowed),
        }
    }
}

fn denied_addr(a: SocketAddr, source: &'static str, rule: Rule) -> Denied {
    let target = match rule {
        Rule::ApiServer => SocketAddr::new(a.ip().to_canonical(), a.port()).to_string(),
        _ => a.ip().to_canonical().to_string(),
    };
    Denied { target, source, rule }
}

/// Lower case, without a trailing dot (`Kubernetes.Default.SVC.` is `kubernetes.default.svc`).
fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

static INSTALLED: RwLock<Option<Arc<Policy>>> = RwLock::new(None);

/// Makes `policy` the one every scaler of this process obeys (`None`: unrestricted).
pub fn install(policy: Option<Policy>) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = policy.map(Arc::new);
}

/// The policy in force, if any.
pub fn installed() -> Option<Arc<Policy>> {
    INSTALLED.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Checks the host of `url` before a request: an IP literal against the addresses (HTTP
/// clients dial those without resolving them), a name against the API server's names. Names
/// are checked again, on their addresses, by [`Resolver`].
pub fn check_url(url: &reqwest::Url, source: &'static str) -> Result<(), Denied> {
    let Some(policy) = installed() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(0);
    let Some(host) = url.host_str() else { return Ok(()) };
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => check_ip(&policy, SocketAddr::new(ip, port), source),
        Err(_) => check_host(&policy, host, port, source),
    }
}

fn check_ip(policy: &Policy, addr: SocketAddr, source: &'static str) -> Result<(), Denied> {
    policy.check_addr(addr).map_err(|rule| denied_addr(addr, source, rule))
}

fn check_host(policy: &Policy, host: &str, port: u16, source: &'static str) -> Result<(), Denied> {
    policy.check_name(host, port).map_err(|rule| Denied { target: normalize(host), source, rule })
}

/// A DNS resolver for one destination port that drops the addresses the installed policy
/// denies (and fails when none is left), so the check holds for the addresses actually dialled.
#[derive(Clone, Debug)]
pub struct Resolver {
    port: u16,
    source: &'static str,
}

impl Resolver {
    /// For connections to port `port` of hosts named by trigger parameter `source`.
    pub fn new(port: u16, source: &'static str) -> Self {
        Self { port, source }
    }

    /// The allowed addresses of `host`.
    pub async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        let policy = installed();
        if let Some(p) = &policy {
            check_host(p, host, self.port, self.source).map_err(denied_io)?;
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, self.port)).await?.collect();
        match policy {
            Some(p) => p.filter(addrs, self.source).map_err(denied_io),
            None => Ok(addrs),
        }
    }
}

fn denied_io(d: Denied) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, d)
}

/// The [`Denied`] in `err` or its sources, if the failure is the policy's.
pub fn find_denied<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Denied> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(d) = e.downcast_ref::<Denied>() {
            return Some(d);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(d) = io.get_ref().and_then(|i| i.downcast_ref::<Denied>())
        {
            return Some(d);
        }
        cur = e.source();
    }
    None
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.resolve(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl aws_smithy_runtime_api::client::dns::ResolveDns for Resolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        DnsFuture::new(async move {
            let addrs = self.resolve(name).await.map_err(ResolveDnsError::new)?;
            Ok(addrs.into_iter().map(|a| a.ip()).collect())
        })
    }
}

/// Opens a TCP connection to `addr` (`host:port`, `[v6]:port`), on the addresses the installed
/// policy allows; a denied destination fails with `PermissionDenied` and the policy's message.
pub async fn connect_tcp(addr: &str, source: &'static str) -> io::Result<TcpStream> {
    let Some(policy) = installed() else { return TcpStream::connect(addr).await };
    if let Some((host, port)) = addr.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
    {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_err() {
            check_host(&policy, host, port, source).map_err(denied_io)?;
        }
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    let allowed = policy.filter(addrs, source).map_err(denied_io)?;
    TcpStream::connect(allowed.as_slice()).await
}

#[cfg(test)]
mod tests;
