//! Load: many signed events from many users, each user's updates delivered out of order and
//! some redelivered, through the function against a stand-in that enforces Attio's 25
//! writes/s, with the sender retrying every non-2xx on a compressed Svix schedule. The
//! function runs with ATTIO_USER_EVENT_TIME_ATTRIBUTE, so late older updates are not applied.
//! Checks nothing is lost, duplicated or stale.
//!
//! The short run is part of the suite. The long one:
//! `./scripts/load-test.sh` (2,000 events from 300 users; `LOAD_EVENTS`, `LOAD_USERS` to change).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use attio_user_sync::App;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::support::*;

/// Svix's retry schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), compressed
/// to milliseconds-to-seconds so a run ends in minutes.
const RETRY_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(3),
    Duration::from_secs(3),
];
/// Lambda containers answering at once.
const CONTAINERS: usize = 4;

#[derive(Debug, Default)]
struct Report {
    events: u32,
    deliveries: AtomicU32,
    ok: AtomicU32,
    outdated: AtomicU32,
    rate_limited: AtomicU32,
    other_failures: AtomicU32,
    lost: AtomicU32,
}

async fn run_load(events: usize, users: usize) {
    assert!(
        users > 0 && events >= users,
        "need at least one event per user"
    );
    let secret = default_secret();
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    let secret_id = create_secret(&secret).await;
    let mut containers = Vec::new();
    for _ in 0..CONTAINERS {
        let ordered = [("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at")];
        containers.push(Arc::new(app_for(&secret_id, &attio.url(), &ordered).await));
    }

    // Each user: created, then updates, shuffled; one event in ten is redelivered after it landed.
    let per_user = events / users;
    let mut plans: Vec<Vec<u32>> = (0..users).map(|_| (0..per_user as u32).collect()).collect();
    for extra in 0..(events - per_user * users) {
        let user = &mut plans[extra % users];
        user.push(user.len() as u32);
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for plan in &mut plans {
        rng.shuffle(plan);
        let mut with_duplicates = Vec::new();
        for &version in plan.iter() {
            with_duplicates.push(version);
            if rng.u8(..10) == 0 {
                with_duplicates.push(version);
            }
        }
        *plan = with_duplicates;
    }
    let report = Arc::new(Report {
        events: plans.iter().map(|p| p.len() as u32).sum(),
        ..Report::default()
    });
    let latest: Vec<u32> = plans
        .iter()
        .map(|p| *p.iter().max().expect("non-empty"))
        .collect();

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(CONTAINERS));
    let mut senders = Vec::new();
    // Users are shuffled so deliveries of different users interleave in no particular order;
    // one user's events go one after another (never two of one user at once), in shuffled order.
    let mut order: Vec<usize> = (0..users).collect();
    rng.shuffle(&mut order);
    for user in order {
        let plan = plans[user].clone();
        let app = containers[user % CONTAINERS].clone();
        let (permits, report) = (permits.clone(), report.clone());
        senders.push(tokio::spawn(async move {
            for version in plan {
                deliver(&app, user, version, &permits, &report).await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender task");
    }
    let elapsed = started.elapsed();

    let users_in_attio = attio.records("users");
    let people_in_attio = attio.records("people");
    let mut missing = 0;
    let mut duplicated = 0;
    let mut stale = 0;
    for (user, &version) in latest.iter().enumerate() {
        let id = format!("user_load_{user}");
        let held: Vec<_> = users_in_attio
            .iter()
            .filter(|r| r.text("user_id") == Some(id.as_str()))
            .collect();
        match held.as_slice() {
            [] => missing += 1,
            [record] => {
                let person = people_in_attio
                    .iter()
                    .find(|p| Some(p.id.as_str()) == record.text("person"));
                let last_name = person
                    .and_then(|p| p.first("name"))
                    .map(|n| n["last_name"].clone());
                if last_name != Some(Value::from(format!("v{version}"))) {
                    stale += 1;
                }
            }
            _ => duplicated += 1,
        }
    }
    let attio_429s = attio.requests().iter().filter(|r| r.status == 429).count();
    println!(
        "load: {} events from {users} users in {:.1} s: {} deliveries, {} answered 2xx ({} of them late and left unapplied), {} answered 503 rate-limited, \
         {} other non-2xx, lost {}, Attio answered 429 {attio_429s} times; in Attio: {} users, {} people, \
         missing {missing}, duplicated {duplicated}, stale {stale}",
        report.events,
        elapsed.as_secs_f64(),
        report.deliveries.load(Ordering::SeqCst),
        report.ok.load(Ordering::SeqCst),
        report.outdated.load(Ordering::SeqCst),
        report.rate_limited.load(Ordering::SeqCst),
        report.other_failures.load(Ordering::SeqCst),
        report.lost.load(Ordering::SeqCst),
        users_in_attio.len(),
        people_in_attio.len(),
    );
    assert_eq!(report.lost.load(Ordering::SeqCst), 0, "events lost");
    assert_eq!(
        report.other_failures.load(Ordering::SeqCst),
        0,
        "non-2xx answers other than rate limiting"
    );
    assert_eq!((missing, duplicated, stale), (0, 0, 0));
    assert_eq!(
        (users_in_attio.len(), people_in_attio.len()),
        (users, users)
    );
    assert!(
        attio_429s > 0,
        "the run never reached Attio's rate limit, so it proved nothing about it"
    );
}

/// Sends one event until it is acknowledged or the retry schedule runs out.
async fn deliver(app: &App, user: usize, version: u32, permits: &Semaphore, report: &Report) {
    for wait in RETRY_SCHEDULE {
        tokio::time::sleep(wait).await;
        let mut body = clerk_user(
            if version == 0 {
                "user.created"
            } else {
                "user.updated"
            },
            &format!("user_load_{user}"),
            &format!("load.user.{user}@example.com"),
            "Load",
            &format!("v{version}"),
        );
        // Clerk's updated_at orders one user's changes: version N happened N seconds in.
        body["data"]["updated_at"] =
            serde_json::json!(1_795_770_000_000_i64 + i64::from(version) * 1000);
        let event = with_body("clerk-user-created.json", &body, CLERK_SECRET);
        let request = lambda_http::request::from_str(&event.to_string()).expect("event parses");
        let response = {
            let _container = permits.acquire().await.expect("semaphore open");
            app.handle(request).await
        };
        report.deliveries.fetch_add(1, Ordering::SeqCst);
        match response.status().as_u16() {
            200..=299 => {
                report.ok.fetch_add(1, Ordering::SeqCst);
                let body: Value =
                    serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
                if body["status"] == "outdated" {
                    report.outdated.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            503 => report.rate_limited.fetch_add(1, Ordering::SeqCst),
            _ => report.other_failures.fetch_add(1, Ordering::SeqCst),
        };
    }
    report.lost.fetch_add(1, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_run_loses_nothing_under_the_rate_limit() {
    run_load(100, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with ./scripts/load-test.sh"]
async fn long_load_run() {
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    run_load(var("LOAD_EVENTS", 2000), var("LOAD_USERS", 300)).await;
}
