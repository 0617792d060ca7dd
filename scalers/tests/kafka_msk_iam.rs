//! The AWS MSK IAM OAUTHBEARER token against an independent oracle: botocore (Python, from the
//! test venv, `EBB_TEST_VENV`, default /var/tmp/ebb-test-venv) presigns the same URL with
//! `SigV4QueryAuth` for service `kafka-cluster`, 900 s, at the same instant with the same keys —
//! the way AWS's MSK IAM signers build it — and every query parameter, the signature included,
//! must match what ebb's token decodes to. Plus the RFC 7628 framing of the initial response.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ebb_scalers::kafka::wire::msk_iam;

const ORACLE: &str = r#"
import sys, datetime
from unittest import mock
import botocore.auth, botocore.credentials
from botocore.awsrequest import AWSRequest
region, ak, sk, tok, epoch = sys.argv[1:6]
creds = botocore.credentials.Credentials(ak, sk, tok or None)
req = AWSRequest(method="GET", url=f"https://kafka.{region}.amazonaws.com/", params={"Action": "kafka-cluster:Connect"})
fixed = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).replace(tzinfo=None)
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    botocore.auth.SigV4QueryAuth(creds, "kafka-cluster", region, expires=900).add_auth(req)
print(req.prepare().url)
"#;

fn query(url: &str) -> BTreeMap<String, String> {
    let (_, q) = url.split_once('?').unwrap();
    q.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn botocore(region: &str, ak: &str, sk: &str, tok: &str, epoch: u64) -> String {
    let venv = std::env::var("EBB_TEST_VENV").unwrap_or_else(|_| "/var/tmp/ebb-test-venv".into());
    let out = Command::new(format!("{venv}/bin/python"))
        .args(["-c", ORACLE, region, ak, sk, tok, &epoch.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("botocore oracle: cannot run {venv}/bin/python ({e}); scripts/test creates the venv")
        });
    assert!(out.status.success(), "botocore oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn token_matches_botocore_presigning() {
    let epoch = 1_767_323_045; // 2026-01-02T03:04:05Z
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    for (region, session) in [("eu-west-1", ""), ("us-east-1", "FQoGZXIvYXdzEJr//////////wEaDOgm+example=")] {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            (!session.is_empty()).then(|| session.to_owned()),
            None,
            "test",
        );
        let token = msk_iam::token(region, &creds, now).unwrap();
        assert!(
            !token.contains('=') && !token.contains('+') && !token.contains('/'),
            "base64url, no padding"
        );
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        assert!(url.starts_with(&format!("https://kafka.{region}.amazonaws.com/?")), "{url}");
        let ours = query(&url);
        let oracle = query(&botocore(
            region,
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session,
            epoch,
        ));
        assert_eq!(ours.get("User-Agent").map(String::as_str), Some(msk_iam::USER_AGENT));
        let mut ours_signed = ours.clone();
        ours_signed.remove("User-Agent");
        assert_eq!(ours_signed, oracle, "{region}: every signed parameter equals botocore's");
        assert!(ours["X-Amz-Signature"].len() == 64 && ours["X-Amz-Expires"] == "900");
        assert_eq!(ours.contains_key("X-Amz-Security-Token"), !session.is_empty());
    }
}

#[test]
fn initial_response_is_rfc7628_framed_and_regions_are_checked() {
    assert_eq!(msk_iam::initial_response("abc"), b"n,,\x01auth=Bearer abc\x01\x01".to_vec());
    let creds = Credentials::new("a", "b", None, None, "test");
    for bad in ["", "eu-west-1.evil.com/x", "eu west"] {
        assert!(msk_iam::token(bad, &creds, SystemTime::now()).is_err(), "{bad:?}");
    }
}
