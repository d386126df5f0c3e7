//! The Attio REST client: assert (create-or-update) records, with retries for answers that
//! are safe to retry (429, 409 concurrent write, 5xx, connection failures).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::domain::redact_emails;
use crate::secrets::Secret;

/// An Attio record id (a UUID).
pub type RecordId = String;

/// How long one call to Attio may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A record found by a query: its id and its values as Attio returns them (lists of objects).
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRecord {
    /// The record id.
    pub id: RecordId,
    /// `{"<slug>": [{"value": …, …}], …}`.
    pub values: Value,
}

impl FoundRecord {
    /// The text of a single-value attribute (`value` of its first entry).
    pub fn text(&self, attribute: &str) -> Option<&str> {
        self.values
            .pointer(&format!("/{attribute}/0/value"))
            .and_then(Value::as_str)
    }
}

/// An attribute of an object, as `GET /v2/objects/{object}/attributes` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttributeInfo {
    /// Its slug.
    pub api_slug: String,
    /// Its id (`id.attribute_id`), which a mapping may name instead of the slug.
    #[serde(default, rename = "id", deserialize_with = "attribute_id")]
    pub attribute_id: String,
    /// Its type: `text`, `number`, `timestamp`, `select`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether values can be written through the API.
    #[serde(default = "yes")]
    pub is_writable: bool,
    /// Whether it was archived (it takes no values).
    #[serde(default)]
    pub is_archived: bool,
    /// Whether it holds several values.
    #[serde(default)]
    pub is_multiselect: bool,
    /// Whether no two records may hold the same value (what an assert can match on).
    #[serde(default)]
    pub is_unique: bool,
}

fn yes() -> bool {
    true
}

fn attribute_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    struct Id {
        #[serde(default)]
        attribute_id: String,
    }
    Ok(Id::deserialize(d)?.attribute_id)
}

/// What `GET /v2/self` says of the token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenInfo {
    /// Whether the token is active.
    #[serde(default)]
    pub active: bool,
    /// Its scopes, space-separated.
    #[serde(default)]
    pub scope: String,
    /// The workspace's name.
    #[serde(default)]
    pub workspace_name: Option<String>,
}

/// What an update by record id does to the multi-value attributes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListUpdate {
    /// Add the values given to those held (`PATCH`).
    Append,
    /// Hold exactly the values given (`PUT`).
    Replace,
}

/// When to try a failed call again. How long to keep trying is the [`AttioBudget`]'s to say.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Most attempts for one call, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled each retry, with jitter.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
        }
    }
}

/// An attempt is not started with less time than this left: it could not finish.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

/// The Attio side of one invocation: the time by which it must be done, and a tally of the
/// calls made, for the log line.
#[derive(Debug)]
pub struct AttioBudget {
    deadline: Instant,
    /// HTTP calls made to Attio.
    pub calls: u32,
    /// The status of Attio's last answer, if one came.
    pub last_status: Option<u16>,
    /// Calls that were retries of a failed one.
    pub retries: u32,
    /// Answers that were `429`.
    pub rate_limited: u32,
    /// Time spent waiting on Attio's answers (the calls' latency, summed).
    pub waited: Duration,
}

impl AttioBudget {
    /// A budget that ends at `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline,
            calls: 0,
            last_status: None,
            retries: 0,
            rate_limited: 0,
            waited: Duration::ZERO,
        }
    }

    /// A budget that ends `within` from now.
    pub fn from_now(within: Duration) -> Self {
        Self::until(Instant::now() + within)
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// When the work must be done by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Counts `other`'s calls (work done at the same time under the same deadline) as this
    /// budget's too.
    pub fn add(&mut self, other: &AttioBudget) {
        self.calls += other.calls;
        self.retries += other.retries;
        self.rate_limited += other.rate_limited;
        self.waited += other.waited;
        self.last_status = other.last_status.or(self.last_status);
    }
}

/// What went wrong talking to Attio. Messages are Attio's own, with email addresses redacted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AttioError {
    /// 401: the token is invalid, revoked or rotated.
    #[error("Attio refused the access token: {message}")]
    Unauthorized {
        /// Attio's message.
        message: String,
    },
    /// 403: the token lacks a scope.
    #[error(
        "Attio refused the request for lack of permission ({message}); the token needs the record_permission:read-write and object_configuration:read scopes"
    )]
    Forbidden {
        /// Attio's message.
        message: String,
    },
    /// The object is not activated in the workspace.
    #[error(
        "the Attio \"{object}\" object is not activated in this workspace: a workspace admin must activate it under Settings > Objects"
    )]
    ObjectNotActivated {
        /// The object slug.
        object: String,
    },
    /// A unique value sent is held by another record.
    #[error(
        "Attio refused to write {object}: a unique value is held by another record ({message})"
    )]
    UniquenessConflict {
        /// The object slug.
        object: String,
        /// Attio's message.
        message: String,
    },
    /// Attio rejected a value or the request as invalid; retrying cannot help.
    #[error("Attio rejected the {object} record as invalid ({code}): {message}")]
    Invalid {
        /// The object slug.
        object: String,
        /// Attio's error code, e.g. `validation_type`.
        code: String,
        /// Attio's message.
        message: String,
        /// The attributes Attio's validation errors point at (`validation_errors[].path`).
        attributes: Vec<String>,
    },
    /// 429 still after the retries the budget allowed.
    #[error("Attio is rate-limiting this workspace")]
    RateLimited {
        /// When Attio said to come back, if it said.
        retry_after: Option<Duration>,
    },
    /// 5xx still after retries.
    #[error("Attio answered {status} after {attempts} attempts")]
    ServerError {
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer: connection refused, reset or timed out.
    #[error("Attio could not be reached after {attempts} attempts: {reason}")]
    Unreachable {
        /// The transport error.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The time this invocation may spend on Attio ran out before the call could be made, or
    /// before its answer came: the sender's wait, the Lambda deadline or `ATTIO_MAX_ELAPSED_MS`.
    /// Attio itself did not fail.
    #[error(
        "the time budget for Attio ran out before this call was answered (after {attempts} attempts); Attio itself did not fail"
    )]
    OutOfTime {
        /// Attempts made before the time ran out.
        attempts: u32,
    },
    /// The record addressed by id does not exist (any more).
    #[error("the Attio record does not exist")]
    RecordNotFound,
    /// A 2xx whose body is not what Attio documents.
    #[error("Attio's answer was not understood: {0}")]
    UnexpectedResponse(String),
}

/// Attio's error body: `{"status_code","type","code","message"}`, validation errors with
/// `validation_errors: [{"path": [...], …}]`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Default, Deserialize)]
struct ValidationError {
    #[serde(default)]
    path: Vec<Value>,
}

/// The rules for Attio's failures, in one place: their codes, which a later attempt can mend,
/// and when to make it. The HTTP answer, the worker's message fates and the queue's hand-over
/// all read them from here.
impl AttioError {
    /// The stable snake_case code naming the failure (in answers, logs and dead letters).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "attio_unauthorized",
            Self::Forbidden { .. } => "attio_forbidden",
            Self::ObjectNotActivated { .. } => "attio_object_not_activated",
            Self::UniquenessConflict { .. } => "attio_uniqueness_conflict",
            Self::Invalid { .. } => "attio_rejected",
            Self::RateLimited { .. } => "attio_rate_limited",
            Self::OutOfTime { .. } => "time_budget_exhausted",
            Self::ServerError { .. } => "attio_unavailable",
            Self::Unreachable { .. } => "attio_unreachable",
            Self::UnexpectedResponse(_) => "attio_bad_response",
            Self::RecordNotFound => "attio_record_not_found",
        }
    }

    /// Whether a later attempt can succeed with nothing changed but time: Attio unavailable,
    /// slow or rate-limiting, the time budget spent, or a record vanishing between two calls.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::OutOfTime { .. }
                | Self::ServerError { .. }
                | Self::Unreachable { .. }
                | Self::UnexpectedResponse(_)
                | Self::RecordNotFound
        )
    }

    /// Whether no retry can mend it: a value Attio refuses, a uniqueness conflict, an object
    /// not activated or a scope not granted (the worker dead-letters these at once).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. }
                | Self::UniquenessConflict { .. }
                | Self::ObjectNotActivated { .. }
                | Self::Forbidden { .. }
        )
    }

    /// Whether it concerns one record's values (an invalid value, a conflict, a vanished
    /// record) rather than Attio as a whole, so that other users of a batch go on.
    pub fn concerns_one_record(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. } | Self::UniquenessConflict { .. } | Self::RecordNotFound
        )
    }

    /// `Retry-After` for a sender: Attio's own (at least 1 s) when it is rate-limiting; 1 s
    /// when the time budget ran out (Attio is fine: the next attempt brings a new budget).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::OutOfTime { .. } => Some(Duration::from_secs(1)),
            Self::RateLimited { retry_after } => Some(
                retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_secs(1)),
            ),
            _ => None,
        }
    }

    /// When a queued event should come back after Attio as a whole failed: as
    /// [`retry_after`](Self::retry_after), and 30 s after a `5xx` or no answer; `None` for the
    /// rest (the queue's visibility timeout decides).
    pub fn come_back_after(&self) -> Option<Duration> {
        match self {
            Self::ServerError { .. } | Self::Unreachable { .. } => Some(Duration::from_secs(30)),
            other => other.retry_after(),
        }
    }

    /// Whether Attio refused a value of `attribute` in particular (its validation errors point
    /// at it, or its message names it in quotes, as Attio's messages do).
    pub fn names_attribute(&self, attribute: &str) -> bool {
        match self {
            Self::Invalid {
                message,
                attributes,
                ..
            } => {
                attributes.iter().any(|a| a == attribute)
                    || message.contains(&format!("\"{attribute}\""))
            }
            _ => false,
        }
    }
}

/// A client for one Attio API base URL; cheap to share, keeps connections alive.
#[derive(Debug, Clone)]
pub struct AttioClient {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
    /// Paces writes, when set ([`crate::pace`]); shared by clones of the client.
    limiter: Option<std::sync::Arc<crate::pace::WriteLimiter>>,
    /// Paces reads (queries, lists), when set: Attio allows 100 a second.
    read_limiter: Option<std::sync::Arc<crate::pace::WriteLimiter>>,
    /// Attio's recent round trip in milliseconds (a moving average, at most 1 s): a call is not
    /// started with less time left than that, since its answer could not come in time and a
    /// write Attio applied unseen would be written again by the sender's retry.
    round_trip_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl AttioClient {
    /// Builds the HTTP client once; call during init.
    /// A client for Attio at `base_url` whose TLS trusts what `tls` says ([`crate::tls`]).
    pub fn new(
        base_url: &str,
        retry: RetryPolicy,
        tls: rustls::ClientConfig,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("attio-user-sync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            retry,
            limiter: None,
            read_limiter: None,
            round_trip_ms: Default::default(),
        })
    }

    /// The same client, starting writes (asserts, updates, deletions) only as `limiter` allows,
    /// and holding them all for a `429`'s `Retry-After`.
    pub fn with_limiter(mut self, limiter: std::sync::Arc<crate::pace::WriteLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The same client, starting reads (queries, lists) only as `limiter` allows, and holding
    /// them for a read's `429`.
    pub fn with_read_limiter(mut self, limiter: std::sync::Arc<crate::pace::WriteLimiter>) -> Self {
        self.read_limiter = Some(limiter);
        self
    }

    /// The same client, paced by a [`crate::pace::WriteLimiter::bursting`] at `per_second`
    /// unless it has a limiter already.
    pub fn paced_unless_already(self, per_second: f64) -> Self {
        if self.limiter.is_some() {
            return self;
        }
        self.with_limiter(std::sync::Arc::new(crate::pace::WriteLimiter::bursting(
            per_second,
        )))
    }

    /// The underlying HTTP client, to share its TLS setup and connection pool.
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// `PUT /v2/objects/{object}/records?matching_attribute={slug}` with `{"data":{"values":…}}`:
    /// creates the record or updates the one holding the matching value. Returns its id.
    pub async fn assert_record(
        &self,
        token: &Secret,
        object: &str,
        matching_attribute: &str,
        values: Value,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        // Object and attribute slugs are fixed identifiers chosen by this crate: no escaping needed.
        let path = format!("/v2/objects/{object}/records?matching_attribute={matching_attribute}");
        let body = json!({ "data": { "values": values } });
        let answer = self
            .call(token, Method::PUT, &path, Some(&body), object, budget)
            .await?;
        // Attio answers with the whole record; only its id is read (the rest is skipped, not
        // built into a JSON tree, which was about a tenth of the function's CPU per event).
        let answer: Answer<RecordIdOnly> = parse(&answer)?;
        Ok(answer.data.id.record_id)
    }

    /// A page of `object`'s records: `limit` (Attio's most is 500) from `offset`, in Attio's
    /// order (`POST /v2/objects/{object}/records/query` without a filter). A page shorter than
    /// `limit` is the last.
    pub async fn query_records(
        &self,
        token: &Secret,
        object: &str,
        limit: u32,
        offset: u64,
        budget: &mut AttioBudget,
    ) -> Result<Vec<FoundRecord>, AttioError> {
        let path = format!("/v2/objects/{object}/records/query");
        let body = json!({ "limit": limit, "offset": offset });
        let answer = self
            .call(token, Method::POST, &path, Some(&body), object, budget)
            .await?;
        let answer: Answer<Vec<RecordWithValues>> = parse(&answer)?;
        Ok(answer
            .data
            .into_iter()
            .map(|r| FoundRecord {
                id: r.id.record_id,
                values: r.values,
            })
            .collect())
    }

    /// The record whose `attribute` equals `value`, if there is one
    /// (`POST /v2/objects/{object}/records/query` with an equality filter).
    pub async fn find_record(
        &self,
        token: &Secret,
        object: &str,
        attribute: &str,
        value: &str,
        budget: &mut AttioBudget,
    ) -> Result<Option<FoundRecord>, AttioError> {
        let path = format!("/v2/objects/{object}/records/query");
        let body = json!({ "filter": { attribute: value }, "limit": 1 });
        let answer = self
            .call(token, Method::POST, &path, Some(&body), object, budget)
            .await?;
        let answer: Answer<Vec<RecordWithValues>> = parse(&answer)?;
        Ok(answer.data.into_iter().next().map(|r| FoundRecord {
            id: r.id.record_id,
            values: r.values,
        }))
    }

    /// What Attio says of `token` (`GET /v2/self`; its fields at the top level or under `data`).
    pub async fn token_info(
        &self,
        token: &Secret,
        budget: &mut AttioBudget,
    ) -> Result<TokenInfo, AttioError> {
        let answer = self
            .call(token, Method::GET, "/v2/self", None, "self", budget)
            .await?;
        let value: Value = parse(&answer)?;
        let info = value
            .get("data")
            .filter(|d| d.is_object())
            .unwrap_or(&value);
        TokenInfo::deserialize(info)
            .map_err(|e| AttioError::UnexpectedResponse(format!("unexpected answer: {e}")))
    }

    /// Every attribute of `object`, archived ones included (`GET
    /// /v2/objects/{object}/attributes?show_archived=true`, page by page): without the flag
    /// Attio leaves them out, and an archived attribute would look like a missing one.
    pub async fn list_attributes(
        &self,
        token: &Secret,
        object: &str,
        budget: &mut AttioBudget,
    ) -> Result<Vec<AttributeInfo>, AttioError> {
        const PAGE: usize = 500;
        let mut attributes = Vec::new();
        loop {
            let path = format!(
                "/v2/objects/{object}/attributes?show_archived=true&limit={PAGE}&offset={}",
                attributes.len()
            );
            let answer = self
                .call(token, Method::GET, &path, None, object, budget)
                .await?;
            let page: Answer<Vec<AttributeInfo>> = parse(&answer)?;
            let full = page.data.len() == PAGE;
            attributes.extend(page.data);
            if !full {
                return Ok(attributes);
            }
        }
    }

    /// The target record ids of a record-reference attribute of one record.
    pub async fn referenced_ids(
        &self,
        token: &Secret,
        object: &str,
        record_id: &str,
        attribute: &str,
        budget: &mut AttioBudget,
    ) -> Result<Vec<RecordId>, AttioError> {
        let path = format!("/v2/objects/{object}/records/{record_id}");
        let answer = self
            .call(token, Method::GET, &path, None, object, budget)
            .await?;
        let answer: Answer<RecordWithValues> = parse(&answer)?;
        let values = answer.data.values.get(attribute).and_then(Value::as_array);
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v.get("target_record_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect())
    }

    /// Updates one record by id. Single-value attributes given are set; multi-value ones are
    /// appended to (`PATCH`) or replaced (`PUT`), as `lists` says.
    pub async fn update_record(
        &self,
        token: &Secret,
        object: &str,
        record_id: &str,
        values: Value,
        lists: ListUpdate,
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let method = match lists {
            ListUpdate::Append => Method::PATCH,
            ListUpdate::Replace => Method::PUT,
        };
        let path = format!("/v2/objects/{object}/records/{record_id}");
        let body = json!({ "data": { "values": values } });
        self.call(token, method, &path, Some(&body), object, budget)
            .await
            .map(drop)
    }

    /// `DELETE /v2/objects/{object}/records/{id}`; a record already gone counts as deleted.
    pub async fn delete_record(
        &self,
        token: &Secret,
        object: &str,
        record_id: &str,
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let path = format!("/v2/objects/{object}/records/{record_id}");
        match self
            .call(token, Method::DELETE, &path, None, object, budget)
            .await
        {
            Ok(_) | Err(AttioError::RecordNotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One Attio call, retried while it is safe and `budget` lasts. Returns the answer's body.
    async fn call(
        &self,
        token: &Secret,
        method: Method,
        path: &str,
        body: Option<&Value>,
        object: &str,
        budget: &mut AttioBudget,
    ) -> Result<Bytes, AttioError> {
        let url = format!("{}{path}", self.base_url);
        let record_scoped = path.contains("/records/") && !path.ends_with("/query");
        let write = method != Method::GET && !path.ends_with("/query");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out_of_time = AttioError::OutOfTime {
                attempts: attempt - 1,
            };
            let needed = MIN_ATTEMPT_TIME.max(Duration::from_millis(
                self.round_trip_ms
                    .load(std::sync::atomic::Ordering::Relaxed),
            ));
            let limiter = if write {
                &self.limiter
            } else {
                &self.read_limiter
            };
            if let Some(limiter) = limiter
                && !limiter
                    .acquire_before(
                        budget
                            .deadline
                            .checked_sub(needed)
                            .unwrap_or(budget.deadline),
                    )
                    .await
            {
                return Err(out_of_time);
            }
            let remaining = budget.remaining();
            if remaining < needed {
                return Err(out_of_time);
            }
            budget.calls += 1;
            if attempt > 1 {
                budget.retries += 1;
            }
            let sent = Instant::now();
            let mut request = self
                .http
                .request(method.clone(), &url)
                .timeout(remaining.min(REQUEST_TIMEOUT))
                .bearer_auth(token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = request.send().await;
            budget.waited += sent.elapsed();
            let failure = match answer {
                Ok(response) => {
                    budget.last_status = Some(response.status().as_u16());
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        budget.rate_limited += 1;
                    }
                    let took = sent.elapsed().min(Duration::from_secs(1)).as_millis() as u64;
                    let before = self
                        .round_trip_ms
                        .load(std::sync::atomic::Ordering::Relaxed);
                    self.round_trip_ms.store(
                        (before * 3 + took) / 4,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    if response.status().is_success() {
                        return response.bytes().await.map_err(|e| {
                            AttioError::UnexpectedResponse(format!("body could not be read: {e}"))
                        });
                    }
                    classify(object, record_scoped, response, attempt).await
                }
                // A call whose timeout the budget shortened ran out of this invocation's time,
                // not of Attio's patience: say so, so the sender hears the time budget.
                Err(e) if e.is_timeout() && remaining < REQUEST_TIMEOUT => {
                    AttioError::OutOfTime { attempts: attempt }
                }
                Err(e) => AttioError::Unreachable {
                    reason: describe_transport_error(&e),
                    attempts: attempt,
                },
            };
            if let AttioError::RateLimited { retry_after } = &failure {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                // Every write waits out a 429; a read's holds the other reads too.
                if let Some(writes) = &self.limiter {
                    writes.hold_for(wait);
                }
                if !write && let Some(reads) = &self.read_limiter {
                    reads.hold_for(wait);
                }
            }
            match self.retry_delay(&failure, attempt) {
                Some(wait) if wait + MIN_ATTEMPT_TIME <= budget.remaining() => {
                    tracing::debug!(object, attempt, wait_ms = wait.as_millis() as u64, error = %failure, "retrying Attio call");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(failure),
            }
        }
    }

    /// How long to wait before the next attempt, or `None` when the failure is final.
    fn retry_delay(&self, failure: &AttioError, attempt: u32) -> Option<Duration> {
        if attempt >= self.retry.max_attempts {
            return None;
        }
        let backoff = || {
            let exp = self.retry.base_delay * 2u32.saturating_pow(attempt - 1);
            // Full jitter keeps concurrent containers from retrying in step.
            exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
        };
        match failure {
            AttioError::RateLimited { retry_after } => Some(retry_after.unwrap_or_else(backoff)),
            AttioError::ServerError { .. } | AttioError::Unreachable { .. } => Some(backoff()),
            AttioError::Invalid { code, .. } if code == "concurrent_write_conflict" => {
                Some(backoff())
            }
            _ => None,
        }
    }
}

/// Attio's success envelope: `{"data": …}`.
#[derive(Deserialize)]
struct Answer<T> {
    data: T,
}

/// `{"id": {"record_id": …}}`, every other field of the record skipped.
#[derive(Deserialize)]
struct RecordIdOnly {
    id: RecordIdPart,
}

#[derive(Deserialize)]
struct RecordIdPart {
    record_id: RecordId,
}

/// A record's id and its attribute values.
#[derive(Deserialize)]
struct RecordWithValues {
    id: RecordIdPart,
    #[serde(default)]
    values: Value,
}

/// Reads an answer's body as `T`, or says what was wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AttioError> {
    serde_json::from_slice(body)
        .map_err(|e| AttioError::UnexpectedResponse(format!("unexpected answer: {e}")))
}

async fn classify(
    object: &str,
    record_scoped: bool,
    response: reqwest::Response,
    attempts: u32,
) -> AttioError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body: ErrorBody = response.json().await.unwrap_or_default();
    let message = redact_emails(&body.message);
    let object = object.to_owned();
    match (status, body.code.as_str()) {
        (StatusCode::TOO_MANY_REQUESTS, _) => AttioError::RateLimited { retry_after },
        (StatusCode::UNAUTHORIZED, _) => AttioError::Unauthorized { message },
        (StatusCode::FORBIDDEN, _) => AttioError::Forbidden { message },
        (_, "standard_object_disabled") => AttioError::ObjectNotActivated { object },
        (StatusCode::NOT_FOUND, _) if record_scoped => AttioError::RecordNotFound,
        // Other paths name only the object, so "not found" means the object.
        (StatusCode::NOT_FOUND, "not_found") => AttioError::ObjectNotActivated { object },
        (_, "uniqueness_conflict") => AttioError::UniquenessConflict { object, message },
        (s, _) if s.is_server_error() => AttioError::ServerError {
            status: s.as_u16(),
            attempts,
        },
        (s, code) => AttioError::Invalid {
            object,
            code: if code.is_empty() {
                s.as_u16().to_string()
            } else {
                code.to_owned()
            },
            message,
            attributes: body
                .validation_errors
                .iter()
                .filter_map(|e| e.path.first()?.as_str().map(str::to_owned))
                .collect(),
        },
    }
}

/// `Retry-After` as Attio sends it (an HTTP date) or as seconds; a date in the past means now.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::from_str(value, DateTimeFormat::HttpDate).ok()?;
    let at = SystemTime::try_from(at).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        // The innermost cause says why: refused, DNS, or a certificate not trusted.
        let mut cause: &dyn std::error::Error = e;
        while let Some(source) = cause.source() {
            cause = source;
        }
        format!("connection failed: {cause}")
    } else {
        // reqwest's Display includes the URL, which holds no secret.
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn retry_after_accepts_http_dates_and_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:01 GMT", now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
