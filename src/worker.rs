//! The queue worker (`attio-user-sync-worker`): Lambda's SQS event source hands it batches of
//! queued events ([`crate::queue::QueueMessage`]), which it applies through the same sync as
//! the webhook. What it answers decides each message's fate:
//!
//! - applied (or answered `outdated`/`ignored`): deleted from the queue by Lambda;
//! - failed in a way time can mend (Attio down, slow, rate-limiting; a membership whose user is
//!   not in Attio yet): listed in `batchItemFailures`, so SQS delivers it again after the
//!   visibility timeout, and, after the queue's `maxReceiveCount`, moves it to the dead-letter
//!   queue through its redrive policy;
//! - can never succeed (unreadable, an invalid value, a uniqueness conflict, an object not
//!   activated, a missing scope): sent to the dead-letter queue at once, with the reason as
//!   message attributes, and deleted from the queue.
//!
//! One user's messages share a message group and arrive in order: once one of them fails, the
//! user's later messages in the batch are not applied (they are failed too), so they are never
//! applied before it. When Attio as a whole is failing (down, rate-limiting, refusing the
//! token), the rest of the batch is left for later instead of being tried against it.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::App;
use crate::attio::{AttioBudget, AttioError};
use crate::error::AppError;
use crate::metrics::Tally;
use crate::queue::{Entry, QueueError, QueueMessage, SyncQueue};

/// Time kept back from the invocation's deadline to send dead letters and answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Applied; the sync's status (`synced`, `outdated`, `ignored`…).
    Applied(&'static str),
    /// Left in the queue for another attempt (listed in `batchItemFailures`).
    Retry(&'static str),
    /// Moved to the dead-letter queue, with this reason code.
    DeadLettered(&'static str),
}

/// The worker: the app (sync, secret, Attio client) and the dead-letter queue.
pub struct Worker {
    app: App,
    dead_letters: Option<SyncQueue>,
    /// The queue the messages come from (`SYNC_QUEUE_URL`), to bring failed messages back
    /// sooner than its visibility timeout when Attio says when to come back.
    source: Option<SyncQueue>,
}

impl Worker {
    /// A worker applying messages through `app`, moving those that can never succeed to
    /// `dead_letters` (`SYNC_DEAD_LETTER_QUEUE_URL`); without one, they are retried until the
    /// queue's redrive policy moves them.
    pub fn new(app: App, dead_letters: Option<SyncQueue>) -> Self {
        Self {
            app,
            dead_letters,
            source: None,
        }
    }

    /// The same worker, bringing failed messages back from `source` as soon as Attio allows
    /// (a `429`'s `Retry-After`; 30 s after a `5xx` or an unreachable Attio) instead of after the
    /// queue's whole visibility timeout.
    pub fn with_source(mut self, source: SyncQueue) -> Self {
        self.source = Some(source);
        self
    }

    /// Builds the worker from the configuration, as the binary does.
    pub fn from_app(app: App) -> Self {
        // The app already reaches SYNC_QUEUE_URL; the dead-letter queue shares that client.
        let source = app.queue().cloned();
        let dead_letters = app
            .config()
            .dead_letter_queue_url
            .clone()
            .map(|url| match &source {
                Some(source) => source.at(url),
                None => SyncQueue::new(
                    crate::queue::client_from_lookup(app.http_client(), |n| std::env::var(n).ok()),
                    url,
                ),
            });
        if dead_letters.is_none() {
            tracing::warn!(
                "SYNC_DEAD_LETTER_QUEUE_URL is not set: messages that can never succeed are retried until the queue's redrive policy moves them"
            );
        }
        let worker = Self::new(app, dead_letters);
        match source {
            Some(source) => worker.with_source(source),
            None => worker,
        }
    }

    /// Fetches the secret ahead of the first batch.
    pub async fn prefetch_secret(&self) {
        self.app.prefetch_secret().await;
    }

    /// Handles one batch; `deadline` is the invocation's (Lambda's context), if known.
    pub async fn handle(&self, batch: SqsEvent, deadline: Option<SystemTime>) -> SqsBatchResponse {
        let (fates, come_back) = self.apply_all(&batch.records, deadline).await;
        let mut response = SqsBatchResponse::default();
        let mut receipts = Vec::new();
        for (record, fate) in batch.records.iter().zip(&fates) {
            if matches!(fate, Fate::Retry(_)) {
                response.add_failure(record.message_id.clone().unwrap_or_default());
                receipts.extend(record.receipt_handle.as_deref());
            }
        }
        if let (Some(wait), Some(source)) = (come_back, &self.source)
            && !receipts.is_empty()
            && let Err(e) = source.change_visibility(&receipts, wait).await
        {
            tracing::warn!(error = %e, "could not shorten the failed messages' visibility; they come back after the queue's timeout");
        }
        response
    }

    /// What becomes of each message of the batch, in order, and when Attio said to come back if
    /// it stopped the batch.
    async fn apply_all(
        &self,
        records: &[SqsMessage],
        deadline: Option<SystemTime>,
    ) -> (Vec<Fate>, Option<Duration>) {
        let mut come_back = None;
        let now = tokio::time::Instant::now();
        let cap = now + self.app.config().attio_max_elapsed;
        let deadline = deadline
            .and_then(|d| d.duration_since(SystemTime::now()).ok())
            .map(|left| now + left.saturating_sub(DEADLINE_MARGIN));
        let mut fates = Vec::with_capacity(records.len());
        // Metrics, by the route the messages came through.
        let mut tallies: Vec<(&'static str, Tally)> = Vec::new();
        // Users (message groups) with a message left for later: their later messages wait too.
        let mut held_back: HashSet<String> = HashSet::new();
        // Why the rest of the batch is left for later, once Attio as a whole is failing.
        let mut stop: Option<&'static str> = None;
        let secrets = match self.app.secrets().await {
            Ok(secrets) => Some(secrets),
            Err(e) => {
                tracing::error!(error = %e, "could not read the secret; the batch is left for later");
                stop = Some(e.code());
                None
            }
        };
        for record in records {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_default();
            let started = std::time::Instant::now();
            let message = record.body.as_deref().map(QueueMessage::read);
            let fate = if let Some(reason) = stop {
                Fate::Retry(reason)
            } else if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                Fate::Retry("deadline")
            } else if held_back.contains(&group) {
                Fate::Retry("earlier_message_of_user_pending")
            } else {
                match &message {
                    None => {
                        self.dead_letter(record, "unreadable_message", "no body")
                            .await
                    }
                    Some(Err(e)) => {
                        self.dead_letter(record, "unreadable_message", &e.to_string())
                            .await
                    }
                    Some(Ok(message)) => {
                        let until = deadline.map_or(cap, |d| d.min(cap));
                        let mut budget = AttioBudget::until(until);
                        let secrets = secrets.clone().expect("no stop without a secret");
                        let result = self
                            .app
                            .apply(
                                std::slice::from_ref(&message.event),
                                None,
                                secrets,
                                &mut budget,
                            )
                            .await
                            .into_result();
                        tally_for(&mut tallies, message.route).add_attio(&budget);
                        match result {
                            Ok(outcomes) => {
                                Fate::Applied(outcomes.first().map_or("synced", |o| o.status()))
                            }
                            Err(error) if never_succeeds(&error) => {
                                self.dead_letter(record, error.code(), &error.to_string())
                                    .await
                            }
                            Err(error) => {
                                if stops_the_batch(&error) {
                                    stop = Some(error.code());
                                    come_back = come_back_after(&error);
                                }
                                log_failure(record, &error);
                                Fate::Retry(error.code())
                            }
                        }
                    }
                }
            };
            if matches!(fate, Fate::Retry(_)) {
                held_back.insert(group);
            }
            log_message(record, message.as_ref(), &fate, started.elapsed());
            let route = message
                .as_ref()
                .and_then(|m| m.as_ref().ok())
                .map_or("unknown", |m| m.route);
            let tally = tally_for(&mut tallies, route);
            match fate {
                Fate::Applied("ignored") => tally.ignored += 1,
                Fate::Applied(_) => tally.synced += 1,
                Fate::Retry(_) => tally.failed += 1,
                Fate::DeadLettered(_) => tally.dead_lettered += 1,
            }
            fates.push(fate);
        }
        for (route, tally) in &tallies {
            tally.emit(route);
        }
        (fates, come_back)
    }

    /// Sends the message to the dead-letter queue with `reason`; left for another attempt if
    /// there is no dead-letter queue or it refuses.
    async fn dead_letter(&self, record: &SqsMessage, reason: &'static str, detail: &str) -> Fate {
        let Some(queue) = &self.dead_letters else {
            return Fate::Retry(reason);
        };
        let message_id = record.message_id.clone().unwrap_or_default();
        let entry = Entry {
            body: record.body.clone().unwrap_or_default(),
            group_id: record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_else(|| "dead-letter".into()),
            deduplication_id: record
                .attributes
                .get("MessageDeduplicationId")
                .cloned()
                .unwrap_or_else(|| message_id.clone()),
            attributes: vec![
                ("reason", reason.to_owned()),
                (
                    "detail",
                    bounded(&crate::domain::redact_emails(detail), 1000),
                ),
                ("source_message_id", message_id),
            ],
        };
        match queue.send_entries(std::slice::from_ref(&entry)).await {
            Ok(()) => Fate::DeadLettered(reason),
            Err(e) => {
                log_dead_letter_failure(&e);
                Fate::Retry(reason)
            }
        }
    }
}

fn tally_for<'t>(
    tallies: &'t mut Vec<(&'static str, Tally)>,
    route: &'static str,
) -> &'t mut Tally {
    let i = match tallies.iter().position(|(r, _)| *r == route) {
        Some(i) => i,
        None => {
            tallies.push((route, Tally::default()));
            tallies.len() - 1
        }
    };
    &mut tallies[i].1
}

/// Failures no retry can mend: the message goes to the dead-letter queue at once.
fn never_succeeds(error: &AppError) -> bool {
    use AttioError as A;
    matches!(
        error,
        AppError::Payload(_)
            | AppError::Attio(
                A::Invalid { .. }
                    | A::UniquenessConflict { .. }
                    | A::ObjectNotActivated { .. }
                    | A::Forbidden { .. }
            )
    )
}

/// When to try again after Attio as a whole failed: its `Retry-After` for a `429`, 30 s after a
/// `5xx` or no answer; `None` leaves it to the queue's visibility timeout.
fn come_back_after(error: &AppError) -> Option<Duration> {
    use AttioError as A;
    match error {
        AppError::Attio(A::RateLimited { retry_after }) => Some(
            retry_after
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_secs(1)),
        ),
        AppError::Attio(A::ServerError { .. } | A::Unreachable { .. }) => {
            Some(Duration::from_secs(30))
        }
        _ => None,
    }
}

/// Failures of Attio as a whole: the rest of the batch is left for later.
fn stops_the_batch(error: &AppError) -> bool {
    !matches!(error, AppError::UserNotYetSynced(_))
}

fn bounded(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn log_failure(record: &SqsMessage, error: &AppError) {
    tracing::debug!(
        message_id = record.message_id.as_deref().unwrap_or(""),
        error = %crate::domain::redact_emails(&error.to_string()),
        "queued event left for another attempt"
    );
}

fn log_dead_letter_failure(error: &QueueError) {
    tracing::error!(error = %error, "the dead-letter queue did not take a message; it stays in the queue");
}

/// One log line per message: what it was, what became of it. No email address, no value.
fn log_message(
    record: &SqsMessage,
    message: Option<&Result<QueueMessage, crate::queue::MessageError>>,
    fate: &Fate,
    took: Duration,
) {
    let read = message.and_then(|m| m.as_ref().ok());
    let (outcome, reason) = match fate {
        Fate::Applied(status) => (*status, ""),
        Fate::Retry(reason) => ("retry", *reason),
        Fate::DeadLettered(reason) => ("dead_lettered", *reason),
    };
    let age_ms = read.map(|m| {
        let now = crate::domain::Timestamp::from_system_time(SystemTime::now());
        now.millis_since(m.queued_at)
    });
    tracing::info!(
        provider = read.map_or("", |m| m.route),
        event_type = read.map_or("", |m| crate::handler::loggable_token(&m.event_type)),
        message_id = record.message_id.as_deref().unwrap_or(""),
        receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str)
            .unwrap_or(""),
        outcome,
        reason,
        age_ms,
        duration_ms = took.as_millis() as u64,
        "queued event handled"
    );
}
