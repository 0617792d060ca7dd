//! The client side of SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512, as Kafka brokers
//! speak it: no channel binding (`n,,`), no SASLprep of the password (Kafka does none), and the
//! server's signature verified before the exchange counts as successful.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match self {
            Self::Sha256 => Hmac::<Sha256>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
            Self::Sha512 => Hmac::<Sha512>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Self::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// Highest iteration count accepted from a server (guards against a hostile broker making the
/// client spin): Kafka's own limit (`ScramMechanism`, 4096..=16384).
const MAX_ITERATIONS: u32 = 16_384;

/// Characters of server-written text quoted in an error.
const QUOTED_CHARS: usize = 100;

/// Server-written text for an error message: at most `QUOTED_CHARS` characters, control
/// characters escaped, so a hostile broker can neither flood status and events nor inject
/// control sequences into them.
pub fn quote_peer(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(QUOTED_CHARS).flat_map(char::escape_debug).collect();
    if chars.next().is_some() {
        out.push_str("… (truncated)");
    }
    out
}

/// One SCRAM exchange, client side.
#[derive(Debug)]
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

/// `=` → `=3D`, `,` → `=2C` (RFC 5802 §5.1 saslname).
fn escape_username(u: &str) -> String {
    u.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Result<Self, String> {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness for the SCRAM nonce: {e}"))?;
        Ok(Self::with_nonce(hash, username, password, &B64.encode(raw)))
    }

    /// Starts an exchange with the given client nonce (tests use the RFC's).
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        Self {
            hash,
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={},r={nonce}", escape_username(username)),
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server-first message with the client-final message (carrying the proof).
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("server refused: {}", quote_peer(v))),
                Some(("m", _)) => return Err("server requires an unsupported SCRAM extension".into()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() <= self.client_nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt =
            B64.decode(salt.ok_or("server-first message has no salt")?).map_err(|_| "salt is not base64")?;
        let iterations: u32 = iterations
            .ok_or("server-first message has no iteration count")?
            .parse()
            .map_err(|_| "iteration count is not a number")?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("iteration count {iterations} is outside 1..={MAX_ITERATIONS}"));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: the server proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("server refused: {}", quote_peer(e)));
        }
        let v = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or("server-final message has no verifier")?;
        let got = B64.decode(v).map_err(|_| "server verifier is not base64")?;
        match &self.expected_server_signature {
            Some(want) if *want == got => Ok(()),
            Some(_) => Err("server signature does not match: the broker does not know this password".into()),
            None => Err("server-final message before server-first".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_sha256_vector() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            c.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        let forged = c.verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap_err();
        assert!(forged.contains("does not match"), "{forged}");
    }

    /// SHA-512 has no RFC vector; expected values computed independently with Python's
    /// hashlib.pbkdf2_hmac and hmac for the same inputs.
    #[test]
    fn sha512_matches_an_independent_computation() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha512, "ebb-user", "s3cr=t,pw", "q4VYcsnqMn1k0Z+7UmUyDw");
        let server_first = "r=q4VYcsnqMn1k0Z+7UmUyDwSERVERNONCE123,s=c2FsdHktc2FsdA==,i=4096";
        assert_eq!(
            c.client_final(server_first).unwrap(),
            "c=biws,r=q4VYcsnqMn1k0Z+7UmUyDwSERVERNONCE123,p=f+iGiDewBMdMcUx1uA+yZdFxn0L6qJ4CQjEC7246UncrLWRBLAKmZipp6tFF9bSf3m0roJMOHznWq5D1yf6Kcg=="
        );
        c.verify_server_final(
            "v=yfc4/LOMNUT0er2bNVTifH5CgS2dWdvx9lkni+EALi4VaS0cvi8AXqq4IoYmKh8ibuEm3+jXI0pIMLyq4wzAGg==",
        )
        .unwrap();
    }

    #[test]
    fn usernames_are_escaped_and_nonces_random() {
        let c = ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", "p", "n0");
        assert_eq!(c.client_first(), "n,,n=a=3Db=2Cc,r=n0");
        let a = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        let b = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        assert_ne!(a.client_first(), b.client_first());
        assert_eq!(a.client_first().len(), "n,,n=u,r=".len() + 32);
    }

    /// Kafka's SCRAM mechanisms accept 4096..=16384 iterations (`ScramMechanism`); a server
    /// asking for more only makes the client spin.
    #[test]
    fn iteration_counts_above_kafkas_limit_are_refused() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "n0");
        c.client_final("r=n0x,s=AAAA,i=16384").unwrap();
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "n0");
        let e = c.client_final("r=n0x,s=AAAA,i=16385").unwrap_err();
        assert!(e.contains("outside 1..=16384"), "{e}");
    }

    /// What the server writes is quoted in errors (which reach status and events) only in part.
    #[test]
    fn server_text_in_errors_is_bounded_and_quoted() {
        let long = format!("e={}", "x".repeat(10_000));
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "n0");
        let e = c.client_final(&long).unwrap_err();
        assert!(e.len() < 200 && e.starts_with("server refused: xxx"), "{} bytes: {}", e.len(), &e[..60]);
        assert!(e.ends_with("(truncated)"), "{e}");
        let e = c.verify_server_final(&long).unwrap_err();
        assert!(e.len() < 200, "{}", e.len());
        let e = c.client_final("e=bad\u{1b}[2J").unwrap_err();
        assert_eq!(e, "server refused: bad\\u{1b}[2J");
    }

    #[test]
    fn rejects_bad_server_messages() {
        let cases: &[(&str, &str)] = &[
            ("r=other,s=AAAA,i=4096", "does not extend the client nonce"),
            ("r=n0,s=AAAA,i=4096", "does not extend the client nonce"),
            ("r=n0x,i=4096", "no salt"),
            ("r=n0x,s=AAAA", "no iteration count"),
            ("r=n0x,s=AAAA,i=0", "outside"),
            ("r=n0x,s=AAAA,i=99999999", "outside"),
            ("r=n0x,s=***,i=4096", "not base64"),
            ("e=unknown-user", "server refused: unknown-user"),
            ("m=ext,r=n0x,s=AAAA,i=4096", "unsupported SCRAM extension"),
        ];
        for (msg, want) in cases {
            let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "n0");
            let e = c.client_final(msg).unwrap_err();
            assert!(e.contains(want), "{msg}: {e}");
        }
        let c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "n0");
        assert!(c.verify_server_final("e=invalid-proof").unwrap_err().contains("invalid-proof"));
        assert!(c.verify_server_final("v=AAAA").unwrap_err().contains("before server-first"));
    }
}
