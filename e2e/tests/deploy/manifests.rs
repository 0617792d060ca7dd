//! Rendering, schema validation (kubernetes-validate) and the references between the rendered
//! objects of every overlay.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{all_renderings, deploy, kn, render_overlay, repo, run, selects, selects_at_run_time, temp_dir};

/// Kubernetes versions the manifests are validated for: the oldest supported and the one the
/// workspace's API types follow.
const VERSIONS: [&str; 2] = ["1.30.0", "1.33.0"];

/// API groups whose kinds come from other projects' CRDs: kubernetes-validate has no schema for
/// them, so they are checked here by reference instead ([`cert_manager_references`],
/// [`service_monitor_selects_the_admin_ports`]).
const CRD_BACKED_GROUPS: [&str; 2] = ["cert-manager.io/", "monitoring.coreos.com/"];

fn crd_backed(o: &Value) -> bool {
    let api = o["apiVersion"].as_str().unwrap_or("");
    CRD_BACKED_GROUPS.iter().any(|g| api.starts_with(g))
}

/// The venv's kubernetes-validate, or the one on PATH.
fn validator() -> PathBuf {
    let venv = std::env::var("EBB_TEST_VENV").unwrap_or_else(|_| "/var/tmp/ebb-test-venv".into());
    let in_venv = PathBuf::from(venv).join("bin/kubernetes-validate");
    if in_venv.exists() {
        return in_venv;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.exists());
    on_path.expect("kubernetes-validate is missing: run `bash scripts/backends/kubernetes-validate.sh`")
}

/// Runs kubernetes-validate --strict on `yaml` for every version of [`VERSIONS`]: (exit status
/// success, output).
fn validate(yaml: &str) -> (bool, String) {
    let dir = temp_dir("validate");
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut args = vec!["--strict"];
    for v in VERSIONS {
        args.extend(["-k", v]);
    }
    args.push(file.to_str().unwrap());
    let (ok, out, err) = run(validator().to_str().unwrap(), &args, None, &[]);
    std::fs::remove_dir_all(&dir).unwrap();
    (ok, format!("{out}{err}"))
}

#[test]
fn every_overlay_renders_and_passes_kubernetes_validate() {
    for r in all_renderings() {
        assert!(r.objects.len() > 20, "{}: only {} objects rendered", r.name, r.objects.len());
        let (ok, out) = validate(&r.yaml);
        assert!(
            ok && !out.contains("ERROR") && !out.contains("FATAL"),
            "{}: kubernetes-validate failed:\n{out}",
            r.name
        );
        let mut skipped = Vec::new();
        for o in &r.objects {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap().to_lowercase(),
                o["metadata"]["name"].as_str().unwrap()
            );
            if crd_backed(o) {
                skipped.push(key);
                continue;
            }
            for v in VERSIONS {
                let minor = &v[..4];
                let line = format!("passed for resource {key} against version {minor}");
                assert!(out.contains(&line), "{}: {key} was not validated for {minor}:\n{out}", r.name);
            }
        }
        println!(
            "{}: {} objects validated for {VERSIONS:?}; CRD-backed, checked by reference: {skipped:?}",
            r.name,
            r.objects.len() - skipped.len()
        );
    }
}

#[test]
fn kubernetes_validate_rejects_what_kubernetes_would() {
    let r = render_overlay("default");
    let dep = r.get("Deployment", "ebb-operator").unwrap();
    let cases = [
        ("unknown field", json!({"/spec/template/spec/containers/0/imagePullPolicyy": "Always"})),
        ("wrong type", json!({"/spec/replicas": "two"})),
        ("missing required field", json!({"/spec/selector": null})),
    ];
    for (what, patch) in cases {
        let mut bad = dep.clone();
        for (path, value) in patch.as_object().unwrap() {
            let (parent, key) = path.rsplit_once('/').unwrap();
            let target = bad.pointer_mut(parent).unwrap().as_object_mut().unwrap();
            if value.is_null() {
                target.remove(key);
            } else {
                target.insert(key.to_owned(), value.clone());
            }
        }
        let (ok, out) = validate(&serde_yaml::to_string(&bad).unwrap());
        assert!(!ok && out.contains("ERROR"), "{what}: accepted:\n{out}");
    }
}

#[test]
fn crd_kustomization_lists_every_generated_crd() {
    let text = std::fs::read_to_string(deploy().join("crds/kustomization.yaml")).unwrap();
    let k: Value = serde_yaml::from_str(&text).unwrap();
    let listed: BTreeSet<&str> =
        k["resources"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let generated: BTreeSet<&str> = ebb_api::crds::all().into_iter().map(|(f, _)| f).collect();
    assert_eq!(listed, generated);
    let r = render_overlay("default");
    let names: BTreeSet<&str> =
        r.of_kind("CustomResourceDefinition").map(|c| c["metadata"]["name"].as_str().unwrap()).collect();
    let want: BTreeSet<String> =
        ebb_api::crds::all().into_iter().map(|(_, c)| c.metadata.name.unwrap()).collect();
    assert_eq!(names, want.iter().map(String::as_str).collect());
}

/// Memory request and limit of each program (from measured footprints: operator ~14 MiB idle,
/// webhook ~14 MiB idle and ~40 MiB with 10,000 objects, metrics API server ~15 MiB).
const MEMORY: [(&str, &str, &str); 3] = [
    ("ebb-operator", "64Mi", "256Mi"),
    ("ebb-webhook", "32Mi", "128Mi"),
    ("ebb-metrics-apiserver", "32Mi", "128Mi"),
];

#[test]
fn deployments_run_restricted_with_requests_limits_and_probes() {
    for r in all_renderings() {
        for (name, request, limit) in MEMORY {
            let d = r.get("Deployment", name).unwrap_or_else(|| panic!("{}: no Deployment {name}", r.name));
            let pod = &d["spec"]["template"]["spec"];
            let ctx = format!("{}: {name}", r.name);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{ctx}");
            assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{ctx}");
            assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{ctx}");
            assert_eq!(pod["serviceAccountName"], name, "{ctx}");
            let sa = r.get("ServiceAccount", name).unwrap_or_else(|| panic!("{ctx}: no ServiceAccount"));
            assert_eq!(sa["metadata"]["namespace"], "keda", "{ctx}");
            let containers = pod["containers"].as_array().unwrap();
            assert_eq!(containers.len(), 1, "{ctx}");
            let c = &containers[0];
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{ctx}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{ctx}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{ctx}");
            assert!(sc["capabilities"].get("add").is_none(), "{ctx}");
            assert_eq!(c["resources"]["requests"]["memory"], request, "{ctx}");
            assert_eq!(c["resources"]["limits"]["memory"], limit, "{ctx}");
            assert!(
                c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["cpu"].is_string(),
                "{ctx}"
            );
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez", "{ctx}");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{ctx}");
            let image = c["image"].as_str().unwrap();
            assert!(image.starts_with("ebb:") && image.len() > 4, "{ctx}: image {image}");
        }
    }
}

#[test]
fn services_policies_and_api_registrations_reach_real_container_ports() {
    // (Service, port, container port it must reach).
    let expected = [
        ("ebb-operator", 9666, 9666),
        ("ebb-operator-metrics", 8080, 8080),
        ("ebb-webhook", 443, 9443),
        ("ebb-webhook", 8080, 8080),
        ("ebb-metrics-apiserver", 443, 6443),
        ("ebb-metrics-apiserver", 8080, 8080),
    ];
    for r in all_renderings() {
        let mut seen = Vec::new();
        for svc in r.of_kind("Service") {
            let dep = r
                .of_kind("Deployment")
                .find(|d| {
                    selects_at_run_time(
                        &svc["spec"]["selector"],
                        &d["spec"]["template"]["metadata"]["labels"],
                    )
                })
                .unwrap_or_else(|| panic!("{}: {} selects no Deployment", r.name, kn(svc)));
            for p in svc["spec"]["ports"].as_array().unwrap() {
                let target = container_port(dep, &p["targetPort"]).unwrap_or_else(|| {
                    panic!(
                        "{}: {} targets {} which {} does not declare",
                        r.name,
                        kn(svc),
                        p["targetPort"],
                        kn(dep)
                    )
                });
                seen.push((
                    svc["metadata"]["name"].as_str().unwrap().to_owned(),
                    p["port"].as_i64().unwrap(),
                    target,
                ));
            }
        }
        let want: Vec<(String, i64, i64)> =
            expected.iter().map(|(s, p, t)| ((*s).to_owned(), *p, *t)).collect();
        seen.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(seen, want_sorted, "{}", r.name);

        for np in r.of_kind("NetworkPolicy") {
            let dep = r
                .of_kind("Deployment")
                .find(|d| {
                    selects(
                        &np["spec"]["podSelector"]["matchLabels"],
                        &d["spec"]["template"]["metadata"]["labels"],
                    )
                })
                .unwrap_or_else(|| panic!("{}: {} selects no pods", r.name, kn(np)));
            for rule in np["spec"]["ingress"].as_array().into_iter().flatten() {
                for p in rule["ports"].as_array().unwrap() {
                    assert!(
                        container_port(dep, &p["port"]).is_some(),
                        "{}: {} names port {}",
                        r.name,
                        kn(np),
                        p["port"]
                    );
                }
            }
        }

        let api = r.get("APIService", "v1beta1.external.metrics.k8s.io").unwrap();
        assert_eq!(api["spec"]["group"], "external.metrics.k8s.io");
        assert_eq!(api["spec"]["version"], "v1beta1");
        assert_eq!(
            api["spec"]["service"],
            json!({"name": "ebb-metrics-apiserver", "namespace": "keda", "port": 443})
        );
        assert_eq!(
            (api["spec"]["groupPriorityMinimum"].as_i64(), api["spec"]["versionPriority"].as_i64()),
            (Some(100), Some(100))
        );
        assert!(api["spec"].get("insecureSkipTLSVerify").is_none_or(|v| v == false));

        let vwc = r.get("ValidatingWebhookConfiguration", "keda-admission").unwrap();
        let hooks = vwc["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 3);
        for h in hooks {
            let s = &h["clientConfig"]["service"];
            assert_eq!(
                s,
                &json!({"namespace": "keda", "name": "ebb-webhook", "path": ebb_webhook::server::VALIDATE_PATH, "port": 443}),
                "{}",
                r.name
            );
        }
    }
}

/// The container port of `dep`'s first container that `port` (a number or a port name) means.
fn container_port(dep: &Value, port: &Value) -> Option<i64> {
    let ports = dep["spec"]["template"]["spec"]["containers"][0]["ports"].as_array()?;
    ports
        .iter()
        .find(|p| match port {
            Value::String(name) => p["name"] == name.as_str(),
            Value::Number(n) => p["containerPort"].as_i64() == n.as_i64(),
            _ => false,
        })
        .and_then(|p| p["containerPort"].as_i64())
}

/// Built-in roles the manifests bind without defining them.
const BUILT_IN_ROLES: [(&str, &str); 2] =
    [("ClusterRole", "system:auth-delegator"), ("Role", "extension-apiserver-authentication-reader")];

#[test]
fn rbac_binds_real_accounts_to_real_roles_and_grants_no_wildcards() {
    for r in all_renderings() {
        for b in r.of_kind("ClusterRoleBinding").chain(r.of_kind("RoleBinding")) {
            let role = &b["roleRef"];
            let (kind, name) = (role["kind"].as_str().unwrap(), role["name"].as_str().unwrap());
            assert!(
                r.get(kind, name).is_some() || BUILT_IN_ROLES.contains(&(kind, name)),
                "{}: {} binds missing {kind} {name}",
                r.name,
                kn(b)
            );
            for s in b["subjects"].as_array().unwrap() {
                let known = r.get("ServiceAccount", s["name"].as_str().unwrap()).is_some()
                    || (s["namespace"] == "kube-system" && s["name"] == "horizontal-pod-autoscaler");
                assert!(
                    known && s["kind"] == "ServiceAccount",
                    "{}: {} binds unknown subject {s}",
                    r.name,
                    kn(b)
                );
            }
        }
        for role in r.of_kind("ClusterRole").chain(r.of_kind("Role")) {
            for rule in role["rules"].as_array().unwrap() {
                let verbs = rule["verbs"].as_array().unwrap();
                assert!(!verbs.contains(&json!("*")), "{}: {} grants every verb", r.name, kn(role));
                let resources = rule["resources"].as_array().unwrap();
                if resources.contains(&json!("secrets")) {
                    // Reading any Secret (trigger authentication); the certificate manager's
                    // own: create (not limitable by name), and writes only by name.
                    let by_name = rule.get("resourceNames").is_some_and(|n| {
                        n.as_array().is_some_and(|n| {
                            n.iter().all(|n| n == "ebb-ca" || CERTIFICATE_SECRETS.iter().any(|c| n == c.0))
                        })
                    });
                    let certificates = role["metadata"]["name"] == "ebb-operator-certificates";
                    let allowed: &[&str] = match (certificates, by_name) {
                        (true, true) => &["get", "update", "patch"],
                        (true, false) => &["create"],
                        _ => &["get"],
                    };
                    assert!(
                        verbs.iter().all(|v| allowed.contains(&v.as_str().unwrap())),
                        "{}: {} may do more than {allowed:?} on Secrets: {verbs:?}",
                        r.name,
                        kn(role)
                    );
                }
            }
        }
        let webhook = r.get("ClusterRole", "ebb-webhook").unwrap();
        assert!(!webhook.to_string().contains("secrets"), "the webhook must not read Secrets");
    }
    // The component moves the operator's Secret reads into its own namespace.
    let everything = super::render_everything();
    assert!(everything.get("ClusterRole", "ebb-operator-secrets").is_none());
    let role = everything.get("Role", "ebb-operator-secrets").unwrap();
    assert_eq!(role["metadata"]["namespace"], "keda");
}

#[test]
fn high_availability_runs_two_spread_replicas_with_disruption_budgets() {
    for r in [render_overlay("high-availability"), super::render_everything()] {
        for d in r.of_kind("Deployment") {
            // With the sharded component (in "everything") the operator runs three replicas.
            let sharded =
                d["metadata"]["name"] == "ebb-operator" && r.get("Role", "ebb-operator-shards").is_some();
            assert_eq!(d["spec"]["replicas"], if sharded { 3 } else { 2 }, "{}: {}", r.name, kn(d));
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            let spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"].as_array().unwrap();
            let keys: Vec<&str> = spread.iter().map(|c| c["topologyKey"].as_str().unwrap()).collect();
            assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"], "{}", kn(d));
            assert!(spread.iter().all(|c| selects(&c["labelSelector"]["matchLabels"], labels)), "{}", kn(d));
            let pdb = r
                .of_kind("PodDisruptionBudget")
                .find(|p| selects(&p["spec"]["selector"]["matchLabels"], labels))
                .unwrap_or_else(|| panic!("{}: no PodDisruptionBudget for {}", r.name, kn(d)));
            assert_eq!(pdb["spec"]["minAvailable"], 1);
        }
        let op = r.get("Deployment", "ebb-operator").unwrap();
        let args = op["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
        assert!(args.contains(&json!("--leader-elect=true")));
    }
    for d in render_overlay("default").of_kind("Deployment") {
        assert_eq!(d["spec"]["replicas"], 1, "{}", kn(d));
    }
}

/// Secret of each program's certificate, the Service it serves (None: the client certificate)
/// and the Deployment that mounts it.
pub const CERTIFICATE_SECRETS: [(&str, Option<&str>, &str); 4] = [
    ("ebb-operator-tls", Some("ebb-operator"), "ebb-operator"),
    ("ebb-webhook-tls", Some("ebb-webhook"), "ebb-webhook"),
    ("ebb-metrics-apiserver-tls", Some("ebb-metrics-apiserver"), "ebb-metrics-apiserver"),
    ("ebb-metrics-apiserver-client-tls", None, "ebb-metrics-apiserver"),
];

#[test]
fn cert_manager_references() {
    for r in [render_overlay("cert-manager"), super::render_everything()] {
        for (secret, service, mounted_by) in CERTIFICATE_SECRETS {
            let cert = r.get("Certificate", secret).unwrap();
            assert_eq!(cert["spec"]["secretName"], secret);
            // Mounted by its own program only.
            for d in r.of_kind("Deployment") {
                let vols = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
                let mounts = vols.iter().any(|v| v["secret"]["secretName"] == secret);
                assert_eq!(mounts, d["metadata"]["name"] == mounted_by, "{}: {} and {secret}", r.name, kn(d));
            }
            let dns: BTreeSet<&str> =
                cert["spec"]["dnsNames"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            let usages = cert["spec"]["usages"].as_array().unwrap();
            match service {
                Some(svc) => {
                    assert!(
                        dns.contains(format!("{svc}.keda.svc").as_str()),
                        "{}: {secret} lacks {svc}",
                        r.name
                    );
                    assert!(r.get("Service", svc).is_some(), "{}: no Service {svc}", r.name);
                    assert!(
                        dns.iter().all(|d| d.starts_with(&format!("{svc}."))),
                        "{}: {secret}: {dns:?}",
                        r.name
                    );
                    assert_eq!(usages, &[json!("digital signature"), json!("server auth")], "{secret}");
                }
                None => {
                    assert_eq!(cert["spec"]["commonName"], "ebb-metrics-apiserver");
                    assert_eq!(usages, &[json!("digital signature"), json!("client auth")], "{secret}");
                }
            }
        }
        for c in r.of_kind("Certificate") {
            let issuer = c["spec"]["issuerRef"]["name"].as_str().unwrap();
            assert!(r.get("Issuer", issuer).is_some(), "{}: {} names missing Issuer {issuer}", r.name, kn(c));
        }
        let ca_secret =
            r.get("Issuer", "ebb-ca").unwrap()["spec"]["ca"]["secretName"].as_str().unwrap().to_owned();
        assert_eq!(r.get("Certificate", "ebb-ca").unwrap()["spec"]["secretName"], ca_secret.as_str());
        for (kind, name, from) in [
            ("APIService", "v1beta1.external.metrics.k8s.io", "keda/ebb-metrics-apiserver-tls"),
            ("ValidatingWebhookConfiguration", "keda-admission", "keda/ebb-webhook-tls"),
        ] {
            let o = r.get(kind, name).unwrap();
            assert_eq!(
                o["metadata"]["annotations"]["cert-manager.io/inject-ca-from"], from,
                "{}: {kind}",
                r.name
            );
            assert!(
                !o.to_string().contains("caBundle"),
                "{}: {kind} keeps a caBundle cainjector would compete with",
                r.name
            );
        }
    }
}

#[test]
fn service_monitor_selects_the_admin_ports() {
    let r = super::render_everything();
    let sm = r.get("ServiceMonitor", "ebb").unwrap();
    let endpoints = sm["spec"]["endpoints"].as_array().unwrap();
    let selected: Vec<&Value> = r
        .of_kind("Service")
        .filter(|s| selects(&sm["spec"]["selector"]["matchLabels"], &s["metadata"]["labels"]))
        .filter(|s| {
            sm["spec"]["namespaceSelector"]["matchNames"]
                .as_array()
                .unwrap()
                .contains(&s["metadata"]["namespace"])
        })
        .collect();
    for e in endpoints {
        assert_eq!(e["path"], "/metrics");
        assert!(e.get("honorLabels").is_none_or(|h| h == false), "honorLabels would drop exported_namespace");
        // Services without the endpoint's port yield no target (ebb-operator: the leader's
        // internal port only).
        let scraped: Vec<&Value> = selected
            .iter()
            .copied()
            .filter(|s| s["spec"]["ports"].as_array().unwrap().iter().any(|p| p["name"] == e["port"]))
            .collect();
        let names: BTreeSet<&str> = scraped.iter().map(|s| s["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["ebb-operator-metrics", "ebb-webhook", "ebb-metrics-apiserver"]),
            "the ServiceMonitor must scrape the three programs"
        );
        for s in &scraped {
            let port =
                s["spec"]["ports"].as_array().unwrap().iter().find(|p| p["name"] == e["port"]).unwrap();
            assert_eq!(port["port"], 8080, "{}", kn(s));
            // Every replica is scraped: the selector needs no label set at run time.
            let dep = r
                .of_kind("Deployment")
                .find(|d| selects(&s["spec"]["selector"], &d["spec"]["template"]["metadata"]["labels"]));
            assert!(dep.is_some(), "{} does not select every Pod of a Deployment", kn(s));
        }
    }
}

#[test]
fn only_the_leading_operator_serves_the_internal_port() {
    let leader = super::RUN_TIME_LABELS[0];
    for r in all_renderings() {
        let op = r.get("Deployment", "ebb-operator").unwrap();
        let labels = &op["spec"]["template"]["metadata"]["labels"];
        assert!(labels.get(leader.0).is_none(), "{}: the Pod template carries {}", r.name, leader.0);
        // The internal port is reachable only through a Service that needs the leader label.
        for svc in r.of_kind("Service") {
            let internal =
                svc["spec"]["ports"].as_array().unwrap().iter().any(|p| p["targetPort"] == "internal");
            if internal && selects_at_run_time(&svc["spec"]["selector"], labels) {
                assert_eq!(
                    svc["spec"]["selector"][leader.0],
                    leader.1,
                    "{}: {} reaches followers",
                    r.name,
                    kn(svc)
                );
            }
        }
        let internal = r.get("Service", "ebb-operator").unwrap();
        assert_eq!(internal["spec"]["selector"][leader.0], leader.1, "{}", r.name);
        assert!(!selects(&internal["spec"]["selector"], labels), "{}", r.name);
        let metrics = r.get("Service", "ebb-operator-metrics").unwrap();
        assert!(selects(&metrics["spec"]["selector"], labels), "{}: metrics of every replica", r.name);

        // The Pod learns its name, and may label itself.
        let env = op["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap();
        let pod_name = env.iter().find(|e| e["name"] == "POD_NAME");
        assert_eq!(
            pod_name.map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]),
            Some(&json!("metadata.name")),
            "{}",
            r.name
        );
        let may_patch_pods = r.of_kind("RoleBinding").any(|b| {
            let bound = b["metadata"]["namespace"] == "keda"
                && b["subjects"].as_array().unwrap().iter().any(|s| s["name"] == "ebb-operator");
            let role = r.of_kind("Role").find(|role| {
                role["metadata"]["name"] == b["roleRef"]["name"] && role["metadata"]["namespace"] == "keda"
            });
            bound
                && b["roleRef"]["kind"] == "Role"
                && role.is_some_and(|role| {
                    role["rules"].as_array().unwrap().iter().any(|rule| {
                        rule["apiGroups"] == json!([""])
                            && rule["resources"] == json!(["pods"])
                            && ["get", "patch"]
                                .iter()
                                .all(|v| rule["verbs"].as_array().unwrap().contains(&json!(v)))
                            && rule.get("resourceNames").is_none()
                    })
                })
        });
        assert!(may_patch_pods, "{}: no Role in keda lets ebb-operator get and patch its Pod", r.name);
    }
}

#[test]
fn dockerfile_ships_the_programs_the_deployments_run() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 65532:65532"), "the image must run as 65532");
    assert!(
        dockerfile.contains("FROM gcr.io/distroless/static"),
        "the runtime image must be distroless/static"
    );
    let r = render_overlay("default");
    for d in r.of_kind("Deployment") {
        let cmd = d["spec"]["template"]["spec"]["containers"][0]["command"][0].as_str().unwrap();
        let (dir, bin) = cmd.rsplit_once('/').unwrap();
        assert_eq!(dir, "/usr/local/bin", "{}", kn(d));
        assert!(
            dockerfile.contains(&format!("/out/{bin} ")) || dockerfile.contains(&format!("/out/{bin}\n")),
            "{bin} is not copied into the image"
        );
        assert!(dockerfile.contains(&format!("-p {bin}")), "{bin} is not built");
    }
}
