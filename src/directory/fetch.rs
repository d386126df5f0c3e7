//! How every list API is called: `GET` (or a search `POST`) with the provider's credentials,
//! its `429`s waited out, `401`/`403` named as the credentials to check; a client-credentials
//! token fetched once per run.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::DirectoryError;

/// How a list API wants its credentials.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: <scheme> <token>` (Okta's `SSWS`).
    Scheme(&'static str, &'a str),
    /// `Authorization: Basic base64(user:password)` (Stytch's project id and secret).
    Basic(&'a str, &'a str),
    /// The key both as `apikey` and as `Authorization: Bearer` (Supabase's service-role key,
    /// which its API gateway reads from the first and the Auth server from the second).
    ApiKeyAndBearer(&'a str),
}

/// A list API's endpoint, as every directory calls it: `GET url` with `credentials`, its
/// `429`s waited out (`Retry-After` in seconds, else Okta's `X-Rate-Limit-Reset` or Kinde's
/// `RateLimit-Reset`, else 1 s; ten times at most), `401`/`403` reported as the credentials in `variable`.
/// Returns the answer's headers (paging links) and JSON body.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    credentials: Credentials<'_>,
    provider: &'static str,
    variable: &'static str,
) -> Result<(reqwest::header::HeaderMap, Value), DirectoryError> {
    send(http, url, None, credentials, provider, variable).await
}

/// [`fetch`] as a `POST` of `body` (a search endpoint: Stytch's).
pub async fn search(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    credentials: Credentials<'_>,
    provider: &'static str,
    variable: &'static str,
) -> Result<Value, DirectoryError> {
    Ok(send(http, url, Some(body), credentials, provider, variable)
        .await?
        .1)
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    body: Option<&Value>,
    credentials: Credentials<'_>,
    provider: &'static str,
    variable: &'static str,
) -> Result<(reqwest::header::HeaderMap, Value), DirectoryError> {
    let failed = |reason: String| DirectoryError::Failed { provider, reason };
    for _ in 0..10 {
        let request = match body {
            None => http.get(url),
            Some(body) => http.post(url).json(body),
        };
        let request = match credentials {
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::Scheme(scheme, token) => {
                request.header(reqwest::header::AUTHORIZATION, format!("{scheme} {token}"))
            }
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password)),
            Credentials::ApiKeyAndBearer(key) => request.header("apikey", key).bearer_auth(key),
        };
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match status {
            200 => {
                let headers = response.headers().clone();
                let body = response
                    .json()
                    .await
                    .map_err(|e| failed(format!("the answer is not JSON: {e}")))?;
                return Ok((headers, body));
            }
            401 | 403 => {
                return Err(DirectoryError::Unauthorized {
                    provider,
                    status,
                    variable,
                });
            }
            429 => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // Retry-After (seconds), Okta's X-Rate-Limit-Reset and Auth0's X-RateLimit-Reset (epoch
                // seconds), Kinde's
                // RateLimit-Reset (seconds until the reset).
                let wait = header("retry-after")
                    .or_else(|| {
                        header("x-rate-limit-reset")
                            .or_else(|| header("x-ratelimit-reset"))
                            .map(|reset| reset.saturating_sub(now))
                    })
                    .or_else(|| header("ratelimit-reset"))
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
            }
            404 => return Err(DirectoryError::NotFound { provider }),
            _ => return Err(failed(format!("a page request answered {status}"))),
        }
    }
    Err(failed("still rate-limited after 10 waits".into()))
}

/// The list under `key` in a list API's JSON answer, taken out of it (the rest of the answer
/// stays for the caller: cursors, totals), or why the answer is not one.
pub fn list_in(
    answer: &mut Value,
    key: &str,
    provider: &'static str,
) -> Result<Vec<Value>, DirectoryError> {
    match answer.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(DirectoryError::Failed {
            provider,
            reason: format!("the answer has no {key} list"),
        }),
    }
}

/// A client-credentials grant (Kinde's and Auth0's Management API tokens): sends `request`, the
/// provider's token endpoint with the grant in its body, and reads `access_token`. `400`, `401`
/// and `403` are the credentials in `variable`; any other failure is the provider's.
async fn access_token(
    request: reqwest::RequestBuilder,
    provider: &'static str,
    variable: &'static str,
) -> Result<String, DirectoryError> {
    let failed = |reason: String| DirectoryError::Failed { provider, reason };
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    match response.status().as_u16() {
        200 => {}
        status @ (400 | 401 | 403) => {
            return Err(DirectoryError::Unauthorized {
                provider,
                status,
                variable,
            });
        }
        status => return Err(failed(format!("the token request answered {status}"))),
    }
    let answer: Value = response
        .json()
        .await
        .map_err(|e| failed(format!("the token answer is not JSON: {e}")))?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| failed("the token answer has no access_token".into()))
}

/// A Management API token had by a client-credentials grant (Auth0's, Kinde's), fetched at the
/// first page and kept for the run (they last a day), or one given as it is.
#[derive(Debug, Default)]
pub struct ClientToken {
    token: OnceCell<String>,
}

impl ClientToken {
    /// A token to fetch at first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token given as it is (Auth0's `AUTH0_MANAGEMENT_TOKEN`).
    pub fn given(token: String) -> Self {
        Self {
            token: OnceCell::new_with(Some(token)),
        }
    }

    /// The token: `grant` builds the provider's token request (its endpoint, the grant in its
    /// body), sent once; `400`, `401` and `403` are the credentials in `variable`.
    pub async fn get(
        &self,
        grant: impl FnOnce() -> reqwest::RequestBuilder,
        provider: &'static str,
        variable: &'static str,
    ) -> Result<&str, DirectoryError> {
        self.token
            .get_or_try_init(|| access_token(grant(), provider, variable))
            .await
            .map(String::as_str)
    }
}

/// [`fetch`] with a bearer token, for the body alone.
pub async fn get_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    provider: &'static str,
    variable: &'static str,
) -> Result<Value, DirectoryError> {
    Ok(
        fetch(http, url, Credentials::Bearer(token), provider, variable)
            .await?
            .1,
    )
}
