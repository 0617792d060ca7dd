//! Kafka trigger parsing: the seed fixture (bare booleans included), defaults, every validation
//! error KEDA gives for a bad value or combination, credentials from a TriggerAuthentication and
//! that secrets never show up in errors, Debug output or the pool key.

use std::collections::BTreeMap;

use ebb_api::{MetadataValue, ScaledObject};

use super::config::{KafkaConfig, SaslMechanism, parse_config};
use super::lag::OffsetResetPolicy;
use super::wire::scram::ScramHash;
use super::*;
use crate::error::ParseError;
use crate::params::ParseContext;
use crate::validate::parse_scaled_object;

fn md(pairs: &[(&str, &str)]) -> BTreeMap<String, MetadataValue> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), MetadataValue::from(*v))).collect()
}

fn parse_with(pairs: &[(&str, &str)], auth: &[(&str, &str)]) -> Result<KafkaConfig, ParseError> {
    let m = md(pairs);
    let mut ctx = ParseContext::default();
    ctx.auth.insert(0, auth.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    parse_config(&Params::new(0, "kafka", PARAMS, &m, &ctx))
}

fn parse_pairs(pairs: &[(&str, &str)]) -> Result<KafkaConfig, ParseError> {
    parse_with(pairs, &[])
}

const BASE: &[(&str, &str)] =
    &[("bootstrapServers", "k0:9092,k1:9092"), ("consumerGroup", "g"), ("topic", "t")];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = BASE.to_vec();
    for (k, val) in extra {
        v.retain(|(a, _)| a != k);
        v.push((k, val));
    }
    v
}

fn seed() -> ScaledObject {
    let path = format!("{}/../tests/fixtures/seed/kafka-trigger.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A CA and a leaf certificate it signed, as PEM: (ca, leaf cert, leaf key).
fn pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[test]
fn seed_parses_with_bare_booleans_once_credentials_are_given() {
    let so = seed();
    // As written the seed asks for sasl plaintext without a TriggerAuthentication: one error.
    let errs = parse_scaled_object(&so, &ParseContext::default()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "spec.triggers[0] (kafka) metadata.username: sasl plaintext needs \"username\" from a TriggerAuthentication"
    );
    let mut ctx = ParseContext::default();
    ctx.auth
        .insert(0, [("username".to_owned(), "u".to_owned()), ("password".to_owned(), "p".to_owned())].into());
    let parsed = parse_scaled_object(&so, &ctx).unwrap();
    assert_eq!(parsed.metric_names(), ["s0-kafka-test-topic"]);
    let t = &parsed.triggers[0];
    assert_eq!((t.target(), t.activation_target()), (5.0, 3.0));
    assert_eq!(
        parsed.warnings,
        [
            "spec.triggers[0] (kafka) metadata.version: accepted and ignored: ebb negotiates the protocol version with each broker (ApiVersions)"
        ]
    );
    assert!(t.config.describe().starts_with(
        "consumerGroup \"my-group\" on topic \"test-topic\" (partitions 1,2,10-20,31) at kafka.svc:9092; offsetResetPolicy latest, tls, sasl PLAIN"
    ), "{}", t.config.describe());
    // The typed view of the same metadata.
    let m = &so.spec.triggers[0].metadata;
    let c = parse_config(&Params::new(0, "kafka", PARAMS, m, &ctx)).unwrap();
    assert_eq!(c.bootstrap_servers, ["kafka.svc:9092"]);
    assert_eq!((c.group.as_str(), c.topics.as_slice()), ("my-group", &["test-topic".to_owned()][..]));
    assert_eq!(c.partition_limitation.as_ref().map(ToString::to_string).as_deref(), Some("1,2,10-20,31"));
    let l = c.lag;
    assert_eq!(
        (l.lag_threshold, c.activation_lag_threshold, l.offset_reset),
        (5, 3, OffsetResetPolicy::Latest)
    );
    assert!(!l.allow_idle_consumers && !l.scale_to_zero_on_invalid_offset);
    assert!(!l.exclude_persistent_lag && !l.limit_to_partitions_with_lag);
    let tls = c.security.tls.as_ref().unwrap();
    assert!(tls.ca.is_none() && tls.client.is_none() && !tls.unsafe_ssl);
    let sasl = c.security.sasl.as_ref().unwrap();
    assert_eq!((sasl.mechanism, sasl.username.as_str()), (SaslMechanism::Plain, "u"));
}

#[test]
fn bare_yaml_booleans_and_numbers_parse() {
    let so: ScaledObject = serde_yaml::from_str(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: kafka\n    metadata: {bootstrapServers: 'k:9092', consumerGroup: g, topic: t, lagThreshold: 7, activationLagThreshold: 0, allowIdleConsumers: true, excludePersistentLag: true, scaleToZeroOnInvalidOffset: true, unsafeSsl: false}\n",
    )
    .unwrap();
    let m = &so.spec.triggers[0].metadata;
    let ctx = ParseContext::default();
    let c = parse_config(&Params::new(0, "kafka", PARAMS, m, &ctx)).unwrap();
    assert_eq!(c.lag.lag_threshold, 7);
    assert!(
        c.lag.allow_idle_consumers && c.lag.exclude_persistent_lag && c.lag.scale_to_zero_on_invalid_offset
    );
}

#[test]
fn defaults_and_metric_names() {
    let c = parse_pairs(&[("bootstrapServers", "k:9092"), ("consumerGroup", "orders-workers")]).unwrap();
    assert_eq!((c.lag.lag_threshold, c.activation_lag_threshold), (10, 0));
    assert_eq!(c.lag.offset_reset, OffsetResetPolicy::Latest);
    assert!(c.topics.is_empty() && c.security.tls.is_none() && c.security.sasl.is_none());
    assert_eq!(ebb_api::metric_name::with_index(2, &c.metric_part()), "s2-kafka-orders-workers-topics");
    let t = parse_pairs(&with(&[("topic", "app.events/v1")])).unwrap();
    assert_eq!(ebb_api::metric_name::with_index(0, &t.metric_part()), "s0-kafka-app-events-v1");
    // Without a topic partitionLimitation is ignored, as KEDA does.
    let ignored = parse_pairs(&[
        ("bootstrapServers", "k:9092"),
        ("consumerGroup", "g"),
        ("partitionLimitation", "1-3"),
    ]);
    assert!(ignored.unwrap().partition_limitation.is_none());
    let earliest = parse_pairs(&with(&[("offsetResetPolicy", "earliest")])).unwrap();
    assert_eq!(earliest.lag.offset_reset, OffsetResetPolicy::Earliest);
}

#[test]
fn invalid_values_and_combinations_are_one_clear_error() {
    let (ca, cert, key) = pki();
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let (ca, cert, key) = (leak(&ca), leak(&cert), leak(&key));
    type Case = (Vec<(&'static str, &'static str)>, Vec<(&'static str, &'static str)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            with(&[("allowIdleConsumers", "true"), ("limitToPartitionsWithLag", "true")]),
            vec![],
            "metadata.limitToPartitionsWithLag: allowIdleConsumers and limitToPartitionsWithLag cannot both be true",
        ),
        (
            vec![
                ("bootstrapServers", "k:9092"),
                ("consumerGroup", "g"),
                ("limitToPartitionsWithLag", "true"),
            ],
            vec![],
            "metadata.limitToPartitionsWithLag: needs a topic; set metadata.topic",
        ),
        (
            with(&[("lagThreshold", "0")]),
            vec![],
            "metadata.lagThreshold: expected an integer ≥ 1, found \"0\"",
        ),
        (
            with(&[("lagThreshold", "1.5")]),
            vec![],
            "metadata.lagThreshold: expected an integer, found \"1.5\"",
        ),
        (
            with(&[("activationLagThreshold", "-1")]),
            vec![],
            "metadata.activationLagThreshold: expected an integer ≥ 0, found \"-1\"",
        ),
        (
            with(&[("offsetResetPolicy", "none")]),
            vec![],
            "metadata.offsetResetPolicy: expected one of latest, earliest, found \"none\"",
        ),
        (
            with(&[("allowIdleConsumers", "yes")]),
            vec![],
            "metadata.allowIdleConsumers: expected true or false",
        ),
        (with(&[("partitionLimitation", "1,x")]), vec![], "metadata.partitionLimitation: \"x\" in \"1,x\""),
        (
            with(&[("bootstrapServers", "kafka")]),
            vec![],
            "metadata.bootstrapServers: \"kafka\" is not host:port",
        ),
        (
            with(&[("bootstrapServers", "k:9092,")]),
            vec![],
            "metadata.bootstrapServers: \"\" is not host:port",
        ),
        (vec![("bootstrapServers", "k:1")], vec![], "metadata.consumerGroup: required"),
        (with(&[("sasl", "gssapi")]), vec![], "metadata.sasl: gssapi is not supported by ebb"),
        (
            with(&[("sasl", "scram")]),
            vec![],
            "metadata.sasl: expected one of none, plaintext, scram_sha256, scram_sha512",
        ),
        (
            with(&[("sasl", "scram_sha512")]),
            vec![("username", "u")],
            "metadata.password: sasl scram_sha512 needs \"password\" from a TriggerAuthentication",
        ),
        (with(&[("tls", "yes")]), vec![], "metadata.tls: expected enable or disable, found \"yes\""),
        (
            with(&[("tls", "enable")]),
            vec![("cert", cert)],
            "metadata.key: cert is set, so key must be set too",
        ),
        (
            with(&[("tls", "enable")]),
            vec![("key", key)],
            "metadata.cert: key is set, so cert must be set too",
        ),
        (
            with(&[("tls", "enable")]),
            vec![("cert", cert), ("key", key), ("keyPassword", "k")],
            "metadata.keyPassword: encrypted private keys are not supported",
        ),
        (with(&[("tls", "enable")]), vec![("ca", "not pem")], "metadata.ca: holds no PEM certificate"),
        (
            with(&[("tls", "enable")]),
            vec![("cert", cert), ("key", "-----BEGIN JUNK-----\n-----END JUNK-----\n")],
            "metadata.key: not a PEM private key",
        ),
        (
            with(&[("tls", "enable")]),
            vec![("cert", ca), ("key", key)],
            "metadata.cert: the client certificate and key do not form a usable pair",
        ),
    ];
    for (pairs, auth, want) in &cases {
        let e = parse_with(pairs, auth).unwrap_err().to_string();
        let full = format!("spec.triggers[0] (kafka) {want}");
        assert!(e.starts_with(&full), "{pairs:?} {auth:?}:\n got {e}\nwant {full}");
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(!e.contains("PRIVATE KEY") && !e.contains("MII"), "no PEM in errors: {e}");
    }
}

#[test]
fn security_from_trigger_authentication() {
    let (ca, cert, key) = pki();
    let auth = [
        ("sasl", "scram_sha512"),
        ("username", "svc"),
        ("password", "hunter2"),
        ("tls", "enable"),
        ("ca", ca.as_str()),
        ("cert", cert.as_str()),
        ("key", key.as_str()),
    ];
    let c = parse_with(BASE, &auth).unwrap();
    let sasl = c.security.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::Scram(ScramHash::Sha512));
    let tls = c.security.tls.as_ref().unwrap();
    assert_eq!(tls.ca.as_ref().map(Vec::len), Some(1));
    assert!(tls.client.is_some());
    // sasl and tls set both in metadata and by the TriggerAuthentication are refused (KEDA:
    // "unable to set `tls` in both ScaledObject and TriggerAuthentication together").
    let e = parse_with(&with(&[("tls", "disable")]), &auth).unwrap_err().to_string();
    assert!(
        e.contains("metadata.tls: set both in the trigger's metadata and by the TriggerAuthentication"),
        "{e}"
    );
    let e = parse_with(&with(&[("sasl", "scram_sha256")]), &auth).unwrap_err().to_string();
    assert!(e.contains("metadata.sasl: set both"), "{e}");
    // Credentials in metadata are ignored (and warned about by the reader).
    let m = md(&with(&[("password", "leak"), ("sasl", "plaintext")]));
    let ctx = ParseContext::default();
    let p = Params::new(0, "kafka", PARAMS, &m, &ctx);
    let e = parse_config(&p).unwrap_err().to_string();
    assert!(e.contains("metadata.username") && !e.contains("leak"), "{e}");

    // Secrets never show: Debug, describe, pool key.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("PRIVATE") && !dbg.contains("svc"), "{dbg}");
    assert!(!c.describe().contains("hunter2"));
    assert!(!c.pool_key().contains("hunter2") && c.pool_key().starts_with("k0:9092,k1:9092#"));
}

#[test]
fn pool_key_separates_credentials_and_shares_equal_settings() {
    let a = parse_with(&with(&[("sasl", "plaintext")]), &[("username", "u"), ("password", "p1")]).unwrap();
    let b = parse_with(
        &with(&[("sasl", "plaintext"), ("topic", "other")]),
        &[("username", "u"), ("password", "p1")],
    )
    .unwrap();
    let c = parse_with(&with(&[("sasl", "plaintext")]), &[("username", "u"), ("password", "p2")]).unwrap();
    let plain = parse_pairs(BASE).unwrap();
    assert_eq!(a.pool_key(), b.pool_key(), "topic and group do not split the pool");
    assert_ne!(a.pool_key(), c.pool_key());
    assert_ne!(a.pool_key(), plain.pool_key());
    assert!(Arc::ptr_eq(&Cluster::shared(&a), &Cluster::shared(&b)));
    assert!(!Arc::ptr_eq(&Cluster::shared(&a), &Cluster::shared(&c)));
}
