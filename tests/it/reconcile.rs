//! Reconcile: the backfill compares each listed user with what Attio holds and writes only the
//! difference; orphans are found after a complete listing and deleted only as the guard allows.
//! Against the strict Attio stand-in (which stores values as Attio does: timestamps in UTC with
//! nanoseconds, lower-cased addresses and domains, numbers as numbers) and the Clerk stand-in.

use std::sync::Arc;

use attio_user_sync::backfill::{self, BackfillError, Mode, Noted, Options, Reconcile};
use attio_user_sync::checkpoint::{Checkpoint, Counts};
use attio_user_sync::providers::clerk::directory::ClerkDirectory;
use attio_user_sync::reconcile::Found;
use serde_json::{Value, json};

use crate::support::clerk_api::{
    CLERK_SECRET_KEY, ClerkApi, clerk_listed_membership, clerk_listed_user,
};
use crate::support::*;

/// A mapping writing every attribute type the mapping converts to: a select, a status, text
/// (the route), a timestamp, a number, a rating, a checkbox, a date, a phone number, a domain
/// and an email address on the user; text on the person. The values below come in shapes Attio stores
/// otherwise (numeric text, mixed case, an offset, spaces in a phone number, unix seconds).
const MAP: &str = r#"{"users": {"plan": "/public_metadata/plan", "signed_up_with": "provider",
    "last_seen": "/public_metadata/seen", "seats": "/public_metadata/seats",
    "beta_tester": "/public_metadata/beta", "birthday": "/public_metadata/born",
    "mobile": "/public_metadata/mobile", "company_domain": "/public_metadata/domain",
    "work_email": "/public_metadata/work_email", "stage": "/public_metadata/stage",
    "satisfaction": "/public_metadata/satisfaction"},
  "people": {"job_title": "/public_metadata/title"}}"#;

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ATTIO_ATTRIBUTE_MAP", MAP),
        ("ATTIO_USER_CREATED_AT_ATTRIBUTE", "signed_up_at"),
    ]
}

/// The `n`th Clerk user, with a value for every mapped attribute.
fn user(n: usize) -> Value {
    let mut user = clerk_listed_user(n, Some(&format!("Reconcile.User.{n}@Example.com")));
    user["public_metadata"] = json!({
        "plan": "Pro", "seen": "2026-11-27T10:00:00.25+01:00", "seats": "12", "beta": "true",
        "born": 1_654_012_591, "mobile": "+1 415 555 0100", "domain": "Example.COM",
        "work_email": format!("Ada.Work.{n}@Example.com"), "title": "Engineer",
        "stage": "Active", "satisfaction": "4",
    });
    user
}

fn users(count: usize) -> Vec<Value> {
    (0..count).map(user).collect()
}

fn clerk(api: &ClerkApi) -> ClerkDirectory {
    ClerkDirectory::new(
        reqwest::Client::new(),
        &api.url(),
        CLERK_SECRET_KEY.into(),
        10,
    )
}

struct Run {
    counts: Counts,
    found: Vec<Found>,
    failed: Vec<String>,
}

impl Run {
    /// The found users of `class`, with their attributes, sorted by user id.
    fn of(&self, class: &str) -> Vec<(String, Vec<String>)> {
        let mut found: Vec<(String, Vec<String>)> = self
            .found
            .iter()
            .filter(|f| f.class == class)
            .map(|f| {
                let mut attributes = f.attributes.clone();
                attributes.sort();
                (f.user_id.clone(), attributes)
            })
            .collect();
        found.sort();
        found
    }
}

async fn reconcile(
    t: &TestApp,
    api: &ClerkApi,
    mode: Mode,
    reconcile: Option<Reconcile>,
) -> Result<Run, BackfillError> {
    reconcile_from(t, &clerk(api), mode, reconcile).await
}

/// A reconcile of `directory`'s users, with this file's mapping.
async fn reconcile_from(
    t: &TestApp,
    directory: &impl attio_user_sync::directory::Directory,
    mode: Mode,
    reconcile: Option<Reconcile>,
) -> Result<Run, BackfillError> {
    reconcile_with(t, directory, mode, reconcile, &[]).await
}

/// [`reconcile_from`] with `more` variables (a queue's) besides the mapping.
async fn reconcile_with(
    t: &TestApp,
    directory: &impl attio_user_sync::directory::Directory,
    mode: Mode,
    reconcile: Option<Reconcile>,
    more: &[(&str, &str)],
) -> Result<Run, BackfillError> {
    let mut vars = env();
    vars.extend_from_slice(more);
    let app = Arc::new(app_for(&t.secret_id, &t.attio.url(), &vars).await);
    let path = std::env::temp_dir().join(format!("reconcile-test-{:016x}.json", fastrand::u64(..)));
    let options = Options {
        mode,
        concurrency: 4,
        reconcile,
        reading: Default::default(),
    };
    let mut found = Vec::new();
    let mut failed = Vec::new();
    let done = backfill::run(
        app,
        directory,
        Checkpoint::start(directory.route()),
        &path,
        &options,
        |_| {},
        |noted| match noted {
            Noted::Found(f) => found.push(f.clone()),
            Noted::Skipped(s) if s.failed => failed.push(format!("{}: {}", s.user_id, s.reason)),
            Noted::Skipped(_) => {}
        },
    )
    .await;
    let _ = std::fs::remove_file(&path);
    let counts = match done {
        Ok(done) => done.counts,
        Err(BackfillError::Refused(refusal, done)) => {
            return Err(BackfillError::Refused(refusal, done));
        }
        Err(e) => return Err(e),
    };
    Ok(Run {
        counts,
        found,
        failed,
    })
}

fn compare() -> Option<Reconcile> {
    Some(Reconcile::default())
}

/// (same, missing, differs, orphans) of a run.
fn classes(c: &Counts) -> (u64, u64, u64, u64) {
    (c.same, c.missing, c.differs, c.orphans)
}

fn sorted(mut writes: Vec<(String, String)>) -> Vec<(String, String)> {
    writes.sort();
    writes
}

fn pair(method: &str, object: &str) -> (String, String) {
    (method.to_owned(), object.to_owned())
}

#[tokio::test]
async fn a_just_synced_user_of_every_mapped_type_compares_same_and_a_rerun_writes_nothing() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(12)).await;

    let first = reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    assert_eq!(classes(&first.counts), (0, 12, 0, 0));
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    // Every mapped value was written (none left out with a warning), in Attio's stored forms.
    let stored = t.attio.records("users");
    let user = stored
        .iter()
        .find(|u| u.text("user_id") == Some("user_backfill_0003"))
        .unwrap();
    for slug in [
        "plan",
        "stage",
        "satisfaction",
        "signed_up_with",
        "last_seen",
        "seats",
        "beta_tester",
        "birthday",
        "mobile",
        "company_domain",
        "work_email",
        "signed_up_at",
    ] {
        assert!(
            user.values[slug].as_array().is_some_and(|v| !v.is_empty()),
            "{slug} written"
        );
    }
    assert_eq!(
        user.values["last_seen"],
        json!(["2026-11-27T09:00:00.250000000Z"])
    );
    assert_eq!(user.values["seats"], json!([12.0]));
    assert_eq!(user.values["company_domain"], json!(["example.com"]));

    let before = t.attio.request_count();
    let rerun = reconcile(&t, &api, Mode::Write, compare()).await.unwrap();

    assert_eq!(classes(&rerun.counts), (12, 0, 0, 0));
    assert!(rerun.found.is_empty(), "{:?}", rerun.found);
    assert_eq!(
        writes_since(&t.attio, before),
        Vec::<(String, String)>::new()
    );
}

#[tokio::test]
async fn each_kind_of_drift_is_reported_by_attribute_and_repaired_by_exactly_the_writes_it_needs() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(18)).await;
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();

    // Changed at the provider while the function was not listening: the address, the name,
    // and one attribute of each mapped type.
    let mut changed = users(18);
    changed[1]["email_addresses"][0]["email_address"] = json!("moved.1@example.com");
    changed[2]["last_name"] = json!("Renamed");
    changed[3]["public_metadata"]["plan"] = json!("Enterprise");
    changed[4]["public_metadata"]["seats"] = json!(13);
    changed[5]["public_metadata"]["title"] = json!("Director");
    changed[6]["public_metadata"]["beta"] = json!(false);
    changed[7]["public_metadata"]["born"] = json!("2022-06-01");
    changed[10]["public_metadata"]["seen"] = json!("2026-11-27T10:00:00.251+01:00");
    changed[11]["public_metadata"]["mobile"] = json!("+1 415 555 0199");
    changed[12]["public_metadata"]["domain"] = json!("example.org");
    changed[13]["public_metadata"]["work_email"] = json!("Another.Address@Example.com");
    changed[14]["created_at"] = json!(1_654_012_591_999_i64);
    changed[16]["public_metadata"]["stage"] = json!("Churned");
    changed[17]["public_metadata"]["satisfaction"] = json!(2);
    // A value the provider now leaves out is not compared (nor written): not drift.
    changed[15]["public_metadata"]
        .as_object_mut()
        .unwrap()
        .remove("plan");
    // Removed in Attio by hand.
    let gone = t
        .attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some("user_backfill_0008"))
        .unwrap();
    t.attio.remove_record("users", &gone.id);
    let api = ClerkApi::start(changed).await;

    // --check: found and named, nothing written.
    let before = t.attio.request_count();
    let check = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(
        writes_since(&t.attio, before),
        Vec::<(String, String)>::new()
    );
    assert_eq!(classes(&check.counts), (3, 1, 14, 0));
    let id = |n: usize| format!("user_backfill_{n:04}");
    let named = |n: usize, attributes: &[&str]| {
        (
            id(n),
            attributes.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        check.of("differs"),
        [
            named(1, &["primary_email_address"]),
            named(2, &["name"]),
            named(3, &["plan"]),
            named(4, &["seats"]),
            named(5, &["job_title"]),
            named(6, &["beta_tester"]),
            named(7, &["birthday"]),
            named(10, &["last_seen"]),
            named(11, &["mobile"]),
            named(12, &["company_domain"]),
            named(13, &["work_email"]),
            named(14, &["signed_up_at"]),
            named(16, &["stage"]),
            named(17, &["satisfaction"]),
        ]
    );
    assert_eq!(check.of("missing"), [named(8, &[])]);

    // The repair writes what each needs: the person for a name or a person's attribute, the
    // user for a user's attribute, both for a new address and for a missing user.
    let before = t.attio.request_count();
    let repair = reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    assert!(repair.failed.is_empty(), "{:?}", repair.failed);
    assert_eq!(classes(&repair.counts), (3, 1, 14, 0));
    let mut expected = vec![pair("PUT", "people"); 4]; // 1, 2, 5, 8
    expected.extend(vec![pair("PUT", "users"); 13]); // 1, 3, 4, 6, 7, 8, 10 to 14, 16, 17
    assert_eq!(sorted(writes_since(&t.attio, before)), sorted(expected));
    let held = |n: usize| {
        t.attio
            .records("users")
            .into_iter()
            .find(|u| u.text("user_id") == Some(id(n).as_str()))
            .unwrap()
    };
    assert_eq!(
        held(1).values["primary_email_address"],
        json!(["moved.1@example.com"])
    );
    assert_eq!(held(3).values["plan"], json!(["Enterprise"]));
    assert_eq!(held(4).values["seats"], json!([13.0]));

    // And then Attio equals the provider.
    let before = t.attio.request_count();
    let again = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(classes(&again.counts), (18, 0, 0, 0), "{:?}", again.found);
    assert_eq!(
        writes_since(&t.attio, before),
        Vec::<(String, String)>::new()
    );
}

#[tokio::test]
async fn workspace_links_added_and_removed_and_a_renamed_workspace_are_drift_and_links_to_other_workspaces_stay()
 {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(4)).await;
    api.set_memberships(vec![
        clerk_listed_membership(0, "org_acme", "Acme", "org:admin"),
        clerk_listed_membership(1, "org_acme", "Acme", "org:member"),
        clerk_listed_membership(1, "org_beta", "Beta", "org:member"),
        clerk_listed_membership(2, "org_beta", "Beta", "org:member"),
    ]);
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    assert_eq!(sorted_links(&t, 1), ["org_acme", "org_beta"]);
    // A workspace of another source, linked to user 0 by someone else.
    link_other_workspace(&t, "user_backfill_0000").await;

    // User 0 joins Gamma; user 1 leaves Beta (which user 2 keeps); Acme is renamed.
    let api = ClerkApi::start(users(4)).await;
    api.set_memberships(vec![
        clerk_listed_membership(0, "org_acme", "Acme Inc", "org:admin"),
        clerk_listed_membership(0, "org_gamma", "Gamma", "org:member"),
        clerk_listed_membership(1, "org_acme", "Acme Inc", "org:member"),
        clerk_listed_membership(2, "org_beta", "Beta", "org:member"),
    ]);
    let check = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(
        check.of("differs"),
        [
            (
                "user_backfill_0000".into(),
                vec!["workspace".to_string(), "workspaces.name".to_string()]
            ),
            ("user_backfill_0001".into(), vec!["workspace".to_string()]),
        ]
    );
    assert_eq!(classes(&check.counts), (2, 0, 2, 0));

    let before = t.attio.request_count();
    let repair = reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    assert!(repair.failed.is_empty(), "{:?}", repair.failed);
    // Acme asserted with its new name once; Gamma asserted and appended to user 0; user 1's
    // list overwritten without Beta.
    assert_eq!(
        sorted(writes_since(&t.attio, before)),
        sorted(vec![
            pair("PUT", "workspaces"),
            pair("PUT", "workspaces"),
            pair("PATCH", "users"),
            pair("PUT", "users")
        ])
    );
    assert_eq!(workspace_names(&t.attio), ["Acme Inc", "Beta", "Gamma"]);
    assert_eq!(
        sorted_links(&t, 0),
        ["org_acme", "org_gamma", "other_source_ws"]
    );
    assert_eq!(sorted_links(&t, 1), ["org_acme"]);
    assert_eq!(sorted_links(&t, 2), ["org_beta"]);

    let again = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(classes(&again.counts), (4, 0, 0, 0), "{:?}", again.found);
}

fn sorted_links(t: &TestApp, n: usize) -> Vec<String> {
    let mut links = linked_workspaces(&t.attio, &format!("user_backfill_{n:04}"));
    links.sort();
    links
}

/// Links `user_id` to a workspace no Clerk organisation names, through Attio's API.
async fn link_other_workspace(t: &TestApp, user_id: &str) {
    let http = reqwest::Client::new();
    let put = http
        .put(format!(
            "{}/v2/objects/workspaces/records?matching_attribute=workspace_id",
            t.attio.url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"data": {"values": {"workspace_id": "other_source_ws"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let workspace: Value = put.json().await.unwrap();
    let user = t
        .attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some(user_id))
        .unwrap();
    let patch = http
        .patch(format!(
            "{}/v2/objects/users/records/{}",
            t.attio.url(),
            user.id
        ))
        .bearer_auth(TOKEN)
        .json(
            &json!({"data": {"values": {"workspace": [{"target_object": "workspaces",
            "target_record_id": workspace["data"]["id"]["record_id"]}]}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
}

#[tokio::test]
async fn orphans_are_found_after_a_complete_listing_and_deleted_only_as_the_guard_allows() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(12)).await;
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    let people = t.attio.records("people").len();
    // Users 3 and 9 were deleted at the provider while the function was not deployed.
    let listed: Vec<Value> = users(12)
        .into_iter()
        .enumerate()
        .filter(|(n, _)| ![3, 9].contains(n))
        .map(|(_, u)| u)
        .collect();
    let api = ClerkApi::start(listed).await;
    let orphans = vec![
        ("user_backfill_0003".to_string(), Vec::<String>::new()),
        ("user_backfill_0009".to_string(), Vec::new()),
    ];

    // Reported, not deleted, without --delete-orphans.
    let run = reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    assert_eq!(classes(&run.counts), (10, 0, 0, 2));
    assert_eq!(run.of("orphan"), orphans);
    assert_eq!(t.attio.records("users").len(), 12);

    // More orphans than --max-deletes: refused, nothing deleted.
    let over = Reconcile {
        delete_orphans: true,
        max_deletes: Some(1),
    };
    let refused = reconcile(&t, &api, Mode::Write, Some(over)).await;
    match refused {
        Err(BackfillError::Refused(refusal, done)) => {
            assert!(
                refusal.to_string().contains("over --max-deletes 1"),
                "{refusal}"
            );
            assert_eq!((done.counts.orphans, done.counts.deleted), (2, 0));
        }
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.counts)),
    }
    assert_eq!(t.attio.records("users").len(), 12);

    // As many as the limit (the default: the larger of 10 and 1 %): deleted, people kept.
    let delete = Reconcile {
        delete_orphans: true,
        max_deletes: None,
    };
    let run = reconcile(&t, &api, Mode::Write, Some(delete))
        .await
        .unwrap();
    assert_eq!((run.counts.orphans, run.counts.deleted), (2, 2));
    assert_eq!(run.of("deleted"), orphans);
    assert_eq!(t.attio.records("users").len(), 10);
    assert_eq!(t.attio.records("people").len(), people, "their people stay");
    let check = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(classes(&check.counts), (10, 0, 0, 0));
}

#[tokio::test]
async fn no_orphan_is_deleted_when_the_listing_is_empty_or_stops_before_its_end() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(12)).await;
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    let delete = Some(Reconcile {
        delete_orphans: true,
        max_deletes: Some(1000),
    });

    // A provider listing nobody: a wrong key or tenant, more likely than everyone gone.
    let empty = ClerkApi::start(Vec::new()).await;
    match reconcile(&t, &empty, Mode::Write, delete).await {
        Err(BackfillError::Refused(refusal, done)) => {
            assert!(refusal.to_string().contains("no users at all"), "{refusal}");
            assert_eq!((done.counts.orphans, done.counts.deleted), (12, 0));
        }
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.counts)),
    }
    assert_eq!(t.attio.records("users").len(), 12);

    // A listing that fails after its first page (Clerk keeps answering 429): the run stops
    // with the provider's error, and the users it did not reach are not orphans.
    let failing = ClerkApi::start(users(12)).await;
    failing.fail_after_first_page();
    let stopped = reconcile(&t, &failing, Mode::Write, delete).await;
    assert!(
        matches!(stopped, Err(BackfillError::Directory(_))),
        "{:?}",
        stopped.map(|r| r.counts)
    );
    assert_eq!(t.attio.records("users").len(), 12);
}

/// Runs `attio-user-sync-backfill` as a person would, against the stand-ins; (exit code,
/// stdout, stderr).
async fn run_binary(t: &TestApp, api: &ClerkApi, args: &[&str]) -> (i32, String, String) {
    let mut vars: Vec<(&str, String)> = env().into_iter().map(|(k, v)| (k, v.to_owned())).collect();
    vars.extend([
        ("ATTIO_SYNC_SECRET_ID", t.secret_id.clone()),
        ("ATTIO_API_URL", t.attio.url()),
        ("CLERK_API_URL", api.url()),
        ("CLERK_SECRET_KEY", CLERK_SECRET_KEY.to_owned()),
    ]);
    run_backfill_binary(args, &vars).await
}

#[tokio::test]
async fn check_exits_0_when_attio_equals_the_provider_and_3_with_the_drift_reported() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(6)).await;
    let (code, out, err) = run_binary(&t, &api, &["clerk"]).await;
    assert_eq!(code, 0, "{out}{err}");

    // An interrupted run's checkpoint does not stop a check, which leaves it for --resume.
    let checkpoint = std::env::temp_dir().join(format!(
        "reconcile-interrupted-{:016x}.json",
        fastrand::u64(..)
    ));
    Checkpoint::start("clerk").save(&checkpoint).unwrap();
    let (code, out, err) = run_binary(
        &t,
        &api,
        &[
            "clerk",
            "--check",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        checkpoint.exists(),
        "the interrupted run's checkpoint stays"
    );
    let _ = std::fs::remove_file(&checkpoint);
    assert!(
        out.contains(
            "clerk: read 6: same 6, missing 0, differs 0, orphans 0; checked, nothing written"
        ),
        "{out}"
    );

    let mut changed = users(6);
    changed[2]["public_metadata"]["plan"] = json!("Free");
    changed[4]["last_name"] = json!("Renamed");
    changed.remove(5);
    changed.push(user(6));
    let api = ClerkApi::start(changed).await;
    let report =
        std::env::temp_dir().join(format!("reconcile-report-{:016x}.jsonl", fastrand::u64(..)));
    let before = t.attio.request_count();
    let (code, out, err) = run_binary(
        &t,
        &api,
        &["clerk", "--check", "--report", report.to_str().unwrap()],
    )
    .await;

    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        writes_since(&t.attio, before),
        Vec::<(String, String)>::new()
    );
    assert!(
        out.contains("clerk: read 6: same 3, missing 1, differs 2, orphans 1"),
        "{out}"
    );
    assert!(
        out.contains("differs by attribute: name 1, plan 1"),
        "{out}"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.sort_by_key(|l| l["user_id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        lines,
        [
            json!({"user_id": "user_backfill_0002", "class": "differs", "attributes": ["plan"]}),
            json!({"user_id": "user_backfill_0004", "class": "differs", "attributes": ["name"]}),
            json!({"user_id": "user_backfill_0005", "class": "orphan", "attributes": []}),
            json!({"user_id": "user_backfill_0006", "class": "missing", "attributes": []}),
        ]
    );
    assert!(!text.contains("@"), "no address in the report");
    let _ = std::fs::remove_file(&report);
}

#[tokio::test]
async fn a_check_reading_many_pages_at_once_keeps_attio_reads_under_100_a_second() {
    use attio_user_sync::App;
    use attio_user_sync::pace::WriteLimiter;
    use attio_user_sync::reconcile::snapshot::Reading;
    let t = TestApp::spawn().await;
    // 4,000 users in Attio, 10 of them still at the provider. Read in pages of 20, 16 at once
    // (as a fast Attio answers 500-record pages): 200 query pages, then 200 more for the
    // orphans' ids, as fast as the backfill binary's own app lets them go.
    let seeded = (0..4_000).map(|n| {
        json!({"user_id": [format!("user_backfill_{n:04}")],
               "primary_email_address": [format!("seeded.{n}@example.com")]})
    });
    t.attio.seed("users", seeded);
    t.attio.limit_rates(25, 100);
    let api = ClerkApi::start(users(10)).await;
    let vars = [
        ("ATTIO_SYNC_SECRET_ID", t.secret_id.clone()),
        ("ATTIO_API_URL", t.attio.url()),
    ];
    let config = attio_user_sync::config::Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let limiter = Arc::new(WriteLimiter::new(24.5));
    let app = Arc::new(App::from_config_paced(config, Some(limiter)).unwrap());
    let options = Options {
        mode: Mode::Check,
        concurrency: 4,
        reconcile: None,
        reading: Reading {
            page: 20,
            at_once: 16,
        },
    };
    let path = std::env::temp_dir().join("unused-by-a-check.json");

    let done = backfill::run(
        app,
        &clerk(&api),
        Checkpoint::start("clerk"),
        &path,
        &options,
        |_| {},
        |_| {},
    )
    .await
    .unwrap();

    // The ten listed differ from the seeded records (address, no person).
    assert_eq!(classes(&done.counts), (0, 0, 10, 3_990));
    let requests = t.attio.requests();
    let queries = requests.iter().filter(|r| r.method == "POST").count();
    assert!(queries >= 400, "{queries} queries");
    let refused = requests.iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 0, "reads over Attio's 100 a second were refused");
}

/// A comparing `--enqueue` run of `api`'s users into `queues`, which writes nothing to
/// Attio itself.
async fn enqueue(t: &TestApp, api: &ClerkApi, queues: &crate::support::queue::Queues) -> Run {
    let queue = queues.env();
    let queue: Vec<(&str, &str)> = queue.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let before = t.attio.request_count();
    let done = reconcile_with(t, &clerk(api), Mode::Enqueue, compare(), &queue)
        .await
        .unwrap();
    assert_eq!(
        writes_since(&t.attio, before),
        Vec::<(String, String)>::new(),
        "nothing written from here"
    );
    done
}

#[tokio::test]
async fn enqueue_sends_only_the_users_that_are_missing_or_differ() {
    use crate::support::queue::Queues;
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(8)).await;
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    let queues = Queues::create(std::time::Duration::from_secs(1), 3).await;
    let mut changed = users(9);
    changed[3]["public_metadata"]["plan"] = json!("Free");
    let api = ClerkApi::start(changed).await;

    let done = enqueue(&t, &api, &queues).await;

    assert_eq!(classes(&done.counts), (7, 1, 1, 0));
    assert_eq!(done.counts.queued, 2);
    assert_eq!(
        queues.take_upserted_user_ids().await,
        ["user_backfill_0003", "user_backfill_0008"]
    );
}

#[tokio::test]
async fn enqueue_queues_a_left_workspace_event_for_a_stale_link_and_the_worker_unlinks_only_it() {
    use crate::support::queue::Queues;
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(3)).await;
    api.set_memberships(vec![
        clerk_listed_membership(0, "org_acme", "Acme", "org:member"),
        clerk_listed_membership(1, "org_acme", "Acme", "org:member"),
        clerk_listed_membership(1, "org_beta", "Beta", "org:member"),
        clerk_listed_membership(2, "org_beta", "Beta", "org:member"),
    ]);
    reconcile(&t, &api, Mode::Write, compare()).await.unwrap();
    link_other_workspace(&t, "user_backfill_0001").await;
    assert_eq!(
        sorted_links(&t, 1),
        ["org_acme", "org_beta", "other_source_ws"]
    );
    // User 1 left Beta while the function was not deployed (user 2 is still in it).
    let api = ClerkApi::start(users(3)).await;
    api.set_memberships(vec![
        clerk_listed_membership(0, "org_acme", "Acme", "org:member"),
        clerk_listed_membership(1, "org_acme", "Acme", "org:member"),
        clerk_listed_membership(2, "org_beta", "Beta", "org:member"),
    ]);
    let queues = Queues::create(std::time::Duration::from_secs(1), 3).await;

    let done = enqueue(&t, &api, &queues).await;

    assert_eq!(classes(&done.counts), (2, 0, 1, 0));
    assert_eq!(done.counts.queued, 1);
    assert_eq!(queues.depth().await, 1);

    // The worker unlinks Beta alone: Acme and the other source's workspace stay.
    let queue = queues.env();
    let mut vars = env();
    vars.extend(queue.iter().map(|(k, v)| (*k, v.as_str())));
    let worker = worker_for(&t.secret_id, &t.attio.url(), &vars).await;
    queues
        .drain(&worker, 10, std::time::Duration::from_secs(30))
        .await;
    assert!(queues.dead_letters().await.is_empty());
    assert_eq!(sorted_links(&t, 1), ["org_acme", "other_source_ws"]);
    assert_eq!(sorted_links(&t, 0), ["org_acme"]);
    assert_eq!(sorted_links(&t, 2), ["org_beta"]);
    let again = reconcile(&t, &api, Mode::Check, None).await.unwrap();
    assert_eq!(classes(&again.counts), (3, 0, 0, 0), "{:?}", again.found);
}

#[tokio::test]
async fn a_link_to_an_organisation_its_last_member_left_is_stale_where_the_provider_lists_organisations()
 {
    use crate::support::auth0_api::{Auth0Api, auth0_listed_user};
    let t = TestApp::spawn().await;
    let api = Auth0Api::start((0..3).map(auth0_listed_user).collect()).await;
    let directory = || api.directory(100);
    api.set_organisations(&[("org_solo", "solo", &[1]), ("org_team", "team", &[0, 1, 2])]);
    reconcile_from(&t, &directory(), Mode::Write, compare())
        .await
        .unwrap();
    let links = |user_id: &str| {
        let mut links = linked_workspaces(&t.attio, user_id);
        links.sort();
        links
    };
    assert_eq!(links("auth0|backfill000001"), ["org_solo", "org_team"]);

    // User 1, Solo's only member, left it: Auth0 still lists Solo, with no members.
    api.set_organisations(&[("org_solo", "solo", &[]), ("org_team", "team", &[0, 1, 2])]);
    let check = reconcile_from(&t, &directory(), Mode::Check, None)
        .await
        .unwrap();
    assert_eq!(
        check.of("differs"),
        [("auth0|backfill000001".into(), vec!["workspace".to_string()])]
    );
    assert_eq!(classes(&check.counts), (2, 0, 1, 0));

    let before = t.attio.request_count();
    let repair = reconcile_from(&t, &directory(), Mode::Write, compare())
        .await
        .unwrap();
    assert!(repair.failed.is_empty(), "{:?}", repair.failed);
    assert_eq!(writes_since(&t.attio, before), [pair("PUT", "users")]);
    assert_eq!(links("auth0|backfill000001"), ["org_team"]);
    assert_eq!(links("auth0|backfill000000"), ["org_team"]);
    let again = reconcile_from(&t, &directory(), Mode::Check, None)
        .await
        .unwrap();
    assert_eq!(classes(&again.counts), (3, 0, 0, 0), "{:?}", again.found);
}

#[tokio::test]
async fn a_workos_membership_deactivated_in_an_organisation_left_without_members_is_unlinked() {
    use crate::support::workos_api::{
        WORKOS_API_KEY, WorkOsApi, workos_listed_membership, workos_listed_user,
    };
    use attio_user_sync::providers::workos::directory::WorkOsDirectory;
    let t = TestApp::spawn().await;
    let memberships = |solo_status: &str| {
        let mut solo = workos_listed_membership(1, "org_01SOLO", "admin");
        solo["status"] = solo_status.into();
        let mut all: Vec<Value> = (0..3)
            .map(|n| workos_listed_membership(n, "org_01TEAM", "member"))
            .collect();
        all.push(solo);
        all
    };
    let users = || (0..3).map(workos_listed_user).collect::<Vec<_>>();
    let directory = |api: &WorkOsApi| {
        WorkOsDirectory::new(
            reqwest::Client::new(),
            &api.url(),
            WORKOS_API_KEY.into(),
            100,
        )
    };
    let api = WorkOsApi::start_with(users(), memberships("active")).await;
    reconcile_from(&t, &directory(&api), Mode::Write, compare())
        .await
        .unwrap();
    let links = |user_id: &str| {
        let mut links = linked_workspaces(&t.attio, user_id);
        links.sort();
        links
    };
    assert_eq!(links("user_01WORKOS000001"), ["org_01SOLO", "org_01TEAM"]);

    // Solo's only membership was deactivated: WorkOS still lists Solo.
    let api = WorkOsApi::start_with(users(), memberships("inactive")).await;
    let before = t.attio.request_count();
    let repair = reconcile_from(&t, &directory(&api), Mode::Write, compare())
        .await
        .unwrap();

    assert_eq!(
        repair.of("differs"),
        [("user_01WORKOS000001".into(), vec!["workspace".to_string()])]
    );
    assert_eq!(writes_since(&t.attio, before), [pair("PUT", "users")]);
    assert_eq!(links("user_01WORKOS000001"), ["org_01TEAM"]);
}

#[tokio::test]
async fn the_binary_says_why_it_deleted_no_orphan_and_exits_1() {
    let t = TestApp::spawn().await;
    let api = ClerkApi::start(users(5)).await;
    let (code, out, err) = run_binary(&t, &api, &["clerk"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let api = ClerkApi::start(users(3)).await;
    let report = std::env::temp_dir().join(format!(
        "reconcile-refused-{:016x}.jsonl",
        fastrand::u64(..)
    ));

    let (code, out, err) = run_binary(
        &t,
        &api,
        &[
            "clerk",
            "--delete-orphans",
            "--max-deletes",
            "1",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .await;

    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("orphans 2") && out.contains("deleted 0"),
        "{out}"
    );
    assert!(
        err.contains("orphans not deleted") && err.contains("over --max-deletes 1"),
        "{err}"
    );
    assert_eq!(t.attio.records("users").len(), 5);
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.matches(r#""class":"orphan""#).count(), 2, "{text}");
    let _ = std::fs::remove_file(&report);

    // Within the limit, the same run deletes them.
    let (code, out, err) = run_binary(&t, &api, &["clerk", "--delete-orphans"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("orphans 2") && out.contains("deleted 2"),
        "{out}"
    );
    assert_eq!(t.attio.records("users").len(), 3);
}
