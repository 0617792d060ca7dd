//! End to end on the local control plane: the operator's certificate management
//! (`--manage-certificates`). It creates the CA Secret and one Secret per component with the
//! documented keys, each certificate chaining to the bundle with its own names and one usage,
//! injects the bundle into the APIService and every webhook of the ValidatingWebhookConfiguration
//! (which the control plane then really verifies when proxying to the aggregated API), puts a
//! bundle back when it is overwritten, replaces corrupted or deleted Secrets, rotates a
//! short-lived certificate before it expires while the bundle keeps verifying it, lets two
//! managers run side by side without rewriting anything, and — through the whole program — the
//! internal mTLS service starts once the kubelet-projected files appear.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ebb_operator::certs::{CertConfig, CertManager, pki};
use ebb_plumbing::tls::{ClientAuth, HttpsServer, ServerFiles};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use support::*;

const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
const WEBHOOKS: &str = "keda-admission";

/// The deploy/ manifest at `path`, as JSON, with every `namespace: keda` moved to `ns`.
fn manifest(path: &str, ns: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text =
        std::fs::read_to_string(&file).unwrap().replace("namespace: keda", &format!("namespace: {ns}"));
    serde_yaml::from_str(&text).unwrap()
}

/// The sandbox, its client, and the APIService and webhook configuration of deploy/ (empty
/// caBundle) pointing at Services in the client's namespace.
async fn setup() -> (Cluster, kube::Client, String) {
    let (cluster, client) = start_sandbox().await;
    let ns = client.default_namespace().to_owned();
    let sb = cluster.sandbox.as_ref().expect("these tests need the local control plane");
    sb.create(&manifest("deploy/base/metrics-apiserver/apiservice.yaml", &ns)).unwrap();
    sb.create(&manifest("deploy/base/webhook/validatingwebhookconfiguration.yaml", &ns)).unwrap();
    (cluster, client, ns)
}

/// The configuration `flags` give (after `--manage-certificates`), resyncing every `resync`.
fn config(ns: &str, flags: &[&str], resync: Duration) -> CertConfig {
    let argv = ["ebb-operator", "--manage-certificates"].iter().chain(flags).copied();
    let args = <ebb_operator::Args as clap::Parser>::try_parse_from(argv).unwrap();
    assert!(args.certificates.manage_certificates);
    CertConfig {
        resync,
        max_backoff: Duration::from_secs(1),
        ..CertConfig::from_args(&args.certificates, ns).unwrap()
    }
}

fn spawn_manager(client: &kube::Client, cfg: CertConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(CertManager::new(client.clone(), cfg).run(std::future::pending()))
}

async fn secret(client: &kube::Client, name: &str) -> Option<Secret> {
    Api::<Secret>::default_namespaced(client.clone()).get_opt(name).await.unwrap()
}

fn data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data.clone().unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()
}

fn rv<K: kube::Resource>(o: &K) -> String {
    o.meta().resource_version.clone().unwrap_or_default()
}

/// caBundles of the APIService and of each webhook (None where unset or empty; the
/// APIService's also where insecureSkipTLSVerify is set).
async fn injected(client: &kube::Client) -> Vec<Option<Vec<u8>>> {
    let svc = Api::<APIService>::all(client.clone()).get(APISERVICE).await.unwrap();
    let spec = svc.spec.unwrap();
    let spec_bundle = spec.ca_bundle.filter(|_| spec.insecure_skip_tls_verify != Some(true));
    let vwc = Api::<ValidatingWebhookConfiguration>::all(client.clone()).get(WEBHOOKS).await.unwrap();
    let mut out = vec![spec_bundle.map(|b| b.0)];
    out.extend(vwc.webhooks.unwrap_or_default().into_iter().map(|w| w.client_config.ca_bundle.map(|b| b.0)));
    out.into_iter().map(|b| b.filter(|b| !b.is_empty())).collect()
}

/// Whether every injection target carries `bundle`.
async fn all_carry(client: &kube::Client, bundle: &[u8]) -> bool {
    let got = injected(client).await;
    got.len() == 4 && got.iter().all(|b| b.as_deref() == Some(bundle))
}

fn ders(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().unwrap()
}

/// The leaf Secrets, by component: (Secret, Service or None for the client certificate).
const LEAVES: [(&str, Option<&str>); 4] = [
    ("ebb-operator-tls", Some("ebb-operator")),
    ("ebb-webhook-tls", Some("ebb-webhook")),
    ("ebb-metrics-apiserver-tls", Some("ebb-metrics-apiserver")),
    ("ebb-metrics-apiserver-client-tls", None),
];

/// Verifies `cert_pem` against `bundle_pem` as rustls (webpki) does: as a server certificate for
/// `host`, or as a client certificate when `host` is None. Errors are rustls's.
fn verify_as(cert_pem: &[u8], bundle_pem: &[u8], host: Option<&str>) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in ders(bundle_pem) {
        roots.add(c).unwrap();
    }
    let roots = Arc::new(roots);
    let leaf = ders(cert_pem).remove(0);
    match host {
        Some(host) => {
            let server =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider).build().unwrap();
            server
                .verify_server_cert(
                    &leaf,
                    &[],
                    &ServerName::try_from(host.to_owned()).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .map(|_| ())
        }
        None => {
            let client =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap();
            client.verify_client_cert(&leaf, &[], UnixTime::now()).map(|_| ())
        }
    }
}

/// Verifies a server certificate for `host` (and that it is not accepted as a client's).
fn verify(cert_pem: &[u8], bundle_pem: &[u8], host: &str) -> Result<(), rustls::Error> {
    assert!(verify_as(cert_pem, bundle_pem, None).is_err(), "a serving certificate is also a client's");
    verify_as(cert_pem, bundle_pem, Some(host))
}

/// Serial of the first certificate of a PEM text.
fn serial(pem: &[u8]) -> String {
    pki::parse_certs(pem).unwrap()[0].serial.clone()
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ebb-certs-{what}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Writes the serving Secret's keys as files into `dir`, as the kubelet projects them.
fn project(s: &Secret, dir: &Path) {
    for (k, v) in data(s) {
        let tmp = dir.join(format!(".{k}.tmp"));
        std::fs::write(&tmp, v).unwrap();
        std::fs::rename(&tmp, dir.join(k)).unwrap();
    }
}

fn client_with(
    bundle: &[u8],
    identity: Option<&[u8]>,
    host: &str,
    addr: std::net::SocketAddr,
) -> reqwest::Client {
    let mut b = reqwest::Client::builder().tls_built_in_root_certs(false).resolve(host, addr);
    for c in reqwest::Certificate::from_pem_bundle(bundle).unwrap() {
        b = b.add_root_certificate(c);
    }
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pem(id).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn issues_certificates_injects_the_bundle_and_serves_tls() {
    let (cluster, client, ns) = setup().await;
    let cfg = config(&ns, &[], Duration::from_secs(10));
    let mut manager = CertManager::new(client.clone(), cfg.clone());
    let pass = manager.pass().await.unwrap();

    // The CA Secret: Opaque, the CA and its key only.
    let ca = secret(&client, "ebb-ca").await.expect("CA Secret created");
    assert_eq!(ca.type_.as_deref(), Some("Opaque"));
    let ca_data = data(&ca);
    assert_eq!(ca_data.keys().collect::<Vec<_>>(), ["ca.crt", "ca.key"]);
    // One Secret per component: kubernetes.io/tls, certificate, key and bundle, no CA key; each
    // certificate with its own names and one usage, chaining to the bundle.
    let mut leaves = BTreeMap::new();
    for (name, service) in LEAVES {
        let tls = secret(&client, name).await.unwrap_or_else(|| panic!("{name} created"));
        assert_eq!(tls.type_.as_deref(), Some("kubernetes.io/tls"));
        let d = data(&tls);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["ca.crt", "tls.crt", "tls.key"], "{name}");
        assert_eq!(d["ca.crt"], ca_data["ca.crt"], "the bundle is the CA");
        assert!(!String::from_utf8_lossy(&d["ca.crt"]).contains("PRIVATE KEY"));
        assert_eq!(pass.bundle.as_bytes(), d["ca.crt"]);
        let leaf = &pki::parse_certs(&d["tls.crt"]).unwrap()[0];
        assert!(!leaf.is_ca);
        assert!(leaf.not_after - leaf.not_before >= 365 * 86400);
        match service {
            Some(s) => {
                let want: Vec<String> = vec![
                    s.to_owned(),
                    format!("{s}.{ns}"),
                    format!("{s}.{ns}.svc"),
                    format!("{s}.{ns}.svc.cluster.local"),
                ];
                assert_eq!(leaf.dns_names, want.iter().cloned().collect(), "{name}");
                assert!(leaf.server_auth && !leaf.client_auth, "{name}");
                for host in &want {
                    verify(&d["tls.crt"], &d["ca.crt"], host).unwrap();
                }
                assert!(verify(&d["tls.crt"], &d["ca.crt"], "elsewhere.example").is_err());
            }
            None => {
                assert_eq!(leaf.common_name.as_deref(), Some("ebb-metrics-apiserver"));
                assert!(leaf.client_auth && !leaf.server_auth, "{name}");
                verify_as(&d["tls.crt"], &d["ca.crt"], None).unwrap();
                assert!(verify_as(&d["tls.crt"], &d["ca.crt"], Some("ebb-metrics-apiserver")).is_err());
            }
        }
        leaves.insert(name, (tls.clone(), d));
    }
    let serials: std::collections::BTreeSet<&String> = pass.serials.values().collect();
    assert_eq!(serials.len(), 4, "four distinct certificates");
    let (tls, d) = leaves["ebb-operator-tls"].clone();
    let client_d = leaves["ebb-metrics-apiserver-client-tls"].1.clone();
    let other = pki::Ca::generate(unix_now(), Duration::from_secs(3600)).unwrap();
    assert!(verify(&d["tls.crt"], other.cert_pem.as_bytes(), &format!("ebb-operator.{ns}.svc")).is_err());

    // Injected everywhere; a second pass writes nothing.
    assert!(all_carry(&client, &d["ca.crt"]).await, "{:?}", injected(&client).await);
    let svc_rv = rv(&Api::<APIService>::all(client.clone()).get(APISERVICE).await.unwrap());
    let vwc_rv = rv(&Api::<ValidatingWebhookConfiguration>::all(client.clone()).get(WEBHOOKS).await.unwrap());
    let again = manager.pass().await.unwrap();
    assert_eq!(again.serials, pass.serials);
    assert_eq!(rv(&secret(&client, "ebb-ca").await.unwrap()), rv(&ca));
    for (name, (tls, _)) in &leaves {
        assert_eq!(rv(&secret(&client, name).await.unwrap()), rv(tls), "{name}");
    }
    assert_eq!(rv(&Api::<APIService>::all(client.clone()).get(APISERVICE).await.unwrap()), svc_rv);
    assert_eq!(
        rv(&Api::<ValidatingWebhookConfiguration>::all(client.clone()).get(WEBHOOKS).await.unwrap()),
        vwc_rv
    );

    // A real mutual-TLS handshake with the files the kubelet would project.
    let dir = temp_dir("mtls");
    project(&tls, &dir);
    let files = |auth| ServerFiles {
        cert_file: dir.join("tls.crt"),
        key_file: dir.join("tls.key"),
        client_auth: auth,
    };
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" })).route(
        "/apis/external.metrics.k8s.io/v1beta1",
        axum::routing::get(|| async {
            axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "external.metrics.k8s.io/v1beta1", "resources": [], "marker": "ebb-served"}))
        }),
    );
    let mtls = HttpsServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        files(ClientAuth::RequiredNamed {
            ca: dir.join("ca.crt"),
            names: vec!["ebb-metrics-apiserver".into()],
        }),
        "mtls",
    )
    .await
    .unwrap();
    let mtls_addr = mtls.local_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    tokio::spawn(mtls.serve(app.clone(), stop));
    let host = format!("ebb-operator.{ns}.svc");
    let identity = [client_d["tls.crt"].clone(), client_d["tls.key"].clone()].concat();
    let answer = client_with(&d["ca.crt"], Some(&identity), &host, mtls_addr)
        .get(format!("https://{host}:{}/hello", mtls_addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.text().await.unwrap(), "hello");
    // Without the certificate as client identity the server refuses the connection.
    let refused = client_with(&d["ca.crt"], None, &host, mtls_addr)
        .get(format!("https://{host}:{}/hello", mtls_addr.port()))
        .send()
        .await;
    assert!(refused.is_err());
    // Nor does it admit another component's certificate (the webhook's serving certificate is
    // not even a client certificate).
    let webhook_d = &leaves["ebb-webhook-tls"].1;
    let webhook_id = [webhook_d["tls.crt"].clone(), webhook_d["tls.key"].clone()].concat();
    let refused = client_with(&d["ca.crt"], Some(&webhook_id), &host, mtls_addr)
        .get(format!("https://{host}:{}/hello", mtls_addr.port()))
        .send()
        .await;
    assert!(refused.is_err());

    // The control plane itself trusts the injected bundle when proxying to the aggregated API,
    // served with the metrics API server's own certificate.
    let metrics_dir = temp_dir("aggregated");
    project(&leaves["ebb-metrics-apiserver-tls"].0, &metrics_dir);
    let plain_files = ServerFiles {
        cert_file: metrics_dir.join("tls.crt"),
        key_file: metrics_dir.join("tls.key"),
        client_auth: ClientAuth::None,
    };
    let plain = HttpsServer::bind("127.0.0.1:0".parse().unwrap(), plain_files, "aggregated").await.unwrap();
    cluster.sandbox.as_ref().unwrap().map_service(&ns, "ebb-metrics-apiserver", plain.local_addr());
    tokio::spawn(plain.serve(app, std::future::pending()));
    let req = http::Request::get("/apis/external.metrics.k8s.io/v1beta1").body(Vec::new()).unwrap();
    let body = client.request_text(req).await.unwrap();
    assert!(body.contains("ebb-served"), "{body}");

    let _ = stop_tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&metrics_dir);
    cluster.stop().await;
}

#[tokio::test]
async fn puts_back_overwritten_bundles_and_replaces_broken_secrets_without_fighting() {
    let (cluster, client, ns) = setup().await;
    let cfg = config(&ns, &[], Duration::from_millis(300));
    let managers = [spawn_manager(&client, cfg.clone()), spawn_manager(&client, cfg.clone())];
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());

    let mut bundle = Vec::new();
    wait_for("certificates issued and injected", Duration::from_secs(20), async || {
        let Some(s) = secret(&client, "ebb-webhook-tls").await else { return false };
        bundle = data(&s)["ca.crt"].clone();
        all_carry(&client, &bundle).await
    })
    .await;

    // Two managers side by side: nothing is rewritten once settled.
    let rvs = async || {
        (
            rv(&secret(&client, "ebb-ca").await.unwrap()),
            rv(&secret(&client, "ebb-webhook-tls").await.unwrap()),
            rv(&Api::<APIService>::all(client.clone()).get(APISERVICE).await.unwrap()),
            rv(&Api::<ValidatingWebhookConfiguration>::all(client.clone()).get(WEBHOOKS).await.unwrap()),
        )
    };
    let settled = rvs().await;
    holds_for("no rewrites by two managers", Duration::from_secs(3), async || rvs().await == settled).await;

    // Someone applies the manifests again: empty caBundles, insecureSkipTLSVerify.
    let pp = PatchParams::default();
    Api::<APIService>::all(client.clone())
        .patch(
            APISERVICE,
            &pp,
            &Patch::Merge(json!({"spec": {"caBundle": null, "insecureSkipTLSVerify": true}})),
        )
        .await
        .unwrap();
    let vwcs = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let mut vwc = vwcs.get(WEBHOOKS).await.unwrap();
    for w in vwc.webhooks.as_mut().unwrap() {
        w.client_config.ca_bundle = Some(ByteString(Vec::new()));
    }
    vwcs.replace(WEBHOOKS, &PostParams::default(), &vwc).await.unwrap();
    assert!(!all_carry(&client, &bundle).await);
    wait_for("bundles injected again", Duration::from_secs(10), async || all_carry(&client, &bundle).await)
        .await;

    // A corrupted serving Secret is replaced under the same CA.
    let before = secret(&client, "ebb-webhook-tls").await.unwrap();
    let old_serial = serial(&data(&before)["tls.crt"]);
    secrets
        .patch("ebb-webhook-tls", &pp, &Patch::Merge(json!({"data": {"tls.crt": "Z2FyYmFnZQ=="}})))
        .await
        .unwrap();
    wait_for("the corrupted certificate replaced", Duration::from_secs(10), async || {
        let d = data(&secret(&client, "ebb-webhook-tls").await.unwrap());
        pki::parse_certs(&d["tls.crt"]).is_ok_and(|c| !c.is_empty() && c[0].serial != old_serial)
    })
    .await;
    let d = data(&secret(&client, "ebb-webhook-tls").await.unwrap());
    verify(&d["tls.crt"], &bundle, &format!("ebb-webhook.{ns}.svc")).unwrap();
    assert_eq!(d["ca.crt"], bundle);

    // A deleted serving Secret comes back.
    secrets.delete("ebb-webhook-tls", &DeleteParams::default()).await.unwrap();
    wait_for("the serving Secret recreated", Duration::from_secs(10), async || {
        secret(&client, "ebb-webhook-tls").await.is_some()
    })
    .await;

    // A CA whose key no longer matches is replaced; the old CA stays in the bundle while valid,
    // and the new bundle is injected.
    let old_ca = data(&secret(&client, "ebb-ca").await.unwrap())["ca.crt"].clone();
    let stray = pki::Ca::generate(unix_now(), Duration::from_secs(3600)).unwrap();
    let stray_key = json!(ByteString(stray.key_pem.into_bytes()));
    secrets.patch("ebb-ca", &pp, &Patch::Merge(json!({"data": {"ca.key": stray_key}}))).await.unwrap();
    let mut new_bundle = Vec::new();
    wait_for("a new CA, the old one kept in the bundle", Duration::from_secs(10), async || {
        let ca = data(&secret(&client, "ebb-ca").await.unwrap())["ca.crt"].clone();
        let d = data(&secret(&client, "ebb-webhook-tls").await.unwrap());
        let cas: Vec<_> = pki::parse_certs(&d["ca.crt"]).unwrap().into_iter().map(|c| c.der).collect();
        new_bundle = d["ca.crt"].clone();
        ca != old_ca && cas == [ders(&ca)[0].to_vec(), ders(&old_ca)[0].to_vec()]
    })
    .await;
    let d = data(&secret(&client, "ebb-webhook-tls").await.unwrap());
    verify(&d["tls.crt"], &new_bundle, &format!("ebb-webhook.{ns}.svc")).unwrap();
    // The old certificate still verifies against the new bundle, so servers not yet reloaded
    // keep being trusted.
    verify(&data(&before)["tls.crt"], &new_bundle, &format!("ebb-webhook.{ns}.svc")).unwrap();
    wait_for("the new bundle injected", Duration::from_secs(10), async || {
        all_carry(&client, &new_bundle).await
    })
    .await;

    for m in managers {
        m.abort();
    }
    cluster.stop().await;
}

#[tokio::test]
async fn rotates_a_short_lived_certificate_before_expiry_with_two_managers() {
    let (cluster, client, ns) = setup().await;
    let flags = [
        "--certificate-validity=6s",
        "--certificate-renew-before=4s",
        "--ca-validity=120s",
        "--ca-rotation-overlap=2s",
    ];
    let cfg = config(&ns, &flags, Duration::from_secs(5));
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    // Every version of the serving Secret, as written.
    let wp = kube::api::WatchParams::default().fields("metadata.name=ebb-metrics-apiserver-tls");
    let mut stream = secrets.watch(&wp, "0").await.unwrap().boxed();
    let managers = [spawn_manager(&client, cfg.clone()), spawn_manager(&client, cfg)];

    let mut versions: Vec<(String, String, Vec<u8>, Vec<u8>)> = Vec::new();
    let window = tokio::time::sleep(Duration::from_secs(11));
    tokio::pin!(window);
    loop {
        tokio::select! {
            () = &mut window => break,
            ev = stream.next() => match ev.unwrap().unwrap() {
                kube::api::WatchEvent::Added(s) | kube::api::WatchEvent::Modified(s) => {
                    let d = data(&s);
                    // Verified as it arrives: each is valid for only a few seconds.
                    verify(&d["tls.crt"], &d["ca.crt"], &format!("ebb-metrics-apiserver.{ns}.svc")).unwrap();
                    if let Some(first) = versions.first() {
                        verify(&d["tls.crt"], &first.3, &format!("ebb-metrics-apiserver.{ns}.svc")).unwrap();
                    }
                    versions.push((rv(&s), serial(&d["tls.crt"]), d["tls.crt"].clone(), d["ca.crt"].clone()));
                }
                kube::api::WatchEvent::Bookmark(_) => {}
                other => panic!("unexpected watch event {other:?}"),
            },
        }
    }
    for m in managers {
        m.abort();
    }
    // Issued at 0 s, due at 2 s: about five certificates in 11 s — and every write is a new
    // certificate (no two managers rewriting each other's work).
    let serials: Vec<&String> = versions.iter().map(|v| &v.1).collect();
    let mut distinct = serials.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), versions.len(), "a write without a new certificate: {serials:?}");
    assert!((4..=8).contains(&versions.len()), "{} versions in 11 s: {serials:?}", versions.len());
    // One CA throughout: each certificate verified (above, on arrival) against the bundle
    // published with it and against the first bundle (what a client that has not reloaded holds).
    let first_bundle = versions[0].3.clone();
    assert!(versions.iter().all(|v| v.3 == first_bundle));
    let last = pki::parse_certs(&versions.last().unwrap().2).unwrap().remove(0);
    assert!(last.not_after - last.not_before <= 6 + 61, "validity of the short-lived certificate");
    cluster.stop().await;
}

#[tokio::test]
async fn the_operator_serves_its_internal_service_once_the_projected_files_appear() {
    let (cluster, client, ns) = setup().await;
    let dir = temp_dir("operator");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let file = |k: &str| dir.join(k).display().to_string();
    let (crt, key, ca) = (file("tls.crt"), file("tls.key"), file("ca.crt"));
    let flags = [
        "--manage-certificates",
        "--leader-elect=false",
        "--internal-addr",
        &addr,
        "--internal-cert-file",
        &crt,
        "--internal-key-file",
        &key,
        "--internal-client-ca-file",
        &ca,
    ];
    let operator = start_operator(&client, &flags).await;

    wait_for("the Secrets", Duration::from_secs(10), async || {
        secret(&client, "ebb-operator-tls").await.is_some()
            && secret(&client, "ebb-metrics-apiserver-client-tls").await.is_some()
    })
    .await;
    let tls = secret(&client, "ebb-operator-tls").await.unwrap();
    let d = data(&tls);
    let host = format!("ebb-operator.{ns}.svc");
    let client_d = data(&secret(&client, "ebb-metrics-apiserver-client-tls").await.unwrap());
    let identity = [client_d["tls.crt"].clone(), client_d["tls.key"].clone()].concat();
    let http = client_with(&d["ca.crt"], Some(&identity), &host, addr.parse().unwrap());
    let url = format!("https://{host}:{port}/healthz");
    // No files yet: nothing listens, and the rest of the operator runs.
    assert!(http.get(&url).send().await.is_err());
    wait_for("the expiry metric", Duration::from_secs(10), async || {
        operator
            .metrics()
            .await
            .unwrap()
            .contains("ebb_certificate_expiry_timestamp_seconds{certificate=\"operator\"}")
    })
    .await;
    wait_for("the CertificateIssued event", Duration::from_secs(10), async || {
        count_events(&client, "ebb-operator-tls", "CertificateIssued").await >= 1
    })
    .await;

    // The kubelet projects the Secret: the internal service comes up without a restart.
    project(&tls, &dir);
    wait_for(
        "the internal service over mutual TLS",
        Duration::from_secs(10),
        async || matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()),
    )
    .await;
    assert!(all_carry(&client, &d["ca.crt"]).await);

    operator.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    cluster.stop().await;
}
