//! The HTTP side: route, authenticate, parse, sync, answer. Built once per container.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::JwkSet;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::attio::{AttioBudget, AttioClient, AttioError, RetryPolicy};
use crate::config::{Config, DeliveryMode};
use crate::domain::{UserEvent, redact_emails};
use crate::error::{AppError, MAX_BODY_BYTES};
use crate::jwks::JwksCache;
use crate::metrics::Tally;
use crate::providers::{Delivery, Provider, WebhookRequest, provider_for_route};
use crate::queue::{DeliveryIdentity, Outgoing, QueueError, SyncQueue};
use crate::recent::Recent;
use crate::secrets::{SecretCache, SyncSecrets};
use crate::signature::SignatureError;
use crate::sync::{SyncError, SyncOutcome, UserSync};

/// How long a container trusts what it last saw of the queue's depth.
const BACKLOG_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Time kept back from the Lambda deadline to answer in after giving up on Attio.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// Everything a request needs, built during init and borrowed by each invocation.
pub struct App {
    config: Config,
    secrets: SecretCache,
    jwks: JwksCache,
    sync: UserSync,
    /// Events of recent deliveries this container applied: (delivery key, position) → outcome.
    applied: Recent<(u64, usize), SyncOutcome>,
    /// Where events go that Attio cannot take in time (`SYNC_QUEUE_URL`).
    queue: Option<SyncQueue>,
    /// Whether the queue held messages when last looked at, and when that was.
    backlog: std::sync::Mutex<Option<(Instant, bool)>>,
    /// The one HTTP client (TLS setup, connection pool) of Attio, Secrets Manager and SQS.
    http: reqwest::Client,
}

/// What the log line may repeat of a request: set only after it is verified.
#[derive(Default)]
struct Verified<'r> {
    delivery_id: Option<&'r str>,
    event_type: Option<String>,
    /// Events applied (this attempt or an earlier one), of the delivery's events.
    applied: Option<(usize, usize)>,
    /// Why the queue did not take events it was sent, for the log line.
    queue_error: Option<QueueError>,
}

/// How far a delivery's events got.
#[derive(Debug)]
pub struct Progress {
    /// What applying each event did, in order. The events from `outcomes.len()` on were not
    /// applied: a sender's retry (or, later, a durable queue) must carry them.
    pub outcomes: Vec<SyncOutcome>,
    /// Why the rest were not applied, if they were not.
    pub stopped: Option<AppError>,
}

impl Progress {
    /// Every outcome, or why not every event was applied.
    pub fn into_result(self) -> Result<Vec<SyncOutcome>, AppError> {
        match self.stopped {
            None => Ok(self.outcomes),
            Some(error) => Err(error),
        }
    }
}

/// Most users of one delivery applied at the same time: with Attio ~150 ms away and three
/// calls a new user, 32 users in flight have a write ready whenever the limiter allows one
/// (16 left Okta's 2.5 s short of what the limit allows: 24 users, not 30); the limiter paces.
pub const USERS_AT_ONCE: usize = 32;

/// A delivery's event positions by user, each user's in order, users in order of first event.
fn by_user(events: &[UserEvent]) -> Vec<Vec<usize>> {
    let mut users: Vec<(&str, Vec<usize>)> = Vec::new();
    for (position, event) in events.iter().enumerate() {
        let user = event.user_id();
        match users.iter_mut().find(|(u, _)| *u == user) {
            Some((_, positions)) => positions.push(position),
            None => users.push((user, vec![position])),
        }
    }
    users.into_iter().map(|(_, positions)| positions).collect()
}

/// Whether a failure is Attio's (or the time's) as a whole, so that no further event of the
/// batch is started, rather than one event's own (an invalid value, a conflict, a member not
/// in Attio yet), after which other users go on.
pub fn stops_a_batch(error: &AppError) -> bool {
    !matches!(
        error,
        AppError::UserNotYetSynced(_)
            | AppError::Payload(_)
            | AppError::Attio(
                AttioError::Invalid { .. }
                    | AttioError::UniquenessConflict { .. }
                    | AttioError::RecordNotFound
            )
    )
}

/// How long an applied event of a delivery is answered from memory: longer than the gaps
/// between a sender's first retries (Okta and Auth0: seconds; Svix: 5 s, then 5 min).
const APPLIED_MEMORY: Duration = Duration::from_secs(600);
/// Most applied events remembered: a few of the largest batches senders send.
const APPLIED_MEMORY_SIZE: usize = 4096;

/// Identifies a verified delivery across a sender's retries: the route, the sender's delivery
/// id (stable across retries, distinct per message) and the body (Okta's and Auth0's retries
/// resend the same bytes). A new message with the same content has a new id, or, for senders
/// without one, a new event id or time in its body, and so is applied again.
fn delivery_key(route: &str, delivery_id: Option<&str>, body: &[u8]) -> u64 {
    crate::recent::keyed_hash((route, delivery_id, body))
}

/// What a successfully handled delivery produced.
enum Handled {
    Synced(Vec<SyncOutcome>),
    Ignored,
    /// A one-time endpoint verification, answered with exactly this body.
    Challenge(serde_json::Value),
    /// The first events were applied (`applied`), the rest are safe in the queue (`queued`).
    Queued {
        applied: Vec<SyncOutcome>,
        queued: usize,
    },
}

impl App {
    /// Builds the Secrets Manager and Attio clients from the configuration and AWS's
    /// standard environment (region, credentials, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub fn from_config(config: Config) -> Result<Self, lambda_http::Error> {
        Self::from_config_paced(config, None)
    }

    /// As [`from_config`](Self::from_config), with Attio writes paced by `limiter` when given
    /// (the backfill, which writes as fast as Attio allows and no faster).
    pub fn from_config_paced(
        config: Config,
        limiter: Option<std::sync::Arc<crate::pace::WriteLimiter>>,
    ) -> Result<Self, lambda_http::Error> {
        let tls = crate::tls::client_config(config.ca_bundle.as_deref())?;
        let mut attio = AttioClient::new(&config.attio_api_url, RetryPolicy::default(), tls)?;
        if let Some(limiter) = limiter {
            attio = attio.with_limiter(limiter);
        }
        // One HTTP client (one TLS setup, one connection pool) for Attio and Secrets Manager.
        let client = crate::secrets::client_from_env(attio.http_client());
        let queue = config.sync_queue_url.clone().map(|url| {
            let sqs =
                crate::queue::client_from_lookup(attio.http_client(), |n| std::env::var(n).ok());
            SyncQueue::new(sqs, url)
        });
        let app = Self::new(config, client, attio);
        Ok(match queue {
            Some(queue) => app.with_queue(queue),
            None => app,
        })
    }

    /// The same app, sending what Attio cannot take in time to `queue`.
    pub fn with_queue(mut self, queue: SyncQueue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Assembles an app from clients built elsewhere.
    pub fn new(
        config: Config,
        secrets_client: aws_sdk_secretsmanager::Client,
        attio: AttioClient,
    ) -> Self {
        let secrets = SecretCache::new(
            secrets_client,
            config.secret_id.clone(),
            config.secret_cache_ttl,
        );
        // Writes paced to this process's share of Attio's limit, unless the caller paces them
        // its own way (the backfill spaces them evenly).
        let attio = attio.paced_unless_already(config.attio_writes_per_second);
        // One HTTP client (one TLS setup, one connection pool) serves Attio and key sets.
        let jwks = JwksCache::new(attio.http_client());
        let http = attio.http_client();
        let sync = UserSync::new(attio, &config);
        Self {
            config,
            secrets,
            jwks,
            sync,
            applied: Recent::new(APPLIED_MEMORY, APPLIED_MEMORY_SIZE),
            queue: None,
            backlog: std::sync::Mutex::new(None),
            http,
        }
    }

    /// This app with the Attio token given (`ATTIO_ACCESS_TOKEN`, for a binary a person runs)
    /// instead of read from the secret.
    pub fn with_access_token(self, token: crate::secrets::Secret) -> Self {
        Self {
            secrets: self.secrets.given(SyncSecrets {
                attio_access_token: token,
                webhook_secrets: Default::default(),
            }),
            ..self
        }
    }

    /// The HTTP client the app's AWS and Attio clients share.
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// Fetches the secret ahead of the first request (init has full CPU); a failure is
    /// logged and retried on the first request.
    pub async fn prefetch_secret(&self) {
        if let Err(e) = self.secrets.get().await {
            tracing::warn!(error = %e, "could not fetch the secret during init; will retry per request");
        }
    }

    /// The webhook's init: the secret and, with a queue in direct mode, the queue's depth (which
    /// opens the connection to SQS), at the same time, rather than on the first request. The
    /// other entry points never read the depth, so they prefetch the secret alone.
    pub async fn prefetch_for_webhooks(&self) {
        let backlog = async {
            if self.config.delivery_mode == DeliveryMode::Direct {
                self.queue_has_backlog().await;
            }
        };
        tokio::join!(self.prefetch_secret(), backlog);
    }

    /// The queue events go to (`SYNC_QUEUE_URL`), if one is configured.
    pub fn queue(&self) -> Option<&SyncQueue> {
        self.queue.as_ref()
    }

    /// Handles one webhook request. Never fails: every outcome is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let provider = route(request.uri().path()).and_then(provider_for_route);
        let mut budget = AttioBudget::until(self.attio_deadline(&request, provider));
        let mut seen = Verified::default();
        let result = match provider {
            None => Err(AppError::UnknownRoute),
            Some(p) => {
                self.handle_provider(p, &request, &mut budget, &mut seen)
                    .await
            }
        };
        let provider_name = provider.map_or("none", |p| p.route());
        let mut tally = Tally::default();
        tally.add_attio(&budget);
        let (response, outcome, detail, warnings) = match result {
            Ok((delivery, handled)) => {
                count(&handled, &mut tally);
                let outcome = match &handled {
                    // One event: its own status, as the answer says it (`outdated`, `ignored`…).
                    Handled::Synced(outcomes) => match outcomes.as_slice() {
                        [only] => only.status(),
                        _ => "synced",
                    },
                    Handled::Ignored => "ignored",
                    Handled::Challenge(_) => "challenge",
                    Handled::Queued { .. } => "queued",
                };
                (
                    success(provider_name, &delivery, &handled),
                    outcome,
                    String::new(),
                    warned_attributes(&handled),
                )
            }
            Err(error) => (
                {
                    if error.status().is_client_error() {
                        tally.rejected += 1;
                    } else {
                        tally.failed += 1;
                    }
                    failure(&error, seen.applied)
                },
                error.code(),
                log_detail(&match &seen.queue_error {
                    // The event stays with the sender; say why the queue did not take it.
                    Some(queue) => format!("{error}; and the queue did not take it: {queue}"),
                    None => error.to_string(),
                }),
                String::new(),
            ),
        };
        tracing::info!(
            provider = provider_name,
            event_type = seen.event_type.as_deref().map_or("", loggable_token),
            webhook_id = seen.delivery_id.map_or("", loggable_token),
            outcome,
            status = response.status().as_u16(),
            events = seen.applied.map(|(_, of)| of),
            events_applied = seen.applied.map(|(applied, _)| applied),
            attio_calls = budget.calls,
            attio_status = budget.last_status,
            duration_ms = started.elapsed().as_millis() as u64,
            detail,
            warnings,
            "webhook handled"
        );
        tally.emit(provider_name);
        response
    }

    /// Authenticates, parses and applies one request to a known route. What the log line may
    /// repeat of the request goes into `seen`, and only once the request is verified.
    async fn handle_provider<'r>(
        &self,
        provider: &dyn Provider,
        request: &'r Request,
        budget: &mut AttioBudget,
        seen: &mut Verified<'r>,
    ) -> Result<(Delivery, Handled), AppError> {
        if request.method() == Method::GET
            && let Some(challenge) = provider.answer_challenge(request.headers())
        {
            // A verification request carries the same credentials as deliveries.
            let secrets = self.secrets.get().await?;
            self.verify(provider, request, secrets).await?;
            return Ok((
                Delivery::ignored("verification"),
                Handled::Challenge(challenge?),
            ));
        }
        if request.method() != Method::POST {
            return Err(AppError::MethodNotAllowed);
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(AppError::BodyTooLarge(body.len()));
        }
        let secrets = self.secrets.get().await?;
        let secrets = self.verify(provider, request, secrets).await?;
        seen.delivery_id = provider.delivery_id(request.headers());

        let delivery = provider.parse(body)?;
        seen.event_type = Some(delivery.event_type.clone());
        if delivery.events.is_empty() && delivery.skipped.is_empty() {
            return Ok((delivery, Handled::Ignored));
        }
        let identity = DeliveryIdentity {
            id: seen.delivery_id,
            body,
        };
        if delivery.events.iter().any(|e| self.sync.needs_attio(e))
            && (self.config.delivery_mode == DeliveryMode::Queued || self.queue_has_backlog().await)
        {
            let queued = self
                .enqueue_events(
                    provider.route(),
                    &delivery.event_type,
                    identity,
                    0,
                    &delivery.events,
                )
                .await
                .map_err(AppError::Queue)?;
            seen.applied = Some((0, delivery.events.len()));
            return Ok((
                delivery,
                Handled::Queued {
                    applied: Vec::new(),
                    queued,
                },
            ));
        }
        let key = delivery_key(provider.route(), seen.delivery_id, body);
        let results = self
            .apply_by_user(&delivery.events, Some(key), secrets, budget)
            .await;
        let mut applied = Vec::with_capacity(results.len());
        let mut left: Vec<(usize, &UserEvent)> = Vec::new();
        // Why not every event was applied: the first failure a retry can mend, else the first.
        let mut stopped: Option<AppError> = None;
        for (position, result) in results.into_iter().enumerate() {
            match result {
                Some(Ok(outcome)) => applied.push(outcome),
                failed => {
                    left.push((position, &delivery.events[position]));
                    if let Some(Err(error)) = failed
                        && stopped
                            .as_ref()
                            .is_none_or(|s| !s.is_transient() && error.is_transient())
                    {
                        stopped = Some(error);
                    }
                }
            }
        }
        seen.applied = Some((applied.len(), delivery.events.len()));
        let Some(error) = stopped else {
            return Ok((delivery, Handled::Synced(applied)));
        };
        if !(error.is_transient() && self.queue.is_some()) {
            return Err(error);
        }
        // What Attio could not take in time is queued; an event Attio refused goes too, so that
        // the worker dead-letters it with its reason rather than it being lost with the answer.
        match self
            .enqueue_at(provider.route(), &delivery.event_type, identity, &left)
            .await
        {
            Ok(queued) => {
                self.note_backlog(true);
                Ok((delivery, Handled::Queued { applied, queued }))
            }
            Err(queue_error) => {
                seen.queue_error = Some(queue_error);
                Err(error)
            }
        }
    }

    /// Direct mode with a queue: whether the queue holds events (waiting, or being applied by
    /// the worker). While it does, new events join it rather than overtake it: a user's event
    /// written directly while an older one of the same user waits in the queue would be
    /// overwritten by it. Looked up at most every [`BACKLOG_CHECK_EVERY`]; a failed lookup
    /// counts as no backlog (the event goes direct, as without a queue).
    async fn queue_has_backlog(&self) -> bool {
        let Some(queue) = &self.queue else {
            return false;
        };
        let cached = *self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, backlog)) = cached
            && at.elapsed() < BACKLOG_CHECK_EVERY
        {
            return backlog;
        }
        let backlog = queue.holds_messages().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the queue's depth; writing directly");
            false
        });
        self.note_backlog(backlog);
        backlog
    }

    fn note_backlog(&self, backlog: bool) {
        *self.backlog.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), backlog));
    }

    /// Sends `events`, each at its position of the delivery, to the queue; how many were sent.
    async fn enqueue_at(
        &self,
        route: &'static str,
        event_type: &str,
        identity: DeliveryIdentity<'_>,
        events: &[(usize, &UserEvent)],
    ) -> Result<usize, QueueError> {
        let Some(queue) = &self.queue else {
            return Err(QueueError::Unavailable("no SYNC_QUEUE_URL".into()));
        };
        let outgoing = Outgoing::at_positions(
            route,
            event_type,
            identity,
            events,
            &self.config.attribute_map,
        );
        queue.send(&outgoing).await?;
        Ok(outgoing.len())
    }

    /// Sends `events`, which start at position `first` of their delivery, to the queue; how
    /// many were sent. The webhook queues what Attio could not take; the Cognito trigger, a user
    /// Attio could not take in time. `Err` when there is no queue or it refused.
    pub async fn enqueue_events(
        &self,
        route: &'static str,
        event_type: &str,
        identity: DeliveryIdentity<'_>,
        first: usize,
        events: &[UserEvent],
    ) -> Result<usize, QueueError> {
        let at: Vec<(usize, &UserEvent)> = events
            .iter()
            .enumerate()
            .map(|(i, event)| (first + i, event))
            .collect();
        self.enqueue_at(route, event_type, identity, &at).await
    }

    /// Applies events in order, stopping at the first that Attio does not confirm. An Attio
    /// `401` refetches the secret (the token may have been rotated) and retries once.
    ///
    /// With `delivery` (a key for the delivery the events came in: route, delivery id, body),
    /// events of it this container applied in the last minutes are answered from what
    /// applying them did, without calling Attio: a sender's retry of a batch cut short by
    /// Attio's rate limit writes only the events earlier attempts did not.
    pub async fn apply(
        &self,
        events: &[UserEvent],
        delivery: Option<u64>,
        secrets: Arc<SyncSecrets>,
        budget: &mut AttioBudget,
    ) -> Progress {
        let mut outcomes = Vec::with_capacity(events.len());
        for (position, event) in events.iter().enumerate() {
            let key = delivery.map(|d| (d, position));
            match self.apply_one(event, key, &secrets, budget).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => {
                    return Progress {
                        outcomes,
                        stopped: Some(error),
                    };
                }
            }
        }
        Progress {
            outcomes,
            stopped: None,
        }
    }

    /// Applies a delivery's events user by user: different users' events at the same time (up
    /// to [`USERS_AT_ONCE`], their writes paced by the app's limiter), one user's in order, a
    /// user's later events not tried once one of theirs was not applied. Once Attio as a whole
    /// fails (down, rate-limiting past the budget, the time budget spent, the token refused), no
    /// further event is started. Each event's result, in order; `None`: not tried.
    ///
    /// With `delivery`, events of it applied in the last minutes are answered from memory, as
    /// in [`apply`](Self::apply).
    pub async fn apply_by_user(
        &self,
        events: &[UserEvent],
        delivery: Option<u64>,
        secrets: Arc<SyncSecrets>,
        budget: &mut AttioBudget,
    ) -> Vec<Option<Result<SyncOutcome, AppError>>> {
        use futures_util::StreamExt as _;
        let until = budget.deadline();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut results: Vec<Option<Result<SyncOutcome, AppError>>> =
            events.iter().map(|_| None).collect();
        let mut users = by_user(events).into_iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            while running.len() < USERS_AT_ONCE {
                let Some(positions) = users.next() else {
                    break;
                };
                let secrets = secrets.clone();
                let stop = &stop;
                running.push(async move {
                    let mut done = Vec::with_capacity(positions.len());
                    let mut spent = AttioBudget::until(until);
                    for position in positions {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let key = delivery.map(|d| (d, position));
                        let result = self
                            .apply_one(&events[position], key, &secrets, &mut spent)
                            .await;
                        let failed = result.as_ref().err().map(stops_a_batch);
                        done.push((position, result));
                        match failed {
                            None => {}
                            Some(everyone) => {
                                if everyone {
                                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                                }
                                break;
                            }
                        }
                    }
                    (done, spent)
                });
            }
            let Some((done, spent)) = running.next().await else {
                return results;
            };
            budget.add(&spent);
            for (position, result) in done {
                results[position] = Some(result);
            }
        }
    }

    /// Applies one event (`key`: its delivery and position, answered from memory when this
    /// container applied it lately); an Attio `401` refetches the secret and retries once.
    async fn apply_one(
        &self,
        event: &UserEvent,
        key: Option<(u64, usize)>,
        secrets: &Arc<SyncSecrets>,
        budget: &mut AttioBudget,
    ) -> Result<SyncOutcome, AppError> {
        if let Some(outcome) = key.and_then(|k| self.applied.get(&k)) {
            return Ok(outcome);
        }
        let outcome = match self
            .sync
            .apply(&secrets.attio_access_token, event, budget)
            .await
        {
            Err(SyncError::Attio(AttioError::Unauthorized { message })) => {
                match self.secrets.refresh_after_rejection().await {
                    Some(fresh) => {
                        self.sync
                            .apply(&fresh.attio_access_token, event, budget)
                            .await
                    }
                    None => Err(AttioError::Unauthorized { message }.into()),
                }
            }
            other => other,
        }?;
        if let Some(key) = key {
            self.applied.insert(key, outcome.clone());
        }
        Ok(outcome)
    }

    /// The configuration the app was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cached secret (fetched if needed), for entry points other than HTTP.
    pub async fn secrets(&self) -> Result<Arc<SyncSecrets>, AppError> {
        Ok(self.secrets.get().await?)
    }

    /// When Attio work must be done by: `ATTIO_MAX_ELAPSED_MS` from now, or sooner if the
    /// sender waits less (Okta) or the Lambda deadline (less a margin to answer in) comes first.
    fn attio_deadline(
        &self,
        request: &Request,
        provider: Option<&dyn Provider>,
    ) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let configured = self.config.attio_max_elapsed;
        let sender_limit = provider
            .and_then(|p| p.answer_within())
            .unwrap_or(configured);
        let cap = now + configured.min(sender_limit);
        // Lambda sends the deadline as epoch milliseconds. A deadline already past at the start
        // is no real deadline (cargo lambda's emulator sends its timeout, 600000, instead).
        let lambda_left = request
            .lambda_context_ref()
            .and_then(|context| context.deadline().duration_since(SystemTime::now()).ok());
        match lambda_left {
            Some(left) => cap.min(now + left.saturating_sub(DEADLINE_MARGIN)),
            None => cap,
        }
    }

    /// Verifies the request against the route's secrets; when none matches, refetches the
    /// secret (bounded) in case the signing secret was rotated, and tries once more. Providers
    /// that sign with published keys (Kinde) are verified against those instead.
    async fn verify(
        &self,
        provider: &dyn Provider,
        request: &Request,
        secrets: Arc<SyncSecrets>,
    ) -> Result<Arc<SyncSecrets>, AppError> {
        if let Some(url) = provider.jwks_url(&self.config) {
            let url = url.map_err(AppError::MissingSetting)?;
            self.verify_with_published_keys(provider, request, &url)
                .await?;
            return Ok(secrets);
        }
        let webhook_request = self.webhook_request(request, None);
        let check = |s: &SyncSecrets| {
            let route_secrets = s.webhook_secrets_for(provider.route());
            if route_secrets.is_empty() {
                return Err(AppError::NoSigningSecret(provider.route()));
            }
            Ok(provider.verify(&webhook_request, route_secrets)?)
        };
        match check(&secrets) {
            Ok(()) => Ok(secrets),
            Err(AppError::Signature(SignatureError::NoMatch))
            | Err(AppError::NoSigningSecret(_)) => {
                match self.secrets.refresh_after_rejection().await {
                    Some(fresh) => check(&fresh).map(|()| fresh),
                    None => check(&secrets).map(|()| secrets),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Verifies against the key set at `url`; a token naming a key the cached set lacks
    /// refetches the set (bounded) once, for key rotation.
    async fn verify_with_published_keys(
        &self,
        provider: &dyn Provider,
        request: &Request,
        url: &str,
    ) -> Result<(), AppError> {
        let keys = self.jwks.get(url).await?;
        let check =
            |keys: &JwkSet| provider.verify(&self.webhook_request(request, Some(keys)), &[]);
        match check(&keys) {
            Err(SignatureError::UnknownKey) => match self.jwks.refresh(url).await {
                Some(fresh) => Ok(check(&fresh)?),
                None => Err(SignatureError::UnknownKey.into()),
            },
            other => Ok(other?),
        }
    }

    fn webhook_request<'a>(
        &self,
        request: &'a Request,
        keys: Option<&'a JwkSet>,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            headers: request.headers(),
            body: request.body().as_ref(),
            now: SystemTime::now(),
            tolerance: self.config.webhook_tolerance,
            keys,
        }
    }
}

/// Longest id or event type a log line repeats.
const MAX_LOGGED_TOKEN: usize = 128;
/// Longest failure detail a log line holds.
const MAX_LOGGED_DETAIL: usize = 400;

/// A sender's id or event type as the log may show it: ids and event types are short and made
/// of letters, digits and `._:/-`; anything else is withheld, since it is the sender's text.
pub(crate) fn loggable_token(value: &str) -> &str {
    let plain = (1..=MAX_LOGGED_TOKEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
    if plain { value } else { "(withheld)" }
}

/// A failure's message as the log may show it: addresses redacted, control characters
/// dropped, bounded (an Attio message can be long).
fn log_detail(message: &str) -> String {
    let redacted = redact_emails(message);
    let mut shown = redacted.chars().filter(|c| !c.is_control());
    let mut detail: String = shown.by_ref().take(MAX_LOGGED_DETAIL).collect();
    if shown.next().is_some() {
        detail.push('…');
    }
    detail
}

/// The route name from a path ending in `/webhooks/<route>`, whatever comes before it
/// (an API Gateway stage, a custom domain's base path).
fn route(path: &str) -> Option<&str> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let name = segments.next()?;
    (segments.next()? == "webhooks" && !name.is_empty()).then_some(name)
}

fn success(provider: &str, delivery: &Delivery, handled: &Handled) -> Response<Body> {
    let mut body = json!({ "provider": provider, "event_type": delivery.event_type });
    match handled {
        Handled::Challenge(answer) => return json_response(StatusCode::OK, answer),
        Handled::Queued { applied, queued } => {
            body["status"] = json!("queued");
            body["queued"] = json!(queued);
            if !applied.is_empty() {
                body["applied"] = json!(applied.len());
                body["records"] = applied.iter().map(outcome_json).collect();
            }
            return json_response(StatusCode::ACCEPTED, &body);
        }
        Handled::Ignored => body["status"] = json!("ignored"),
        Handled::Synced(outcomes) => match outcomes.as_slice() {
            [only] => merge(&mut body, outcome_json(only)),
            many => {
                body["status"] = json!("synced");
                body["records"] = many.iter().map(outcome_json).collect();
            }
        },
    }
    if !delivery.skipped.is_empty() {
        body["skipped"] = json!(delivery.skipped);
    }
    json_response(StatusCode::OK, &body)
}

/// One outcome as the sender sees it: a `status` and the Attio record ids involved.
fn outcome_json(outcome: &SyncOutcome) -> serde_json::Value {
    let mut v = match outcome {
        SyncOutcome::Synced {
            record_id,
            person_record_id,
            workspace_record_ids,
            ..
        } => {
            let mut v = json!({ "record_id": record_id, "person_record_id": person_record_id });
            if !workspace_record_ids.is_empty() {
                v["workspace_record_ids"] = json!(workspace_record_ids);
            }
            v
        }
        SyncOutcome::Linked {
            record_id,
            workspace_record_id,
            ..
        } => json!({ "record_id": record_id, "workspace_record_id": workspace_record_id }),
        SyncOutcome::SignedIn { record_id, .. } => json!({ "record_id": record_id }),
        SyncOutcome::Unlinked { record_id } | SyncOutcome::Deleted { record_id } => {
            json!({ "record_id": record_id })
        }
        SyncOutcome::Outdated { record_id } => {
            json!({ "record_id": record_id, "reason": "Attio already holds a newer change of this user" })
        }
        SyncOutcome::Ignored { reason } => json!({ "reason": reason }),
    };
    v["status"] = json!(outcome.status());
    // `"warnings": [{"object", "attribute", "reason"}]` when mapped attributes were left out.
    if !outcome.warnings().is_empty() {
        v["warnings"] = outcome
            .warnings()
            .iter()
            .map(|w| json!({ "object": w.object, "attribute": w.attribute, "reason": w.reason }))
            .collect();
    }
    v
}

/// Counts what a handled delivery did, for the metrics.
fn count(handled: &Handled, tally: &mut Tally) {
    let mut count_outcomes = |outcomes: &[SyncOutcome]| {
        for outcome in outcomes {
            match outcome {
                SyncOutcome::Ignored { .. } => tally.ignored += 1,
                _ => tally.synced += 1,
            }
        }
    };
    match handled {
        Handled::Synced(outcomes) => count_outcomes(outcomes),
        Handled::Queued { applied, queued } => {
            count_outcomes(applied);
            tally.queued += *queued as u32;
        }
        Handled::Ignored => tally.ignored += 1,
        Handled::Challenge(_) => {}
    }
}

/// `users.plan,people.job_title`: the attributes left out, for the log line (no values).
fn warned_attributes(handled: &Handled) -> String {
    let Handled::Synced(outcomes) = handled else {
        return String::new();
    };
    let names: Vec<String> = outcomes
        .iter()
        .flat_map(SyncOutcome::warnings)
        .map(|w| format!("{}.{}", w.object, w.attribute))
        .collect();
    names.join(",")
}

fn merge(body: &mut serde_json::Value, fields: serde_json::Value) {
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
}

/// An error answer; for a batch cut short, it says how many of its events are applied (a
/// retry of the same delivery applies only the rest).
fn failure(error: &AppError, applied: Option<(usize, usize)>) -> Response<Body> {
    let mut body = json!({ "error": { "code": error.code(), "message": error.to_string() } });
    if let Some((applied, of)) = applied.filter(|(_, of)| *of > 1) {
        body["error"]["applied"] = json!(applied);
        body["error"]["remaining"] = json!(of - applied);
    }
    let mut response = json_response(error.status(), &body);
    let headers = response.headers_mut();
    if let Some(wait) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, wait.as_secs().into());
    }
    if matches!(error, AppError::MethodNotAllowed) {
        headers.insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{MAX_LOGGED_DETAIL, log_detail, route};

    #[test]
    fn log_details_are_bounded_redacted_and_free_of_control_characters() {
        let long = format!("ada@example.com\n{}", "x".repeat(1000));
        let detail = log_detail(&long);
        assert_eq!(detail.chars().count(), MAX_LOGGED_DETAIL + 1);
        assert!(detail.ends_with('…') && !detail.contains('\n'));
        assert!(!detail.contains("ada@"), "{detail}");
        assert_eq!(log_detail("short"), "short");
    }

    #[test]
    fn routes_by_the_last_two_segments_whatever_the_prefix() {
        assert_eq!(route("/webhooks/clerk"), Some("clerk"));
        assert_eq!(route("/prod/webhooks/clerk"), Some("clerk"));
        assert_eq!(route("/webhooks/standard/"), Some("standard"));
        assert_eq!(route("/webhooks/"), None);
        assert_eq!(route("/clerk"), None);
        assert_eq!(route("/"), None);
        assert_eq!(route(""), None);
    }
}
