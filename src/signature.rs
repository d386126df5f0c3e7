//! Standard Webhooks 1.0 signatures (also Svix's, so Clerk's and Stytch's): HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, checked in constant time against every `v1,` entry of the header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// More `v1,` entries than any sender rotates through; a longer header is refused unread.
const MAX_SIGNATURE_ENTRIES: usize = 16;

/// Why a request's signature was not accepted. Every variant but `UnusableSecret` is the
/// sender's problem (401); `UnusableSecret` is a configuration problem (500).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A required header is absent or not visible ASCII.
    #[error("the {0} header is missing or not readable")]
    MissingHeader(&'static str),
    /// The timestamp header is not a whole number of seconds.
    #[error("the webhook timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// The timestamp is further from now than the tolerance allows.
    #[error("the webhook timestamp is {0} s away from now, outside the allowed window")]
    TimestampOutOfTolerance(i64),
    /// The signature header lists more entries than any sender uses.
    #[error("the signature header lists more than {MAX_SIGNATURE_ENTRIES} signatures")]
    TooManySignatures,
    /// A signed token names a key the provider's published key set lacks (maybe rotated).
    #[error("the token is signed with a key the provider's key set does not hold")]
    UnknownKey,
    /// A signed token (JWT) is malformed or its signature does not verify. The reason is
    /// this function's own words: the token is unverified input and is never quoted.
    #[error("the signed token is not valid: {0}")]
    InvalidToken(&'static str),
    /// No entry of the signature header matches any configured secret.
    #[error("no signature in the header matches the configured signing secret")]
    NoMatch,
    /// None of the configured secrets can be used as a key.
    #[error("no configured signing secret is a usable whsec_ secret")]
    UnusableSecret,
}

/// The parts of a Standard Webhooks request that are signed, as they arrived.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// `webhook-id` / `svix-id`.
    pub id: &'a str,
    /// `webhook-timestamp` / `svix-timestamp`, Unix seconds as sent.
    pub timestamp: &'a str,
    /// `webhook-signature` / `svix-signature`: space-separated `v1,<base64>` entries.
    pub signatures: &'a str,
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// Decodes a signing secret: `whsec_<base64>`, Supabase's `v1,whsec_<base64>`, or bare base64.
pub fn decode_signing_secret(secret: &str) -> Option<Vec<u8>> {
    let s = secret.trim();
    let s = s.strip_prefix("v1,").unwrap_or(s);
    let s = s.strip_prefix("whsec_").unwrap_or(s);
    STANDARD.decode(s).ok().filter(|k| !k.is_empty())
}

/// Verifies a Standard Webhooks message against any of `secrets` (several during rotation),
/// with the timestamp within `tolerance` of `now` in both directions.
pub fn verify_standard_webhook<S: AsRef<str>>(
    message: &SignedMessage<'_>,
    secrets: &[S],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp: i64 = message
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::InvalidTimestamp)?;
    let now = unix_seconds(now);
    let skew = now.saturating_sub(timestamp);
    if skew.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::TimestampOutOfTolerance(skew));
    }

    let candidates = signature_candidates(message.signatures)?;
    let keys: Vec<Vec<u8>> = secrets
        .iter()
        .filter_map(|s| decode_signing_secret(s.as_ref()))
        .collect();
    if keys.is_empty() {
        return Err(SignatureError::UnusableSecret);
    }

    for key in &keys {
        let mut mac =
            HmacSha256::new_from_slice(key).map_err(|_| SignatureError::UnusableSecret)?;
        mac.update(message.id.as_bytes());
        mac.update(b".");
        mac.update(message.timestamp.as_bytes());
        mac.update(b".");
        mac.update(message.body);
        // verify_slice compares in constant time.
        if candidates
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

/// The decoded `v1,` signatures of a header; other versions and undecodable entries are skipped.
fn signature_candidates(header: &str) -> Result<Vec<Vec<u8>>, SignatureError> {
    let entries: Vec<&str> = header
        .split_whitespace()
        .take(MAX_SIGNATURE_ENTRIES + 1)
        .collect();
    if entries.len() > MAX_SIGNATURE_ENTRIES {
        return Err(SignatureError::TooManySignatures);
    }
    Ok(entries
        .into_iter()
        .filter_map(|e| e.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter(|sig| sig.len() == 32)
        .collect())
}

/// Checks a shared secret sent verbatim in a header (Okta, Auth0, Supabase database webhooks)
/// against the configured values, in constant time. Returns the header's error when it is
/// missing, `NoMatch` when no configured value equals it.
pub fn verify_shared_header<S: AsRef<str>>(
    value: Option<&[u8]>,
    header: &'static str,
    secrets: &[S],
) -> Result<(), SignatureError> {
    use subtle::ConstantTimeEq;
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::MissingHeader(header))?;
    let configured: Vec<&str> = secrets
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
        .collect();
    if configured.is_empty() {
        return Err(SignatureError::UnusableSecret);
    }
    // Every configured value is compared, so timing does not tell which one matched.
    let matched = configured.iter().fold(subtle::Choice::from(0), |acc, s| {
        acc | s.as_bytes().ct_eq(value)
    });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// Checks `expected` (a raw HMAC-SHA256 tag) against HMAC-SHA256 of `parts`, concatenated,
/// under `key`, in constant time. For providers that sign differently from Standard Webhooks.
pub fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// HMAC-SHA256 of `parts`, concatenated, under `key`, as lowercase hex. Used by tests and the
/// demo to sign like WorkOS does.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes lowercase or uppercase hex; `None` for anything else.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Signs a message the way a Standard Webhooks sender does: returns `v1,<base64>`.
/// Used by tests and the demo; the function itself only verifies.
pub fn sign_standard_webhook(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = decode_signing_secret(secret)?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    //! The official vectors from ../shared/reference/vectors.md (Standard Webhooks' and Svix's
    //! Rust libraries, `test_sign`), with "now" injected because the vector's timestamp is old.
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: &str = "1649367553";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn at(offset: i64) -> SystemTime {
        let t = 1_649_367_553_i64 + offset;
        UNIX_EPOCH + Duration::from_secs(t as u64)
    }

    fn verify(signatures: &str, secrets: &[&str], now: SystemTime) -> Result<(), SignatureError> {
        verify_with(ID, TS, signatures, BODY, secrets, now)
    }

    fn verify_with(
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        secrets: &[&str],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let message = SignedMessage {
            id,
            timestamp,
            signatures,
            body,
        };
        verify_standard_webhook(&message, secrets, now, TOLERANCE)
    }

    #[test]
    fn signing_the_official_vector_gives_the_official_signature() {
        assert_eq!(
            sign_standard_webhook(SECRET, ID, 1_649_367_553, BODY).as_deref(),
            Some(SIGNATURE)
        );
    }

    #[test]
    fn accepts_the_official_vector() {
        assert_eq!(verify(SIGNATURE, &[SECRET], at(0)), Ok(()));
    }

    #[test]
    fn accepts_supabase_v1_prefixed_secret() {
        let supabase_form = format!("v1,{SECRET}");
        assert_eq!(verify(SIGNATURE, &[&supabase_form], at(0)), Ok(()));
    }

    #[test]
    fn accepts_valid_signature_listed_after_decoys() {
        let header = format!(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= {SIGNATURE}"
        );
        assert_eq!(verify(&header, &[SECRET], at(0)), Ok(()));
    }

    #[test]
    fn rejects_the_official_wrong_signature() {
        assert_eq!(
            verify(
                "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=",
                &[SECRET],
                at(0)
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_bare_prefix_and_truncated_signature() {
        assert_eq!(
            verify("v1,", &[SECRET], at(0)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(&SIGNATURE[..8], &[SECRET], at(0)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(verify("", &[SECRET], at(0)), Err(SignatureError::NoMatch));
    }

    #[test]
    fn rejects_timestamps_301_seconds_in_the_past_and_future() {
        assert_eq!(
            verify(SIGNATURE, &[SECRET], at(301)),
            Err(SignatureError::TimestampOutOfTolerance(301))
        );
        assert_eq!(
            verify(SIGNATURE, &[SECRET], at(-301)),
            Err(SignatureError::TimestampOutOfTolerance(-301))
        );
        assert_eq!(verify(SIGNATURE, &[SECRET], at(300)), Ok(()));
        assert_eq!(verify(SIGNATURE, &[SECRET], at(-300)), Ok(()));
    }

    #[test]
    fn rejects_tampered_body_id_and_timestamp() {
        let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
        assert_eq!(
            verify_with(ID, TS, SIGNATURE, tampered, &[SECRET], at(0)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_with("msg_other", TS, SIGNATURE, BODY, &[SECRET], at(0)),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_with(ID, "1649367554", SIGNATURE, BODY, &[SECRET], at(0)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rotation_accepts_either_configured_secret() {
        let new_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(verify(SIGNATURE, &[new_secret, SECRET], at(0)), Ok(()));
        assert_eq!(verify(SIGNATURE, &[SECRET, new_secret], at(0)), Ok(()));
    }

    #[test]
    fn rejects_signature_from_rotated_out_secret() {
        let new_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            verify(SIGNATURE, &[new_secret], at(0)),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_non_numeric_and_overflowing_timestamps() {
        for ts in ["", "abc", "1649367553.5", "99999999999999999999999"] {
            assert_eq!(
                verify_with(ID, ts, SIGNATURE, BODY, &[SECRET], at(0)),
                Err(SignatureError::InvalidTimestamp),
                "{ts:?}"
            );
        }
        assert!(matches!(
            verify_with(
                ID,
                "-9223372036854775808",
                SIGNATURE,
                BODY,
                &[SECRET],
                at(0)
            ),
            Err(SignatureError::TimestampOutOfTolerance(_))
        ));
    }

    #[test]
    fn refuses_headers_with_too_many_entries() {
        let header = vec![SIGNATURE; MAX_SIGNATURE_ENTRIES + 1].join(" ");
        assert_eq!(
            verify(&header, &[SECRET], at(0)),
            Err(SignatureError::TooManySignatures)
        );
    }

    #[test]
    fn shared_header_must_equal_a_configured_value() {
        let secrets = ["Bearer s3cret-old", "Bearer s3cret-new"];
        assert_eq!(
            verify_shared_header(Some(b"Bearer s3cret-new"), "authorization", &secrets),
            Ok(())
        );
        assert_eq!(
            verify_shared_header(Some(b"Bearer s3cret"), "authorization", &secrets),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_shared_header(Some(b"Bearer s3cret-new "), "authorization", &secrets),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_shared_header(None, "authorization", &secrets),
            Err(SignatureError::MissingHeader("authorization"))
        );
        assert_eq!(
            verify_shared_header(Some(b""), "authorization", &secrets),
            Err(SignatureError::MissingHeader("authorization"))
        );
        assert_eq!(
            verify_shared_header(Some(b"x"), "authorization", &[" "]),
            Err(SignatureError::UnusableSecret)
        );
    }

    #[test]
    fn reports_a_secret_that_is_not_base64_as_unusable() {
        assert_eq!(
            verify(SIGNATURE, &["whsec_***not base64***"], at(0)),
            Err(SignatureError::UnusableSecret)
        );
    }
}
