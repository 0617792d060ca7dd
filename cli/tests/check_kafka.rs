//! `ebb check` on the seed kafka fixture against a real broker (tansu). The fixture is used as
//! written except that it points at the test broker and, since tansu offers neither TLS nor SASL
//! PLAIN here, `tls: enable` becomes `tls: disable` and `sasl: plaintext` becomes `sasl: none`;
//! everything else (bare booleans, version, partitionLimitation, thresholds) stays. A second run
//! keeps `sasl: plaintext` and supplies the credentials through a TriggerAuthentication and a
//! Secret, showing they reach the broker; a third runs the seed untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ebb_testbackends::tansu::{Admin, Tansu};

fn seed() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed/kafka-trigger.yaml");
    std::fs::read_to_string(p).unwrap()
}

fn check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb"))
        // At 4 replicas the default scale-up policy (max +100 %, +4) allows 8, so the HPA's
        // answer is the metric's own: ceil(value / target).
        .args(["check", "-f", file.to_str().unwrap(), "-o", "json", "--current-replicas", "4"])
        .output()
        .unwrap()
}

fn rewrite(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        assert!(out.contains(from), "the seed no longer contains {from:?}");
        out = out.replace(from, to);
    }
    out
}

/// Topic `test-topic` with 32 partitions. In the seed's partitionLimitation (1,2,10-20,31):
/// p1 8 records, committed 2 → 6; p2 3 records, committed 3 → 0; p10–p20 never committed →
/// 1 each under offsetResetPolicy latest = 11; p31 9 records, committed 0 → 9. Total 26.
/// p0 (50 records, no commit) is outside the limitation and must not count.
async fn broker() -> Tansu {
    let t = Tansu::start().unwrap();
    let mut a = Admin::connect(&t.bootstrap()).await.unwrap();
    a.create_topic("test-topic", 32).await.unwrap();
    a.produce("test-topic", &[(0, 50), (1, 8), (2, 3), (31, 9)]).await.unwrap();
    a.commit("my-group", "test-topic", &[(1, 2), (2, 3), (31, 0)]).await.unwrap();
    t
}

#[tokio::test]
async fn the_seed_kafka_fixture_evaluates_through_ebb_check() {
    let t = broker().await;
    let dir = std::env::temp_dir().join(format!("ebb-check-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let servers = format!("bootstrapServers: {}", t.bootstrap());
    let target = [("bootstrapServers: kafka.svc:9092", servers.as_str()), ("tls: enable", "tls: disable")];

    // 1. sasl none, tls disabled.
    let file = dir.join("seed.yaml");
    let mut pairs = target.to_vec();
    pairs.push(("sasl: plaintext", "sasl: none"));
    std::fs::write(&file, rewrite(&seed(), &pairs)).unwrap();
    let out = check(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let trig = &v["triggers"][0];
    assert_eq!(trig["type"], "kafka");
    assert_eq!(trig["metricName"], "s0-kafka-test-topic");
    assert_eq!(trig["metricType"], "AverageValue");
    assert_eq!(trig["target"], 5.0);
    assert_eq!(trig["error"], serde_json::Value::Null, "{trig}");
    assert_eq!(trig["value"], 26.0, "{trig}");
    assert_eq!(trig["active"], true);
    assert_eq!(v["decision"]["active"], true);
    assert_eq!(v["decision"]["hpaDesiredReplicas"], 6, "ceil(26 / 5): {}", v["decision"]);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("metadata.version: accepted and ignored"), "{warnings}");

    // 2. sasl plaintext with credentials from a TriggerAuthentication: they reach the broker,
    //    which does not offer PLAIN; the trigger reports the error, never a value.
    let file = dir.join("seed-auth.yaml");
    let mut so = rewrite(&seed(), &target);
    so.push_str("    authenticationRef:\n      name: kafka-credentials\n");
    so.push_str(
        "---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: kafka-credentials\nspec:\n  secretTargetRef:\n  - {parameter: username, name: kafka-secrets, key: username}\n  - {parameter: password, name: kafka-secrets, key: password}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: kafka-secrets\nstringData:\n  username: svc\n  password: hunter2\n",
    );
    std::fs::write(&file, so).unwrap();
    let out = check(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let trig = &v["triggers"][0];
    assert_eq!(trig["value"], serde_json::Value::Null, "{trig}");
    let err = trig["error"].as_str().unwrap();
    assert!(err.contains("SASL PLAIN"), "{err}");
    assert!(!stdout.contains("hunter2") && !String::from_utf8_lossy(&out.stderr).contains("hunter2"));

    // 3. The seed untouched: sasl plaintext without credentials is one clear error.
    let file = dir.join("seed-as-is.yaml");
    std::fs::write(&file, seed()).unwrap();
    let out = check(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("spec.triggers[0] (kafka) metadata.username: sasl plaintext needs \"username\" from a TriggerAuthentication"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
