//! The `ebb` binary end to end: each command run as a user runs it, checking exit codes,
//! stdout and that every error is one `error:` line with no panic.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ebb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb")).args(args).current_dir(root()).output().unwrap()
}

const CRON: &str = "tests/fixtures/seed/cron-prescale.yaml";

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    let cases = [
        ("tests/fixtures/bad/malformed.yaml", "invalid YAML: did not find expected ',' or ']' at line 11"),
        (
            "tests/fixtures/bad/unknown-type.yaml",
            "spec.triggers[0] (rabbitmq-typo): unknown trigger type \"rabbitmq-typo\"",
        ),
        (
            "tests/fixtures/bad/bad-cron.yaml",
            "spec.triggers[0] (cron) metadata.start: hour \"25\" out of range 0-23",
        ),
        (
            "tests/fixtures/bad/unknown-timezone.yaml",
            "spec.triggers[0] (cron) metadata.timezone: unknown time zone \"Asia/Seol\"",
        ),
        (
            "tests/fixtures/bad/min-greater-than-max.yaml",
            "spec.minReplicaCount: minReplicaCount (5) must be less than or equal to maxReplicaCount (2)",
        ),
        (
            "tests/fixtures/bad/desired-replicas-zero.yaml",
            "spec.triggers[0] (cron) metadata.desiredReplicas: must be an integer ≥ 1, found 0",
        ),
        ("tests/fixtures/does-not-exist.yaml", "tests/fixtures/does-not-exist.yaml: cannot read"),
    ];
    for (file, want) in cases {
        for cmd in ["check", "simulate"] {
            let out = ebb(&[cmd, "-f", file]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{cmd} {file}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd} {file}: one line expected: {err}");
            assert!(err.starts_with(&format!("error: {file}: ")), "{cmd} {file}: {err}");
            assert!(err.contains(want), "{cmd} {file}: {err}");
            assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn seed_cron_checks_as_json() {
    let out = ebb(&["check", "-f", CRON, "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_json_reports_metric_target_and_schedule_value() {
    let out = ebb(&["check", "-f", CRON, "--output", "json", "--current-replicas", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["triggers"][0];
    assert_eq!(t["metricName"], "s0-cron-Asia-Seoul-00,15,30,45xxxx-05,20,35,50xxxx");
    assert_eq!(t["target"], 1.0);
    assert_eq!(t["metricType"], "AverageValue");
    // The value the schedule implies at the report's own timestamp.
    let at = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap();
    let seoul = at.with_timezone(&chrono_tz::Asia::Seoul);
    use chrono::Timelike;
    let open = seoul.minute() % 15 < 5;
    assert_eq!(t["value"], if open { 1.0 } else { 0.0 }, "at {seoul}");
    assert_eq!(t["active"], open);
    assert_eq!(v["decision"]["active"], open);
    assert_eq!(v["decision"]["ebbWrites"], if open { serde_json::json!(1) } else { serde_json::Value::Null });
    assert_eq!(v["decision"]["expectedReplicas"], if open { 1 } else { 0 });
}

#[test]
fn simulate_cron_two_hours() {
    let svg = std::env::temp_dir().join(format!("ebb-sim-{}.svg", std::process::id()));
    let out = ebb(&[
        "simulate",
        "-f",
        CRON,
        "--from",
        "2026-11-23T10:00:00+09:00",
        "--for",
        "2h",
        "--step",
        "30s",
        "--output",
        "json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(steps.len(), 241);
    for s in &steps {
        let t = chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap();
        use chrono::Timelike;
        let into_quarter = (t.minute() % 15) * 60 + t.second();
        // Window [hh:00, hh:05) is active; the last active poll is at +4:30, the cooldown of
        // 300 s ends at +9:30, so the first poll past it (+10:00) scales to zero.
        let want = if into_quarter < 600 { 1 } else { 0 };
        assert_eq!(s["replicas"], want, "at {t}: {s}");
        assert_eq!(s["active"], into_quarter < 300, "at {t}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") || text.starts_with("<?xml"), "{}", &text[..50.min(text.len())]);
    let _ = std::fs::remove_file(svg);
}

#[test]
fn simulate_with_series_drives_the_hpa() {
    let dir = std::env::temp_dir().join(format!("ebb-series-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let so = dir.join("so.yaml");
    std::fs::write(
        &so,
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w}\nspec:\n  scaleTargetRef: {name: w}\n  maxReplicaCount: 10\n  pollingInterval: 15\n  triggers:\n  - type: cron\n    metadata: {timezone: UTC, start: 0 0 * * *, end: 0 1 * * *, desiredReplicas: '6'}\n",
    )
    .unwrap();
    // From 00:00 the cron window asks for 6 replicas: ebb writes 0→1, then the HPA (no behavior
    // set, so the controller's own limit max(2 × current, 4) per sync applies) goes 1 → 4 in the
    // same instant and 4 → 6 at the next sync 15 s later.
    let out = ebb(&[
        "simulate",
        "-f",
        so.to_str().unwrap(),
        "--from",
        "2026-01-01T00:00:00Z",
        "--for",
        "45s",
        "--step",
        "15s",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let replicas: Vec<i64> = steps.iter().map(|s| s["replicas"].as_i64().unwrap()).collect();
    assert_eq!(replicas, [4, 6, 6, 6]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn crd_prints_the_committed_crds() {
    let out = ebb(&["crd"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut want = Vec::new();
    for f in [
        "keda.sh_scaledobjects.yaml",
        "keda.sh_triggerauthentications.yaml",
        "keda.sh_clustertriggerauthentications.yaml",
    ] {
        want.push(std::fs::read_to_string(root().join("deploy/crds").join(f)).unwrap());
    }
    assert_eq!(text, want.join("---\n"));
}

#[test]
fn check_reports_the_scaling_modifiers_composite() {
    let f = "tests/fixtures/scaling-modifiers/average.yaml";
    let out = ebb(&["check", "-f", f, "--output", "json", "--current-replicas", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Both cron windows are open but in minute 59: values 4 and 7, else 0 and 0.
    let at = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap();
    use chrono::Timelike;
    let open = at.minute() != 59;
    let c = &v["composite"];
    assert_eq!(c["metricName"], "composite-metric");
    assert_eq!(c["formula"], "(trig_one + trig_two)/2");
    // (4 + 7) / 2 = 5.5 > activationTarget 2: active; the HPA asks ceil(5.5 / 2) = 3 replicas.
    assert_eq!(c["value"], if open { 5.5 } else { 0.0 });
    assert_eq!(c["active"], open);
    assert_eq!(v["decision"]["active"], open);
    if open {
        assert_eq!(v["decision"]["hpaDesiredReplicas"], 3);
    }
    let text = ebb(&["check", "-f", f, "--current-replicas", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("composite composite-metric (AverageValue) = (trig_one + trig_two)/2"), "{text}");
}

#[test]
fn check_refuses_a_formula_naming_no_trigger_with_its_offset() {
    let out = ebb(&["check", "-f", "tests/fixtures/scaling-modifiers/bad-formula.yaml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.advanced.scalingModifiers.formula: unknown name \"trig_three\" (at character 47)"),
        "{err}"
    );
}

#[test]
fn simulate_evaluates_the_scaling_modifiers_formula() {
    let out = ebb(&[
        "simulate",
        "-f",
        "tests/fixtures/scaling-modifiers/average.yaml",
        "--from",
        "2026-11-23T10:00:00Z",
        "--for",
        "2m",
        "--step",
        "30s",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(steps.len(), 5);
    for s in &steps {
        // Both windows open: (4 + 7) / 2 = 5.5, above activationTarget 2.
        assert_eq!(s["metrics"]["composite-metric"], 5.5, "{s}");
        assert_eq!(s["active"], true, "{s}");
    }
    // From min 1, the first HPA sync asks ceil(5.5 / 2) = 3 replicas.
    assert_eq!(steps.last().unwrap()["replicas"], 3, "{steps:?}");
}

#[test]
fn simulate_evaluates_keda_closure_example() {
    let out = ebb(&[
        "simulate",
        "-f",
        "tests/fixtures/scaling-modifiers/count.yaml",
        "--from",
        "2026-11-23T10:00:00Z",
        "--for",
        "1m",
        "--step",
        "30s",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for s in &steps {
        // Both triggers read above 1 (2 and 3): count is 2 > 1, so the formula yields 5.
        assert_eq!(s["metrics"]["composite-metric"], 5.0, "{s}");
    }
}
