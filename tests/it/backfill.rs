//! The backfill, source by source: each list API paged as its provider documents (the requests
//! it was sent), what each brings besides the user (organisations, statuses), the files, and the
//! binary as a person runs it. The promises every source keeps (all users once, reruns and
//! resumed runs without duplicates, dry runs, 429s) are in `backfill_sources.rs`.

use std::sync::Arc;

use attio_user_sync::backfill::{self, Mode, Noted, Options, Skipped};
use attio_user_sync::checkpoint::Checkpoint;
use attio_user_sync::directory::{Directory, DirectoryError, Page, PageCursor};
use attio_user_sync::domain::UserEvent;
use attio_user_sync::providers::clerk::directory::ClerkDirectory;
use serde_json::Value;

use crate::support::clerk_api::{
    CLERK_SECRET_KEY, ClerkApi, clerk_listed_membership, clerk_listed_user,
};
use crate::support::*;

/// 25 users; the 7th, 13th and 21st have no email address.
fn users() -> Vec<Value> {
    (0..25)
        .map(|n| {
            let email = format!("backfill.user.{n}@example.com");
            clerk_listed_user(n, (![7, 13, 21].contains(&n)).then_some(email.as_str()))
        })
        .collect()
}

fn scratch_checkpoint() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "attio-user-sync-backfill-test-{:016x}.json",
        fastrand::u64(..)
    ))
}

struct Run {
    checkpoint: Checkpoint,
    skipped: Vec<Skipped>,
}

async fn backfill(
    t: &TestApp,
    directory: &impl Directory,
    from: Checkpoint,
    mode: Mode,
) -> Result<Run, backfill::BackfillError> {
    let app = Arc::new(unpaced_app_for(&t.secret_id, &t.attio.url()).await);
    let mut skipped = Vec::new();
    let path = scratch_checkpoint();
    let options = Options {
        mode,
        concurrency: 4,
        reconcile: None,
        reading: Default::default(),
    };
    let checkpoint = backfill::run(
        app,
        directory,
        from,
        &path,
        &options,
        |_| {},
        |noted| {
            if let Noted::Skipped(s) = noted {
                skipped.push(s.clone())
            }
        },
    )
    .await?;
    Ok(Run {
        checkpoint,
        skipped,
    })
}

fn clerk(api: &ClerkApi, page_size: u64) -> ClerkDirectory {
    ClerkDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        CLERK_SECRET_KEY.into(),
        page_size,
    )
}

fn expected_ids() -> Vec<String> {
    (0..25)
        .filter(|n| ![7, 13, 21].contains(n))
        .map(|n| format!("user_backfill_{n:04}"))
        .collect()
}

#[tokio::test]
async fn every_clerk_user_arrives_once_and_those_without_an_email_are_skipped_and_reported() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;

    let run = backfill(
        &t,
        &clerk(&api, 10),
        Checkpoint::start("clerk"),
        Mode::Write,
    )
    .await
    .unwrap();

    assert_eq!(user_ids(&t.attio), expected_ids());
    assert_eq!(t.attio.records("people").len(), 22);
    assert_eq!(
        api.pages(),
        [(10, 0), (10, 10), (10, 20)],
        "paged to the end, oldest first"
    );
    let c = &run.checkpoint.counts;
    assert_eq!((c.read, c.synced, c.skipped, c.failed), (25, 22, 3, 0));
    let skipped: Vec<&str> = run.skipped.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "user_backfill_0007",
            "user_backfill_0013",
            "user_backfill_0021"
        ]
    );
    assert!(
        run.skipped
            .iter()
            .all(|s| s.reason.contains("email") && !s.failed),
        "{:?}",
        run.skipped
    );
}

#[tokio::test]
async fn clerks_429_is_waited_out() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    api.rate_limit(2);
    let started = std::time::Instant::now();

    backfill(
        &t,
        &clerk(&api, 10),
        Checkpoint::start("clerk"),
        Mode::Write,
    )
    .await
    .unwrap();

    assert_eq!(user_ids(&t.attio), expected_ids());
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "waited for Retry-After twice"
    );
}

/// Runs the binary as a person would, with the stand-ins' URLs; (exit code, stdout, stderr).
async fn run_binary(t: &TestApp, api: &ClerkApi, args: &[&str]) -> (i32, String, String) {
    run_binary_with(t, api, args, &[("ATTIO_SYNC_SECRET_ID", &t.secret_id)]).await
}

/// [`run_binary`] with `env` for the Attio side instead of the secret.
async fn run_binary_with(
    t: &TestApp,
    api: &ClerkApi,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    vars.extend([
        ("ATTIO_API_URL", t.attio.url()),
        ("CLERK_API_URL", api.url()),
        ("CLERK_SECRET_KEY", CLERK_SECRET_KEY.to_owned()),
    ]);
    run_backfill_binary(args, &vars).await
}

#[tokio::test]
async fn the_binary_backfills_reports_the_skipped_and_refuses_to_overrun_an_interrupted_run() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    let report = scratch_checkpoint().with_extension("report.jsonl");
    let checkpoint = scratch_checkpoint();
    let (report_arg, checkpoint_arg) = (report.to_str().unwrap(), checkpoint.to_str().unwrap());

    let (code, out, err) = run_binary(
        &t,
        &api,
        &[
            "clerk",
            "--page-size",
            "10",
            "--report",
            report_arg,
            "--checkpoint",
            checkpoint_arg,
        ],
    )
    .await;

    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "clerk: read 25: same 0, missing 22, differs 0, orphans 0; synced 22, skipped 3, failed 0"
        ),
        "{out}"
    );
    assert_eq!(user_ids(&t.attio), expected_ids());
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A line for each user not written for its data, and for each user not `same`.
    let skipped: Vec<&Value> = lines.iter().filter(|l| l.get("reason").is_some()).collect();
    assert_eq!(skipped.len(), 3);
    assert_eq!(skipped[0]["user_id"], "user_backfill_0007");
    let missing: Vec<&Value> = lines.iter().filter(|l| l["class"] == "missing").collect();
    assert_eq!(missing.len(), 22);
    assert_eq!(lines.len(), 25);
    assert!(
        !std::fs::read_to_string(&report)
            .unwrap()
            .contains("@example.com")
    );
    assert!(!checkpoint.exists(), "a finished run leaves no checkpoint");

    // A checkpoint left by an interrupted run is not overrun by a fresh start.
    Checkpoint::start("clerk").save(&checkpoint).unwrap();
    let (code, _, err) = run_binary(&t, &api, &["clerk", "--checkpoint", checkpoint_arg]).await;
    assert_eq!(code, 2);
    assert!(err.contains("--resume"), "{err}");
    let (code, out, _) = run_binary(
        &t,
        &api,
        &["clerk", "--resume", "--checkpoint", checkpoint_arg],
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("read 25"), "{out}");
    assert_eq!(t.attio.records("users").len(), 22, "no duplicates");
}

#[tokio::test]
async fn enqueued_users_reach_attio_through_the_worker_and_not_from_the_laptop() {
    use crate::support::queue::Queues;
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    let queues = Queues::create(std::time::Duration::from_secs(1), 3).await;
    let env = queues.env();
    let checkpoint = scratch_checkpoint();

    // As from a laptop: the queue's URL, no Attio secret or token.
    let (code, out, err) = run_binary_with(
        &t,
        &api,
        &[
            "clerk",
            "--enqueue",
            "--page-size",
            "10",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
        &[("SYNC_QUEUE_URL", &env[0].1)],
    )
    .await;

    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("clerk: read 25, queued 22"), "{out}");
    assert_eq!(
        t.attio.request_count(),
        0,
        "nothing written from the laptop"
    );
    assert_eq!(queues.depth().await, 22);
    assert!(!checkpoint.exists());

    // The worker in AWS, fed by the event source.
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = worker_for(&t.secret_id, &t.attio.url(), &vars).await;
    queues
        .drain(&worker, 10, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(user_ids(&t.attio), expected_ids());
    let user = t
        .attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some("user_backfill_0001"))
        .unwrap();
    assert_eq!(
        user.text("primary_email_address"),
        Some("backfill.user.1@example.com")
    );
    assert_eq!(queues.depth().await, 0);
    assert!(queues.dead_letters().await.is_empty());

    // Without a queue, --enqueue says what it needs before reading anything.
    let (code, _, err) = run_binary_with(&t, &api, &["clerk", "--enqueue"], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains("SYNC_QUEUE_URL"), "{err}");
}

#[tokio::test]
async fn an_access_token_can_stand_in_for_the_secret() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    let checkpoint = scratch_checkpoint();

    let (code, out, err) = run_binary_with(
        &t,
        &api,
        &["clerk", "--checkpoint", checkpoint.to_str().unwrap()],
        &[("ATTIO_ACCESS_TOKEN", TOKEN)],
    )
    .await;

    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(user_ids(&t.attio), expected_ids());

    // A wrong token is Attio's refusal, reported, not a crash: comparing first, the run cannot
    // read Attio and says so before writing anything; rewriting all, every write fails.
    let writes = t.attio.request_count();
    let (code, out, err) = run_binary_with(
        &t,
        &api,
        &["clerk", "--checkpoint", checkpoint.to_str().unwrap()],
        &[("ATTIO_ACCESS_TOKEN", "not-the-token")],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("reading what Attio holds"), "{err}");
    assert_eq!(
        t.attio.request_count(),
        writes + 1,
        "one read refused, nothing else"
    );
    let _ = std::fs::remove_file(&checkpoint);
    let (code, out, _) = run_binary_with(
        &t,
        &api,
        &[
            "clerk",
            "--rewrite-all",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
        &[("ATTIO_ACCESS_TOKEN", "not-the-token")],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed 22"), "{out}");
}

#[tokio::test]
async fn a_csv_export_backfills_any_route_and_skips_rows_without_an_email() {
    use attio_user_sync::backfill::file::FileDirectory;
    let t = TestApp::spawn().await;
    let csv = scratch_checkpoint().with_extension("csv");
    std::fs::write(
        &csv,
        "user_id,email,first_name,last_name\n\
         00u1,grace@example.com,Grace,Hopper\n\
         00u2,,No,Email\n\
         00u3,ada@example.com,Ada,\"King, Countess of Lovelace\"\n",
    )
    .unwrap();
    let directory = FileDirectory::open(&csv, "okta").unwrap();

    let run = backfill(&t, &directory, Checkpoint::start("okta"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(user_ids(&t.attio), ["00u1", "00u3"]);
    let names: Vec<String> = t
        .attio
        .records("people")
        .iter()
        .filter_map(|p| {
            p.first("name")
                .and_then(|n| n["last_name"].as_str())
                .map(str::to_owned)
        })
        .collect();
    assert!(
        names.contains(&"King, Countess of Lovelace".to_owned()),
        "{names:?}"
    );
    assert_eq!(run.skipped.len(), 1);
    assert_eq!(run.skipped[0].user_id, "00u2");
}

#[tokio::test]
async fn clerk_users_from_json_lines_read_as_the_list_api_returns_them() {
    use attio_user_sync::backfill::file::FileDirectory;
    let t = TestApp::spawn().await;
    let file = scratch_checkpoint().with_extension("jsonl");
    let lines: Vec<String> = users().iter().take(10).map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let directory = FileDirectory::open(&file, "clerk").unwrap();

    let run = backfill(&t, &directory, Checkpoint::start("clerk"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(user_ids(&t.attio).len(), 9, "the 7th has no email");
    assert_eq!(
        (run.checkpoint.counts.read, run.checkpoint.counts.skipped),
        (10, 1)
    );
    assert!(
        FileDirectory::open(&file, "okta").is_err(),
        "Okta's own objects are not read yet"
    );
}

#[tokio::test]
async fn every_workos_user_arrives_once_following_the_after_cursor_to_the_end() {
    use crate::support::workos_api::{WORKOS_API_KEY, WorkOsApi, workos_listed_user};
    use attio_user_sync::providers::workos::directory::WorkOsDirectory;
    let t = TestApp::spawn().await;
    let api = WorkOsApi::start((0..250).map(workos_listed_user).collect()).await;
    let directory = WorkOsDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        WORKOS_API_KEY.into(),
        100,
    );

    let run = backfill(&t, &directory, Checkpoint::start("workos"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 250);
    assert_eq!(run.checkpoint.counts.synced, 250);
    assert_eq!(
        api.requests(),
        [
            "limit=100&order=asc",
            "after=user_01WORKOS000099&limit=100&order=asc",
            "after=user_01WORKOS000199&limit=100&order=asc"
        ]
    );
    // Rerun: nothing new.
    backfill(&t, &directory, Checkpoint::start("workos"), Mode::Write)
        .await
        .unwrap();
    assert_eq!(t.attio.records("users").len(), 250);
}

#[tokio::test]
async fn every_okta_user_arrives_once_following_the_link_headers_through_a_rate_limit() {
    use crate::support::okta_api::{OKTA_API_TOKEN, OktaApi, okta_listed_user};
    use attio_user_sync::providers::okta::directory::OktaDirectory;
    let t = TestApp::spawn().await;
    let listed = (0..450)
        .map(|n| {
            let email = format!("okta.user.{n}@example.com");
            okta_listed_user(n, (n != 300).then_some(email.as_str()))
        })
        .collect();
    let api = OktaApi::start(listed).await;
    api.rate_limit(1);
    let directory = OktaDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        OKTA_API_TOKEN.into(),
        200,
    );

    let run = backfill(&t, &directory, Checkpoint::start("okta"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 449);
    assert_eq!(
        (run.checkpoint.counts.read, run.checkpoint.counts.skipped),
        (450, 1)
    );
    assert_eq!(run.skipped[0].user_id, "00uBACKFILL00300");
    assert_eq!(
        api.requests(),
        [
            "limit=200",
            "after=00uBACKFILL00199&limit=200",
            "after=00uBACKFILL00399&limit=200"
        ],
        "each next link followed as given, after the 429 was waited out"
    );
    let user = t
        .attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some("00uBACKFILL00001"))
        .unwrap();
    assert_eq!(
        user.text("primary_email_address"),
        Some("okta.user.1@example.com")
    );
}

#[tokio::test]
async fn the_binary_reads_okta_200_users_a_page_as_the_readme_says() {
    use crate::support::okta_api::{OKTA_API_TOKEN, OktaApi, okta_listed_user};
    let t = TestApp::spawn().await;
    // One user past a full page: two pages, the second of one.
    let listed = (0..201)
        .map(|n| okta_listed_user(n, Some(&format!("okta.page.{n}@example.com"))))
        .collect();
    let api = OktaApi::start(listed).await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_attio-user-sync-backfill"))
        .args([
            "okta",
            "--checkpoint",
            scratch_checkpoint().to_str().unwrap(),
        ])
        .env("ATTIO_SYNC_SECRET_ID", &t.secret_id)
        .env("ATTIO_API_URL", t.attio.url())
        .env("OKTA_ORG_URL", api.url())
        .env("OKTA_API_TOKEN", OKTA_API_TOKEN)
        .output()
        .await
        .expect("the backfill binary runs");

    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("okta: read 201: same 0, missing 201"), "{out}");
    assert!(out.contains("synced 201"), "{out}");
    assert_eq!(
        api.requests(),
        ["limit=200", "after=00uBACKFILL00199&limit=200"],
        "Okta's documented maximum page, without --page-size"
    );
}

#[tokio::test]
async fn every_confirmed_cognito_user_arrives_once_through_moto_s_list_users() {
    use attio_user_sync::providers::cognito::directory::CognitoDirectory;
    let t = TestApp::spawn().await;
    // 70 users (two pages of 60): one unconfirmed, one without an email.
    let (pool_id, _) = cognito_pool(70, |n| n == 50, |n| n == 10).await;
    let directory = CognitoDirectory::new(
        CognitoDirectory::client_from_env(reqwest::Client::new()),
        pool_id,
        60,
    );

    let run = backfill(&t, &directory, Checkpoint::start("cognito"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 68);
    assert_eq!(
        (run.checkpoint.counts.read, run.checkpoint.counts.skipped),
        (70, 2)
    );
    let reasons: Vec<&str> = run.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("FORCE_CHANGE_PASSWORD")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("email")), "{reasons:?}");
    assert!(
        run.skipped.iter().all(|s| s.user_id.len() == 36),
        "{:?}",
        run.skipped
    );
    // The user id is the sub, as the Post Confirmation trigger writes it.
    let ids = user_ids(&t.attio);
    assert!(
        ids.iter().all(|id| id.len() == 36 && id.contains('-')),
        "{ids:?}"
    );
}

#[tokio::test]
async fn every_stytch_user_arrives_once_following_next_cursor_through_a_429() {
    use crate::support::stytch_api::{
        STYTCH_PROJECT_ID, STYTCH_SECRET, StytchApi, stytch_listed_user,
    };
    use attio_user_sync::providers::stytch::directory::StytchDirectory;
    let t = TestApp::spawn().await;
    let api = StytchApi::start((0..230).map(stytch_listed_user).collect()).await;
    api.rate_limit(1);
    let directory = StytchDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        STYTCH_PROJECT_ID.into(),
        STYTCH_SECRET.into(),
        100,
    );

    let run = backfill(&t, &directory, Checkpoint::start("stytch"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 230);
    assert_eq!(run.checkpoint.counts.synced, 230);
    let cursors: Vec<Value> = api.bodies().iter().map(|b| b["cursor"].clone()).collect();
    assert_eq!(
        cursors,
        [Value::Null, "cursor-100".into(), "cursor-200".into()]
    );
}

#[tokio::test]
async fn every_kinde_user_arrives_once_with_its_organisations_on_one_m2m_token() {
    use crate::support::kinde_api::{
        KINDE_CLIENT_ID, KINDE_CLIENT_SECRET, KindeApi, kinde_listed_user,
    };
    use attio_user_sync::providers::kinde::directory::KindeDirectory;
    let t = TestApp::spawn().await;
    let api = KindeApi::start((0..600).map(kinde_listed_user).collect()).await;
    api.rate_limit(1);
    let directory = KindeDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        KINDE_CLIENT_ID.into(),
        KINDE_CLIENT_SECRET.into(),
        500,
    );

    let run = backfill(&t, &directory, Checkpoint::start("kinde"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 600);
    assert_eq!(run.checkpoint.counts.synced, 600);
    assert_eq!(api.tokens_issued(), 1);
    assert_eq!(api.pages().len(), 2, "{:?}", api.pages());
    // Each organisation code became a workspace, linked to its members.
    assert_eq!(t.attio.records("workspaces").len(), 3);
}

#[tokio::test]
async fn every_auth0_user_arrives_once_and_a_tenant_past_the_paging_cap_is_sent_to_the_export_file()
{
    use crate::support::auth0_api::{
        AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_DOMAIN, Auth0Api, auth0_listed_user,
    };
    use attio_user_sync::backfill::file::FileDirectory;
    use attio_user_sync::providers::auth0::directory::{Auth0Directory, Auth0Token};
    let client = || Auth0Token::Client {
        id: AUTH0_CLIENT_ID.into(),
        secret: AUTH0_CLIENT_SECRET.into(),
    };
    let t = TestApp::spawn().await;
    let api = Auth0Api::start((0..250).map(auth0_listed_user).collect()).await;
    let directory = Auth0Directory::new(
        reqwest::Client::new(),
        AUTH0_DOMAIN,
        Some(&api.url()),
        client(),
        100,
    );

    backfill(&t, &directory, Checkpoint::start("auth0"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 250);
    assert_eq!(api.pages(), ["0", "1", "2"]);

    // 1,200 users: the list cannot reach them all, so nothing is written and the export is named.
    let big = Auth0Api::start((0..1200).map(auth0_listed_user).collect()).await;
    let directory = Auth0Directory::new(
        reqwest::Client::new(),
        AUTH0_DOMAIN,
        Some(&big.url()),
        client(),
        100,
    );
    let t2 = TestApp::spawn().await;
    let refused = backfill(&t2, &directory, Checkpoint::start("auth0"), Mode::Write).await;
    let message = refused.err().expect("refused").to_string();
    assert!(
        message.contains("export") && message.contains("--from-file"),
        "{message}"
    );
    assert_eq!(t2.attio.request_count(), 0);

    // The export job's NDJSON, read with the same field names.
    let file = scratch_checkpoint().with_extension("ndjson");
    let lines: Vec<String> = (0..1200)
        .map(|n| auth0_listed_user(n).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let exported = FileDirectory::open(&file, "auth0").unwrap();
    backfill(&t2, &exported, Checkpoint::start("auth0"), Mode::Write)
        .await
        .unwrap();
    assert_eq!(t2.attio.records("users").len(), 1200);
}

/// A Clerk list API gone wrong in `how`, counting the pages read.
struct Misbehaving {
    inner: ClerkDirectory,
    how: Misbehaviour,
    pages_read: std::sync::atomic::AtomicUsize,
}

enum Misbehaviour {
    /// Every page is the first, whatever the cursor (a list API ignoring its offset).
    IgnoresCursor,
    /// The second page's next link points back at the first.
    LinksBack,
}

impl Directory for Misbehaving {
    fn route(&self) -> &'static str {
        self.inner.route()
    }
    async fn total(&self) -> Option<u64> {
        self.inner.total().await
    }
    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let read = self
            .pages_read
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match self.how {
            Misbehaviour::IgnoresCursor => self.inner.page(&PageCursor::Start).await,
            Misbehaviour::LinksBack => {
                let mut page = self.inner.page(cursor).await?;
                if read == 1 {
                    page.next = Some(PageCursor::Start);
                }
                Ok(page)
            }
        }
    }
    fn event(&self, user: Value) -> Result<UserEvent, String> {
        self.inner.event(user)
    }
}

#[tokio::test]
async fn a_list_api_that_does_not_move_on_is_refused_instead_of_read_for_ever() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    for (how, says) in [
        (
            Misbehaviour::IgnoresCursor,
            "holds the same 10 users as the page before",
        ),
        (
            Misbehaviour::LinksBack,
            "gave a next page already read (the first page)",
        ),
    ] {
        let directory = Misbehaving {
            inner: clerk(&api, 10),
            how,
            pages_read: Default::default(),
        };

        let stopped = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            backfill(&t, &directory, Checkpoint::start("clerk"), Mode::DryRun),
        )
        .await
        .expect("the run ends");

        let error = stopped.err().expect("refused").to_string();
        assert!(
            error.contains("clerk's list API is not moving on") && error.contains(says),
            "{error}"
        );
        assert!(
            directory
                .pages_read
                .load(std::sync::atomic::Ordering::SeqCst)
                <= 3,
            "stopped at the first page that went back"
        );
    }
}

#[tokio::test]
async fn clerk_users_arrive_linked_to_their_organisations_as_the_webhook_links_them() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users()).await;
    api.set_memberships(vec![
        clerk_listed_membership(0, "org_acme", "Acme", "org:admin"),
        clerk_listed_membership(0, "org_beta", "Beta", "org:member"),
        clerk_listed_membership(1, "org_acme", "Acme", "org:member"),
    ]);

    backfill(
        &t,
        &clerk(&api, 10),
        Checkpoint::start("clerk"),
        Mode::Write,
    )
    .await
    .unwrap();

    let mut first = linked_workspaces(&t.attio, "user_backfill_0000");
    first.sort();
    assert_eq!(first, ["org_acme", "org_beta"]);
    assert_eq!(
        linked_workspaces(&t.attio, "user_backfill_0001"),
        ["org_acme"]
    );
    assert!(linked_workspaces(&t.attio, "user_backfill_0002").is_empty());
    let names = workspace_names(&t.attio);
    assert_eq!(names, ["Acme", "Beta"]);
}

#[tokio::test]
async fn workos_users_arrive_linked_to_their_organisations_read_one_list_per_organisation() {
    use crate::support::workos_api::{
        WORKOS_API_KEY, WorkOsApi, workos_listed_membership, workos_listed_user,
    };
    use attio_user_sync::providers::workos::directory::WorkOsDirectory;
    let t = TestApp::spawn().await;
    // 120 members of one organisation (two pages of memberships), one member of two, and an
    // invitation that is not a membership yet.
    let mut memberships: Vec<Value> = (0..120)
        .map(|n| workos_listed_membership(n, "org_01ACME", "member"))
        .collect();
    memberships.push(workos_listed_membership(0, "org_01BETA", "admin"));
    let mut pending = workos_listed_membership(5, "org_01BETA", "member");
    pending["status"] = "pending".into();
    memberships.push(pending);
    let api = WorkOsApi::start_with((0..130).map(workos_listed_user).collect(), memberships).await;
    let directory = WorkOsDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        WORKOS_API_KEY.into(),
        100,
    );

    backfill(&t, &directory, Checkpoint::start("workos"), Mode::Write)
        .await
        .unwrap();

    let mut first = linked_workspaces(&t.attio, "user_01WORKOS000000");
    first.sort();
    assert_eq!(first, ["org_01ACME", "org_01BETA"]);
    assert_eq!(
        linked_workspaces(&t.attio, "user_01WORKOS000005"),
        ["org_01ACME"]
    );
    assert_eq!(
        linked_workspaces(&t.attio, "user_01WORKOS000119"),
        ["org_01ACME"]
    );
    assert!(linked_workspaces(&t.attio, "user_01WORKOS000125").is_empty());
    let names = workspace_names(&t.attio);
    assert_eq!(names, ["org_01ACME Inc", "org_01BETA Inc"]);
}

#[tokio::test]
async fn auth0_users_arrive_linked_to_their_organisations_read_one_members_list_per_organisation() {
    use crate::support::auth0_api::{Auth0Api, auth0_listed_user};
    let t = TestApp::spawn().await;
    let api = Auth0Api::start((0..150).map(auth0_listed_user).collect()).await;
    // 120 members in Acme: two checkpoint pages of members (take 100).
    let acme: Vec<usize> = (0..120).collect();
    api.set_organisations(&[
        ("org_acme", "acme", acme.as_slice()),
        ("org_beta", "beta", &[1, 140]),
    ]);
    let directory = api.directory(100);

    backfill(&t, &directory, Checkpoint::start("auth0"), Mode::Write)
        .await
        .unwrap();

    assert_eq!(t.attio.records("users").len(), 150);
    let mut first = linked_workspaces(&t.attio, "auth0|backfill000001");
    first.sort();
    assert_eq!(first, ["org_acme", "org_beta"]);
    assert_eq!(
        linked_workspaces(&t.attio, "auth0|backfill000119"),
        ["org_acme"],
        "a member of Acme's second page"
    );
    assert_eq!(
        linked_workspaces(&t.attio, "auth0|backfill000140"),
        ["org_beta"]
    );
    assert!(linked_workspaces(&t.attio, "auth0|backfill000130").is_empty());
    // Named as the webhook's member events name them.
    assert_eq!(workspace_names(&t.attio), ["acme", "beta"]);
}

#[tokio::test]
async fn a_clerk_instance_without_organisations_backfills_its_users_without_workspaces() {
    for status in [404, 403] {
        let t = TestApp::spawn().await;
        let api = ClerkApi::start(users()).await;
        api.refuse_memberships(status);

        let run = backfill(
            &t,
            &clerk(&api, 10),
            Checkpoint::start("clerk"),
            Mode::Write,
        )
        .await
        .unwrap_or_else(|e| panic!("{status}: {e}"));

        assert_eq!(run.checkpoint.counts.synced, 22, "{status}");
        assert!(t.attio.records("workspaces").is_empty(), "{status}");
    }
}
