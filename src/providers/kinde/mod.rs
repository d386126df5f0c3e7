//! Kinde: `POST /webhooks/kinde`, the body an RS256 JWT (`Content-Type: application/jwt`)
//! verified against the tenant's JWKS at `KINDE_ISSUER_URL/.well-known/jwks.json`. Syncs
//! `user.created`, `user.updated` (with the user's organisations as workspaces) and
//! `user.deleted`. Kinde's tokens carry no expiry: a replayed genuine event is a harmless,
//! idempotent re-assert.

pub mod directory;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::Config;
use crate::domain::{
    Timestamp, UserChange, UserDetails, UserEvent, UserProfile, Workspace, name_part,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WebhookRequest, read_body, read_part,
    required_email,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Kinde webhooks.
pub struct Kinde;

const NAME: &str = "Kinde";

#[derive(Deserialize)]
struct Claims {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
    /// RFC 3339: when the event happened; orders redeliveries.
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    user: KindeUser,
}

#[derive(Deserialize)]
struct Identified {
    id: String,
}

/// A Kinde user, as its webhooks' `data.user` and the Management API's user list both carry
/// it, read once. The list adds fields the webhook leaves out, and names organisations by code
/// where the webhook gives objects.
#[derive(Deserialize)]
pub(crate) struct KindeUser {
    id: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    phone: Option<String>,
    picture: Option<String>,
    created_on: Option<String>,
    last_signed_in: Option<String>,
    /// The organisations the user belongs to, by code: `{"code": "org_…"}` in a webhook,
    /// `"org_…"` listed. (Read as JSON values and picked apart below: an untagged enum or a
    /// visitor of its own costs the function's binary kilobytes of serde code.)
    #[serde(default)]
    organizations: Vec<serde_json::Value>,
}

impl KindeUser {
    /// The user as an upsert with its organisations; `raw` is the webhook's `data.user`, which
    /// a mapping's pointers read (`None` for a listed user).
    pub(crate) fn upserted(
        self,
        change: UserChange,
        raw: Option<serde_json::Value>,
        occurred_at: Option<Timestamp>,
    ) -> Result<UserEvent, PayloadError> {
        let email = required_email(self.email.as_deref())?;
        let workspaces = self
            .organizations
            .iter()
            .map(|o| {
                let code = o.as_str().or_else(|| o.get("code").and_then(|c| c.as_str()));
                code.map(|code| Workspace::new(code.to_owned(), None))
                    .ok_or_else(|| PayloadError::Malformed {
                        provider: NAME,
                        reason: "organizations: expected an organization code, or an object with its code".into(),
                    })
            })
            .collect::<Result<_, _>>()?;
        let user = UserProfile {
            user_id: self.id,
            email,
            first_name: name_part(self.first_name.as_deref()),
            last_name: name_part(self.last_name.as_deref()),
            created_at: self.created_on.as_deref().and_then(Timestamp::parse),
            details: UserDetails {
                username: name_part(self.username.as_deref()),
                phone: name_part(self.phone.as_deref()),
                image_url: name_part(self.picture.as_deref()),
                last_sign_in_at: self.last_signed_in.as_deref().and_then(Timestamp::parse),
                provider: crate::routes::KINDE,
                raw: raw.map(std::sync::Arc::new),
                ..UserDetails::default()
            },
        };
        Ok(UserEvent::Upserted {
            change,
            user,
            workspaces,
            occurred_at,
        })
    }
}

/// Why a token was refused, in words of our own: jsonwebtoken's messages can quote the
/// token's (unverified) contents.
fn token_error(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "the signature does not verify",
        ErrorKind::InvalidToken => "it is not a JWT",
        ErrorKind::Base64(_) => "a part is not base64url",
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "its header or claims are not JSON",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the token is not signed with RS256"
        }
        _ => "it does not verify",
    }
}

impl Provider for Kinde {
    fn route(&self) -> &'static str {
        crate::routes::KINDE
    }

    fn secret_form(&self) -> SecretForm {
        SecretForm::PublishedKeys
    }

    fn links_organisations(&self) -> bool {
        true
    }

    fn jwks_url(&self, config: &Config) -> Option<Result<String, &'static str>> {
        Some(
            config
                .kinde_issuer_url
                .as_ref()
                .map(|issuer| format!("{issuer}/.well-known/jwks.json"))
                .ok_or("KINDE_ISSUER_URL"),
        )
    }

    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        _secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        let invalid = SignatureError::InvalidToken;
        let token = std::str::from_utf8(request.body)
            .map_err(|_| invalid("the body is not text"))?
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(token_error(&e)))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("the token is not signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no key (kid)"))?;
        let keys = request.keys.ok_or(SignatureError::UnknownKey)?;
        let jwk = keys.find(&kid).ok_or(SignatureError::UnknownKey)?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|_| invalid("the published key is not a usable RSA key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Kinde's tokens have no exp, iat or aud; retries resend the same token for 36 h.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(drop)
            .map_err(|e| invalid(token_error(&e)))
    }

    fn delivery_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers.get("webhook-id").and_then(|v| v.to_str().ok())
    }

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        // verify() has checked the signature; here only the claims are read.
        let malformed = |reason: String| PayloadError::Malformed {
            provider: NAME,
            reason,
        };
        let token =
            std::str::from_utf8(body).map_err(|_| malformed("the body is not text".into()))?;
        let claims = token
            .trim()
            .split('.')
            .nth(1)
            .ok_or_else(|| malformed("not a JWT".into()))?;
        let claims = URL_SAFE_NO_PAD
            .decode(claims.trim_end_matches('='))
            .map_err(|_| malformed("the JWT claims are not base64url".into()))?;
        let claims: Claims = read_body(NAME, &claims)?;
        let change = match claims.event_type.as_str() {
            "user.created" => UserChange::Created,
            "user.updated" => UserChange::Updated,
            "user.deleted" => {
                let data: Data = read_part(NAME, "data", &claims.data)?;
                let event = UserEvent::Deleted {
                    user_id: data.user.id,
                };
                return Ok(Delivery::of(claims.event_type, vec![event]));
            }
            // A sign-in; its payload is taken to name the user as the other events do
            // (`data.user.id`), which Kinde's docs do not show in full.
            "user.authenticated" => {
                let user: Identified = read_part(NAME, "data.user", &claims.data["user"])?;
                let Some(at) = claims.timestamp.as_deref().and_then(Timestamp::parse) else {
                    return Ok(Delivery::ignored(claims.event_type));
                };
                let event = UserEvent::SignedIn {
                    user_id: user.id,
                    provider: crate::routes::KINDE,
                    at,
                };
                return Ok(Delivery::of(claims.event_type, vec![event]));
            }
            _ => return Ok(Delivery::ignored(claims.event_type)),
        };
        let data: Data = read_part(NAME, "data", &claims.data)?;
        let raw = claims.data.get("user").cloned().unwrap_or_default();
        let occurred_at = claims.timestamp.as_deref().and_then(Timestamp::parse);
        let event = data.user.upserted(change, Some(raw), occurred_at)?;
        Ok(Delivery::of(claims.event_type, vec![event]))
    }
}
