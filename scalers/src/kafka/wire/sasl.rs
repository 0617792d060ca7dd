//! SASL on a freshly opened connection: SaslHandshake names the mechanism, then
//! SaslAuthenticate carries PLAIN's single message, SCRAM's two round trips, or OAUTHBEARER's
//! RFC 7628 initial response with an OAuth2 token (`bearer`, from the token endpoint or its
//! cache, with the SASL extensions) or an AWS MSK IAM token signed at connect time. Refusals become
//! `WireError::Auth` with the broker's reason; credentials never appear in messages.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;

use super::scram::{ScramClient, quote_peer};
use super::{Connection, WireError, msk_iam, oauth};
use crate::aws::{AwsClients, AwsCredentials, ClientKey};
use crate::kafka::config::{MskIam, SaslMechanism, SaslSettings};

/// Authenticates `conn` with `sasl`. A broker that drops the connection instead of answering
/// (some do on an unknown mechanism or user) is reported as a refusal, not as a network fault.
pub async fn authenticate(conn: &mut Connection, sasl: &SaslSettings) -> Result<(), WireError> {
    let mech = sasl.mechanism.name();
    match run(conn, sasl).await {
        Err(WireError::Io(m)) => Err(WireError::Auth(format!(
            "the broker closed the connection during SASL {mech} authentication ({m}); check the sasl mechanism and the credentials"
        ))),
        other => other,
    }
}

async fn run(conn: &mut Connection, sasl: &SaslSettings) -> Result<(), WireError> {
    let addr = conn.addr().to_owned();
    let mech = sasl.mechanism.name();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(mech);
    let (_, resp) = conn.send(&hs).await?;
    if resp.error_code != 0 {
        let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(WireError::Auth(format!(
            "{addr}: the broker does not accept SASL {mech} (error code {}; it offers: {})",
            resp.error_code,
            if offered.is_empty() { "none".to_owned() } else { quote_peer(&offered.join(", ")) }
        )));
    }
    match sasl.mechanism {
        SaslMechanism::Plain => {
            let msg = format!("\0{}\0{}", sasl.username, sasl.password);
            exchange(conn, mech, msg.into_bytes()).await?;
        }
        SaslMechanism::Scram(hash) => {
            let refused = |e: String| WireError::Auth(format!("{addr}: SASL {mech} failed: {e}"));
            let mut client = ScramClient::new(hash, &sasl.username, &sasl.password).map_err(refused)?;
            let server_first = exchange(conn, mech, client.client_first().into_bytes()).await?;
            let server_first = String::from_utf8(server_first.to_vec())
                .map_err(|_| refused("server-first message is not UTF-8".into()))?;
            let client_final = client.client_final(&server_first).map_err(refused)?;
            let server_final = exchange(conn, mech, client_final.into_bytes()).await?;
            let server_final = String::from_utf8(server_final.to_vec())
                .map_err(|_| refused("server-final message is not UTF-8".into()))?;
            client.verify_server_final(&server_final).map_err(refused)?;
        }
        SaslMechanism::OAuthBearer => {
            let refused = |e: String| WireError::Auth(format!("{addr}: SASL {mech}: {e}"));
            let first = match (&sasl.oauth, &sasl.msk_iam) {
                (Some(o), _) => {
                    let token = oauth::token(o, sasl).await.map_err(refused)?;
                    oauth::initial_response(&token, &o.extensions)
                }
                (None, Some(msk)) => {
                    let creds = msk_credentials(msk).await.map_err(refused)?;
                    let token = msk_iam::token(&msk.region, &creds, SystemTime::now()).map_err(refused)?;
                    msk_iam::initial_response(&token)
                }
                (None, None) => return Err(refused("no token provider configured".into())),
            };
            let challenge = match exchange(conn, mech, first).await {
                Ok(c) => c,
                Err(e) => {
                    if let Some(o) = &sasl.oauth {
                        oauth::forget(o, sasl);
                    }
                    return Err(e);
                }
            };
            if !challenge.is_empty() {
                // RFC 7628 §3.2.2: a refusal comes as a JSON error challenge; the client answers
                // with a lone 0x01 and the server then fails the exchange.
                let status = quote_peer(&String::from_utf8_lossy(&challenge));
                let _ = exchange(conn, mech, vec![0x01]).await;
                if let Some(o) = &sasl.oauth {
                    oauth::forget(o, sasl);
                }
                return Err(WireError::Auth(format!(
                    "{addr}: the broker refused the SASL {mech} token: {status}"
                )));
            }
        }
    }
    Ok(())
}

/// The identity that signs the MSK IAM token: static keys as given, otherwise the AWS SDK's
/// provider for the identity (ebb's own chain, or a role assumed through STS), which caches.
async fn msk_credentials(msk: &MskIam) -> Result<Credentials, String> {
    if let AwsCredentials::Static { access_key_id, secret_access_key, session_token } = &msk.credentials {
        return Ok(Credentials::new(
            access_key_id.expose(),
            secret_access_key.expose(),
            session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "ebb-trigger-authentication",
        ));
    }
    let clients = AwsClients::shared(ClientKey {
        region: msk.region.clone(),
        endpoint: None,
        credentials: msk.credentials.clone(),
    });
    let provider = clients
        .credentials_provider()
        .await
        .ok_or_else(|| format!("no AWS credentials provider for {}", msk.credentials.describe()))?;
    provider.provide_credentials().await.map_err(|e| {
        format!("cannot obtain AWS credentials ({}) for the MSK IAM token: {e}", msk.credentials.describe())
    })
}

async fn exchange(conn: &mut Connection, mech: &str, bytes: Vec<u8>) -> Result<Bytes, WireError> {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from(bytes);
    let (_, resp) = conn.send(&req).await?;
    if resp.error_code != 0 {
        let why =
            resp.error_message.as_ref().map_or("no reason given".to_owned(), |m| quote_peer(m.as_str()));
        return Err(WireError::Auth(format!(
            "{}: the broker refused SASL {mech} authentication (error code {}: {why})",
            conn.addr(),
            resp.error_code
        )));
    }
    Ok(resp.auth_bytes)
}
