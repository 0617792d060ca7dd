#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ebb check` on the seed SQS fixture against moto: the fixture, rewritten to point
//! `awsEndpoint` at moto and to reference a TriggerAuthentication with dummy static keys (or a
//! podIdentity role assumed through moto's STS), prints the queue's live value; the keys never
//! appear in the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ebb_scalers::aws::{AwsClients, AwsCredentials, ClientKey, Secret};
use ebb_testbackends::moto::Moto;

const SECRET_KEY: &str = "cliSecretKeyMustNeverBeShown0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ebb(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ebb"));
    c.args(args).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The seed fixture with `awsEndpoint` and an `authenticationRef`, followed by `extra` documents.
fn fixture(dir: &Path, endpoint: &str, auth: &str, extra: &str) -> String {
    let seed = std::fs::read_to_string(root().join("tests/fixtures/seed/sqs-queue-worker.yaml")).unwrap();
    assert!(seed.contains("      awsRegion: us-east-1\n"), "the seed changed:\n{seed}");
    let rewritten = seed.replace(
        "      awsRegion: us-east-1\n",
        &format!("      awsRegion: us-east-1\n      awsEndpoint: {endpoint}\n    authenticationRef:\n      name: {auth}\n"),
    );
    let path = dir.join(format!("{auth}.yaml"));
    std::fs::write(&path, format!("{rewritten}---\n{extra}")).unwrap();
    path.to_str().unwrap().to_owned()
}

const STATIC_KEYS: &str = "apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: aws-keys
spec:
  secretTargetRef:
  - {parameter: awsAccessKeyID, name: aws-keys, key: id}
  - {parameter: awsSecretAccessKey, name: aws-keys, key: secret}
---
apiVersion: v1
kind: Secret
metadata:
  name: aws-keys
stringData:
  id: AKIAEBBCLITEST
  secret: cliSecretKeyMustNeverBeShown0123456789
";

const POD_IDENTITY: &str = "apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: aws-role
spec:
  podIdentity:
    provider: aws
    roleArn: arn:aws:iam::123456789012:role/queue-reader
";

/// Queue `orders` (the seed's name) holding 12 visible messages.
async fn seed_queue(endpoint: &str) {
    let admin = AwsClients::shared(ClientKey {
        region: "us-east-1".into(),
        endpoint: Some(endpoint.to_owned()),
        credentials: AwsCredentials::Static {
            access_key_id: Secret::new("AKIAEBBADMIN"),
            secret_access_key: Secret::new("admin"),
            session_token: None,
        },
    });
    let sqs = admin.sqs().await;
    let url = sqs.create_queue().queue_name("orders").send().await.unwrap().queue_url().unwrap().to_owned();
    for i in 0..12 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebb-check-aws-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn check_prints_the_live_queue_length_of_the_seed_fixture() {
    let moto = Moto::start().unwrap();
    let ep = moto.endpoint();
    seed_queue(&ep).await;
    let dir = temp_dir("static");
    let file = fixture(&dir, &ep, "aws-keys", STATIC_KEYS);

    let out = ebb(&["check", "-f", &file, "-o", "json", "--current-replicas", "2"], &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(SECRET_KEY) && !stderr.contains(SECRET_KEY), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let t = &v["triggers"][0];
    assert_eq!(t["metricName"], "s0-aws-sqs-orders");
    assert_eq!(t["error"], serde_json::Value::Null, "{t}");
    assert_eq!(t["value"], 12.0);
    assert_eq!(t["target"], 5.0);
    assert_eq!(t["active"], true);
    // 12 messages at 5 per replica: the HPA wants 3.
    assert_eq!(v["decision"]["hpaDesiredReplicas"], 3, "{v}");

    let text = ebb(&["check", "-f", &file], &[]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    assert!(shown.contains("    metric   s0-aws-sqs-orders (AverageValue)\n"), "{shown}");
    assert!(shown.contains("    value    12  active=true\n"), "{shown}");
    assert!(
        shown.contains("SQS queue https://sqs.us-east-1.amazonaws.com/123456789/orders in us-east-1"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET_KEY), "{shown}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn check_assumes_the_pod_identity_role_through_sts() {
    let moto = Moto::start().unwrap();
    let ep = moto.endpoint();
    seed_queue(&ep).await;
    let dir = temp_dir("role");
    let file = fixture(&dir, &ep, "aws-role", POD_IDENTITY);
    // ebb's own identity (the base of the assumed role) comes from the environment here, and STS
    // is moto too. HOME points at an empty directory so no local AWS profile is read.
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAEBBOPERATOR"),
        ("AWS_SECRET_ACCESS_KEY", "operator-secret"),
        ("AWS_ENDPOINT_URL_STS", ep.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", dir.to_str().unwrap()),
    ];
    let out = ebb(&["check", "-f", &file, "-o", "json"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let t = &v["triggers"][0];
    assert_eq!(t["error"], serde_json::Value::Null, "{t}");
    assert_eq!(t["value"], 12.0);
    assert!(
        t["description"]
            .as_str()
            .unwrap()
            .contains("role arn:aws:iam::123456789012:role/queue-reader assumed with ebb's own AWS identity"),
        "{t}"
    );

    // Without STS reachable the role cannot be assumed: an error naming the queue, not a value.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down_ep = format!("http://127.0.0.1:{down}");
    let mut env_down = env;
    env_down[2] = ("AWS_ENDPOINT_URL_STS", down_ep.as_str());
    let out = ebb(&["check", "-f", &file, "-o", "json"], &env_down);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = v["triggers"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(err.starts_with("SQS queue \"orders\": GetQueueAttributes: "), "{v}");
    assert_eq!(v["triggers"][0]["value"], serde_json::Value::Null);
    std::fs::remove_dir_all(dir).unwrap();
}
