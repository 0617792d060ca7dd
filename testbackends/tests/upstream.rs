//! The upstream control plane starts from the built binaries, serves the pinned release, and
//! runs its controllers (a Deployment gets its ReplicaSet and Pods from kube-controller-manager).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ebb_testbackends::kubernetes::{Options, Upstream, versions};

fn kubectl(up: &Upstream, args: &[&str]) -> String {
    let out = up.run_kubectl(args).unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        up.logs(20)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn serves_the_pinned_release_and_runs_its_controllers() {
    let up = Upstream::start(&Options::default()).unwrap();
    let version: serde_json::Value = serde_json::from_str(&kubectl(&up, &["version", "-o", "json"])).unwrap();
    println!("kubectl version: {}", version["serverVersion"]);
    assert_eq!(version["serverVersion"]["gitVersion"], versions().0.as_str());
    assert_eq!(version["clientVersion"]["gitVersion"], versions().0.as_str());

    // The aggregator's front-proxy CA is published where aggregated API servers read it.
    let auth =
        kubectl(&up, &["get", "cm", "-n", "kube-system", "extension-apiserver-authentication", "-o", "json"]);
    assert!(auth.contains("requestheader-client-ca-file"), "{auth}");

    kubectl(&up, &["create", "deployment", "web", "--image=x", "--replicas=2"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = kubectl(&up, &["get", "pods", "-l", "app=web", "-o", "name"]);
        if pods.lines().count() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 2 Pods from the ReplicaSet controller: {pods:?}\n{}",
            up.logs(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Service ClusterIPs come from the loopback range.
    kubectl(&up, &["create", "service", "clusterip", "web", "--tcp=443:8443"]);
    let ip = kubectl(&up, &["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("127.0.100."), "{ip}");
}
