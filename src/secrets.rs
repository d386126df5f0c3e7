//! The one Secrets Manager secret (Attio token and webhook signing secrets), fetched once per
//! container and cached, refetched on demand at most once per [`FORCED_REFRESH_FLOOR`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use thiserror::Error;
use tokio::sync::Mutex;

/// The shortest time between two refetches forced by a rejected token or an unmatched
/// signature, so forged requests cannot turn into a flood of Secrets Manager calls.
pub const FORCED_REFRESH_FLOOR: Duration = Duration::from_secs(30);

/// A string that must never be logged: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (an Authorization header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secret's content, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSecrets {
    /// Attio access token (OAuth token or API key).
    pub attio_access_token: Secret,
    /// Signing secrets (or shared header values) per route name; several during rotation.
    pub webhook_secrets: HashMap<String, Vec<Secret>>,
}

impl SyncSecrets {
    /// Parses the SecretString JSON:
    /// `{"attio_access_token":"…","webhook_secrets":{"clerk":"whsec_…","standard":["…","…"]}}`;
    /// the scheduled reconcile's `list_api` is read by [`SecretCache::list_api`].
    pub fn parse(secret_string: &str) -> Result<Self, SecretsError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(Secret),
            Many(Vec<Secret>),
        }
        #[derive(Deserialize)]
        struct Raw {
            attio_access_token: Option<Secret>,
            #[serde(default)]
            webhook_secrets: HashMap<String, OneOrMany>,
        }
        // serde_json's message could quote the secret's text, so it is not passed on.
        let raw: Raw = serde_json::from_str(secret_string).map_err(|e| {
            SecretsError::Malformed(format!(
                "it is not a JSON object of the documented shape (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let attio_access_token = raw
            .attio_access_token
            .filter(|t| !t.expose().trim().is_empty())
            .ok_or(SecretsError::MissingKey("attio_access_token"))?;
        let webhook_secrets = raw
            .webhook_secrets
            .into_iter()
            .map(|(route, v)| {
                let list = match v {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(list) => list,
                };
                (route, list)
            })
            .collect();
        Ok(Self {
            attio_access_token,
            webhook_secrets,
        })
    }

    /// The signing secrets configured for a route; empty when none are.
    pub fn webhook_secrets_for(&self, route: &str) -> &[Secret] {
        self.webhook_secrets.get(route).map_or(&[], Vec::as_slice)
    }
}

/// Why the secret could not be had. All of these are configuration or AWS problems (500).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretsError {
    /// Secrets Manager could not be reached or refused the call.
    #[error("Secrets Manager call failed: {0}")]
    Fetch(String),
    /// The secret has no SecretString (a binary secret).
    #[error("the secret has no SecretString; store the JSON as a string")]
    NotAString,
    /// The SecretString is not the documented JSON.
    #[error("the secret is malformed: {0}")]
    Malformed(String),
    /// A required key is missing or empty.
    #[error("the secret has no \"{0}\" key")]
    MissingKey(&'static str),
}

impl SecretsError {
    /// The stable snake_case code naming the failure: the secret could not be fetched, or it
    /// does not hold what the function needs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Fetch(_) => "secret_unavailable",
            _ => "secret_malformed",
        }
    }
}

struct Cached {
    secrets: Arc<SyncSecrets>,
    fetched_at: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    last_forced_refresh: Option<Instant>,
}

/// A Secrets Manager client configured from the environment Lambda provides
/// ([`crate::sdk_http::AwsEnvironment`]; endpoint `AWS_ENDPOINT_URL_SECRETS_MANAGER`), sending
/// through `http` rather than the SDK's own HTTP client.
pub fn client_from_env(http: reqwest::Client) -> aws_sdk_secretsmanager::Client {
    client_from_lookup(http, |name| std::env::var(name).ok())
}

/// [`client_from_env`] with the variables read through `lookup`.
pub fn client_from_lookup(
    http: reqwest::Client,
    lookup: impl Fn(&str) -> Option<String>,
) -> aws_sdk_secretsmanager::Client {
    crate::sdk_http::client_from_environment!(
        aws_sdk_secretsmanager,
        http,
        lookup,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER"
    )
}

/// Caches the secret for the life of the container.
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ttl: Duration,
    state: Mutex<State>,
    /// Secrets given directly (`ATTIO_ACCESS_TOKEN` to a binary a person runs): never fetched.
    given: Option<Arc<SyncSecrets>>,
}

impl SecretCache {
    /// A cache that has fetched nothing yet.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: String, ttl: Duration) -> Self {
        Self {
            client,
            secret_id,
            ttl,
            state: Mutex::new(State::default()),
            given: None,
        }
    }

    /// This cache holding `secrets` for good instead of reading Secrets Manager.
    pub fn given(self, secrets: SyncSecrets) -> Self {
        Self {
            given: Some(Arc::new(secrets)),
            ..self
        }
    }

    /// The cached secret, fetched first if there is none or it is older than the TTL. A failed
    /// refresh keeps serving the stale copy, so a Secrets Manager outage does not stop syncs.
    pub async fn get(&self) -> Result<Arc<SyncSecrets>, SecretsError> {
        if let Some(given) = &self.given {
            return Ok(given.clone());
        }
        let mut state = self.state.lock().await;
        if let Some(c) = &state.cached
            && c.fetched_at.elapsed() < self.ttl
        {
            return Ok(c.secrets.clone());
        }
        match self.fetch().await {
            Ok(secrets) => Ok(Self::store(&mut state, secrets)),
            Err(e) => match &state.cached {
                Some(stale) => {
                    tracing::warn!(error = %e, "secret refresh failed; using the cached copy");
                    Ok(stale.secrets.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Refetches because the cached secret was just found wanting (Attio refused the token, or
    /// no signing secret matched). Returns `None` when a forced refetch happened less than
    /// [`FORCED_REFRESH_FLOOR`] ago, or when the fetched secret is the one already cached.
    pub async fn refresh_after_rejection(&self) -> Option<Arc<SyncSecrets>> {
        if self.given.is_some() {
            return None;
        }
        let mut state = self.state.lock().await;
        if let Some(at) = state.last_forced_refresh
            && at.elapsed() < FORCED_REFRESH_FLOOR
        {
            return None;
        }
        state.last_forced_refresh = Some(Instant::now());
        match self.fetch().await {
            Ok(fresh) => {
                let changed = state.cached.as_ref().is_none_or(|c| *c.secrets != fresh);
                let fresh = Self::store(&mut state, fresh);
                changed.then_some(fresh)
            }
            Err(e) => {
                tracing::warn!(error = %e, "forced secret refresh failed");
                None
            }
        }
    }

    fn store(state: &mut State, secrets: SyncSecrets) -> Arc<SyncSecrets> {
        let secrets = Arc::new(secrets);
        state.cached = Some(Cached {
            secrets: secrets.clone(),
            fetched_at: Instant::now(),
        });
        secrets
    }

    async fn fetch(&self) -> Result<SyncSecrets, SecretsError> {
        let out = self.get_secret_value().await?;
        let text = out.secret_string().ok_or(SecretsError::NotAString)?;
        SyncSecrets::parse(text)
    }

    /// One `GetSecretValue` of the secret.
    async fn get_secret_value(
        &self,
    ) -> Result<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
        SecretsError,
    > {
        self.client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(fetch_failed)
    }

    /// The list APIs' credentials the secret holds for the scheduled reconcile
    /// (`"list_api": {"CLERK_SECRET_KEY": "sk_…"}`, by the backfill's variable names), read
    /// anew: only the reconcile asks, once a run, so the functions that never do carry no
    /// reader for them. None when the secret was given directly.
    pub async fn list_api(&self) -> Result<HashMap<String, Secret>, SecretsError> {
        if self.given.is_some() {
            return Ok(HashMap::new());
        }
        // Its own call rather than the cache's: the webhook's parser stays as it was.
        let out = self.get_secret_value().await?;
        let text = out.secret_string().ok_or(SecretsError::NotAString)?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| {
            SecretsError::Malformed("it is not a JSON object of the documented shape".into())
        })?;
        Ok(value
            .get("list_api")
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| Some((name.clone(), Secret::new(v.as_str()?))))
            .collect())
    }
}

/// A failed `GetSecretValue`, as the error says it (the SDK's whole context).
fn fetch_failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> SecretsError {
    SecretsError::Fetch(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_listed_webhook_secrets() {
        let s = SyncSecrets::parse(
            r#"{"attio_access_token":"tok","webhook_secrets":{"clerk":"whsec_a","standard":["whsec_old","whsec_new"]}}"#,
        )
        .unwrap();
        assert_eq!(s.attio_access_token.expose(), "tok");
        assert_eq!(s.webhook_secrets_for("clerk"), &[Secret::new("whsec_a")]);
        assert_eq!(
            s.webhook_secrets_for("standard"),
            &[Secret::new("whsec_old"), Secret::new("whsec_new")]
        );
        assert!(s.webhook_secrets_for("workos").is_empty());
    }

    #[test]
    fn missing_token_is_named() {
        let err = SyncSecrets::parse(r#"{"webhook_secrets":{}}"#).unwrap_err();
        assert_eq!(err, SecretsError::MissingKey("attio_access_token"));
        assert!(err.to_string().contains("attio_access_token"));
    }

    #[test]
    fn malformed_json_error_does_not_echo_the_secret() {
        let err = SyncSecrets::parse(r#"{"attio_access_token": sk_live_123"#).unwrap_err();
        assert!(matches!(err, SecretsError::Malformed(_)));
        assert!(!err.to_string().contains("sk_live_123"), "{err}");
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let s = SyncSecrets::parse(
            r#"{"attio_access_token":"tok_abc","webhook_secrets":{"clerk":"whsec_xyz"}}"#,
        )
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("tok_abc") && !debug.contains("whsec_xyz"),
            "{debug}"
        );
    }
}
