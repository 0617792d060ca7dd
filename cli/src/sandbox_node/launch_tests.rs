use super::*;
use serde_json::json;

struct Objects;

impl Lookup for Objects {
    fn value(&self, secret: bool, name: &str, key: &str) -> Option<String> {
        (secret && name == "creds" && key == "token").then(|| "t0k".to_owned())
    }
}

fn pod() -> PodRef<'static> {
    PodRef { namespace: "keda", name: "ebb-webhook-abcde", service_account: "ebb-webhook" }
}

fn spec() -> Value {
    json!({
        "serviceAccountName": "ebb-webhook",
        "containers": [{
            "name": "webhook",
            "command": ["/usr/local/bin/ebb-webhook"],
            "args": ["--admin-addr=0.0.0.0:8080", "--secure-addr", ":9443", "--tls-cert-file=/certs/tls.crt",
                     "--name=$(POD_NAME)", "--literal=$$(POD_NAME)", "--unknown=$(NOPE)"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "x", "optional": true}}},
                {"name": "TMP", "value": "/tmp/$(NS)"}
            ],
            "ports": [{"name": "admin", "containerPort": 8080}, {"name": "https", "containerPort": 9443}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "admin"}},
            "volumeMounts": [{"name": "certs", "mountPath": "/certs", "readOnly": true},
                             {"name": "tmp", "mountPath": "/tmp"}]
        }],
        "volumes": [
            {"name": "certs", "secret": {"secretName": "ebb-certs", "items": [{"key": "tls.crt", "path": "tls.crt"}]}},
            {"name": "tmp", "emptyDir": {}}
        ]
    })
}

fn alloc() -> impl FnMut() -> Result<SocketAddr, String> {
    let mut next = 40000;
    move || {
        next += 1;
        Ok(SocketAddr::from(([127, 0, 0, 1], next)))
    }
}

#[test]
fn a_pod_becomes_a_local_process() {
    let dir = Path::new("/run/sb/pod");
    let l = plan(&spec(), &pod(), dir, &Objects, &mut alloc()).unwrap();
    assert_eq!(l.program, "ebb-webhook");
    assert_eq!(
        l.args,
        [
            "--admin-addr=127.0.0.1:40001",
            "--secure-addr",
            "127.0.0.1:40002",
            "--tls-cert-file=/run/sb/pod/volumes/certs/tls.crt",
            "--name=ebb-webhook-abcde",
            "--literal=$(POD_NAME)",
            "--unknown=$(NOPE)"
        ]
    );
    let env: BTreeMap<_, _> = l.env.iter().cloned().collect();
    assert_eq!(env["POD_NAME"], "ebb-webhook-abcde");
    assert_eq!(env["TOKEN"], "t0k");
    assert_eq!(env["TMP"], "/run/sb/pod/volumes/tmp/keda");
    assert!(!env.contains_key("GONE"));
    assert_eq!(l.readiness, Some(("/readyz".to_owned(), SocketAddr::from(([127, 0, 0, 1], 40001)))));
    assert_eq!(l.port_names["https"], 9443);
    assert_eq!(
        l.volumes[0].source,
        Source::Secret {
            name: "ebb-certs".into(),
            items: vec![("tls.crt".into(), "tls.crt".into())],
            optional: false
        }
    );
    assert_eq!(l.link, None);
}

#[test]
fn what_the_sandbox_cannot_run_is_named() {
    let mut s = spec();
    s["containers"][0]["args"] = json!(["--secure-addr=0.0.0.0:9443"]);
    let e = plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap_err();
    assert!(e.contains("containerPort 8080 is not set"), "{e}");
    let mut s = spec();
    s["volumes"][1] = json!({"name": "tmp", "hostPath": {"path": "/var"}});
    let e = plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap_err();
    assert!(e.contains("volume tmp: only secret, configMap and emptyDir"), "{e}");
    let mut s = spec();
    s["containers"][0]["env"][2]["valueFrom"]["secretKeyRef"]["name"] = json!("missing");
    let e = plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap_err();
    assert_eq!(e, "env TOKEN: waiting for key \"token\" of Secret keda/missing");
    let mut s = spec();
    s["containers"][0]["command"] = json!(["nginx"]);
    assert!(plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).is_err());
}

#[test]
fn the_metrics_apiserver_links_to_the_operator_service() {
    let mut s = spec();
    s["containers"][0]["command"] = json!(["ebb-metrics-apiserver"]);
    let l = plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap();
    let want = ServiceLink {
        namespace: "keda".into(),
        service: "ebb-operator".into(),
        port: 9666,
        env: "EBB_OPERATOR_CONNECT_TO",
    };
    assert_eq!(l.link, Some(want.clone()));
    s["containers"][0]["args"]
        .as_array_mut()
        .unwrap()
        .push(json!("--operator-url=https://op.other.svc.cluster.local:7000"));
    let l = plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap();
    assert_eq!(
        l.link,
        Some(ServiceLink { namespace: "other".into(), service: "op".into(), port: 7000, ..want })
    );
    s["containers"][0]["args"].as_array_mut().unwrap().push(json!("--operator-url=https://example.com:7000"));
    assert_eq!(plan(&s, &pod(), Path::new("/p"), &Objects, &mut alloc()).unwrap().link, None);
}

#[test]
fn expansion_and_rewrites() {
    let vars = BTreeMap::from([("A", "1")]);
    assert_eq!(expand("x$(A)y$(B)$$(A)$", &vars), "x1y$(B)$(A)$");
    let mounts = vec![("/certs".to_owned(), PathBuf::from("/l/c"))];
    let ports = BTreeMap::from([(8080, SocketAddr::from(([127, 0, 0, 1], 1)))]);
    assert_eq!(rewrite_value("/certs/tls.crt", &mounts, &ports), "/l/c/tls.crt");
    assert_eq!(rewrite_value("/certsX/a", &mounts, &ports), "/certsX/a");
    assert_eq!(rewrite_value("0.0.0.0:8080", &mounts, &ports), "127.0.0.1:1");
    assert_eq!(rewrite_value("10.0.0.1:8080", &mounts, &ports), "10.0.0.1:8080");
    assert_eq!(rewrite_value("0.0.0.0:8081", &mounts, &ports), "0.0.0.0:8081");
}
