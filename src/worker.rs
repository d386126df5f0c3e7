//! The queue worker (`attio-user-sync-worker`): Lambda's SQS event source hands it batches of
//! queued events ([`crate::queue::QueueMessage`]), which it applies through the same sync as
//! the webhook. What it answers decides each message's fate:
//!
//! - applied (or answered `outdated`/`ignored`): deleted from the queue by Lambda;
//! - failed in a way time can mend (Attio down, slow, rate-limiting): listed in
//!   `batchItemFailures`, so SQS delivers it again (at Attio's `Retry-After`, or 30 s after a
//!   `5xx`; from its second receive no sooner than 30 s doubled at each receive, up to 15 min),
//!   and, after the queue's `maxReceiveCount` (10 receives: 76 min), moves it to the dead-letter
//!   queue through its redrive policy;
//! - a membership whose user is not in Attio yet: it steps aside for the user's own later events
//!   in the batch (their creation is what it waits for) and is tried again after each of them;
//!   still waiting, it comes back in 10 s (60 s after two minutes), and from its second receive
//!   it is parked, sent again at its group's tail so that the redrive policy's count starts over;
//!   dead-lettered (`user_never_synced`) only when its user has not reached Attio within
//!   [`WAITING_BOUND`] (an hour) of its first wait;
//! - can never succeed (unreadable, an invalid value, a uniqueness conflict, an object not
//!   activated, a missing scope): sent to the dead-letter queue at once, with the reason as
//!   message attributes, and deleted from the queue.
//!
//! One user's messages share a message group and arrive in order: once one of them fails, the
//! user's later messages in the batch are not applied (they are failed too), so they are never
//! applied before it; a waiting membership holds back only the user leaving an organisation or
//! being deleted, which must not land before it. When Attio as a whole is failing (down,
//! rate-limiting, refusing the token), the rest of the batch is left for later instead of being
//! tried against it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use crate::App;
use crate::attio::AttioBudget;
use crate::domain::UserEvent;
use crate::metrics::Tally;
use crate::queue::{Entry, MessageError, QueueError, QueueMessage, SyncQueue};
use crate::secrets::SyncSecrets;
use crate::sync::SyncError;

/// Time kept back from the invocation's deadline to send dead letters and answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

/// A membership whose user is not in Attio yet comes back after this, rather than after the
/// queue's whole visibility timeout, so that the user's own events queued behind it come soon
/// (they are applied past it: see [`passes_a_waiting_membership`]).
const WAITING_COME_BACK: Duration = Duration::from_secs(10);
/// ... and after this once it has waited [`WAITING_SLOWER_AFTER`].
const WAITING_COME_BACK_LATER: Duration = Duration::from_secs(60);
const WAITING_SLOWER_AFTER: Duration = Duration::from_secs(120);
/// A waiting membership received this many times is parked: sent again at its group's tail as
/// a new message, so the receive count the queue's redrive policy counts starts over.
const PARK_AT_RECEIVE: u32 = 2;
/// From its second receive, a message left for later because Attio as a whole failed comes
/// back no sooner than this, doubled at each further receive up to [`BACKOFF_CAP`], so that
/// the redrive policy's 10 receives span more than an hour of outage (30 s, 30 s, 1, 2, 4, 8,
/// 15, 15, 15, 15 min: 76 min) rather than ten times Attio's `Retry-After`.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
const BACKOFF_CAP: Duration = Duration::from_secs(900);
/// A membership whose user has not reached Attio this long after it first waited is moved to
/// the dead-letter queue (`user_never_synced`).
pub const WAITING_BOUND: Duration = Duration::from_secs(3600);
/// Message attribute of a parked membership: when it first waited (Unix milliseconds).
const WAITING_SINCE: &str = "waiting_since";
/// Message attribute of a parked membership: how many times it was parked.
const PARKED: &str = "parked";

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Applied; the sync's status (`synced`, `outdated`, `ignored`…).
    Applied(&'static str),
    /// Left in the queue for another attempt (listed in `batchItemFailures`).
    Retry(&'static str),
    /// A membership waiting for its user, sent again at its group's tail (this copy deleted).
    Parked,
    /// Moved to the dead-letter queue, with this reason code.
    DeadLettered(&'static str),
}

/// What one attempt at a message gave.
enum Attempt {
    /// Applied, with the sync's status.
    Applied(&'static str),
    /// A membership whose user is not in Attio yet; the code says so.
    Waiting(&'static str),
    /// Failed for good or for now.
    Failed(Fate),
}

/// One batch's state, shared by the users applied at the same time.
struct Run {
    secrets: Option<Arc<SyncSecrets>>,
    /// No new message is started after this.
    deadline: Option<Instant>,
    /// Attio's budget per message.
    until: Instant,
    shared: std::sync::Mutex<RunState>,
}

#[derive(Default)]
struct RunState {
    /// Why the rest of the batch is left for later, once Attio as a whole is failing.
    stop: Option<&'static str>,
    /// When Attio said to come back, if it stopped the batch.
    come_back: Option<Duration>,
    /// Metrics, by the route the messages came through.
    tallies: Vec<(&'static str, Tally)>,
}

impl Run {
    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether Attio as a whole failed: no new message is started.
    fn stopped(&self) -> bool {
        self.state().stop.is_some()
    }

    /// Leaves the rest of the batch for later, because of `reason`, back after `come_back`.
    fn stop(&self, reason: &'static str, come_back: Option<Duration>) {
        let mut state = self.state();
        state.stop = Some(reason);
        state.come_back = come_back;
    }

    /// The fate of a message not tried because the batch stopped or time ran out.
    fn refused_now(&self) -> Option<Fate> {
        if let Some(reason) = self.state().stop {
            Some(Fate::Retry(reason))
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Fate::Retry("deadline"))
        } else {
            None
        }
    }

    /// Counts into `route`'s metrics.
    fn tally(&self, route: &'static str, count: impl FnOnce(&mut Tally)) {
        count(tally_for(&mut self.state().tallies, route));
    }
}

/// Most users (message groups) of a batch applied at the same time; a batch holds at most 10
/// messages, so every user of it. The app's limiter paces their writes.
const USERS_AT_ONCE: usize = 10;

/// Each message's fate, in the batch's order, and how soon each left for later comes back.
struct Fates {
    fates: Vec<Option<Fate>>,
    /// Per message: when it comes back, if not when the batch's stop says.
    come_back: Vec<Option<Duration>>,
    started: Vec<std::time::Instant>,
}

impl Fates {
    fn new(messages: usize) -> Self {
        Self {
            fates: vec![None; messages],
            come_back: vec![None; messages],
            started: vec![std::time::Instant::now(); messages],
        }
    }
}

/// The worker: the app (sync, secret, Attio client) and the dead-letter queue.
pub struct Worker {
    app: App,
    dead_letters: Option<SyncQueue>,
    /// The queue the messages come from (`SYNC_QUEUE_URL`), to bring failed messages back
    /// sooner than its visibility timeout when Attio says when to come back, and to park
    /// memberships waiting for their user.
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
        let (fates, come_backs) = self.apply_all(&batch.records, deadline).await;
        let mut response = SqsBatchResponse::default();
        let mut waits: Vec<(Duration, Vec<&str>)> = Vec::new();
        for ((record, fate), come_back) in batch.records.iter().zip(&fates).zip(come_backs) {
            if !matches!(fate, Fate::Retry(_)) {
                continue;
            }
            response.add_failure(record.message_id.clone().unwrap_or_default());
            if let (Some(wait), Some(receipt)) = (come_back, record.receipt_handle.as_deref()) {
                match waits.iter_mut().find(|(w, _)| *w == wait) {
                    Some((_, receipts)) => receipts.push(receipt),
                    None => waits.push((wait, vec![receipt])),
                }
            }
        }
        if let Some(source) = &self.source {
            for (wait, receipts) in waits {
                if let Err(e) = source.change_visibility(&receipts, wait).await {
                    tracing::warn!(error = %e, "could not shorten the failed messages' visibility; they come back after the queue's timeout");
                }
            }
        }
        response
    }

    /// What becomes of each message of the batch, in order, and when each left for later
    /// comes back (`None`: after the queue's visibility timeout). One user's messages (a
    /// message group) are applied in their order; a membership whose user is not in Attio yet
    /// steps aside for the user's own later events and is tried again after them.
    async fn apply_all(
        &self,
        records: &[SqsMessage],
        deadline: Option<SystemTime>,
    ) -> (Vec<Fate>, Vec<Option<Duration>>) {
        use futures_util::StreamExt as _;
        let now = Instant::now();
        let deadline = deadline
            .and_then(|d| d.duration_since(SystemTime::now()).ok())
            .map(|left| now + left.saturating_sub(DEADLINE_MARGIN));
        let until = now + self.app.config().attio_max_elapsed;
        let mut run = Run {
            secrets: None,
            deadline,
            until: deadline.map_or(until, |d| d.min(until)),
            shared: Default::default(),
        };
        match self.app.secrets().await {
            Ok(secrets) => run.secrets = Some(secrets),
            Err(e) => {
                tracing::error!(error = %e, "could not read the secret; the batch is left for later");
                run.stop(e.code(), None);
            }
        }
        let messages: Vec<Option<Result<QueueMessage, MessageError>>> = records
            .iter()
            .map(|r| r.body.as_deref().map(QueueMessage::read))
            .collect();
        let mut fates = Fates::new(records.len());
        // Different users at the same time, each user's messages in order.
        let mut users = futures_util::stream::iter(groups(records))
            .map(|group| {
                let (run, messages) = (&run, &messages);
                async move {
                    let mut own = Fates::new(records.len());
                    self.apply_group(run, records, messages, &group, &mut own)
                        .await;
                    (group, own)
                }
            })
            .buffer_unordered(USERS_AT_ONCE);
        while let Some((group, own)) = users.next().await {
            for i in group {
                fates.fates[i] = own.fates[i].clone();
                fates.come_back[i] = own.come_back[i];
                fates.started[i] = own.started[i];
            }
        }
        drop(users);
        let batch_come_back = run.state().come_back;
        let mut decided = Vec::with_capacity(records.len());
        let mut come_backs = Vec::with_capacity(records.len());
        for (i, fate) in fates.fates.into_iter().enumerate() {
            let fate = fate.unwrap_or(Fate::Retry("not_tried"));
            let message = messages[i].as_ref();
            log_message(&records[i], message, &fate, fates.started[i].elapsed());
            let route = message
                .and_then(|m| m.as_ref().ok())
                .map_or("unknown", |m| m.route);
            run.tally(route, |tally| match fate {
                Fate::Applied("ignored") => tally.ignored += 1,
                Fate::Applied(_) => tally.synced += 1,
                Fate::Retry(_) | Fate::Parked => tally.failed += 1,
                Fate::DeadLettered(_) => tally.dead_lettered += 1,
            });
            come_backs.push(match fate {
                Fate::Retry(_) => fates.come_back[i].or_else(|| {
                    batch_come_back.map(|w| w.max(backoff(receive_count(&records[i]))))
                }),
                _ => None,
            });
            decided.push(fate);
        }
        for (route, tally) in &run.state().tallies {
            tally.emit(route);
        }
        (decided, come_backs)
    }

    /// Applies one user's messages (`indexes`, in order). A failure holds back the user's later
    /// messages; a membership waiting for its user holds back only what must follow it (its
    /// user leaving or being deleted), and is tried again after each of the user's own writes.
    async fn apply_group(
        &self,
        run: &Run,
        records: &[SqsMessage],
        messages: &[Option<Result<QueueMessage, MessageError>>],
        indexes: &[usize],
        fates: &mut Fates,
    ) {
        let mut waiting: Vec<(usize, &'static str)> = Vec::new();
        let mut held_back = false;
        for &i in indexes {
            fates.started[i] = std::time::Instant::now();
            if held_back {
                fates.fates[i] = Some(Fate::Retry("earlier_message_of_user_pending"));
                continue;
            }
            if let Some(fate) = run.refused_now() {
                fates.fates[i] = Some(fate);
                held_back = true;
                continue;
            }
            let message = match &messages[i] {
                None => {
                    fates.fates[i] = Some(
                        self.dead_letter(&records[i], "unreadable_message", "no body")
                            .await,
                    );
                    continue;
                }
                Some(Err(e)) => {
                    fates.fates[i] = Some(
                        self.dead_letter(&records[i], "unreadable_message", &e.to_string())
                            .await,
                    );
                    continue;
                }
                Some(Ok(message)) => message,
            };
            if !waiting.is_empty() && !passes_a_waiting_membership(&message.event) {
                self.try_waiting(run, records, messages, &mut waiting, fates)
                    .await;
                if !waiting.is_empty() || run.stopped() {
                    fates.fates[i] = Some(Fate::Retry("earlier_message_of_user_pending"));
                    held_back = true;
                    continue;
                }
            }
            match self.attempt(run, &records[i], message).await {
                Attempt::Applied(status) => {
                    fates.fates[i] = Some(Fate::Applied(status));
                    if !waiting.is_empty() {
                        self.try_waiting(run, records, messages, &mut waiting, fates)
                            .await;
                    }
                }
                Attempt::Waiting(code) => waiting.push((i, code)),
                Attempt::Failed(fate) => {
                    held_back = matches!(fate, Fate::Retry(_));
                    fates.fates[i] = Some(fate);
                }
            }
        }
        for (i, code) in waiting {
            let fate = if held_back {
                // A later message of the user failed or waits behind it: the membership keeps
                // its place before it, and the user's messages come back together.
                if !run.stopped() {
                    fates.come_back[i] = Some(WAITING_COME_BACK);
                }
                Fate::Retry(code)
            } else {
                self.wait_for_user(&records[i], code, &mut fates.come_back[i])
                    .await
            };
            fates.fates[i] = Some(fate);
        }
        if held_back {
            // The user's held messages come back with (never before) its waiting membership.
            let group_wait = indexes.iter().filter_map(|&i| fates.come_back[i]).max();
            if let Some(wait) = group_wait {
                for &i in indexes {
                    if matches!(fates.fates[i], Some(Fate::Retry(_))) {
                        fates.come_back[i] = Some(wait);
                    }
                }
            }
        }
    }

    /// Tries the waiting memberships again, in order; those whose user is there now are
    /// applied (or fail as any message does).
    async fn try_waiting(
        &self,
        run: &Run,
        records: &[SqsMessage],
        messages: &[Option<Result<QueueMessage, MessageError>>],
        waiting: &mut Vec<(usize, &'static str)>,
        fates: &mut Fates,
    ) {
        let mut still = Vec::new();
        for (i, code) in waiting.drain(..) {
            if run.refused_now().is_some() {
                still.push((i, code));
                continue;
            }
            let Some(Ok(message)) = &messages[i] else {
                continue;
            };
            match self.attempt(run, &records[i], message).await {
                Attempt::Applied(status) => fates.fates[i] = Some(Fate::Applied(status)),
                Attempt::Waiting(code) => still.push((i, code)),
                Attempt::Failed(fate) => fates.fates[i] = Some(fate),
            }
        }
        *waiting = still;
    }

    /// One attempt at applying `message`.
    async fn attempt(&self, run: &Run, record: &SqsMessage, message: &QueueMessage) -> Attempt {
        let Some(secrets) = run.secrets.clone() else {
            return Attempt::Failed(Fate::Retry("secret_unavailable"));
        };
        let mut budget = AttioBudget::until(run.until);
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
        run.tally(message.route, |tally| tally.add_attio(&budget));
        match result {
            Ok(outcomes) => Attempt::Applied(outcomes.first().map_or("synced", |o| o.status())),
            Err(error @ SyncError::UserNotYetSynced(_)) => Attempt::Waiting(error.code()),
            Err(error) if never_succeeds(&error) => Attempt::Failed(
                self.dead_letter(record, error.code(), &error.to_string())
                    .await,
            ),
            Err(error) => {
                run.stop(error.code(), come_back_after(&error));
                log_failure(record, &error);
                Attempt::Failed(Fate::Retry(error.code()))
            }
        }
    }

    /// The fate of a membership still waiting for its user when the batch is done with the
    /// user: back in [`WAITING_COME_BACK`] (sets `come_back`), parked at its group's tail once
    /// received [`PARK_AT_RECEIVE`] times, dead-lettered after [`WAITING_BOUND`].
    async fn wait_for_user(
        &self,
        record: &SqsMessage,
        code: &'static str,
        come_back: &mut Option<Duration>,
    ) -> Fate {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let since = waiting_since(record).unwrap_or(now);
        let waited = Duration::from_millis(u64::try_from(now - since).unwrap_or(0));
        if waited >= WAITING_BOUND {
            return self
                .dead_letter(
                    record,
                    "user_never_synced",
                    &format!(
                        "the membership's user was not in Attio {} minutes after the membership first waited for it; redrive it once the user is synced",
                        WAITING_BOUND.as_secs() / 60
                    ),
                )
                .await;
        }
        if receive_count(record) >= PARK_AT_RECEIVE
            && let Some(source) = &self.source
        {
            let parked = message_attribute(record, PARKED)
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            let deduplication = record
                .attributes
                .get("MessageDeduplicationId")
                .or(record.message_id.as_ref())
                .map_or(String::new(), |d| d.chars().take(100).collect());
            let entry = copy_of(
                record,
                format!("{deduplication}-parked-{parked}"),
                vec![
                    (WAITING_SINCE, since.to_string()),
                    (PARKED, parked.to_string()),
                ],
            );
            match source.send_entries(std::slice::from_ref(&entry)).await {
                Ok(()) => return Fate::Parked,
                Err(e) => {
                    tracing::warn!(error = %e, "could not park a membership waiting for its user; it is retried in place");
                }
            }
        }
        *come_back = Some(if waited < WAITING_SLOWER_AFTER {
            WAITING_COME_BACK
        } else {
            WAITING_COME_BACK_LATER
        });
        Fate::Retry(code)
    }

    /// Sends the message to the dead-letter queue with `reason`; left for another attempt if
    /// there is no dead-letter queue or it refuses.
    async fn dead_letter(&self, record: &SqsMessage, reason: &'static str, detail: &str) -> Fate {
        let Some(queue) = &self.dead_letters else {
            return Fate::Retry(reason);
        };
        let message_id = record.message_id.clone().unwrap_or_default();
        let entry = copy_of(
            record,
            record
                .attributes
                .get("MessageDeduplicationId")
                .cloned()
                .unwrap_or_else(|| message_id.clone()),
            vec![
                ("reason", reason.to_owned()),
                (
                    "detail",
                    bounded(&crate::domain::redact_emails(detail), 1000),
                ),
                ("source_message_id", message_id),
            ],
        );
        match queue.send_entries(std::slice::from_ref(&entry)).await {
            Ok(()) => Fate::DeadLettered(reason),
            Err(e) => {
                log_dead_letter_failure(&e);
                Fate::Retry(reason)
            }
        }
    }
}

/// `record` as a message to send again (to the dead-letter queue, or parked): its body, in its
/// message group, with `deduplication_id` and `attributes`.
fn copy_of(
    record: &SqsMessage,
    deduplication_id: String,
    attributes: Vec<(&'static str, String)>,
) -> Entry {
    Entry {
        body: record.body.clone().unwrap_or_default(),
        group_id: record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_else(|| "ungrouped".into()),
        deduplication_id,
        attributes,
    }
}

/// The batch's messages by user (message group), each user's in their order, the users in
/// the order their first message came.
fn groups(records: &[SqsMessage]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let group = record
            .attributes
            .get("MessageGroupId")
            .map_or("", String::as_str);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(i),
            None => groups.push((group, vec![i])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Whether a user's event may be applied before an earlier membership of the user that waits
/// for the user to reach Attio: the user's own writes (which is what the membership waits for)
/// and sign-ins may; the user leaving an organisation or being deleted may not, since the
/// membership must land before what undoes it.
fn passes_a_waiting_membership(event: &UserEvent) -> bool {
    matches!(
        event,
        UserEvent::Upserted { .. } | UserEvent::JoinedWorkspace { .. } | UserEvent::SignedIn { .. }
    )
}

/// When a parked membership first waited (Unix milliseconds): its attribute, else when the
/// queue first took this message.
fn waiting_since(record: &SqsMessage) -> Option<i64> {
    message_attribute(record, WAITING_SINCE)
        .or_else(|| record.attributes.get("SentTimestamp").map(String::as_str))
        .and_then(|t| t.parse().ok())
}

fn message_attribute<'r>(record: &'r SqsMessage, name: &str) -> Option<&'r str> {
    record
        .message_attributes
        .get(name)
        .and_then(|a| a.string_value.as_deref())
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
fn never_succeeds(error: &SyncError) -> bool {
    matches!(error, SyncError::Attio(e) if e.is_permanent())
}

/// When to try again after Attio as a whole failed (see [`AttioError::come_back_after`]).
fn come_back_after(error: &SyncError) -> Option<Duration> {
    match error {
        SyncError::Attio(e) => e.come_back_after(),
        SyncError::UserNotYetSynced(_) => None,
    }
}

/// The least wait before a message received `received` times, left for later because Attio as
/// a whole failed, comes back: nothing at its first receive (Attio's `Retry-After` decides),
/// then [`BACKOFF_BASE`] doubled at each receive, at most [`BACKOFF_CAP`].
fn backoff(received: u32) -> Duration {
    match received {
        0 | 1 => Duration::ZERO,
        n => BACKOFF_BASE
            .saturating_mul(1 << (n - 2).min(16))
            .min(BACKOFF_CAP),
    }
}

/// How many times SQS has handed this message over (1 at the first receive).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1)
}

fn bounded(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn log_failure(record: &SqsMessage, error: &SyncError) {
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
    message: Option<&Result<QueueMessage, MessageError>>,
    fate: &Fate,
    took: Duration,
) {
    let read = message.and_then(|m| m.as_ref().ok());
    let (outcome, reason) = match fate {
        Fate::Applied(status) => (*status, ""),
        Fate::Retry(reason) => ("retry", *reason),
        Fate::Parked => ("parked", "user_not_yet_synced"),
        Fate::DeadLettered(reason) => ("dead_lettered", *reason),
    };
    let age_ms = read.map(|m| {
        let now = crate::domain::Timestamp::from_system_time(SystemTime::now());
        now.millis_since(m.queued_at)
    });
    tracing::info!(
        provider = read.map_or("", |m| m.route),
        event_type = read.map_or("", |m| crate::logging::loggable_token(&m.event_type)),
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
