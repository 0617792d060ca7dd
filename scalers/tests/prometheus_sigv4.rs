//! SigV4 for Amazon Managed Service for Prometheus (`awsRegion` with AWS keys from the
//! TriggerAuthentication), checked against an independent implementation: a loopback server in
//! Python that recomputes each request's signature with botocore's `SigV4Auth` (service `aps`)
//! and answers a Prometheus query result only when it matches, 403 otherwise. Needs botocore in
//! the test virtualenv (`scripts/backends/moto.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod prometheus_common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use ebb_scalers::{Measurement, ScalerError};
use prometheus_common::{measure, scaler};

const KEY_ID: &str = "AKIDEBBTEST0001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEBBSECRET";
const TOKEN_KEY_ID: &str = "ASIAEBBTEST0002";
const TOKEN_SECRET: &str = "tempSecretKeyForSessionTokenCase0002";
const TOKEN: &str = "FQoGZXIvYXdzEBBSessionToken//+abc=";
const REGION: &str = "eu-west-1";
/// A PromQL query with spaces, quotes, braces and brackets: the encoding must survive signing.
const QUERY: &str = r#"sum(rate(http_requests_total{job="api server"}[2m])) + 0"#;

const VERIFIER: &str = r#"
import hmac, json, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION, QUERY = sys.argv[1], sys.argv[2]
KEYS = json.loads(sys.argv[3])  # access key id -> [secret, session token or null]

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def deny(self, why):
        self.answer(403, {"message": why})

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return self.deny("missing SigV4 authorization")
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        key_id, date, region, service, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        if key_id not in KEYS or region != REGION or service != "aps" or term != "aws4_request":
            return self.deny("wrong credential scope")
        if "host" not in signed or "x-amz-date" not in signed:
            return self.deny("host and x-amz-date must be signed")
        secret, token = KEYS[key_id]
        if token is not None and (self.headers.get("X-Amz-Security-Token") != token
                                  or "x-amz-security-token" not in signed):
            return self.deny("session token missing or unsigned")
        amz_date = self.headers["X-Amz-Date"]
        if not amz_date.startswith(date):
            return self.deny("date mismatch")
        path, _, query = self.path.partition("?")
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        req = AWSRequest(method="GET", url="http://" + self.headers["Host"] + path, params=params,
                         headers={h: self.headers[h] for h in signed})
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(key_id, secret, token), "aps", REGION)
        expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        if not hmac.compare_digest(expected, fields["Signature"]):
            return self.deny("The request signature we calculated does not match the signature you provided.")
        if path != "/workspaces/ws-ebb/api/v1/query" or dict(params).get("query") != QUERY:
            return self.answer(400, {"status": "error", "errorType": "bad_data", "error": "unexpected query"})
        self.answer(200, {"status": "success", "data": {"resultType": "vector",
                          "result": [{"metric": {}, "value": [1700000000, "42"]}]}})

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// The verifying server; killed on drop.
struct Verifier {
    child: Child,
    url: String,
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    let venv = std::env::var_os("EBB_TEST_VENV")
        .map_or_else(|| PathBuf::from("/var/tmp/ebb-test-venv"), PathBuf::from);
    let py = venv.join("bin/python");
    assert!(py.is_file(), "{} missing: run `bash scripts/backends/moto.sh` first", py.display());
    py
}

fn start() -> Verifier {
    let keys = serde_json::json!({
        KEY_ID: [SECRET, null],
        TOKEN_KEY_ID: [TOKEN_SECRET, TOKEN],
    });
    let mut child = Command::new(python())
        .args(["-u", "-c", VERIFIER, REGION, QUERY, &keys.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("verifier did not start: {line:?}"));
    Verifier { child, url: format!("http://127.0.0.1:{port}/workspaces/ws-ebb") }
}

fn metadata(server: &str) -> Vec<(&str, &str)> {
    vec![("serverAddress", server), ("query", QUERY), ("threshold", "10"), ("awsRegion", REGION)]
}

const ACTIVE_42: Measurement = Measurement { value: 42.0, active: true };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_queries_verify_with_botocore() {
    let v = start();

    let s = scaler(&metadata(&v.url), &[("awsAccessKeyID", KEY_ID), ("awsSecretAccessKey", SECRET)]);
    assert_eq!(measure(&s).await, Ok(ACTIVE_42));

    // Temporary keys: the session token is sent and signed.
    let s = scaler(
        &metadata(&v.url),
        &[("awsAccessKeyID", TOKEN_KEY_ID), ("awsSecretAccessKey", TOKEN_SECRET), ("awsSessionToken", TOKEN)],
    );
    assert_eq!(measure(&s).await, Ok(ACTIVE_42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_unauthorized_without_leaking_it() {
    let v = start();
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGSECRET";
    let s = scaler(&metadata(&v.url), &[("awsAccessKeyID", KEY_ID), ("awsSecretAccessKey", wrong)]);
    match measure(&s).await {
        Err(ScalerError::Unauthorized(m)) => {
            assert!(m.starts_with(&format!("Prometheus at {} answered 403 Forbidden", v.url)), "{m}");
            assert!(m.contains("AWS SigV4 (service aps, region eu-west-1, static keys)"), "{m}");
            assert!(m.contains("check awsRegion"), "{m}");
            assert!(!m.contains(wrong) && !m.contains(SECRET) && !m.contains(KEY_ID), "{m}");
        }
        other => panic!("wrong secret: {other:?}"),
    }
    assert!(!format!("{s:?}").contains(wrong), "Debug shows no secret");
}
