//! The backfill's promises, kept by every source: against a stand-in of each provider's list
//! API (strict about its documented paging; moto behind a throttling front for Cognito), a run
//! brings every user with an email to Attio exactly once, paging to the end through a `429`,
//! and reports those without one; a rerun writes no duplicates; a dry run writes nothing; a
//! run stopped mid-page (Ctrl-C) resumes from the last group applied, not from its page's start,
//! and finishes with no duplicates.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use attio_user_sync::backfill::{self, Mode, Noted, Options, Skipped};
use attio_user_sync::checkpoint::Checkpoint;
use attio_user_sync::directory::{Directory, DirectoryError, Page, PageCursor};
use attio_user_sync::domain::UserEvent;
use serde_json::Value;
use tokio::sync::Notify;

use crate::support::*;

/// Users applied at once in these runs.
const CONCURRENCY: usize = 4;

/// One source under test.
struct Source<D> {
    /// A directory on the stand-in (a fresh one per run, as each run of the binary makes).
    directory: Box<dyn Fn() -> D>,
    /// Users per page the directory asks for.
    page_size: usize,
    /// Makes the provider answer its next `n` requests `429`; `None` where there is no provider
    /// to limit (a file).
    rate_limit: Option<Box<dyn Fn(u32)>>,
    /// `429`s asked for and not played yet.
    rate_limits_left: Box<dyn Fn() -> u32>,
    /// The ids of the users with an email address (each must reach Attio once).
    with_email: Vec<String>,
    /// The ids of those without, in the order the provider lists them.
    without_email: Vec<String>,
}

impl<D> Source<D> {
    /// A source on the stand-in `api`, read through `directory(api)`, `page_size` a page.
    fn on<A: RateLimited + 'static>(
        api: A,
        page_size: usize,
        directory: impl Fn(&A) -> D + 'static,
        (with_email, without_email): (Vec<String>, Vec<String>),
    ) -> Self {
        let api = Arc::new(api);
        let (read, limit, left) = (api.clone(), api.clone(), api);
        Self {
            directory: Box::new(move || directory(&read)),
            page_size,
            rate_limit: Some(Box::new(move |n| limit.rate_limit(n))),
            rate_limits_left: Box::new(move || left.rate_limits_left()),
            with_email,
            without_email,
        }
    }
}

fn scratch(extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "attio-user-sync-backfill-sources-{:016x}.{extension}",
        fastrand::u64(..)
    ))
}

async fn app(t: &TestApp) -> Arc<attio_user_sync::App> {
    Arc::new(unpaced_app_for(&t.secret_id, &t.attio.url()).await)
}

/// How many times Attio was asked to assert each user (by `user_id`).
fn user_asserts(attio: &AttioStandIn) -> HashMap<String, usize> {
    let mut asserts = HashMap::new();
    for r in attio.requests() {
        if r.method != "PUT" || r.object != "users" || r.status != 200 {
            continue;
        }
        let id = match r.body.pointer("/data/values/user_id") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Array(values)) => match values.first() {
                Some(Value::String(id)) => id.clone(),
                Some(v) => v["value"].as_str().unwrap_or_default().to_owned(),
                None => continue,
            },
            _ => continue,
        };
        *asserts.entry(id).or_insert(0) += 1;
    }
    asserts
}

async fn run(
    app: Arc<attio_user_sync::App>,
    directory: &impl Directory,
    from: Checkpoint,
    path: &std::path::Path,
    mode: Mode,
) -> (Result<Checkpoint, backfill::BackfillError>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let options = Options {
        mode,
        concurrency: CONCURRENCY,
        reconcile: None,
        reading: Default::default(),
    };
    let done = backfill::run(
        app,
        directory,
        from,
        path,
        &options,
        |_| {},
        |noted| {
            if let Noted::Skipped(s) = noted {
                skipped.push(s.clone())
            }
        },
    )
    .await;
    (done, skipped)
}

/// A directory that tells the test when its `stop_at`-th user is read, for a Ctrl-C at a known
/// point in a page.
struct Watched<D> {
    inner: D,
    read: AtomicUsize,
    stop_at: usize,
    reached: Arc<Notify>,
}

impl<D: Directory> Directory for Watched<D> {
    fn route(&self) -> &'static str {
        self.inner.route()
    }
    async fn total(&self) -> Option<u64> {
        self.inner.total().await
    }
    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        self.inner.page(cursor).await
    }
    fn event(&self, user: Value) -> Result<UserEvent, String> {
        if self.read.fetch_add(1, Ordering::SeqCst) + 1 == self.stop_at {
            self.reached.notify_one();
        }
        self.inner.event(user)
    }
    fn user_id(&self, user: &Value) -> String {
        self.inner.user_id(user)
    }
}

/// Every promise, for one source.
async fn keeps_every_promise<D: Directory>(source: Source<D>) {
    let total = source.with_email.len() + source.without_email.len();
    let mut expected = source.with_email.clone();
    expected.sort();
    assert!(
        total > 2 * source.page_size && source.page_size >= 2 * CONCURRENCY,
        "the scenario needs three pages of at least two groups"
    );
    let route = (source.directory)().route();

    // 1. A whole run, through the provider's 429s.
    let t = TestApp::spawn().await;
    if let Some(rate_limit) = &source.rate_limit {
        rate_limit(2);
    }
    let path = scratch("json");
    let (done, skipped) = run(
        app(&t).await,
        &(source.directory)(),
        Checkpoint::start(route),
        &path,
        Mode::Write,
    )
    .await;
    let done = done.unwrap_or_else(|e| panic!("{route}: {e}"));
    assert_eq!(
        user_ids(&t.attio),
        expected,
        "{route}: every user with an email"
    );
    let asserts = user_asserts(&t.attio);
    assert!(
        expected.iter().all(|id| asserts.get(id) == Some(&1)),
        "{route}: each user asserted once: {asserts:?}"
    );
    assert_eq!(
        (source.rate_limits_left)(),
        0,
        "{route}: the provider's 429s were met, and waited out"
    );
    let c = &done.counts;
    assert_eq!(
        (c.read, c.synced, c.skipped, c.failed),
        (
            total as u64,
            source.with_email.len() as u64,
            source.without_email.len() as u64,
            0
        ),
        "{route}: counts"
    );
    let skipped_ids: Vec<&str> = skipped.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(
        skipped_ids, source.without_email,
        "{route}: skipped reported"
    );
    assert!(
        skipped
            .iter()
            .all(|s| s.reason.contains("email") && !s.failed),
        "{route}: {skipped:?}"
    );

    // 2. The whole backfill again: nothing new in Attio.
    let people = t.attio.records("people").len();
    let (again, _) = run(
        app(&t).await,
        &(source.directory)(),
        Checkpoint::start(route),
        &scratch("json"),
        Mode::Write,
    )
    .await;
    again.unwrap_or_else(|e| panic!("{route}: rerun: {e}"));
    assert_eq!(
        user_ids(&t.attio),
        expected,
        "{route}: rerun, no duplicate users"
    );
    assert_eq!(
        t.attio.records("people").len(),
        people,
        "{route}: rerun, no duplicate people"
    );

    // 3. A dry run writes nothing.
    let dry = TestApp::spawn().await;
    let (done, _) = run(
        app(&dry).await,
        &(source.directory)(),
        Checkpoint::start(route),
        &scratch("json"),
        Mode::DryRun,
    )
    .await;
    let done = done.unwrap_or_else(|e| panic!("{route}: dry run: {e}"));
    assert_eq!(
        dry.attio.request_count(),
        0,
        "{route}: a dry run writes nothing"
    );
    assert_eq!(
        done.counts.read, total as u64,
        "{route}: a dry run reads all"
    );

    // 4. Ctrl-C in the second group of the second page, then --resume.
    let stopped = TestApp::spawn().await;
    let reached = Arc::new(Notify::new());
    let stop_at = source.page_size + CONCURRENCY + 1;
    let watched = Watched {
        inner: (source.directory)(),
        read: AtomicUsize::new(0),
        stop_at,
        reached: reached.clone(),
    };
    let path = scratch("json");
    let stopped_app = app(&stopped).await;
    tokio::select! {
        biased;
        _ = reached.notified() => {}
        (done, _) = run(stopped_app.clone(), &watched, Checkpoint::start(route), &path, Mode::Write) => {
            panic!("{route}: finished before the Ctrl-C: {:?}", done.map(|c| c.counts));
        }
    }
    let saved = Checkpoint::load(&path, route)
        .unwrap()
        .unwrap_or_else(|| panic!("{route}: a checkpoint was saved"));
    assert!(
        saved.page != PageCursor::Start && saved.position < source.page_size,
        "{route}: the checkpoint is within the second page: {saved:?}"
    );
    let before = user_asserts(&stopped.attio);
    let (done, _) = run(
        stopped_app,
        &(source.directory)(),
        saved,
        &path,
        Mode::Write,
    )
    .await;
    let done = done.unwrap_or_else(|e| panic!("{route}: resumed: {e}"));
    assert_eq!(
        user_ids(&stopped.attio),
        expected,
        "{route}: resumed to the end"
    );
    assert_eq!(
        done.counts.read, total as u64,
        "{route}: counts carried over"
    );
    let after = user_asserts(&stopped.attio);
    // Users start as others finish, so some are always in flight: those the checkpoint did not
    // record yet may be written again (asserts make it harmless); none it recorded is.
    let again: Vec<&String> = before
        .iter()
        .filter(|(id, n)| after.get(*id) != Some(n))
        .map(|(id, _)| id)
        .collect();
    assert!(
        again.len() < CONCURRENCY,
        "{route}: written again although applied before the Ctrl-C: {again:?}"
    );
    // Only the users in flight at the Ctrl-C may be written twice.
    let twice = after.values().filter(|n| **n > 1).count();
    assert!(twice <= CONCURRENCY, "{route}: {after:?}");
}

/// `n` users made by `listed(n, email)`; every seventh (from the fourth) has no email.
fn listed(
    count: usize,
    listed: impl Fn(usize, Option<&str>) -> Value,
    id: impl Fn(&Value) -> String,
) -> (Vec<Value>, (Vec<String>, Vec<String>)) {
    let (mut users, mut with, mut without) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..count {
        let email = format!("listed.user.{n}@example.com");
        let user = listed(n, (n % 7 != 3).then_some(email.as_str()));
        if n % 7 == 3 {
            without.push(id(&user));
        } else {
            with.push(id(&user));
        }
        users.push(user);
    }
    (users, (with, without))
}

fn field(name: &'static str) -> impl Fn(&Value) -> String {
    move |user| user[name].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn clerk_keeps_every_promise() {
    use crate::support::clerk_api::{CLERK_SECRET_KEY, ClerkApi, clerk_listed_user};
    use attio_user_sync::providers::clerk::directory::ClerkDirectory;
    let (users, ids) = listed(25, clerk_listed_user, field("id"));
    let api = ClerkApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| ClerkDirectory::new(reqwest::Client::new(), &a.url(), CLERK_SECRET_KEY.into(), 8),
        ids,
    ))
    .await;
}

#[tokio::test]
async fn supabase_keeps_every_promise() {
    use crate::support::supabase_api::{
        SUPABASE_SERVICE_ROLE_KEY, SupabaseApi, supabase_listed_user,
    };
    use attio_user_sync::providers::supabase::directory::SupabaseDirectory;
    let (users, ids) = listed(25, supabase_listed_user, field("id"));
    let api = SupabaseApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| {
            SupabaseDirectory::new(
                reqwest::Client::new(),
                &a.url(),
                SUPABASE_SERVICE_ROLE_KEY.into(),
                8,
                "supabase-db",
            )
        },
        ids,
    ))
    .await;
}

/// A provider's listed user without an email address: `strip` takes it out.
fn without(
    listed: impl Fn(usize) -> Value,
    strip: impl Fn(&mut Value),
) -> impl Fn(usize, Option<&str>) -> Value {
    move |n, email| {
        let mut user = listed(n);
        if email.is_none() {
            strip(&mut user);
        }
        user
    }
}

#[tokio::test]
async fn workos_keeps_every_promise() {
    use crate::support::workos_api::{WORKOS_API_KEY, WorkOsApi, workos_listed_user};
    use attio_user_sync::providers::workos::directory::WorkOsDirectory;
    let user = without(workos_listed_user, |u| u["email"] = Value::Null);
    let (users, ids) = listed(25, user, field("id"));
    let api = WorkOsApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| WorkOsDirectory::new(reqwest::Client::new(), &a.url(), WORKOS_API_KEY.into(), 8),
        ids,
    ))
    .await;
}

#[tokio::test]
async fn okta_keeps_every_promise() {
    use crate::support::okta_api::{OKTA_API_TOKEN, OktaApi, okta_listed_user};
    use attio_user_sync::providers::okta::directory::OktaDirectory;
    let (users, ids) = listed(25, okta_listed_user, field("id"));
    let api = OktaApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| OktaDirectory::new(reqwest::Client::new(), &a.url(), OKTA_API_TOKEN.into(), 8),
        ids,
    ))
    .await;
}

#[tokio::test]
async fn stytch_keeps_every_promise() {
    use crate::support::stytch_api::{
        STYTCH_PROJECT_ID, STYTCH_SECRET, StytchApi, stytch_listed_user,
    };
    use attio_user_sync::providers::stytch::directory::StytchDirectory;
    let user = without(stytch_listed_user, |u| u["emails"] = Value::Array(vec![]));
    let (users, ids) = listed(25, user, field("user_id"));
    let api = StytchApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| {
            StytchDirectory::new(
                reqwest::Client::new(),
                &a.url(),
                STYTCH_PROJECT_ID.into(),
                STYTCH_SECRET.into(),
                8,
            )
        },
        ids,
    ))
    .await;
}

#[tokio::test]
async fn kinde_keeps_every_promise() {
    use crate::support::kinde_api::{
        KINDE_CLIENT_ID, KINDE_CLIENT_SECRET, KindeApi, kinde_listed_user,
    };
    use attio_user_sync::providers::kinde::directory::KindeDirectory;
    let user = without(kinde_listed_user, |u| u["email"] = Value::Null);
    let (users, ids) = listed(25, user, field("id"));
    let api = KindeApi::start(users).await;
    keeps_every_promise(Source::on(
        api,
        8,
        |a| {
            KindeDirectory::new(
                reqwest::Client::new(),
                &a.url(),
                KINDE_CLIENT_ID.into(),
                KINDE_CLIENT_SECRET.into(),
                8,
            )
        },
        ids,
    ))
    .await;
}

#[tokio::test]
async fn auth0_keeps_every_promise() {
    use crate::support::auth0_api::{Auth0Api, auth0_listed_user};
    let user = without(auth0_listed_user, |u| {
        u.as_object_mut().unwrap().remove("email");
    });
    let (users, ids) = listed(25, user, field("user_id"));
    let api = Auth0Api::start(users).await;
    keeps_every_promise(Source::on(api, 8, |a| a.directory(8), ids)).await;
}

#[tokio::test]
async fn a_file_of_clerk_objects_keeps_every_promise() {
    use crate::support::clerk_api::clerk_listed_user;
    use attio_user_sync::backfill::file::FileDirectory;
    let (users, (with_email, without_email)) = listed(250, clerk_listed_user, field("id"));
    let file = scratch("jsonl");
    let lines: Vec<String> = users.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    keeps_every_promise(Source {
        directory: Box::new(move || FileDirectory::open(&file, "clerk").unwrap()),
        page_size: 100,
        rate_limit: None,
        rate_limits_left: Box::new(|| 0),
        with_email,
        without_email,
    })
    .await;
}

#[tokio::test]
async fn cognito_keeps_every_promise() {
    use crate::support::aws_throttle::ThrottlingFront;
    use attio_user_sync::providers::cognito::directory::CognitoDirectory;
    let moto = std::env::var("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER").expect(
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER is not set: run the tests with ./scripts/test.sh",
    );
    let (pool_id, subs) = cognito_pool(25, |n| n % 7 == 3, |_| false).await;
    let subs_where = |no_email: bool| -> Vec<String> {
        subs.iter()
            .enumerate()
            .filter(|(n, _)| (n % 7 == 3) == no_email)
            .map(|(_, sub)| sub.clone())
            .collect()
    };
    let (with_email, without_email) = (subs_where(false), subs_where(true));
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let front = ThrottlingFront::start(&moto).await;
    let directory = move |front: &ThrottlingFront| {
        let config = aws_sdk_cognitoidentityprovider::config::Builder::from(&sdk)
            .endpoint_url(front.url())
            .build();
        CognitoDirectory::new(
            aws_sdk_cognitoidentityprovider::Client::from_conf(config),
            pool_id.clone(),
            8,
        )
    };
    keeps_every_promise(Source::on(front, 8, directory, (with_email, without_email))).await;
}

#[tokio::test]
async fn stytch_b2b_members_keep_every_promise_and_arrive_in_their_named_organisations() {
    use crate::support::stytch_api::{
        STYTCH_PROJECT_ID, STYTCH_SECRET, StytchApi, stytch_member, stytch_organisation,
    };
    use attio_user_sync::providers::stytch::directory::StytchDirectory;
    // Three organisations: 17 members, none, 8 members (pages never span organisations).
    let organisations: Vec<Value> = (0..3).map(stytch_organisation).collect();
    let org = |n: usize| {
        let id = |o: usize| {
            organisations[o]["organization_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        if n < 17 { id(0) } else { id(2) }
    };
    let (members, ids) = listed(
        25,
        |n, email| stytch_member(n, &org(n), email),
        field("member_id"),
    );
    let api = StytchApi::start_b2b(organisations.clone(), members).await;
    let url = api.url();
    let directory = move |url: &str| {
        StytchDirectory::new(
            reqwest::Client::new(),
            url,
            STYTCH_PROJECT_ID.into(),
            STYTCH_SECRET.into(),
            8,
        )
        .b2b()
    };
    keeps_every_promise(Source::on(api, 8, move |a| directory(&a.url()), ids)).await;

    // Each member linked to its organisation, written with the name the search gave.
    let t = TestApp::spawn().await;
    run(
        app(&t).await,
        &directory(&url),
        Checkpoint::start("stytch"),
        &scratch("json"),
        Mode::Write,
    )
    .await
    .0
    .unwrap();
    assert_eq!(workspace_names(&t.attio), ["Org 0", "Org 2"]);
}

/// The next page is read and started while the last users of the one before are still in
/// flight (no wait at a page's end for its slowest user); a stop then records the next page's
/// users already applied, and a resume writes none of them again.
#[tokio::test]
async fn a_stop_while_two_pages_are_in_flight_resumes_exactly() {
    use crate::support::clerk_api::{CLERK_SECRET_KEY, ClerkApi, clerk_listed_user};
    use attio_user_sync::providers::clerk::directory::ClerkDirectory;
    let (users, (with_email, _)) = listed(25, clerk_listed_user, field("id"));
    let api = ClerkApi::start(users).await;
    let directory = || {
        ClerkDirectory::new(
            reqwest::Client::new(),
            &api.url(),
            CLERK_SECRET_KEY.into(),
            8,
        )
    };
    let t = TestApp::spawn().await;
    // One user of the first page answered slowly: the others, and the next page, go on.
    t.attio
        .inject(Fault::Slow(std::time::Duration::from_secs(2)));
    let app = app(&t).await;
    let path = scratch("json");
    let options = Options {
        mode: Mode::Write,
        concurrency: CONCURRENCY,
        reconcile: None,
        reading: Default::default(),
    };
    let first_run = directory();
    let reached = Arc::new(Notify::new());
    let seen = reached.clone();
    tokio::select! {
        biased;
        _ = reached.notified() => {}
        done = backfill::run(app.clone(), &first_run, Checkpoint::start("clerk"), &path, &options,
            move |c| if c.next_done.len() >= 3 { seen.notify_one() }, |_| {}) => {
            panic!("the second page never ran beside the first's slow user: {:?}", done.map(|c| c.counts));
        }
    }
    let saved = Checkpoint::load(&path, "clerk").unwrap().unwrap();
    assert_eq!(
        saved.page,
        PageCursor::Start,
        "the first page is not finished: {saved:?}"
    );
    assert!(saved.next_done.len() >= 3, "{saved:?}");
    // The users the checkpoint records as applied, by id.
    let lister = directory();
    let first = lister.page(&PageCursor::Start).await.unwrap();
    let second = lister.page(first.next.as_ref().unwrap()).await.unwrap();
    let id = |user: &Value| lister.user_id(user);
    let recorded: Vec<String> = (0..saved.position)
        .chain(saved.done_ahead.iter().copied())
        .map(|p| id(&first.users[p]))
        .chain(saved.next_done.iter().map(|p| id(&second.users[*p])))
        .collect();
    let before = user_asserts(&t.attio);
    let resumed = directory();
    let done = backfill::run(
        app,
        &resumed,
        saved.clone(),
        &path,
        &options,
        |_| {},
        |_| {},
    )
    .await
    .unwrap();
    let mut expected = with_email;
    expected.sort();
    assert_eq!(user_ids(&t.attio), expected, "resumed to the end");
    assert_eq!(done.counts.read, 25, "each user counted once");
    let after = user_asserts(&t.attio);
    let again: Vec<&String> = before
        .iter()
        .filter(|(id, n)| after.get(*id) != Some(n))
        .map(|(id, _)| id)
        .collect();
    assert!(
        again.iter().all(|id| !recorded.contains(id)),
        "written again although the checkpoint recorded them: {again:?} of {recorded:?}"
    );
    // Only the users in flight at the stop may be written again.
    assert!(again.len() <= CONCURRENCY, "{again:?}");
}
