//! A worst-case model of how certificate changes reach the programs, for the rotation tests: a
//! pass publishes a bundle and the leaf certificates; every consumer (the API server reading a
//! caBundle, a program reading its mounted files) may lag by up to `lag`, each independently.
//! At every instant, every leaf a server may still present must verify — with rustls's own
//! webpki verifier, the oracle — against every bundle its client may still hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Who presents a leaf, and who checks it against which bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// The API server (APIService caBundle) → the metrics API server's serving certificate.
    ApiServerToMetrics,
    /// The API server (webhook caBundle) → the webhook's serving certificate.
    ApiServerToWebhook,
    /// The metrics API server (its ca.crt) → the operator's internal serving certificate.
    MetricsToOperator,
    /// The operator (its client CA file) → the metrics API server's client certificate.
    OperatorFromMetricsClient,
}

pub const LINKS: [Link; 4] = [
    Link::ApiServerToMetrics,
    Link::ApiServerToWebhook,
    Link::MetricsToOperator,
    Link::OperatorFromMetricsClient,
];

/// What one pass published: per link, the bundle the client reads and the leaf (PEM) the
/// server presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub bundles: BTreeMap<Link, String>,
    pub leaves: BTreeMap<Link, String>,
}

fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap()
}

/// The X.509 chain rule as rustls applies it at `at` (Unix seconds).
pub fn verifies(link: Link, leaf_pem: &str, bundle_pem: &str, at: i64) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in ders(bundle_pem) {
        roots.add(c)?;
    }
    let roots = Arc::new(roots);
    let leaf = ders(leaf_pem).remove(0);
    let when = UnixTime::since_unix_epoch(std::time::Duration::from_secs(u64::try_from(at).unwrap()));
    let host = match link {
        Link::ApiServerToMetrics => "ebb-metrics-apiserver.keda.svc",
        Link::ApiServerToWebhook => "ebb-webhook.keda.svc",
        Link::MetricsToOperator => "ebb-operator.keda.svc",
        Link::OperatorFromMetricsClient => {
            let v =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap();
            return v.verify_client_cert(&leaf, &[], when).map(|_| ());
        }
    };
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider).build().unwrap();
    v.verify_server_cert(&leaf, &[], &ServerName::try_from(host.to_owned()).unwrap(), &[], when).map(|_| ())
}

/// Runs `pass` every `every` seconds from `start` to `end` and checks every instant (one per
/// pass) against every version a consumer lagging up to `lag` may hold. Returns the number of
/// distinct versions published; panics naming the first failure.
pub fn run(
    start: i64,
    end: i64,
    every: i64,
    lag: i64,
    mut pass: impl FnMut(i64) -> Published,
) -> Vec<(i64, Published)> {
    let mut history: Vec<(i64, Published)> = Vec::new();
    let mut t = start;
    while t <= end {
        let published = pass(t);
        if history.last().is_none_or(|(_, p)| *p != published) {
            history.push((t, published));
        }
        // What a consumer may hold at t: any version written in (t - lag, t], and the last one
        // written at or before t - lag.
        let first = history.iter().rposition(|(at, _)| *at <= t - lag).unwrap_or(0);
        let window = &history[first..];
        for link in LINKS {
            for (leaf_at, server) in window {
                for (bundle_at, client) in window {
                    let (leaf, bundle) = (&server.leaves[&link], &client.bundles[&link]);
                    if let Err(e) = verifies(link, leaf, bundle, t) {
                        panic!(
                            "at t={} s: {link:?}: the leaf published at {} s does not verify against \
                             the bundle published at {} s: {e}",
                            t - start,
                            leaf_at - start,
                            bundle_at - start
                        );
                    }
                }
            }
        }
        t += every;
    }
    history
}
