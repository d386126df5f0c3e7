//! The backfill (`attio-user-sync-backfill`): every user a provider already has, read page by
//! page from its list API ([`Directory`], one per provider beside its webhook parser, e.g.
//! [`crate::providers::clerk::directory`]), turned into the same [`UserEvent`]s the webhook
//! produces and applied through the same sync, with Attio writes paced by [`crate::pace`] and
//! the position saved in a [`Checkpoint`] as it goes.

pub mod file;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::App;
use crate::attio::AttioBudget;
use crate::checkpoint::{Checkpoint, CheckpointError, PageCursor};
use crate::domain::UserEvent;
use crate::sync::SyncOutcome;

/// One page of a provider's user list.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The provider's own user objects, as its list API returns them.
    pub users: Vec<Value>,
    /// Where the next page is; `None` on the last one.
    pub next: Option<PageCursor>,
}

impl PageCursor {
    /// Where a source that pages by offset or page number is (0 at the start); an error if
    /// the checkpoint holds a cursor token, which `provider` does not give.
    pub fn offset(&self, provider: &'static str) -> Result<u64, DirectoryError> {
        match self {
            Self::Start => Ok(0),
            Self::Offset(offset) => Ok(*offset),
            Self::Token(_) => Err(DirectoryError::Failed {
                provider,
                reason: format!("the checkpoint holds a cursor token; {provider} pages by offset"),
            }),
        }
    }

    /// The 0-based number of the page of `per_page` users a source that numbers its pages is
    /// at; the checkpoint holds the users before it, so a resume with another page size is
    /// refused rather than skipping or repeating users.
    pub fn page_number(
        &self,
        per_page: u64,
        provider: &'static str,
    ) -> Result<u64, DirectoryError> {
        let offset = self.offset(provider)?;
        if offset % per_page.max(1) != 0 {
            return Err(DirectoryError::Failed {
                provider,
                reason: format!(
                    "the checkpoint is {offset} users in, not at a page of {per_page}: resume with the --page-size of the interrupted run"
                ),
            });
        }
        Ok(offset / per_page.max(1))
    }

    /// The cursor of a source that pages by token (`None` at the start); an error if the
    /// checkpoint holds an offset, which `provider` does not take.
    pub fn token(&self, provider: &'static str) -> Result<Option<&str>, DirectoryError> {
        match self {
            Self::Start => Ok(None),
            Self::Token(token) => Ok(Some(token)),
            Self::Offset(_) => Err(DirectoryError::Failed {
                provider,
                reason: format!("the checkpoint holds an offset; {provider} pages by cursor"),
            }),
        }
    }
}

/// Why a page could not be read.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The provider refused the credentials.
    #[error("{provider} refused the credentials ({status}): check {variable}")]
    Unauthorized {
        /// The provider.
        provider: &'static str,
        /// Its status.
        status: u16,
        /// The variable holding them.
        variable: &'static str,
    },
    /// Any other failure, after retries.
    #[error("{provider}'s list API failed: {reason}")]
    Failed {
        /// The provider.
        provider: &'static str,
        /// What happened.
        reason: String,
    },
}

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
pub async fn access_token(
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

/// A provider's list of users.
pub trait Directory: Send + Sync {
    /// The route its users belong to (`clerk`, …).
    fn route(&self) -> &'static str;
    /// How many users there are, when the provider says.
    fn total(&self) -> impl Future<Output = Option<u64>> + Send;
    /// The page at `cursor`.
    fn page(
        &self,
        cursor: &PageCursor,
    ) -> impl Future<Output = Result<Page, DirectoryError>> + Send;
    /// A listed user as the event the webhook path would produce, or why it is skipped (in
    /// words that never hold the user's values).
    fn event(&self, user: Value) -> Result<UserEvent, String>;

    /// The provider's id of a listed user, for reports (its `id`, or `user_id`).
    fn user_id(&self, user: &Value) -> String {
        user.get("id")
            .or_else(|| user.get("user_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }
}

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
    let page = directory.page(&checkpoint.page).await?;
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
                        let page = directory.page(&cursor).await?;
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
    #[error(transparent)]
    Secrets(#[from] crate::error::AppError),
    /// The queue did not take a group of events (`--enqueue`).
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// A user's write task ended without an answer (it panicked).
    #[error("a user's write did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}
