//! The backfill (`attio-user-sync-backfill`): every user a provider already has, read page by
//! page from its list API ([`Directory`], one per provider beside its webhook parser, e.g.
//! [`crate::providers::clerk::directory`]), turned into the same [`UserEvent`]s the webhook
//! produces and applied through the same sync, with Attio writes paced by [`crate::pace`] and
//! the position saved in a [`Checkpoint`] as it goes.

pub mod file;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::App;
use crate::attio::AttioBudget;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::directory::{Directory, DirectoryError, Page, PageCursor, PagingGuard};
use crate::domain::UserEvent;
use crate::sync::SyncOutcome;

/// What a run does with the users it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Writes them to Attio, paced by the app's limiter.
    Write,
    /// Reads and converts them, writes nothing.
    DryRun,
    /// Sends them to the durable queue (`SYNC_QUEUE_URL`), for the worker to write at Attio's
    /// pace: as a queue message each, the webhook's schema, `event_type` `backfill`.
    Enqueue,
}

/// Users in flight at once unless asked otherwise: with Attio ~150 ms away, a new user (a read
/// and two writes) takes ~0.5 s, so 25 writes/s needs about 7 in flight; 16 leaves room for
/// slower answers and the limiter's queue (measured in BENCHMARKS.md).
pub const DEFAULT_CONCURRENCY: usize = 16;

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Write, dry run, or enqueue.
    pub mode: Mode,
    /// Users applied at once (their writes paced by the app's limiter), or sent per batch.
    pub concurrency: usize,
}

/// One user not written, and why (never its email address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The provider's user id, when it could be read.
    pub user_id: String,
    /// Why.
    pub reason: String,
    /// Whether it failed (a write that did not land) rather than was skipped (its data).
    pub failed: bool,
}

/// A page being worked through: its users, which of them are done (applied, skipped or
/// queued) and how far users have been started.
struct PageInWork {
    cursor: PageCursor,
    users: Vec<Value>,
    next: Option<PageCursor>,
    done: std::collections::BTreeSet<usize>,
    started: usize,
}

impl PageInWork {
    fn new(cursor: PageCursor, page: Page, done: impl IntoIterator<Item = usize>) -> Self {
        Self {
            cursor,
            users: page.users,
            next: page.next,
            done: done.into_iter().collect(),
            started: 0,
        }
    }

    fn finished(&self) -> bool {
        (0..self.users.len()).all(|position| self.done.contains(&position))
    }

    /// The first user not done yet.
    fn position(&self) -> usize {
        (0..self.users.len())
            .find(|position| !self.done.contains(position))
            .unwrap_or(self.users.len())
    }
}

/// Runs the backfill from `checkpoint`, saving it at `checkpoint_path` each time a user is
/// applied (or a group of `concurrency` users queued); `on_progress` hears the counts then,
/// `on_skip` each user not written. Up to `concurrency` users are in flight at once, a new one
/// starting as soon as one finishes; the next page is read while the last users of the one
/// before are still in flight, so users flow through the limiter with no wait at a page's end.
pub async fn run<D: Directory>(
    app: Arc<App>,
    directory: &D,
    mut checkpoint: Checkpoint,
    checkpoint_path: &std::path::Path,
    options: &Options,
    mut on_progress: impl FnMut(&Checkpoint),
    mut on_skip: impl FnMut(&Skipped),
) -> Result<Checkpoint, BackfillError> {
    let secrets = match options.mode {
        Mode::Write => Some(app.secrets().await?),
        Mode::DryRun | Mode::Enqueue => None,
    };
    if options.mode == Mode::Enqueue && app.queue().is_none() {
        return Err(BackfillError::Queue(crate::queue::QueueError::Unavailable(
            "--enqueue needs SYNC_QUEUE_URL, the function's queue".into(),
        )));
    }
    let saves = options.mode != Mode::DryRun;
    let concurrency = options.concurrency.max(1);
    // At most two pages at once: the oldest not finished (the checkpoint's) and the one after.
    // Users are tagged with their page's number in the run (`first` is the front page's).
    let mut pages = std::collections::VecDeque::new();
    let mut paging = PagingGuard::default();
    let route = directory.route();
    paging.before(route, &checkpoint.page)?;
    let page = directory.page(&checkpoint.page).await?;
    paging.after(route, &checkpoint.page, &page)?;
    let already = (0..checkpoint.position).chain(checkpoint.done_ahead.drain(..));
    pages.push_back(PageInWork::new(checkpoint.page.clone(), page, already));
    let mut next_done = std::mem::take(&mut checkpoint.next_done);
    let mut first: u64 = 0;
    let mut in_flight = JoinSet::new();
    let mut to_queue: Vec<(u64, usize, UserEvent)> = Vec::new();
    loop {
        // Start users until `concurrency` are in flight (or waiting to be queued).
        while in_flight.len() + to_queue.len() < concurrency {
            while pages.len() > 1 && pages[0].finished() {
                pages.pop_front();
                first += 1;
            }
            let number = first + pages.len() as u64 - 1;
            let Some(back) = pages.back_mut() else { break };
            while back.started < back.users.len() && back.done.contains(&back.started) {
                back.started += 1;
            }
            if back.started == back.users.len() {
                // Every user of the newest page has started: read the next one now.
                match back.next.clone() {
                    Some(cursor) if pages.len() < 2 => {
                        paging.before(route, &cursor)?;
                        let page = directory.page(&cursor).await?;
                        paging.after(route, &cursor, &page)?;
                        let done = std::mem::take(&mut next_done);
                        pages.push_back(PageInWork::new(cursor, page, done));
                        continue;
                    }
                    _ => break,
                }
            }
            let position = back.started;
            back.started += 1;
            let user = &back.users[position];
            let user_id = directory.user_id(user);
            let event = match directory.event(user.clone()) {
                Ok(event) => event,
                Err(e) => {
                    checkpoint.counts.skipped += 1;
                    on_skip(&Skipped {
                        user_id,
                        reason: crate::domain::redact_emails(&e),
                        failed: false,
                    });
                    back.done.insert(position);
                    checkpoint.counts.read += 1;
                    continue;
                }
            };
            let Some(secrets) = secrets.clone() else {
                // Enqueued in groups of `concurrency`; a dry run stops here, nothing written.
                if options.mode == Mode::Enqueue {
                    to_queue.push((number, position, event));
                } else {
                    back.done.insert(position);
                    checkpoint.counts.read += 1;
                }
                continue;
            };
            let app = app.clone();
            in_flight.spawn(async move {
                let mut budget =
                    AttioBudget::until(tokio::time::Instant::now() + Duration::from_secs(120));
                let result = app
                    .apply(std::slice::from_ref(&event), None, secrets, &mut budget)
                    .await
                    .into_result();
                (number, position, user_id, result)
            });
        }
        let mut done = Vec::new();
        if !to_queue.is_empty() {
            let events: Vec<UserEvent> = to_queue.iter().map(|(_, _, e)| e.clone()).collect();
            send_to_queue(&app, directory.route(), &events).await?;
            checkpoint.counts.queued += events.len() as u64;
            done.extend(
                to_queue
                    .drain(..)
                    .map(|(number, position, _)| (number, position)),
            );
        } else if let Some(finished) = in_flight.join_next().await {
            let (number, position, user_id, result) = finished.map_err(BackfillError::Task)?;
            match result.as_deref() {
                Ok([SyncOutcome::Ignored { .. }] | [SyncOutcome::Outdated { .. }]) => {
                    checkpoint.counts.unchanged += 1
                }
                Ok(_) => checkpoint.counts.synced += 1,
                Err(e) => {
                    checkpoint.counts.failed += 1;
                    on_skip(&Skipped {
                        user_id,
                        reason: format!(
                            "{}: {}",
                            e.code(),
                            crate::domain::redact_emails(&e.to_string())
                        ),
                        failed: true,
                    });
                }
            }
            done.push((number, position));
        }
        let went_on = !done.is_empty();
        for (number, position) in done {
            // Counted as read once done, so a resume counts the users in flight at a stop once.
            checkpoint.counts.read += 1;
            pages[(number - first) as usize].done.insert(position);
        }
        // A finished front page gives the checkpoint to the one after it, once that is read.
        while pages.len() > 1 && pages[0].finished() {
            pages.pop_front();
            first += 1;
        }
        let front = &pages[0];
        checkpoint.page = front.cursor.clone();
        checkpoint.position = front.position();
        checkpoint.done_ahead = front.done.range(checkpoint.position..).copied().collect();
        checkpoint.next_done = pages
            .get(1)
            .map(|page| page.done.iter().copied().collect())
            .unwrap_or_default();
        if saves {
            checkpoint.save(checkpoint_path)?;
        }
        on_progress(&checkpoint);
        if !went_on {
            // Nothing in flight and nothing left to start: every page has been read and done.
            return Ok(checkpoint);
        }
    }
}

/// Sends one group's events to the queue, in one delivery whose identity is the route and the
/// events themselves: a rerun within SQS's five-minute deduplication window sends nothing twice,
/// and later ones are harmless (asserts are idempotent, event times keep order).
async fn send_to_queue(
    app: &App,
    route: &'static str,
    events: &[UserEvent],
) -> Result<(), BackfillError> {
    let body = serde_json::to_vec(events).unwrap_or_default();
    let identity = crate::queue::DeliveryIdentity {
        id: Some("backfill"),
        body: &body,
    };
    app.enqueue_events(route, "backfill", identity, 0, events)
        .await?;
    Ok(())
}

/// Why a backfill stopped before the end.
#[derive(Debug, Error)]
pub enum BackfillError {
    /// Reading the provider failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The checkpoint could not be saved.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The Attio token could not be read.
    #[error("configuration problem: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    /// The queue did not take a group of events (`--enqueue`).
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// A user's write task ended without an answer (it panicked).
    #[error("a user's write did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}
