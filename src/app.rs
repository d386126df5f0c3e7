//! The app: the clients (TLS, Attio, Secrets Manager, SQS) built once per container, and what
//! every entry point asks of them: apply user events (one by one, or a delivery's users at the
//! same time under the write pacing), queue what Attio cannot take, read the cached secret.
//! The adapters (the HTTP handler in [`crate::http`], the worker, the Cognito trigger, the
//! backfill) each meet it here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::attio::{AttioBudget, AttioClient, AttioError, RetryPolicy};
use crate::config::{Config, DeliveryMode};
use crate::domain::UserEvent;
use crate::jwks::JwksCache;
use crate::queue::{DeliveryIdentity, Outgoing, QueueError, SyncQueue};
use crate::recent::Recent;
use crate::secrets::{SecretCache, SecretsError, SyncSecrets};
use crate::sync::{SyncError, SyncOutcome, UserSync};

/// Why the app's clients could not be built (the TLS setup, the CA bundle).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// How long a container trusts what it last saw of the queue's depth.
const BACKLOG_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Everything a request needs, built during init and borrowed by each invocation.
pub struct App {
    pub(crate) config: Config,
    pub(crate) secrets: SecretCache,
    pub(crate) jwks: JwksCache,
    pub(crate) sync: UserSync,
    /// Events of recent deliveries this container applied: (delivery key, position) → outcome.
    applied: Recent<(u64, usize), SyncOutcome>,
    /// Where events go that Attio cannot take in time (`SYNC_QUEUE_URL`).
    pub(crate) queue: Option<SyncQueue>,
    /// Whether the queue held messages when last looked at, and when that was.
    backlog: std::sync::Mutex<Option<(Instant, bool)>>,
    /// The one HTTP client (TLS setup, connection pool) of Attio, Secrets Manager and SQS.
    http: reqwest::Client,
}

/// How far a delivery's events got.
#[derive(Debug)]
pub struct Progress {
    /// What applying each event did, in order. The events from `outcomes.len()` on were not
    /// applied: a sender's retry (or, later, a durable queue) must carry them.
    pub outcomes: Vec<SyncOutcome>,
    /// Why the rest were not applied, if they were not.
    pub stopped: Option<SyncError>,
}

impl Progress {
    /// Every outcome, or why not every event was applied.
    pub fn into_result(self) -> Result<Vec<SyncOutcome>, SyncError> {
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
pub fn stops_a_batch(error: &SyncError) -> bool {
    match error {
        SyncError::UserNotYetSynced(_) => false,
        SyncError::Attio(e) => !e.concerns_one_record(),
    }
}

/// How long an applied event of a delivery is answered from memory: longer than the gaps
/// between a sender's first retries (Okta and Auth0: seconds; Svix: 5 s, then 5 min).
const APPLIED_MEMORY: Duration = Duration::from_secs(600);
/// Most applied events remembered: a few of the largest batches senders send.
const APPLIED_MEMORY_SIZE: usize = 4096;

/// The Attio and Secrets Manager clients for `config`, sharing one HTTP client (one TLS setup,
/// one connection pool): what an app is built from, and what the doctor checks before the
/// first event. `lookup` reads AWS's standard settings (the process environment, in the
/// binaries).
pub fn build_clients(
    config: &Config,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(AttioClient, aws_sdk_secretsmanager::Client), BuildError> {
    let tls = crate::tls::client_config(config.ca_bundle.as_deref())?;
    let attio = AttioClient::new(&config.attio_api_url, RetryPolicy::default(), tls)?;
    let secrets = crate::secrets::client_from_lookup(attio.http_client(), lookup);
    Ok((attio, secrets))
}

impl App {
    /// Builds the Secrets Manager and Attio clients from the configuration and AWS's
    /// standard environment (region, credentials, `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub fn from_config(config: Config) -> Result<Self, BuildError> {
        Self::from_config_paced(config, None)
    }

    /// As [`from_config`](Self::from_config), with Attio writes paced by `limiter` when given
    /// (the backfill, which writes as fast as Attio allows and no faster), and then reads
    /// paced at [`crate::pace::READS_PER_SECOND`].
    pub fn from_config_paced(
        config: Config,
        limiter: Option<std::sync::Arc<crate::pace::WriteLimiter>>,
    ) -> Result<Self, BuildError> {
        let (mut attio, client) = build_clients(&config, |n| std::env::var(n).ok())?;
        if let Some(limiter) = limiter {
            // Reads paced too, evenly under Attio's 100 a second.
            attio = attio
                .with_limiter(limiter)
                .with_read_limiter(std::sync::Arc::new(crate::pace::WriteLimiter::new(
                    crate::pace::READS_PER_SECOND,
                )));
        }
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

    /// The Attio client (with the app's pacing), for reads outside a sync (reconcile).
    pub fn attio(&self) -> &crate::attio::AttioClient {
        self.sync.attio()
    }

    /// The sync, for what reconcile asks of it (what it would write, a repair).
    pub fn sync(&self) -> &UserSync {
        &self.sync
    }

    /// The list APIs' credentials the secret holds, for the scheduled reconcile.
    pub async fn list_api_credentials(
        &self,
    ) -> Result<std::collections::HashMap<String, crate::secrets::Secret>, SecretsError> {
        self.secrets.list_api().await
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

    /// Direct mode with a queue: whether the queue holds events (waiting, or being applied by
    /// the worker). While it does, new events join it rather than overtake it: a user's event
    /// written directly while an older one of the same user waits in the queue would be
    /// overwritten by it. Looked up at most every [`BACKLOG_CHECK_EVERY`]; a failed lookup
    /// counts as no backlog (the event goes direct, as without a queue).
    pub(crate) async fn queue_has_backlog(&self) -> bool {
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

    pub(crate) fn note_backlog(&self, backlog: bool) {
        *self.backlog.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), backlog));
    }

    /// Sends `events`, each at its position of the delivery, to the queue; how many were sent.
    pub(crate) async fn enqueue_at(
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
    ) -> Vec<Option<Result<SyncOutcome, SyncError>>> {
        use futures_util::StreamExt as _;
        let until = budget.deadline();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let mut results: Vec<Option<Result<SyncOutcome, SyncError>>> =
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
    ) -> Result<SyncOutcome, SyncError> {
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
    pub async fn secrets(&self) -> Result<Arc<SyncSecrets>, SecretsError> {
        self.secrets.get().await
    }
}
