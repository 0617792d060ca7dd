#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use super::*;

const NOW: i64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn timing() -> Timing {
    Timing {
        validity: Duration::from_secs(365 * DAY),
        renew_before: Duration::from_secs(30 * DAY),
        ca_validity: Duration::from_secs(3650 * DAY),
        overlap: Duration::from_secs(300),
    }
}

fn names() -> Vec<String> {
    dns_names(&["ebb-webhook".into()], "keda", "cluster.local")
}

fn server_spec(service: &str, component: Component) -> LeafSpec {
    LeafSpec {
        component,
        secret: format!("{service}-tls"),
        common_name: service.to_owned(),
        dns_names: dns_names(&[service.to_owned()], "keda", "cluster.local"),
        usage: Usage::Server,
    }
}

fn webhook() -> LeafSpec {
    server_spec("ebb-webhook", Component::Webhook)
}

fn client_spec() -> LeafSpec {
    LeafSpec {
        component: Component::MetricsApiServerClient,
        secret: "ebb-metrics-apiserver-client-tls".into(),
        common_name: "ebb-metrics-apiserver".into(),
        dns_names: vec!["ebb-metrics-apiserver".into()],
        usage: Usage::Client,
    }
}

fn specs() -> Vec<LeafSpec> {
    vec![
        server_spec("ebb-operator", Component::Operator),
        webhook(),
        server_spec("ebb-metrics-apiserver", Component::MetricsApiServer),
        client_spec(),
    ]
}

#[test]
fn dns_names_per_service() {
    let got = dns_names(&["a".into(), " b ".into(), "".into(), "a".into()], "ns", "example.org");
    assert_eq!(
        got,
        ["a", "a.ns", "a.ns.svc", "a.ns.svc.example.org", "b", "b.ns", "b.ns.svc", "b.ns.svc.example.org"]
    );
}

#[test]
fn timing_rejects_nonsense() {
    assert!(timing().check().is_ok());
    let bad = Timing { renew_before: Duration::from_secs(365 * DAY), ..timing() };
    let msg = bad.check().unwrap_err();
    assert!(msg.contains("--certificate-renew-before") && msg.contains("--certificate-validity"), "{msg}");
    let bad = Timing { ca_validity: Duration::from_secs(395 * DAY), ..timing() };
    assert!(bad.check().unwrap_err().contains("--ca-validity"));
    let bad = Timing { renew_before: Duration::ZERO, ..timing() };
    assert!(bad.check().is_err());
    let bad = Timing { overlap: Duration::from_secs(30 * DAY), ..timing() };
    assert!(bad.check().unwrap_err().contains("--ca-rotation-overlap"));
    let bad = Timing { overlap: Duration::ZERO, ..timing() };
    assert!(bad.check().unwrap_err().contains("--ca-rotation-overlap"));
}

#[test]
fn pem_round_trip() {
    let ca = Ca::generate(NOW, Duration::from_secs(DAY)).unwrap();
    let pem = cert_pem(&ca.info.der);
    assert!(pem.lines().all(|l| l.len() <= 64));
    assert_eq!(parse_certs(pem.as_bytes()).unwrap()[0].der, ca.info.der);
}

#[test]
fn generated_ca_and_leaves_chain_and_carry_their_own_identity_and_usage() {
    let ca = Ca::generate(NOW, timing().ca_validity).unwrap();
    assert!(ca.info.is_ca);
    assert_eq!(ca.info.not_after, NOW + 3650 * DAY as i64);
    let again = Ca::parse(ca.cert_pem.as_bytes(), ca.key_pem.as_bytes()).unwrap();
    assert_eq!(again.info, ca.info);

    let serving = ca.issue(&webhook(), NOW, timing().validity).unwrap();
    assert!(!serving.info.is_ca);
    assert!(serving.info.server_auth && !serving.info.client_auth);
    assert_eq!(serving.info.common_name.as_deref(), Some("ebb-webhook"));
    assert!(serving.info.signed_by(&ca.info));
    assert!(!ca.info.signed_by(&serving.info));
    assert_eq!(serving.info.dns_names, names().into_iter().collect());
    let parsed = Leaf::parse(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes()).unwrap();
    assert_eq!(parsed.info, serving.info);

    let client = ca.issue(&client_spec(), NOW, timing().validity).unwrap();
    assert!(client.info.client_auth && !client.info.server_auth);
    assert_eq!(client.info.common_name.as_deref(), Some("ebb-metrics-apiserver"));

    let other = Ca::generate(NOW, timing().ca_validity).unwrap();
    assert!(!serving.info.signed_by(&other.info));
    assert_ne!(other.info.serial, ca.info.serial);
}

#[test]
fn mismatched_or_broken_material_is_refused() {
    let ca = Ca::generate(NOW, timing().ca_validity).unwrap();
    let other = Ca::generate(NOW, timing().ca_validity).unwrap();
    let err = Ca::parse(ca.cert_pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err();
    assert!(err.contains("does not belong"), "{err}");
    let leaf = ca.issue(&webhook(), NOW, timing().validity).unwrap();
    assert!(Ca::parse(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap_err().contains("not a CA"));
    assert!(Leaf::parse(b"garbage", leaf.key_pem.as_bytes()).is_err());
    let err = Leaf::parse(
        leaf.cert_pem.as_bytes(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err();
    // The message never echoes key material.
    assert!(!err.contains("AAAA"), "{err}");
}

#[test]
fn leaf_plan() {
    let t = timing();
    let ca = Ca::generate(NOW, t.ca_validity).unwrap();
    let auth = rotation::Authority::new(ca.clone());
    let leaf = ca.issue(&webhook(), NOW, t.validity).unwrap();
    let ok = Ok(leaf.clone());
    assert_eq!(plan_leaf(None, &webhook(), &auth, NOW, &t), Err(Reason::Missing));
    assert_eq!(plan_leaf(Some(&ok), &webhook(), &auth, NOW, &t), Ok(()));
    // Renewal: kept until renew-before is left, replaced from then on.
    let due = leaf_renew_at(&leaf.info, &t);
    assert_eq!(due, NOW + 335 * DAY as i64);
    assert_eq!(plan_leaf(Some(&ok), &webhook(), &auth, due - 1, &t), Ok(()));
    assert!(matches!(plan_leaf(Some(&ok), &webhook(), &auth, due, &t), Err(Reason::Expiring { .. })));
    // Another component's identity, the wrong usage, an unknown issuer, garbage.
    let operator = server_spec("ebb-operator", Component::Operator);
    assert_eq!(plan_leaf(Some(&ok), &operator, &auth, NOW, &t), Err(Reason::DnsNames));
    let as_client = LeafSpec { usage: Usage::Client, ..webhook() };
    assert_eq!(plan_leaf(Some(&ok), &as_client, &auth, NOW, &t), Err(Reason::Usage));
    let stranger = rotation::Authority::new(Ca::generate(NOW, t.ca_validity).unwrap());
    assert_eq!(plan_leaf(Some(&ok), &webhook(), &stranger, NOW, &t), Err(Reason::OtherIssuer));
    let broken = Err("bad".to_owned());
    assert!(matches!(plan_leaf(Some(&broken), &webhook(), &auth, NOW, &t), Err(Reason::Unparseable(_))));
}

/// A leaf from a retired CA is kept until the bundle holding the signing CA has been everywhere
/// for the overlap — even when due for renewal — and replaced once it has, or once it expired.
#[test]
fn leaves_of_a_retired_ca_wait_for_the_new_bundle() {
    let t = timing();
    let old = Ca::generate(NOW - 100 * DAY as i64, t.ca_validity).unwrap();
    let leaf = old.issue(&webhook(), NOW - 100 * DAY as i64, t.validity).unwrap();
    let ok = Ok(leaf.clone());
    let new = Ca::generate(NOW, t.ca_validity).unwrap();
    let mut auth = rotation::Authority { retired: vec![old.info.clone()], ..rotation::Authority::new(new) };
    let renew = leaf_renew_at(&leaf.info, &t);
    let overlap = 300;
    // (bundle_since, now, plan)
    let cases = [
        (None, NOW, Ok(())),
        (Some(NOW), NOW + overlap - 1, Ok(())),
        (Some(NOW), NOW + overlap, Err(Reason::OtherIssuer)),
        (None, renew + 1, Ok(())),
        (Some(NOW), renew + 1, Err(Reason::Expiring { not_after: leaf.info.not_after })),
        (None, leaf.info.not_after, Err(Reason::Expiring { not_after: leaf.info.not_after })),
    ];
    for (since, now, want) in cases {
        auth.bundle_since = since;
        assert_eq!(plan_leaf(Some(&ok), &webhook(), &auth, now, &t), want, "since {since:?}, now {now}");
    }
    // A CA no longer trusted at all: replaced at once.
    auth.retired.clear();
    auth.bundle_since = None;
    assert_eq!(plan_leaf(Some(&ok), &webhook(), &auth, NOW, &t), Err(Reason::OtherIssuer));
}

/// The rotation's steps over time: publish, switch after the bundle has been everywhere for the
/// overlap, retire after the leaves have; expired CAs dropped; an unusable CA replaced at once
/// with the published CAs kept.
#[test]
fn rotation_steps_in_order_and_only_after_the_overlap() {
    use rotation::{Change, Observed, advance, record};
    let t = timing();
    let ca = Ca::generate(NOW, t.ca_validity).unwrap();
    let start = ca_renew_at(&ca.info, &t);
    let everything = Observed { bundles_everywhere: true, leaves_signed: true, leaf_switched: false };

    let a = rotation::Authority::new(ca.clone());
    let (a, change) = advance(Some(&Ok(a)), &[], start - 1, &t).unwrap();
    assert_eq!(change, None);
    let a = record(&a, everything, start - 1).unwrap();
    assert_eq!((a.bundle_since, a.leaves_since), (Some(start - 1), Some(start - 1)));
    assert!(record(&a, everything, start).is_none(), "nothing new to record");

    // 1. Due: the next CA is published, the signing CA unchanged.
    let (a, change) = advance(Some(&Ok(a)), &[], start, &t).unwrap();
    assert!(matches!(change, Some(Change::Published { .. })), "{change:?}");
    assert_eq!(a.signing.info, ca.info);
    let next = a.next.clone().unwrap();
    assert_eq!(parse_certs(a.bundle().as_bytes()).unwrap(), vec![next.info.clone(), ca.info.clone()]);
    assert_eq!(a.bundle_since, None);
    // Not propagated yet: nothing moves however long it takes.
    let (a, change) = advance(Some(&Ok(a)), &[], start + 3600, &t).unwrap();
    assert_eq!(change, None);
    let seen = start + 3600;
    let a = record(&a, everything, seen).unwrap();
    let (a, change) = advance(Some(&Ok(a)), &[], seen + 299, &t).unwrap();
    assert_eq!(change, None);
    assert!(a.next.is_some());

    // 2. Overlap passed: the next CA signs, the old one is retired; the bundle's bytes stay.
    let bundle = a.bundle();
    let (a, change) = advance(Some(&Ok(a)), &[], seen + 300, &t).unwrap();
    assert_eq!(change, Some(Change::Switched));
    assert_eq!((a.signing.info.clone(), a.retired.clone()), (next.info.clone(), vec![ca.info.clone()]));
    assert_eq!(a.bundle(), bundle);
    assert_eq!(a.leaves_since, None);
    let switched = Observed { leaf_switched: true, ..everything };
    let a = record(&a, switched, seen + 300).unwrap();
    let (a, change) = advance(Some(&Ok(a)), &[], seen + 599, &t).unwrap();
    assert_eq!(change, None);
    // A leaf issued again later restarts the wait.
    let a = record(&a, switched, seen + 400).unwrap();
    let (a, change) = advance(Some(&Ok(a)), &[], seen + 600, &t).unwrap();
    assert_eq!(change, None);

    // 3. The leaves have been from the new CA for the overlap: the old CA goes.
    let (a, change) = advance(Some(&Ok(a)), &[], seen + 700, &t).unwrap();
    assert_eq!(change, Some(Change::Retired { count: 1 }));
    assert_eq!(parse_certs(a.bundle().as_bytes()).unwrap(), vec![next.info.clone()]);

    // An unusable CA Secret: a new CA signs at once, every published CA still valid is kept.
    let expired = Ca::generate(NOW - 10 * DAY as i64, Duration::from_secs(DAY)).unwrap();
    let (b, change) = advance(
        Some(&Err("broken".into())),
        &[ca.info.clone(), expired.info.clone(), ca.info.clone()],
        NOW,
        &t,
    )
    .unwrap();
    assert!(matches!(change, Some(Change::Created { kept: 1, .. })), "{change:?}");
    assert_eq!(b.retired, vec![ca.info.clone()]);
    assert_ne!(b.signing.info, ca.info);
    let (c, change) = advance(None, &[], NOW, &t).unwrap();
    assert!(matches!(change, Some(Change::Created { reason: Reason::Missing, kept: 0 })), "{change:?}");
    assert!(c.retired.is_empty());
    // A retired CA that expires leaves the bundle whatever the step.
    let short = Ca::generate(NOW, Duration::from_secs(1000)).unwrap();
    let d = rotation::Authority { retired: vec![short.info.clone()], ..rotation::Authority::new(ca.clone()) };
    let (d, change) = advance(Some(&Ok(d)), &[], NOW + 1000, &t).unwrap();
    assert_eq!(change, Some(Change::Retired { count: 1 }));
    assert!(d.retired.is_empty());
}

/// CA rotation as seen by the programs: every pass (every 10 s) publishes; consumers lag up to
/// two minutes (the overlap is five). At no instant does a server present a leaf its client
/// cannot verify — by rustls's webpki, not by ebb's own code — through a full rotation, leaf
/// renewals, and the CA Secret deleted mid-way.
#[test]
fn ca_rotation_never_serves_a_leaf_its_clients_cannot_verify() {
    use super::simulation::{self, Link, Published};
    let t = Timing {
        validity: Duration::from_secs(3600),
        renew_before: Duration::from_secs(600),
        ca_validity: Duration::from_secs(3 * 3600),
        overlap: Duration::from_secs(300),
    };
    let specs = specs();
    let mut stored: Option<rotation::Authority> = None;
    let mut leaves: Vec<Option<Leaf>> = vec![None; specs.len()];
    let mut bundles: Vec<String> = vec![String::new(); specs.len()];
    let lost_at = NOW + 5 * 3600;
    // The pass as the certificate manager composes it (secrets.rs), without the API.
    let pass = |now: i64| {
        if now == lost_at {
            stored = None; // someone deletes the CA Secret
        }
        let published: Vec<CertInfo> =
            bundles.iter().flat_map(|b| parse_certs(b.as_bytes()).unwrap()).filter(|c| c.is_ca).collect();
        let current = stored.clone().map(Ok);
        let (authority, _) = rotation::advance(current.as_ref(), &published, now, &t).unwrap();
        let bundle = authority.bundle();
        let mut seen =
            rotation::Observed { bundles_everywhere: true, leaves_signed: true, leaf_switched: false };
        for (i, spec) in specs.iter().enumerate() {
            let current = leaves[i].clone().map(Ok);
            if plan_leaf(current.as_ref(), spec, &authority, now, &t).is_err() {
                leaves[i] = Some(authority.signing.issue(spec, now, t.validity).unwrap());
                seen.leaf_switched = true;
            }
            seen.leaves_signed &= leaves[i].as_ref().unwrap().info.signed_by(&authority.signing.info);
            bundles[i] = bundle.clone();
        }
        stored = Some(rotation::record(&authority, seen, now).unwrap_or(authority));
        let leaf = |c: Component| {
            leaves[specs.iter().position(|s| s.component == c).unwrap()].as_ref().unwrap().cert_pem.clone()
        };
        let links = [
            (Link::ApiServerToMetrics, Component::MetricsApiServer),
            (Link::ApiServerToWebhook, Component::Webhook),
            (Link::MetricsToOperator, Component::Operator),
            (Link::OperatorFromMetricsClient, Component::MetricsApiServerClient),
        ];
        Published {
            bundles: links.iter().map(|(l, _)| (*l, bundle.clone())).collect(),
            leaves: links.iter().map(|(l, c)| (*l, leaf(*c))).collect(),
        }
    };
    // The CA is due at 110 min and again about two hours later; the Secret goes at 5 h.
    let history = simulation::run(NOW, NOW + 7 * 3600, 10, 120, pass);
    let cas: BTreeSet<Vec<u8>> = history
        .iter()
        .flat_map(|(_, p)| parse_certs(p.bundles[&Link::ApiServerToWebhook].as_bytes()).unwrap())
        .map(|c| c.der)
        .collect();
    assert!(cas.len() >= 4, "{} CAs over the run", cas.len());
}
