#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const NOW: i64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn timing() -> Timing {
    Timing {
        validity: Duration::from_secs(365 * DAY),
        renew_before: Duration::from_secs(30 * DAY),
        ca_validity: Duration::from_secs(3650 * DAY),
    }
}

fn names() -> Vec<String> {
    dns_names(&["ebb-webhook".into()], "keda", "cluster.local")
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
}

#[test]
fn generated_ca_and_serving_certificate_chain_and_carry_the_names() {
    let ca = Ca::generate(NOW, timing().ca_validity).unwrap();
    assert!(ca.info.is_ca);
    assert_eq!(ca.info.not_after, NOW + 3650 * DAY as i64);
    // The stored form reads back to the same CA.
    let again = Ca::parse(ca.cert_pem.as_bytes(), ca.key_pem.as_bytes()).unwrap();
    assert_eq!(again.info, ca.info);

    let serving = ca.issue(&names(), NOW, timing().validity).unwrap();
    assert!(!serving.info.is_ca);
    assert!(serving.info.server_auth && serving.info.client_auth);
    assert!(serving.info.signed_by(&ca.info));
    assert!(!ca.info.signed_by(&serving.info));
    assert_eq!(serving.info.dns_names, names().into_iter().collect());
    let parsed = Serving::parse(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes()).unwrap();
    assert_eq!(parsed.info, serving.info);

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
    let serving = ca.issue(&names(), NOW, timing().validity).unwrap();
    assert!(
        Ca::parse(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes()).unwrap_err().contains("not a CA")
    );
    assert!(Serving::parse(b"garbage", serving.key_pem.as_bytes()).is_err());
    let err = Serving::parse(
        serving.cert_pem.as_bytes(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err();
    // The message never echoes key material.
    assert!(!err.contains("AAAA"), "{err}");
}

#[test]
fn ca_plan() {
    let t = timing();
    assert_eq!(plan_ca(None, NOW, &t), Err(Reason::Missing));
    assert!(matches!(plan_ca(Some(&Err("x".into())), NOW, &t), Err(Reason::Unparseable(_))));
    let ca = Ca::generate(NOW, t.ca_validity).unwrap();
    assert_eq!(plan_ca(Some(&Ok(ca.clone())), NOW, &t), Ok(()));
    let due = ca_renew_at(&ca.info, &t);
    assert_eq!(due, NOW + (3650 - 395) * DAY as i64);
    assert_eq!(plan_ca(Some(&Ok(ca.clone())), due - 1, &t), Ok(()));
    assert_eq!(
        plan_ca(Some(&Ok(ca.clone())), due, &t),
        Err(Reason::Expiring { not_after: ca.info.not_after })
    );
}

#[test]
fn serving_plan() {
    let t = timing();
    let ca = Ca::generate(NOW, t.ca_validity).unwrap();
    let serving = ca.issue(&names(), NOW, t.validity).unwrap();
    let ok = Ok(serving.clone());
    assert_eq!(plan_serving(None, &ca.info, &names(), NOW, &t), Err(Reason::Missing));
    assert_eq!(plan_serving(Some(&ok), &ca.info, &names(), NOW, &t), Ok(()));
    // Renewal: kept until renew-before is left, replaced from then on.
    let due = serving_renew_at(&serving.info, &t);
    assert_eq!(due, NOW + 335 * DAY as i64);
    assert_eq!(plan_serving(Some(&ok), &ca.info, &names(), due - 1, &t), Ok(()));
    assert!(matches!(plan_serving(Some(&ok), &ca.info, &names(), due, &t), Err(Reason::Expiring { .. })));
    // Another CA, other names.
    let other = Ca::generate(NOW, t.ca_validity).unwrap();
    assert_eq!(plan_serving(Some(&ok), &other.info, &names(), NOW, &t), Err(Reason::OtherIssuer));
    let more = dns_names(&["ebb-webhook".into(), "ebb-operator".into()], "keda", "cluster.local");
    assert_eq!(plan_serving(Some(&ok), &ca.info, &more, NOW, &t), Err(Reason::DnsNames));
    let broken = Err("bad".to_owned());
    assert!(matches!(plan_serving(Some(&broken), &ca.info, &names(), NOW, &t), Err(Reason::Unparseable(_))));
}

#[test]
fn bundle_keeps_valid_earlier_cas_and_prunes_expired_ones() {
    let old = Ca::generate(NOW - 100, Duration::from_secs(1000)).unwrap(); // until NOW + 900
    let new = Ca::generate(NOW, Duration::from_secs(10 * DAY)).unwrap();
    let serving = new.issue(&names(), NOW, Duration::from_secs(DAY)).unwrap();

    // First bundle: just the CA.
    let first = bundle(&old.info, b"", NOW);
    assert_eq!(parse_certs(first.as_bytes()).unwrap(), vec![old.info.clone()]);
    // Unchanged CA: same bundle (no rewrite).
    assert_eq!(bundle(&old.info, first.as_bytes(), NOW), first);
    // Rotation: new CA first, old one kept while valid; leaf certificates and junk are dropped.
    let previous = format!("{first}{}garbage\n", serving.cert_pem);
    let rotated = bundle(&new.info, previous.as_bytes(), NOW);
    assert_eq!(parse_certs(rotated.as_bytes()).unwrap(), vec![new.info.clone(), old.info.clone()]);
    assert_eq!(bundle(&new.info, rotated.as_bytes(), NOW), rotated);
    // Once the old CA has expired it is pruned.
    let pruned = bundle(&new.info, rotated.as_bytes(), NOW + 901);
    assert_eq!(parse_certs(pruned.as_bytes()).unwrap(), vec![new.info.clone()]);
}

#[test]
fn pem_round_trip() {
    let ca = Ca::generate(NOW, Duration::from_secs(DAY)).unwrap();
    let pem = pem_encode(&ca.info.der);
    assert!(pem.lines().all(|l| l.len() <= 64));
    assert_eq!(parse_certs(pem.as_bytes()).unwrap()[0].der, ca.info.der);
}
