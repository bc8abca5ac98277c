//! Claims-based auth: SAS signatures checked against the broker's keys, test
//! JWTs checked against a signing key, and the tokens a connection holds.
//!
//! A SAS token is `SharedAccessSignature sr=…&sig=…&se=…&skn=…`, signed with
//! HMAC-SHA256 over `sr` as written, a newline, and `se`. It covers every
//! entity under `sr`. A JWT (type `jwt`) is an HS256 token whose `iss` is
//! the configured issuer; like an Entra token it covers the namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::address::entity_path;

type HmacSha256 = Hmac<Sha256>;

/// A shared access key: its rule name and value.
#[derive(Clone)]
pub struct SasKey {
    pub name: String,
    pub key: String,
}

impl std::fmt::Debug for SasKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SasKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The test issuer whose HS256 JWTs the broker accepts.
#[derive(Clone)]
pub struct JwtIssuer {
    pub issuer: String,
    pub signing_key: String,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused; the text never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unknown token type {0:?}")]
    UnknownType(String),
    #[error("the key name is not one of the broker's keys")]
    UnknownKey,
    #[error("invalid signature")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("jwt tokens are not enabled on this broker (start it with --jwt-issuer)")]
    JwtDisabled,
    #[error("the jwt issuer is not the broker's test issuer")]
    WrongIssuer,
}

/// A verified token: what it covers and until when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Entity path prefix (`hub`, `hub/consumergroups/cg`…); empty covers all.
    pub scope: String,
    pub expires_at: i64,
}

/// Checks tokens against the broker's keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub keys: Vec<SasKey>,
    pub jwt: Option<JwtIssuer>,
}

impl Verifier {
    /// Verifies a put-token body of the given `type`.
    pub fn verify(&self, token_type: &str, token: &str, now: i64) -> Result<Grant, TokenError> {
        match token_type {
            "servicebus.windows.net:sastoken" => self.verify_sas(token, now),
            "jwt" => self.verify_jwt(token, now),
            other => Err(TokenError::UnknownType(other.chars().take(64).collect())),
        }
    }

    fn verify_sas(&self, token: &str, now: i64) -> Result<Grant, TokenError> {
        let fields = token
            .strip_prefix("SharedAccessSignature ")
            .ok_or(TokenError::Malformed("expected 'SharedAccessSignature '"))?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for pair in fields.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or(TokenError::Malformed("field without '='"))?;
            match k {
                "sr" => sr = Some(v),
                "sig" => sig = Some(v),
                "se" => se = Some(v),
                "skn" => skn = Some(v),
                _ => {}
            }
        }
        let sr = sr.ok_or(TokenError::Malformed("no sr"))?;
        let sig = sig.ok_or(TokenError::Malformed("no sig"))?;
        let se = se.ok_or(TokenError::Malformed("no se"))?;
        let skn = skn.ok_or(TokenError::Malformed("no skn"))?;
        let expires_at: i64 = se
            .parse()
            .map_err(|_| TokenError::Malformed("se is not a number"))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.name == url_decode(skn))
            .ok_or(TokenError::UnknownKey)?;
        let want = sas_signature(&key.key, sr, expires_at);
        let given = url_decode(sig);
        if !constant_time_eq(want.as_bytes(), given.as_bytes()) {
            return Err(TokenError::BadSignature);
        }
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            scope: entity_path(&url_decode(sr)),
            expires_at,
        })
    }

    fn verify_jwt(&self, token: &str, now: i64) -> Result<Grant, TokenError> {
        let issuer = self.jwt.as_ref().ok_or(TokenError::JwtDisabled)?;
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("a jwt has three parts"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut mac = HmacSha256::new_from_slice(issuer.signing_key.as_bytes())
            .map_err(|_| TokenError::Malformed("signing key"))?;
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        let given = b64
            .decode(signature)
            .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        mac.verify_slice(&given)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: serde_json::Value = b64
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed("payload is not base64url JSON"))?;
        if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        let expires_at = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(TokenError::Malformed("no exp claim"))?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            scope: String::new(),
            expires_at,
        })
    }
}

/// The base64 HMAC-SHA256 of `sr` (as written) and `se`, keyed by the key's
/// text, as Event Hubs signs SAS tokens.
pub fn sas_signature(key: &str, sr: &str, expires_at: i64) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{sr}\n{expires_at}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A SAS token for `resource` (an `sb://` URL), as clients build them.
pub fn sas_token(key: &SasKey, resource: &str, expires_at: i64) -> String {
    let sr = url_encode(resource);
    let sig = url_encode(&sas_signature(&key.key, &sr, expires_at));
    format!(
        "SharedAccessSignature sr={sr}&sig={sig}&se={expires_at}&skn={}",
        url_encode(&key.name)
    )
}

/// An HS256 JWT from the test issuer, for tests of Entra auth paths.
pub fn test_jwt(issuer: &JwtIssuer, audience: &str, expires_at: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(
        serde_json::json!({"iss": issuer.issuer, "aud": audience, "exp": expires_at}).to_string(),
    );
    let Ok(mut mac) = HmacSha256::new_from_slice(issuer.signing_key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{header}.{payload}").as_bytes());
    format!(
        "{header}.{payload}.{}",
        b64.encode(mac.finalize().into_bytes())
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The tokens one connection has put, by scope.
#[derive(Debug, Clone, Default)]
pub struct ConnectionTokens {
    grants: Arc<Mutex<HashMap<String, i64>>>,
}

impl ConnectionTokens {
    pub fn put(&self, grant: Grant) {
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        let entry = grants.entry(grant.scope).or_insert(grant.expires_at);
        *entry = (*entry).max(grant.expires_at);
    }

    /// Until when (unix seconds) the connection may use `path`, if at all.
    pub fn valid_until(&self, path: &str, now: i64) -> Option<i64> {
        let grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        grants
            .iter()
            .filter(|(scope, expiry)| **expiry > now && covers(scope, path))
            .map(|(_, expiry)| *expiry)
            .max()
    }
}

/// Whether a token scope covers an entity path, on segment boundaries.
fn covers(scope: &str, path: &str) -> bool {
    scope.is_empty()
        || path == scope
        || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier {
            keys: vec![SasKey {
                name: "RootManageSharedAccessKey".into(),
                key: "SAS_KEY_VALUE".into(),
            }],
            jwt: Some(JwtIssuer {
                issuer: "test-issuer".into(),
                signing_key: "k".into(),
            }),
        }
    }

    #[test]
    fn sas_tokens_are_checked_and_cover_what_is_under_them() {
        let v = verifier();
        let token = sas_token(&v.keys[0], "sb://localhost:5672/eh1", 2_000);
        let grant = v
            .verify("servicebus.windows.net:sastoken", &token, 1_000)
            .unwrap();
        assert_eq!(
            grant,
            Grant {
                scope: "eh1".into(),
                expires_at: 2_000
            }
        );
        assert_eq!(
            v.verify("servicebus.windows.net:sastoken", &token, 2_000),
            Err(TokenError::Expired)
        );
        let wrong = sas_token(
            &SasKey {
                name: "RootManageSharedAccessKey".into(),
                key: "nope".into(),
            },
            "sb://localhost/eh1",
            2_000,
        );
        assert_eq!(
            v.verify("servicebus.windows.net:sastoken", &wrong, 1_000),
            Err(TokenError::BadSignature)
        );
        let tokens = ConnectionTokens::default();
        tokens.put(grant);
        assert_eq!(
            tokens.valid_until("eh1/consumergroups/$default/partitions/0", 1_500),
            Some(2_000)
        );
        assert_eq!(tokens.valid_until("eh10", 1_500), None);
        assert_eq!(tokens.valid_until("eh1", 2_500), None);
    }

    #[test]
    fn test_jwts_are_accepted_from_the_test_issuer_only() {
        let v = verifier();
        let issuer = v.jwt.clone().unwrap();
        let token = test_jwt(&issuer, "https://eventhubs.azure.net/", 5_000);
        assert_eq!(v.verify("jwt", &token, 10).unwrap().expires_at, 5_000);
        let other = test_jwt(
            &JwtIssuer {
                issuer: "test-issuer".into(),
                signing_key: "x".into(),
            },
            "a",
            5_000,
        );
        assert_eq!(v.verify("jwt", &other, 10), Err(TokenError::BadSignature));
        let off = Verifier { jwt: None, ..v };
        assert_eq!(off.verify("jwt", &token, 10), Err(TokenError::JwtDisabled));
    }
}
