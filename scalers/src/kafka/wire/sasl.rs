//! SASL on a freshly opened connection: SaslHandshake names the mechanism, then
//! SaslAuthenticate carries PLAIN's single message or SCRAM's two round trips. Refusals become
//! `WireError::Auth` with the broker's reason; credentials never appear in messages.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::scram::{ScramClient, quote_peer};
use super::{Connection, WireError};
use crate::kafka::config::{SaslMechanism, SaslSettings};

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
    }
    Ok(())
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
