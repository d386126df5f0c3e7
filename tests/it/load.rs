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
use std::time::Instant;

use attio_user_sync::App;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::support::*;

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
    let (missing, duplicated, stale) = missing_duplicated_stale(&attio, "user_load_", &latest);
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
    for wait in SVIX_RETRIES_COMPRESSED {
        tokio::time::sleep(wait).await;
        let event = versioned_clerk_event("user_load_", user, version);
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
