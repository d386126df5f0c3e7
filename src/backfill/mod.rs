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
use crate::reconcile::guard::{Listing, Refusal, may_delete};
use crate::reconcile::snapshot::{Class, Reading};
use crate::reconcile::{Comparison, Found};
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
    /// Compares them with what Attio holds and writes nothing (`--check`).
    Check,
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
    /// Compare each user with what Attio holds first and write only the difference; `None`
    /// rewrites every user (`--rewrite-all`). `--check` always compares.
    pub reconcile: Option<Reconcile>,
    /// How what Attio holds is read when comparing.
    pub reading: Reading,
}

/// How a comparing run treats the users Attio holds that the provider no longer lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reconcile {
    /// Delete the orphans' `users` records (their people stay), as the guard allows.
    pub delete_orphans: bool,
    /// The most orphans deleted (`None`: the larger of 10 and 1 % of Attio's users of the route).
    pub max_deletes: Option<u64>,
}

/// What a run notes about one user, for the report.
#[derive(Debug, Clone, Copy)]
pub enum Noted<'a> {
    /// Not written (its data) or failed (a write).
    Skipped(&'a Skipped),
    /// Not `same` as Attio holds it (a comparing run).
    Found(&'a Found),
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

impl Skipped {
    /// A write for `user_id` that did not land: the error's code and its words, addresses
    /// redacted.
    fn failure(user_id: String, code: &str, error: &dyn std::fmt::Display) -> Self {
        Self {
            user_id,
            reason: format!(
                "{code}: {}",
                crate::domain::redact_emails(&error.to_string())
            ),
            failed: true,
        }
    }
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
    mut on_note: impl FnMut(Noted<'_>),
) -> Result<Checkpoint, BackfillError> {
    let reconcile = match options.mode {
        Mode::Check => Some(options.reconcile.unwrap_or_default()),
        Mode::DryRun => None,
        Mode::Write | Mode::Enqueue => options.reconcile,
    };
    let secrets = match options.mode {
        Mode::Write | Mode::Check => Some(app.secrets().await?),
        Mode::Enqueue if reconcile.is_some() => Some(app.secrets().await?),
        Mode::DryRun | Mode::Enqueue => None,
    };
    if options.mode == Mode::Enqueue && app.queue().is_none() {
        return Err(BackfillError::Queue(crate::queue::QueueError::Unavailable(
            "--enqueue needs SYNC_QUEUE_URL, the function's queue".into(),
        )));
    }
    // Orphans are known only to a run that listed every user itself, from the first page.
    let from_start = checkpoint.counts.read == 0;
    let mut comparison = match (&reconcile, &secrets) {
        (Some(_), Some(secrets)) => Some(
            Comparison::start(
                &app,
                secrets.attio_access_token.clone(),
                directory.route(),
                options.reading,
                |_| {},
            )
            .await?,
        ),
        _ => None,
    };
    let saves = !matches!(options.mode, Mode::DryRun | Mode::Check);
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
                        on_progress(&checkpoint);
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
                    on_note(Noted::Skipped(&Skipped {
                        user_id,
                        reason: crate::domain::redact_emails(&e),
                        failed: false,
                    }));
                    back.done.insert(position);
                    checkpoint.counts.read += 1;
                    continue;
                }
            };
            let mut repair = None;
            if let Some(comparison) = comparison.as_mut() {
                let counts = &mut checkpoint.counts;
                let (class, attributes) = match comparison.classify(&app, &event).await? {
                    Class::Same => {
                        counts.same += 1;
                        counts.read += 1;
                        back.done.insert(position);
                        continue;
                    }
                    Class::Missing => {
                        counts.missing += 1;
                        ("missing", Vec::new())
                    }
                    Class::Differs(drift) => {
                        counts.differs += 1;
                        repair = Some(drift.repair);
                        ("differs", drift.attributes)
                    }
                };
                on_note(Noted::Found(&Found {
                    user_id: user_id.clone(),
                    class,
                    attributes,
                }));
                if options.mode == Mode::Check {
                    counts.read += 1;
                    back.done.insert(position);
                    continue;
                }
            }
            let Some(secrets) = secrets.clone().filter(|_| options.mode == Mode::Write) else {
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
                let mut budget = AttioBudget::from_now(Duration::from_secs(120));
                let result = match (&event, repair) {
                    // A user that differs: only what differs is written.
                    (
                        UserEvent::Upserted {
                            user, occurred_at, ..
                        },
                        Some(repair),
                    ) => app
                        .sync()
                        .repair(
                            &secrets.attio_access_token,
                            user,
                            *occurred_at,
                            &repair,
                            &mut budget,
                        )
                        .await
                        .map(|outcome| vec![outcome]),
                    _ => app
                        .apply(std::slice::from_ref(&event), None, secrets, &mut budget)
                        .await
                        .into_result(),
                };
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
                    on_note(Noted::Skipped(&Skipped::failure(user_id, e.code(), &e)));
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
            if let Some(mut comparison) = comparison.take() {
                comparison.organisations_listed(directory.organisations());
                let reconcile = reconcile.unwrap_or_default();
                let refused = finish(
                    &app,
                    directory.route(),
                    &comparison,
                    &mut checkpoint,
                    reconcile,
                    options.mode,
                    from_start,
                    &mut on_note,
                )
                .await?;
                on_progress(&checkpoint);
                if let Some(refusal) = refused {
                    return Err(BackfillError::Refused(refusal, Box::new(checkpoint)));
                }
            }
            return Ok(checkpoint);
        }
    }
}

/// After a compared listing: unlinks the workspaces of the route the provider no longer lists
/// for its users (a run that writes; `--enqueue` queues a left-workspace event for each, for
/// the worker to unlink; `--check` reports them), then finds the
/// orphans (when this run listed every user itself) and, when asked and the guard allows,
/// deletes their `users` records. Each is noted for the report. Returns the guard's refusal,
/// if it refused.
#[allow(clippy::too_many_arguments)] // the run's state, handed over at its end
async fn finish(
    app: &App,
    route: &'static str,
    comparison: &Comparison,
    checkpoint: &mut Checkpoint,
    reconcile: Reconcile,
    mode: Mode,
    from_start: bool,
    on_note: &mut impl FnMut(Noted<'_>),
) -> Result<Option<Refusal>, BackfillError> {
    let token = comparison.token();
    let budget = || AttioBudget::from_now(Duration::from_secs(120));
    let counts = &mut checkpoint.counts;
    let mut to_queue = Vec::new();
    for stale in comparison.stale_links() {
        if !stale.drifted {
            counts.same = counts.same.saturating_sub(1);
            counts.differs += 1;
        }
        on_note(Noted::Found(&Found {
            user_id: stale.user_id.clone(),
            class: "differs",
            attributes: vec!["workspace".into()],
        }));
        if mode == Mode::Enqueue {
            to_queue.extend(stale.workspace_ids.iter().map(|workspace_id| {
                UserEvent::LeftWorkspace {
                    user_id: stale.user_id.clone(),
                    workspace_id: workspace_id.clone(),
                }
            }));
        }
        if mode != Mode::Write {
            continue;
        }
        let unlinked = app
            .sync()
            .unlink_workspaces(token, &stale.record_id, &stale.unlink, &mut budget())
            .await;
        if let Err(e) = unlinked {
            counts.failed += 1;
            on_note(Noted::Skipped(&Skipped::failure(
                stale.user_id,
                e.code(),
                &e,
            )));
        }
    }
    if !to_queue.is_empty() {
        send_to_queue(app, route, &to_queue).await?;
        counts.queued += to_queue.len() as u64;
    }
    if !from_start {
        return Ok((reconcile.delete_orphans && mode != Mode::Check).then_some(Refusal::Resumed));
    }
    let orphans = comparison.orphans(app).await?;
    counts.orphans = orphans.len() as u64;
    let listing = Listing {
        complete: true,
        listed: counts.read,
        attio_users: comparison.attio_users(),
        orphans: counts.orphans,
    };
    let deletes = reconcile.delete_orphans && mode != Mode::Check;
    let refused = match (deletes, orphans.is_empty()) {
        (true, false) => may_delete(listing, reconcile.max_deletes).err(),
        _ => None,
    };
    for (user_id, record_id) in orphans {
        let delete = deletes && refused.is_none();
        let class = if delete {
            match app
                .attio()
                .delete_record(token, "users", &record_id, &mut budget())
                .await
            {
                Ok(()) => {
                    counts.deleted += 1;
                    "deleted"
                }
                Err(e) => {
                    counts.failed += 1;
                    on_note(Noted::Skipped(&Skipped::failure(
                        user_id.clone(),
                        e.code(),
                        &e,
                    )));
                    "orphan"
                }
            }
        } else {
            "orphan"
        };
        on_note(Noted::Found(&Found {
            user_id,
            class,
            attributes: Vec::new(),
        }));
    }
    Ok(refused)
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
    /// Attio's users could not be read for the comparison.
    #[error("reading what Attio holds: {0}")]
    Attio(#[from] crate::attio::AttioError),
    /// The run went to its end, but the orphans were not deleted: the guard refused. The
    /// run's checkpoint, with its counts.
    #[error("{0}")]
    Refused(Refusal, Box<Checkpoint>),
    /// A user's write task ended without an answer (it panicked).
    #[error("a user's write did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}
