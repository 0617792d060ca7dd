//! The egress policy's decisions: the default deny list (documented cloud metadata and
//! loopback addresses), allow overrides, the API server by address and by name, IPv4-mapped
//! IPv6 addresses, filtering of resolved addresses, and CIDR parsing.

use super::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

#[test]
fn default_list_denies_metadata_link_local_loopback_and_unspecified() {
    let p = Policy::default_deny();
    // Addresses as the clouds document them: AWS/GCP/Azure IMDS, ECS task credentials, EKS Pod
    // Identity (IPv4 and IPv6), AWS IMDS over IPv6, Alibaba metadata, Azure WireServer.
    for a in [
        "169.254.169.254:80",
        "169.254.170.2:80",
        "169.254.170.23:80",
        "[fd00:ec2::254]:80",
        "[fd00:ec2::23]:80",
        "100.100.100.200:80",
        "168.63.129.16:80",
        "[fe80::1]:80",
        "127.0.0.1:9090",
        "127.1.2.3:9090",
        "[::1]:9090",
        "0.0.0.0:9090",
        "[::]:9090",
        // IPv4-mapped forms reach the IPv4 address.
        "[::ffff:169.254.169.254]:80",
        "[::ffff:127.0.0.1]:80",
    ] {
        assert!(p.check_addr(sa(a)).is_err(), "{a} must be denied");
    }
    for a in [
        "10.0.0.5:9090",
        "192.168.1.1:80",
        "172.16.0.1:80",
        "8.8.8.8:443",
        "[2001:db8::1]:443",
        "100.64.0.1:80",
    ] {
        assert_eq!(p.check_addr(sa(a)), Ok(()), "{a} must be allowed");
    }
}

#[test]
fn allow_overrides_deny_and_extra_deny_entries_add() {
    let p = Policy::default_deny().allow(cidrs(&["127.0.0.0/8"])).deny(cidrs(&["10.0.0.0/8"]));
    assert_eq!(p.check_addr(sa("127.0.0.1:9090")), Ok(()));
    assert!(p.check_addr(sa("[::1]:9090")).is_err(), "only the IPv4 loopback was allowed");
    assert!(p.check_addr(sa("169.254.169.254:80")).is_err());
    assert_eq!(
        p.check_addr(sa("10.1.2.3:80")),
        Err(Rule::Cidr { cidr: "10.0.0.0/8".parse().unwrap(), why: None })
    );
    let p = p.allow(cidrs(&["10.1.0.0/16"]));
    assert_eq!(p.check_addr(sa("10.1.2.3:80")), Ok(()));
    assert!(p.check_addr(sa("10.2.0.1:80")).is_err());
}

#[test]
fn the_api_server_is_denied_by_address_and_port_even_when_allowed() {
    let p = Policy::default_deny()
        .allow(cidrs(&["127.0.0.0/8", "10.96.0.0/12"]))
        .api_server(sa("127.0.0.1:6443"))
        .api_server(sa("10.96.0.1:443"));
    assert_eq!(p.check_addr(sa("127.0.0.1:6443")), Err(Rule::ApiServer));
    assert_eq!(p.check_addr(sa("[::ffff:10.96.0.1]:443")), Err(Rule::ApiServer));
    assert_eq!(p.check_addr(sa("127.0.0.1:9090")), Ok(()), "another port of the same host");
    assert_eq!(p.check_addr(sa("10.96.0.10:443")), Ok(()));
}

#[test]
fn api_server_names_are_denied() {
    let p = Policy::default_deny().api_server_name("api.example.com", 6443);
    for h in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "Kubernetes.Default.SVC.",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert_eq!(p.check_name(h, 443), Err(Rule::ApiServerName), "{h}");
    }
    assert_eq!(p.check_name("api.example.com", 6443), Err(Rule::ApiServerName));
    assert_eq!(p.check_name("api.example.com", 9090), Ok(()));
    for h in ["prometheus.monitoring.svc", "kubernetes-dashboard", "kubernetes.default.svcx", "my-kubernetes"]
    {
        assert_eq!(p.check_name(h, 443), Ok(()), "{h}");
    }
}

#[test]
fn filtering_keeps_allowed_addresses_and_names_the_first_denied_one() {
    let p = Policy::default_deny();
    // A name answering with a public and a metadata address: only the public one is dialled.
    let kept = p.filter(vec![sa("169.254.169.254:80"), sa("10.0.0.7:80")], "serverAddress").unwrap();
    assert_eq!(kept, vec![sa("10.0.0.7:80")]);
    let err = p.filter(vec![sa("169.254.169.254:80"), sa("127.0.0.1:80")], "serverAddress").unwrap_err();
    assert_eq!(err.target, "169.254.169.254");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "address 169.254.169.254 (from serverAddress) is denied by the operator's egress policy (--egress-deny-cidrs"
        ),
        "{text}"
    );
    assert!(text.contains("--egress-allow-cidrs"), "{text}");
    assert_eq!(p.filter(Vec::new(), "serverAddress"), Ok(Vec::new()));
}

#[test]
fn messages_say_what_was_denied_and_how_to_change_it() {
    let p = Policy::default_deny().api_server(sa("10.96.0.1:443"));
    let e = p.filter(vec![sa("10.96.0.1:443")], "awsEndpoint").unwrap_err();
    assert_eq!(
        e.to_string(),
        "address 10.96.0.1:443 (from awsEndpoint) is denied by the operator's egress policy: it is the \
         Kubernetes API server, which scalers never query (only --egress-policy=off lifts this)"
    );
    let e = Denied {
        target: "kubernetes.default.svc".into(),
        source: "bootstrapServers",
        rule: Rule::ApiServerName,
    };
    assert!(
        e.to_string().starts_with("host kubernetes.default.svc (from bootstrapServers) is denied"),
        "{e}"
    );
}

#[test]
fn cidr_parsing() {
    assert_eq!("10.1.2.3/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
    assert_eq!("169.254.169.254".parse::<Cidr>().unwrap().to_string(), "169.254.169.254/32");
    assert_eq!("fd00:ec2::254".parse::<Cidr>().unwrap().to_string(), "fd00:ec2::254/128");
    assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().to_string(), "0.0.0.0/0");
    assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("8.8.8.8".parse().unwrap()));
    assert!(!"::/0".parse::<Cidr>().unwrap().contains("8.8.8.8".parse().unwrap()));
    for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "x", "", "10.0.0.0/-1", "10.0.0.0/"] {
        let e = bad.parse::<Cidr>().unwrap_err();
        assert!(e.contains(bad), "{bad}: {e}");
    }
    // Every default entry parses.
    assert_eq!(Policy::default_deny().deny.len(), DEFAULT_DENY.len());
}
