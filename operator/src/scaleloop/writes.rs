//! The scale loop's API calls, each bounded by the write timeout, and the bounded reason a
//! failed call is counted under (`ebb_status_write_failures_total`,
//! `ebb_scale_write_failures_total`): the label never carries an error message.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// A failed or abandoned call.
#[derive(Debug)]
pub struct Failed {
    /// One of [`crate::metrics::WRITE_FAILURE_REASONS`].
    pub reason: &'static str,
    /// What happened, for logs and events.
    pub message: String,
}

/// Runs `call`, abandoning it after `timeout`.
pub async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failed> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Failed { reason: reason(&e), message: e.to_string() }),
        Err(_) => Err(Failed { reason: "timeout", message: format!("no answer within {timeout:?}") }),
    }
}

/// The bounded reason of an error.
pub fn reason(e: &Error) -> &'static str {
    match e {
        Error::Kube(k) if crate::leader::is_not_leader(k) => "not_leader",
        Error::Kube(kube::Error::Api(s)) => match s.code {
            409 => "conflict",
            429 => "throttled",
            500..=599 => "server_error",
            _ => "rejected",
        },
        Error::Kube(_) => "transport",
        Error::TargetNotFound(_) => "rejected",
        // Refused before any request: the object or the operator is wrong, not the call.
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_past_the_timeout_is_abandoned() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(())
        };
        let e = bounded(Duration::from_secs(2), slow).await.unwrap_err();
        assert_eq!(e.reason, "timeout");
        assert!(e.message.contains("2s"), "{}", e.message);
    }

    #[test]
    fn reasons_are_bounded() {
        let api = |code: u16| {
            Error::Kube(kube::Error::Api(kube::core::Status::failure("x", "Reason").with_code(code).boxed()))
        };
        assert_eq!(reason(&api(409)), "conflict");
        assert_eq!(reason(&api(429)), "throttled");
        assert_eq!(reason(&api(503)), "server_error");
        assert_eq!(reason(&api(422)), "rejected");
        let negative = Error::NegativeReplicas {
            kind: "Deployment".into(),
            namespace: "a".into(),
            name: "b".into(),
            replicas: -1,
        };
        assert_eq!(reason(&negative), "invalid");
        let refused = crate::leader::NotLeader { method: "PATCH".into(), path: "/x".into() };
        assert_eq!(reason(&Error::Kube(kube::Error::Service(Box::new(refused)))), "not_leader");
        for r in [409, 429, 503, 422].map(|c| reason(&api(c))) {
            assert!(crate::metrics::WRITE_FAILURE_REASONS.contains(&r));
        }
    }
}
