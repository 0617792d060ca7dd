//! The committed TriggerAuthentication and ClusterTriggerAuthentication CRDs (deploy/crds) keep
//! every field KEDA's schema has: objects written as a KEDA user writes them (`filePath`,
//! `oauth2`, `podIdentity.externalID`) are applied with kubectl to upstream kube-apiserver and
//! read back with `kubectl get -o yaml` unchanged — nothing pruned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ebb_testbackends::kubernetes::Upstream;

fn kubectl(up: &Upstream, args: &[&str], stdin: Option<&str>) -> String {
    let out = match stdin {
        Some(text) => up.run_kubectl_with_input(args, text),
        None => up.run_kubectl(args),
    }
    .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        up.logs(20)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The spec both kinds are given, in the shape KEDA's documentation publishes.
const SPEC: &str = r"
  podIdentity:
    provider: aws
    roleArn: arn:aws:iam::123456789012:role/scaler
    externalID: tenant-a-external-id
  filePath:
    - parameter: apiKey
      path: credentials/api-key
  oauth2:
    type: clientCredentials
    clientId: my-client-id
    clientSecret:
      valueFrom:
        secretKeyRef:
          name: oauth-secret
          key: client-secret
    tokenUrl: https://oauth2-server.example/token
    scopes:
      - write
      - read
    tokenUrlParams:
      audience: aud
";

#[test]
fn keda_auth_fields_survive_kubectl_apply() {
    let up = Upstream::shared();
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    kubectl(up, &["apply", "--server-side", "-k", crds.to_str().unwrap()], None);
    for crd in ["triggerauthentications.keda.sh", "clustertriggerauthentications.keda.sh"] {
        kubectl(
            up,
            &["wait", "--for", "condition=Established", "--timeout=30s", &format!("crd/{crd}")],
            None,
        );
    }
    kubectl(up, &["create", "namespace", "auth-fields"], None);
    let want: serde_yaml::Value = serde_yaml::from_str(&SPEC.replace("\n  ", "\n")).unwrap();
    for (kind, namespaced) in [("TriggerAuthentication", true), ("ClusterTriggerAuthentication", false)] {
        let ns = if namespaced { "\n  namespace: auth-fields" } else { "" };
        let doc = format!(
            "apiVersion: keda.sh/v1alpha1\nkind: {kind}\nmetadata:\n  name: keda-fields{ns}\nspec:{SPEC}"
        );
        kubectl(up, &["apply", "-f", "-"], Some(&doc));
        let mut get = vec!["get", kind, "keda-fields", "-o", "yaml"];
        if namespaced {
            get.extend(["-n", "auth-fields"]);
        }
        let have: serde_yaml::Value = serde_yaml::from_str(&kubectl(up, &get, None)).unwrap();
        let spec = &have["spec"];
        for field in ["filePath", "oauth2"] {
            assert_eq!(spec[field], want[field], "{kind}: spec.{field} was not kept as written:\n{have:?}");
        }
        assert_eq!(
            spec["podIdentity"], want["podIdentity"],
            "{kind}: spec.podIdentity (externalID) was not kept as written:\n{have:?}"
        );
    }
}
