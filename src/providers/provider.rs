//! What every identity provider is to the function ([`Provider`]: a route, how its requests
//! are authenticated, how its payloads read) and what they share: the request as it arrived,
//! the [`Delivery`] a body becomes, [`PayloadError`] and the readers that produce it without
//! quoting the payload, and the Standard Webhooks and shared-header verifications.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use thiserror::Error;

use crate::config::Config;
use crate::domain::{EmailAddress, InvalidEmail, UserEvent};
use crate::secrets::Secret;
use crate::signature::{SignatureError, SignedMessage, verify_standard_webhook};

/// A webhook request as it arrived, with what verification needs to know.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The raw body bytes, exactly as signed.
    pub body: &'a [u8],
    /// The current time.
    pub now: SystemTime,
    /// How far the sender's timestamp may be from `now`.
    pub tolerance: Duration,
    /// The provider's published signing keys, for providers with a [`Provider::jwks_url`].
    pub keys: Option<&'a jsonwebtoken::jwk::JwkSet>,
}

/// What a provider found in a delivery's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's event type, e.g. `user.created`.
    pub event_type: String,
    /// The user changes to apply; empty when the event is not one this function syncs.
    pub events: Vec<UserEvent>,
    /// Items of a batch that can never be applied (no email, say), each with the reason; the
    /// rest of the batch still is.
    pub skipped: Vec<String>,
}

impl Delivery {
    /// A delivery of an event type this function does not act on.
    pub fn ignored(event_type: impl Into<String>) -> Self {
        Self::of(event_type, Vec::new())
    }

    /// A delivery of these events.
    pub fn of(event_type: impl Into<String>, events: Vec<UserEvent>) -> Self {
        Self {
            event_type: event_type.into(),
            events,
            skipped: Vec::new(),
        }
    }
}

/// Why a body could not be turned into user events.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Not JSON, or not the provider's documented shape (400).
    #[error("the body is not a {provider} webhook payload: {reason}")]
    Malformed {
        /// The provider's display name.
        provider: &'static str,
        /// What is wrong, without quoting the body.
        reason: String,
    },
    /// The user has no email address, which Attio requires (422).
    #[error("the user has no email address, and Attio requires one for a user record")]
    NoEmail,
    /// The user's email address can never be valid (422).
    #[error("the user's {0}")]
    InvalidEmail(#[from] InvalidEmail),
}

/// The user's email address: present and not blank, else [`PayloadError::NoEmail`] (Attio
/// requires one); then parsed, so one that can never be valid is [`PayloadError::InvalidEmail`].
pub fn required_email(raw: Option<&str>) -> Result<EmailAddress, PayloadError> {
    match raw.map(str::trim) {
        None | Some("") => Err(PayloadError::NoEmail),
        Some(address) => Ok(EmailAddress::parse(address)?),
    }
}

/// Reads a whole body as `T`, or says which field is wrong and what it should hold.
pub fn read_body<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    body: &[u8],
) -> Result<T, PayloadError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut json)
        .map_err(|e| PayloadError::shape(provider, None, &e))?;
    json.end()
        .map_err(|e| PayloadError::malformed(provider, &e))?;
    Ok(value)
}

/// Reads `value` (a part of a payload named `field`) as `T`, or says which field is wrong.
pub fn read_part<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    field: &str,
    value: &serde_json::Value,
) -> Result<T, PayloadError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| PayloadError::shape(provider, Some(field), &e))
}

impl PayloadError {
    /// The stable snake_case code naming the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "invalid_payload",
            Self::NoEmail => "missing_email",
            Self::InvalidEmail(_) => "invalid_email",
        }
    }

    /// A `Malformed` error from serde_json's: where, and what was expected, never the input.
    pub fn malformed(provider: &'static str, e: &serde_json::Error) -> Self {
        let reason = match e.classify() {
            serde_json::error::Category::Data => expected_shape(e),
            _ => format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        };
        Self::Malformed { provider, reason }
    }

    /// A `Malformed` error naming the field (under `part`, when the value read was a part of
    /// the payload) that does not have the shape `T` needs.
    fn shape(
        provider: &'static str,
        part: Option<&str>,
        e: &serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        if !matches!(e.inner().classify(), serde_json::error::Category::Data) {
            return Self::malformed(provider, e.inner());
        }
        let field = field_path(part, e.path());
        let shape = expected_shape(e.inner());
        let reason = if field.is_empty() {
            shape
        } else {
            format!("{field}: {shape}")
        };
        Self::Malformed { provider, reason }
    }
}

/// `data.email_addresses[0].id`. Names are the payload's keys, which are this function's own
/// field names wherever an error can arise; anything else is shown as `?`.
fn field_path(part: Option<&str>, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    use std::fmt::Write as _;
    let mut out = part.unwrap_or_default().to_owned();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key: name } | Segment::Enum { variant: name } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                out.push_str(if plain { name } else { "?" });
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

/// What serde expected and what kind of value it found, without the value: serde's own
/// messages quote it (`invalid type: string "…", expected i64`), and a payload's values are
/// its users' data, or an attacker's text, and must not reach logs or answers.
fn expected_shape(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&location).unwrap_or(&message);
    // The expectation is this function's own (a type or field name), never the input's.
    let bounded = |s: &str| s.chars().take(120).collect::<String>();
    let found_and_expected = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    if let Some(rest) = found_and_expected
        && let Some((found, expected)) = rest.rsplit_once(", expected ")
    {
        // `string "…"`, `integer `5``, `map`: keep the kind, drop the quoted value.
        let kind = found.split(['"', '`']).next().unwrap_or("").trim();
        let kind = if !kind.is_empty()
            && kind.len() <= 20
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b' ')
        {
            kind
        } else {
            "another value"
        };
        return format!("expected {}, found {kind}", bounded(expected));
    }
    // This function's own messages (its types' Deserialize impls), which never hold a value.
    if message.starts_with("not a valid email address: ")
        || crate::domain::OWN_DESERIALIZE_ERRORS.contains(&message)
    {
        return bounded(message);
    }
    if message.starts_with("missing field `")
        || message.starts_with("duplicate field `")
        || message.starts_with("invalid length ")
    {
        return bounded(message);
    }
    "a value does not have the expected shape".to_owned()
}

/// What a route's entry under `webhook_secrets` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretForm {
    /// A Standard Webhooks / Svix signing key: `whsec_<base64>` (or bare base64).
    SigningKey,
    /// Text used as it is: an HMAC key (WorkOS) or a header value the sender repeats.
    Text,
    /// None: requests are verified with keys the provider publishes (Kinde).
    PublishedKeys,
}

/// One identity provider: how its requests are authenticated and how its payloads read.
pub trait Provider: Sync {
    /// The route name: the request path ends in `/webhooks/<route>`; also the key of its
    /// signing secrets under `webhook_secrets` in the Secrets Manager secret.
    fn route(&self) -> &'static str;

    /// What its `webhook_secrets` entry holds (the doctor checks its form).
    fn secret_form(&self) -> SecretForm;

    /// Whether its events link users to organisations (Attio `workspaces`).
    fn links_organisations(&self) -> bool {
        false
    }

    /// Checks the request came from the provider. `secrets` are the route's configured secrets.
    /// Runs before anything reads the body.
    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError>;

    /// The sender's delivery id, for logs; stable across retries. Most senders without a
    /// signature scheme (Okta, Auth0, Supabase database webhooks) and WorkOS send none.
    fn delivery_id<'a>(&self, _headers: &'a HeaderMap) -> Option<&'a str> {
        None
    }

    /// Turns a verified body into user events.
    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError>;

    /// Where this provider publishes the keys its requests are signed with (a JWKS), if it
    /// signs that way. `Err(variable)` names the setting that configures it when unset.
    fn jwks_url(&self, _config: &Config) -> Option<Result<String, &'static str>> {
        None
    }

    /// The answer to a one-time endpoint verification `GET` (Okta's challenge), if this
    /// provider has one and the request is one; an error when the challenge is not one the
    /// provider would send. The request is verified like a delivery before it is answered.
    fn answer_challenge(
        &self,
        _headers: &HeaderMap,
    ) -> Option<Result<serde_json::Value, PayloadError>> {
        None
    }

    /// How long the sender waits for an answer, when that is shorter than
    /// `ATTIO_MAX_ELAPSED_MS` (Okta: 3 s). Attio work is cut to fit.
    fn answer_within(&self) -> Option<Duration> {
        None
    }
}

/// Authenticates a request by a secret the sender repeats verbatim in its `Authorization`
/// header (Okta Event Hooks, Auth0 Log Streams, Supabase database webhooks).
pub fn verify_authorization_header(
    request: &WebhookRequest<'_>,
    secrets: &[Secret],
) -> Result<(), SignatureError> {
    let value = request.headers.get("authorization").map(|v| v.as_bytes());
    crate::signature::verify_shared_header(value, "Authorization", secrets)
}

/// Header names of a Standard Webhooks-style scheme (`webhook-*`, or Svix's `svix-*`).
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

/// Standard Webhooks 1.0 header names.
pub const WEBHOOK_HEADERS: StandardHeaders = StandardHeaders {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

/// Svix's header names (Clerk, Stytch).
pub const SVIX_HEADERS: StandardHeaders = StandardHeaders {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

impl StandardHeaders {
    /// Verifies a request signed the Standard Webhooks way with these header names.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        let header = |name: &'static str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(SignatureError::MissingHeader(name))
        };
        let message = SignedMessage {
            id: header(self.id)?,
            timestamp: header(self.timestamp)?,
            signatures: header(self.signature)?,
            body: request.body,
        };
        verify_standard_webhook(&message, secrets, request.now, request.tolerance)
    }

    /// The delivery id header's value.
    pub fn delivery_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers.get(self.id).and_then(|v| v.to_str().ok())
    }
}

/// The one upsert a test delivery holds, as (change, user); panics otherwise.
#[cfg(test)]
pub(crate) fn single_upsert(
    delivery: &Delivery,
) -> (crate::domain::UserChange, &crate::domain::UserProfile) {
    match delivery.events.as_slice() {
        [UserEvent::Upserted { change, user, .. }] => (*change, user),
        other => panic!("expected one upsert, got {other:?}"),
    }
}
