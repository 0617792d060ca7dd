//! Differential conformance: the same kubectl scenarios (kubectl v1.35 built from the pinned
//! module, one client for both) run against the local control plane and against upstream
//! kube-apiserver + kube-controller-manager, and the answers are compared after removing what is
//! nondeterministic (uids, timestamps, resourceVersions). Every step must answer alike — same exit
//! status, same selected output — except the steps listed in [`KNOWN`], which must still differ
//! (so a fixed difference is noticed and taken off the list; sandbox/README.md lists the same).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backend;
#[path = "differential/webhook.rs"]
mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebb_sandbox::sandbox::{Config, Sandbox};
use ebb_testbackends::kubernetes::{Options, Upstream, binary};
use serde_json::Value;

/// Steps known to answer differently, by `scenario/step`, with the reason.
const KNOWN: &[(&str, &str)] = &[
    (
        "crd-validation/invalid-type",
        "the local control plane does no schema validation of custom resources (see sandbox/README.md)",
    ),
    (
        "crd-validation/cel-rule",
        "the local control plane does not evaluate the CRD's x-kubernetes-validations (CEL) rules",
    ),
    (
        "secret-data/merge-not-base64",
        "a patch leaving a Secret's data not base64 is refused with the create wording (400), not upstream's 422 quoting the whole patched object",
    ),
];

/// What of a step's answer is compared.
#[derive(Clone, Copy)]
enum Pick {
    /// Exit status only.
    Status,
    /// Exit status and stdout, normalized.
    Out,
    /// Exit status and, on failure, stderr normalized.
    Err,
    /// Exit status, stdout and stderr (warnings), normalized.
    OutErr,
    /// Exit status and these JSON pointers of stdout (`-o json`), normalized.
    Json(&'static [&'static str]),
    /// Exit status and the managers owning this field path (`f:spec/f:replicas` form) in
    /// managedFields of stdout (`-o json --show-managed-fields`).
    Owners(&'static str),
}

struct Step {
    name: &'static str,
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    pick: Pick,
}

const fn step(name: &'static str, args: &'static [&'static str], pick: Pick) -> Step {
    Step { name, args, stdin: None, pick }
}

const fn apply(name: &'static str, args: &'static [&'static str], stdin: &'static str, pick: Pick) -> Step {
    Step { name, args, stdin: Some(stdin), pick }
}

const CM_A: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {x: \"1\", a: \"1\"}\n";
const CM_B: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {x: \"2\", b: \"1\"}\n";
const CM_FINAL: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\ndata: {k: v}\n";
const SO_OK: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: ok}\nspec:\n  scaleTargetRef: {name: web}\n  triggers: [{type: cron, metadata: {timezone: UTC, start: 0 * * * *, end: 5 * * * *, desiredReplicas: \"2\"}}]\n  unknownField: dropped\n";
const SO_BAD: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: bad}\nspec:\n  scaleTargetRef: {name: web}\n  pollingInterval: often\n  triggers: [{type: cron, metadata: {}}]\n";
const CM_HOOKED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hooked, labels: {webhook: \"on\"}}\n";
const CM_DENIED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: denied, labels: {webhook: \"on\", deny: \"true\"}}\n";
const CM_WARNED: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: warned, labels: {webhook: \"on\", warn: \"true\"}}\n";
const CM_SLOW_FAIL: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: slow-fail, labels: {slow: fail}}\n";
const CM_SLOW_IGNORE: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: slow-ignore, labels: {slow: ignore}}\n";
/// A ConfigMap owned by Deployment `gc-owner` (`OWNER_UID` is replaced by its uid).
const OWNED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: gc-owner, uid: OWNER_UID}]}\ndata: {k: v}\n";
/// The same for Deployment `gc-owner-fg`, deleted in the foreground.
const OWNED_FG: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned-fg, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: gc-owner-fg, uid: OWNER_UID, blockOwnerDeletion: true}]}\ndata: {k: v}\n";
const SO_CEL: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: cel}\nspec:\n  scaleTargetRef: {name: web}\n  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: cron, metadata: {timezone: UTC, start: 0 * * * *, end: 5 * * * *, desiredReplicas: \"2\"}}]\n";

/// A Secret whose `data` holds plain text (kube-apiserver refuses it when decoding the body).
const SECRET_NOT_BASE64: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: plain}\ndata: {user: YWRtaW4=, password: hunter2-plain>text}\n";
const SECRET_SHORT: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: short}\ndata: {user: YWRtaW4}\n";
const SECRET_OK: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: ok}\ndata: {user: YWRtaW4=}\n";

fn scenarios() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        (
            "secret-data",
            vec![
                apply("not-base64", &["create", "--validate=false", "-f", "-"], SECRET_NOT_BASE64, Pick::Err),
                apply("short", &["create", "--validate=false", "-f", "-"], SECRET_SHORT, Pick::Err),
                apply("base64", &["create", "--validate=false", "-f", "-"], SECRET_OK, Pick::Out),
                step(
                    "merge-not-base64",
                    &["patch", "secret", "ok", "--type=merge", "-p", r#"{"data":{"k":"a=b"}}"#],
                    Pick::Err,
                ),
            ],
        ),
        (
            "deployment",
            vec![
                step("create", &["create", "deployment", "web", "--image=x", "--replicas=2"], Pick::Out),
                step(
                    "defaults",
                    &["get", "deploy", "web", "-o", "json"],
                    Pick::Json(&["/spec", "/metadata/labels", "/metadata/generation"]),
                ),
                step("scale-3", &["scale", "deploy", "web", "--replicas=3"], Pick::Out),
                step(
                    "owners-at-3",
                    &["get", "deploy", "web", "-o", "json", "--show-managed-fields"],
                    Pick::Owners("f:spec/f:replicas"),
                ),
                step("scale-0", &["scale", "deploy", "web", "--replicas=0"], Pick::Out),
                step(
                    "replicas-owners",
                    &["get", "deploy", "web", "-o", "json", "--show-managed-fields"],
                    Pick::Owners("f:spec/f:replicas"),
                ),
                step("scale-negative", &["scale", "deploy", "web", "--replicas=-1"], Pick::Status),
            ],
        ),
        (
            "server-side-apply",
            vec![
                apply(
                    "apply-a",
                    &["apply", "--validate=false", "--server-side", "--field-manager=a", "-f", "-"],
                    CM_A,
                    Pick::Out,
                ),
                apply(
                    "conflict",
                    &["apply", "--validate=false", "--server-side", "--field-manager=b", "-f", "-"],
                    CM_B,
                    Pick::Err,
                ),
                apply(
                    "force",
                    &[
                        "apply",
                        "--validate=false",
                        "--server-side",
                        "--field-manager=b",
                        "--force-conflicts",
                        "-f",
                        "-",
                    ],
                    CM_B,
                    Pick::Out,
                ),
                step("table", &["get", "cm", "shared"], Pick::Out),
                step(
                    "result",
                    &["get", "cm", "shared", "-o", "json", "--show-managed-fields"],
                    Pick::Json(&["/data", "/metadata/managedFields"]),
                ),
            ],
        ),
        (
            "patch-types",
            vec![
                step("create", &["create", "deployment", "p", "--image=x"], Pick::Out),
                step(
                    "merge",
                    &["patch", "deploy", "p", "--type=merge", "-p", r#"{"metadata":{"labels":{"m":"1"}}}"#],
                    Pick::Out,
                ),
                step(
                    "json",
                    &[
                        "patch",
                        "deploy",
                        "p",
                        "--type=json",
                        "-p",
                        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
                    ],
                    Pick::Out,
                ),
                step(
                    "json-test-fails",
                    &[
                        "patch",
                        "deploy",
                        "p",
                        "--type=json",
                        "-p",
                        r#"[{"op":"test","path":"/metadata/labels/j","value":"3"}]"#,
                    ],
                    Pick::Status,
                ),
                step(
                    "strategic",
                    &[
                        "patch",
                        "deploy",
                        "p",
                        "--type=strategic",
                        "-p",
                        r#"{"spec":{"template":{"spec":{"containers":[{"name":"x","image":"y"}]}}}}"#,
                    ],
                    Pick::Out,
                ),
                step(
                    "result",
                    &["get", "deploy", "p", "-o", "json"],
                    Pick::Json(&[
                        "/metadata/labels",
                        "/spec/template/spec/containers",
                        "/metadata/generation",
                    ]),
                ),
            ],
        ),
        (
            "finalizers",
            vec![
                apply("create", &["apply", "--validate=false", "-f", "-"], CM_FINAL, Pick::Out),
                step("delete", &["delete", "cm", "held", "--wait=false"], Pick::Out),
                step(
                    "terminating",
                    &["get", "cm", "held", "-o", "json"],
                    Pick::Json(&["/metadata/finalizers", "/metadata/deletionTimestamp", "/data"]),
                ),
                step(
                    "release",
                    &["patch", "cm", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#],
                    Pick::Status,
                ),
                step("gone", &["get", "cm", "held"], Pick::Err),
            ],
        ),
        (
            "crd-validation",
            vec![
                step(
                    "create-target",
                    &["create", "deployment", "web", "--image=x", "--replicas=0"],
                    Pick::Out,
                ),
                apply("valid", &["apply", "--validate=false", "-f", "-"], SO_OK, Pick::Out),
                step("pruned", &["get", "scaledobject", "ok", "-o", "json"], Pick::Json(&["/spec"])),
                apply("invalid-type", &["apply", "--validate=false", "-f", "-"], SO_BAD, Pick::Status),
                apply("cel-rule", &["apply", "--validate=false", "-f", "-"], SO_CEL, Pick::Err),
                step("printer-columns", &["get", "so", "ok"], Pick::Out),
                step(
                    "status-through-main",
                    &["patch", "so", "ok", "--type=merge", "-p", r#"{"status":{"originalReplicaCount":7}}"#],
                    Pick::Status,
                ),
                step("status-ignored", &["get", "so", "ok", "-o", "json"], Pick::Json(&["/status"])),
                step(
                    "status-subresource",
                    &[
                        "patch",
                        "so",
                        "ok",
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        r#"{"status":{"originalReplicaCount":7}}"#,
                    ],
                    Pick::Status,
                ),
                step(
                    "status-written",
                    &["get", "so", "ok", "-o", "json"],
                    Pick::Json(&["/status/originalReplicaCount"]),
                ),
            ],
        ),
        (
            "garbage-collection",
            vec![
                step("owner", &["create", "deployment", "gc-owner", "--image=x", "--replicas=0"], Pick::Out),
                apply("dependent", &["apply", "--validate=false", "-f", "-"], OWNED, Pick::Out),
                step("delete-owner", &["delete", "deploy", "gc-owner", "--cascade=background"], Pick::Out),
                step(
                    "owner-fg",
                    &["create", "deployment", "gc-owner-fg", "--image=x", "--replicas=0"],
                    Pick::Out,
                ),
                apply("dependent-fg", &["apply", "--validate=false", "-f", "-"], OWNED_FG, Pick::Out),
                step(
                    "delete-owner-fg",
                    &["delete", "deploy", "gc-owner-fg", "--cascade=foreground"],
                    Pick::Out,
                ),
                step(
                    "dependent-collected-fg",
                    &["get", "cm", "owned-fg", "--ignore-not-found", "-o", "name"],
                    Pick::Out,
                ),
                step(
                    "owner-fg-gone",
                    &["get", "deploy", "gc-owner-fg", "--ignore-not-found", "-o", "name"],
                    Pick::Out,
                ),
                step(
                    "dependent-collected",
                    &["get", "cm", "owned", "--ignore-not-found", "-o", "name"],
                    Pick::Out,
                ),
            ],
        ),
        (
            "admission",
            vec![
                apply("allowed", &["apply", "--validate=false", "-f", "-"], CM_HOOKED, Pick::OutErr),
                apply("denied", &["apply", "--validate=false", "-f", "-"], CM_DENIED, Pick::Err),
                apply(
                    "denied-dry-run",
                    &["apply", "--validate=false", "--dry-run=server", "-f", "-"],
                    CM_DENIED,
                    Pick::Err,
                ),
                apply("warned", &["apply", "--validate=false", "-f", "-"], CM_WARNED, Pick::OutErr),
                apply("timeout-fail", &["apply", "--validate=false", "-f", "-"], CM_SLOW_FAIL, Pick::Status),
                apply(
                    "timeout-ignore",
                    &["apply", "--validate=false", "-f", "-"],
                    CM_SLOW_IGNORE,
                    Pick::OutErr,
                ),
                step("stored", &["get", "cm", "-l", "webhook", "-o", "name"], Pick::Out),
                // Label selector tokens are separated by ASCII blanks only (a no-break space
                // belongs to the key, which is then invalid), and refusals are worded alike.
                step("selector-blanks", &["get", "cm", "-l", "webhook = on", "-o", "name"], Pick::Out),
                step("selector-no-break-space", &["get", "cm", "-l", "webhook\u{a0}=on"], Pick::Status),
                step("selector-negated-operator", &["get", "cm", "-l", "!webhook=on"], Pick::Err),
                step("selector-set-operator", &["get", "cm", "-l", "webhook in (=)"], Pick::Err),
            ],
        ),
        (
            "discovery",
            vec![
                step("keda-resources", &["api-resources", "--api-group=keda.sh", "--no-headers"], Pick::Out),
                step("autoscaling", &["api-resources", "--api-group=autoscaling", "--no-headers"], Pick::Out),
                step("not-found", &["get", "deploy", "missing"], Pick::Err),
                step("unknown-kind", &["get", "frobnicators"], Pick::Err),
                apply("openapi-validation", &["apply", "-f", "-"], CM_A, Pick::Status),
                // kubectl wait reads through a streaming list (sendInitialEvents) by field selector.
                step(
                    "wait-established",
                    &["wait", "--for=condition=Established", "crd/scaledobjects.keda.sh", "--timeout=20s"],
                    Pick::Out,
                ),
            ],
        ),
    ]
}

/// One cluster: where kubectl points and how it is called.
struct Plane {
    name: &'static str,
    kubeconfig: PathBuf,
}

struct Answer {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn kubectl(plane: &Plane, ns: &str, args: &[&str], stdin: Option<&str>) -> Answer {
    use std::io::Write;
    let mut cmd = Command::new(binary("kubectl").unwrap());
    cmd.arg("--kubeconfig").arg(&plane.kubeconfig).args(["-n", ns]).args(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Answer {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replaces nondeterministic values: uids, resourceVersions, timestamps.
fn normalize(v: &mut Value) {
    const MASKED: &[&str] = &[
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "time",
        "lastTransitionTime",
        "lastUpdateTime",
    ];
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if MASKED.contains(&k.as_str()) && !val.is_null() {
                    *val = Value::String("<masked>".into());
                } else {
                    normalize(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// A kubectl table with its AGE cells (`5s`, `2m3s`, `<invalid>`) replaced by `<age>`.
fn ages(text: &str) -> String {
    let age = |w: &str| {
        w == "<invalid>"
            || (!w.is_empty()
                && w.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c))
                && w.chars().next().is_some_and(|c| c.is_ascii_digit())
                && w.chars().last().is_some_and(|c| "smhdy".contains(c)))
    };
    text.lines()
        .map(|l| l.split_whitespace().map(|w| if age(w) { "<age>" } else { w }).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What of `a` is compared under `pick`.
fn view(a: &Answer, pick: Pick) -> String {
    let status = if a.ok { "ok" } else { "failed" };
    match pick {
        Pick::Status => status.to_owned(),
        Pick::Out => format!("{status}\n{}", ages(a.stdout.trim())),
        Pick::OutErr => format!("{status}\n{}\n{}", ages(a.stdout.trim()), a.stderr.trim()),
        Pick::Err if a.ok => format!("{status}\n{}", a.stdout.trim()),
        Pick::Err => format!("{status}\n{}", a.stderr.trim()),
        Pick::Json(pointers) => {
            let Ok(mut doc) = serde_json::from_str::<Value>(&a.stdout) else {
                return format!("{status}\nnot JSON: {}{}", a.stdout.trim(), a.stderr.trim());
            };
            normalize(&mut doc);
            let picked: Vec<String> = pointers
                .iter()
                .map(|p| format!("{p} = {}", doc.pointer(p).unwrap_or(&Value::Null)))
                .collect();
            format!("{status}\n{}", picked.join("\n"))
        }
        Pick::Owners(path) => {
            let doc: Value = serde_json::from_str(&a.stdout).unwrap_or_default();
            let owners: Vec<&str> = doc["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["fieldsV1"].pointer(&format!("/{path}")).is_some())
                .filter_map(|m| m["manager"].as_str())
                .collect();
            format!("{status}\nowners of {path}: {owners:?}")
        }
    }
}

/// Runs `s`'s steps on `plane`, returning each step's view. Dependents get their owner's uid.
fn run(plane: &Plane, scenario: &str, steps: &[Step]) -> Vec<String> {
    let created = kubectl(plane, "default", &["create", "namespace", scenario], None);
    assert!(created.ok, "{}: {}", plane.name, created.stderr);
    let mut views = Vec::new();
    for s in steps {
        let mut stdin = s.stdin.map(str::to_owned);
        // A dependent: its owner (the second `name:`) is looked up for the uid.
        let owner = stdin
            .as_deref()
            .filter(|t| t.contains("OWNER_UID"))
            .and_then(|t| t.split("name: ").nth(2)?.split(',').next());
        if let Some(owner) = owner {
            let uid =
                kubectl(plane, scenario, &["get", "deploy", owner, "-o", "jsonpath={.metadata.uid}"], None);
            stdin = stdin.map(|t| t.replace("OWNER_UID", &uid.stdout));
        }
        let answer = if s.name.starts_with("dependent-collected") {
            // Collection is asynchronous on both: wait until the dependent is gone (or 60 s).
            let started = Instant::now();
            loop {
                let a = kubectl(plane, scenario, s.args, None);
                if a.stdout.trim().is_empty() || started.elapsed() > Duration::from_secs(60) {
                    break a;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        } else {
            kubectl(plane, scenario, s.args, stdin.as_deref())
        };
        views.push(view(&answer, s.pick));
    }
    views
}

fn write_kubeconfig(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("local.kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scenarios_answer_as_upstream() {
    let up = tokio::task::spawn_blocking(|| Upstream::start(&Options::default())).await.unwrap().unwrap();
    let sb = Sandbox::start(Config::default()).await.unwrap();
    for (_, crd) in ebb_api::crds::all() {
        sb.create(&serde_json::to_value(&crd).unwrap()).unwrap();
    }
    let crds =
        ebb_api::crds::all().into_iter().map(|(_, c)| serde_yaml::to_string(&c).unwrap()).collect::<Vec<_>>();
    let upstream = Plane { name: "upstream", kubeconfig: up.kubeconfig_path() };
    for crd in &crds {
        let a = tokio::task::block_in_place(|| {
            kubectl(&upstream, "default", &["apply", "--server-side", "-f", "-"], Some(crd))
        });
        assert!(a.ok, "{}", a.stderr);
    }
    let a = tokio::task::block_in_place(|| {
        kubectl(
            &upstream,
            "default",
            &["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
            None,
        )
    });
    assert!(a.ok, "{}", a.stderr);
    let local = Plane { name: "local", kubeconfig: write_kubeconfig(up.dir(), &sb.kubeconfig()) };
    let (_local_hook, local_hooks) = webhook::for_local(&sb).await;
    let (_upstream_hook, upstream_hooks) = webhook::for_upstream(&up).await;
    for (plane, manifests) in [(&local, &local_hooks), (&upstream, &upstream_hooks)] {
        let a = tokio::task::block_in_place(|| {
            kubectl(plane, webhook::NAMESPACE, &["apply", "--validate=false", "-f", "-"], Some(manifests))
        });
        assert!(a.ok, "{}: {}", plane.name, a.stderr);
    }

    let all = scenarios();
    let (mut same, mut differ, mut known_seen) = (0, Vec::new(), Vec::new());
    for (scenario, steps) in &all {
        let (a, b) =
            tokio::task::block_in_place(|| (run(&upstream, scenario, steps), run(&local, scenario, steps)));
        for ((s, u), l) in steps.iter().zip(a).zip(b) {
            let id = format!("{scenario}/{}", s.name);
            let known = KNOWN.iter().find(|(k, _)| *k == id);
            println!("{id}: {}", u.lines().collect::<Vec<_>>().join(" | "));
            match (u == l, known) {
                (true, None) => same += 1,
                (true, Some((_, why))) => differ.push(format!(
                    "{id}: listed as a known difference ({why}) but now answers alike — take it off KNOWN"
                )),
                (false, Some((_, why))) => known_seen.push(format!("{id}: {why}")),
                (false, None) => differ.push(format!("{id}:\n--- upstream\n{u}\n--- local\n{l}")),
            }
        }
    }
    let total: usize = all.iter().map(|(_, s)| s.len()).sum();
    println!(
        "{} scenarios, {total} steps: {same} alike, {} known differences, {} new differences",
        all.len(),
        known_seen.len(),
        differ.len()
    );
    for k in &known_seen {
        println!("known: {k}");
    }
    sb.stop().await;
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}
