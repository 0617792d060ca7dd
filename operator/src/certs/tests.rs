//! Tests of the certificate manager's plan: one Secret and identity per component, and each Secret mounted by its own Deployment only.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;
use serde_json::Value;

use super::*;

#[derive(Debug, clap::Parser)]
struct Cmd {
    #[command(flatten)]
    certs: CertificateArgs,
}

fn parse(args: &[&str]) -> Result<CertConfig, String> {
    let cmd =
        Cmd::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map_err(|e| e.to_string())?;
    CertConfig::from_args(&cmd.certs, "keda")
}

fn leaf(cfg: &CertConfig, c: Component) -> &LeafSpec {
    cfg.leaves.iter().find(|l| l.component == c).unwrap()
}

#[test]
fn defaults() {
    let cmd = Cmd::try_parse_from(["x"]).unwrap();
    assert!(!cmd.certs.manage_certificates);
    let cfg = CertConfig::from_args(&cmd.certs, "keda").unwrap();
    assert_eq!(cfg.ca_secret, "ebb-ca");
    let webhook = leaf(&cfg, Component::Webhook);
    assert_eq!(webhook.secret, "ebb-webhook-tls");
    assert_eq!(webhook.dns_names.len(), 4);
    assert!(webhook.dns_names.contains(&"ebb-webhook.keda.svc.cluster.local".to_owned()));
    assert_eq!(cfg.apiservice.as_deref(), Some("v1beta1.external.metrics.k8s.io"));
    assert_eq!(cfg.webhook_configuration.as_deref(), Some("keda-admission"));
    assert_eq!(cfg.timing.validity, Duration::from_secs(365 * 86400));
    assert_eq!(cfg.timing.renew_before, Duration::from_secs(30 * 86400));
    assert_eq!(cfg.timing.ca_validity, Duration::from_secs(3650 * 86400));
    assert_eq!(cfg.timing.overlap, Duration::from_secs(300));
    assert_eq!(internal_client_names(&cmd.certs).unwrap(), [DEFAULT_CLIENT_NAME]);
}

/// One certificate per component: its own Secret, its own names, one usage; the client
/// certificate names the identity the internal endpoint admits, and nothing else does.
#[test]
fn the_plan_gives_each_component_its_own_secret_and_identity() {
    let cfg = parse(&[]).unwrap();
    let secrets: BTreeSet<&str> = cfg.leaves.iter().map(|l| l.secret.as_str()).collect();
    assert_eq!(secrets.len(), 4, "{:?}", cfg.leaves);
    assert!(!secrets.contains(cfg.ca_secret.as_str()));
    let components: BTreeSet<Component> = cfg.leaves.iter().map(|l| l.component).collect();
    assert_eq!(components, Component::ALL.into_iter().collect());
    for (c, service) in [
        (Component::Operator, "ebb-operator"),
        (Component::Webhook, "ebb-webhook"),
        (Component::MetricsApiServer, "ebb-metrics-apiserver"),
    ] {
        let l = leaf(&cfg, c);
        assert_eq!(l.usage, Usage::Server, "{c:?}");
        assert_eq!(l.common_name, service);
        assert!(l.dns_names.iter().all(|n| n == service || n.starts_with(&format!("{service}."))), "{l:?}");
    }
    let client = leaf(&cfg, Component::MetricsApiServerClient);
    assert_eq!(client.usage, Usage::Client);
    assert_eq!(
        (client.common_name.as_str(), client.dns_names.as_slice()),
        ("ebb-metrics-apiserver", &["ebb-metrics-apiserver".to_owned()][..])
    );
    let other = parse(&["--internal-client-name", "metrics-client,legacy"]).unwrap();
    assert_eq!(leaf(&other, Component::MetricsApiServerClient).common_name, "metrics-client");
}

/// The rendered default installation mounts each Secret of the plan into its component's
/// Deployment only, and the CA Secret into none.
#[test]
fn each_secret_of_the_plan_is_mounted_by_its_own_deployment_only() {
    let cfg = parse(&[]).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rendered/default.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut mounted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if v["kind"] != "Deployment" {
            continue;
        }
        let name = v["metadata"]["name"].as_str().unwrap().to_owned();
        for vol in v["spec"]["template"]["spec"]["volumes"].as_array().into_iter().flatten() {
            if let Some(secret) = vol["secret"]["secretName"].as_str() {
                mounted.entry(secret.to_owned()).or_default().insert(name.clone());
            }
        }
    }
    let owner = |c: Component| match c {
        Component::Operator => "ebb-operator",
        Component::Webhook => "ebb-webhook",
        Component::MetricsApiServer | Component::MetricsApiServerClient => "ebb-metrics-apiserver",
    };
    for l in &cfg.leaves {
        let by = mounted.get(&l.secret).cloned().unwrap_or_default();
        assert_eq!(
            by,
            BTreeSet::from([owner(l.component).to_owned()]),
            "Secret {} is mounted by {by:?}",
            l.secret
        );
    }
    assert!(!mounted.contains_key(&cfg.ca_secret), "the CA Secret is mounted: {mounted:?}");
    assert_eq!(mounted.len(), cfg.leaves.len(), "Secrets mounted: {mounted:?}");
}

#[test]
fn flag_forms() {
    assert!(Cmd::try_parse_from(["x", "--manage-certificates"]).unwrap().certs.manage_certificates);
    assert!(Cmd::try_parse_from(["x", "--manage-certificates=true"]).unwrap().certs.manage_certificates);
    assert!(!Cmd::try_parse_from(["x", "--manage-certificates=false"]).unwrap().certs.manage_certificates);
    let cfg = parse(&["--webhook-service", "hook", "--apiservice=", "--webhook-configuration", ""]).unwrap();
    assert_eq!(leaf(&cfg, Component::Webhook).dns_names[0], "hook");
    assert_eq!((cfg.apiservice, cfg.webhook_configuration), (None, None));
}

#[test]
fn nonsense_is_rejected_with_the_flag_named() {
    let err = parse(&["--certificate-validity", "24h", "--certificate-renew-before", "24h"]).unwrap_err();
    assert!(err.contains("--certificate-renew-before"), "{err}");
    let err = parse(&["--ca-validity", "8000h"]).unwrap_err();
    assert!(err.contains("--ca-validity"), "{err}");
    let err = parse(&["--ca-rotation-overlap", "800h"]).unwrap_err();
    assert!(err.contains("--ca-rotation-overlap"), "{err}");
    let err = parse(&["--webhook-service", " "]).unwrap_err();
    assert!(err.contains("--webhook-service"), "{err}");
    let err = parse(&["--internal-client-name", ","]).unwrap_err();
    assert!(err.contains("--internal-client-name"), "{err}");
    let err = parse(&["--ca-secret", "ebb-webhook-tls"]).unwrap_err();
    assert!(err.contains("must differ") && err.contains("--webhook-certificate-secret"), "{err}");
    let err =
        parse(&["--operator-certificate-secret", "x", "--metrics-apiserver-client-secret", "x"]).unwrap_err();
    assert!(err.contains("must differ"), "{err}");
    assert!(parse(&["--certificate-validity", "soon"]).is_err());
}
