//! Bulk writes over a real network (issue 19): Attio's round trip from a Lambda region is about
//! 150 ms, which loopback hides. With the Attio stand-in answering after each of
//! `BENCH_LATENCY_MS` (default `0,150`) and enforcing Attio's 25 writes and 100 reads a second,
//! this measures:
//!
//! - the queue: `BENCH_QUEUE_USERS` (default 600) new users queued in moto's FIFO queue, every
//!   fourth with a later change of its name, drained by each of `BENCH_WORKERS` (default: the
//!   template's `WorkerMaximumConcurrency`) workers polling batches of 10, as Lambda's event
//!   source does, each paced at its share of the limit. Checked, not assumed: every user
//!   written, each event applied once and one user's in the order queued, nothing
//!   dead-lettered (the bench stops with the reason otherwise);
//! - the webhook's batches: an Okta delivery of 60 new users applied within Okta's 2.5 s
//!   budget, as one attempt of the webhook makes it.
//!
//! Prints writes a second as a share of 25 and the 429s met. Needs moto's Secrets Manager and
//! SQS endpoints exported (`./scripts/bench.sh` does it): `cargo bench --bench latency`.

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;
#[path = "../tests/it/support/queue.rs"]
#[allow(dead_code)]
mod queue;
// Shared with the process bench, which uses the rest.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use attio_stand_in::AttioStandIn;
use attio_user_sync::attio::AttioBudget;
use attio_user_sync::domain::{EmailAddress, UserChange, UserDetails, UserEvent, UserProfile};
use attio_user_sync::mapping::AttributeMap;
use attio_user_sync::queue::{DeliveryIdentity, Outgoing, SyncQueue};
use attio_user_sync::worker::Worker;
use attio_user_sync::{App, Config};
use support::{TOKEN, create_bench_secret, env_number};

/// A comma-separated list of numbers from `name`, else `default`.
fn env_numbers(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// A new user's creation, as a provider's parser makes it.
fn new_user(prefix: &str, n: u64) -> UserEvent {
    user_event(prefix, n, UserChange::Created, "")
}

/// A user's creation or change; `renamed` is added to its last name.
fn user_event(prefix: &str, n: u64, change: UserChange, renamed: &str) -> UserEvent {
    UserEvent::upserted(
        change,
        UserProfile {
            user_id: format!("{prefix}_{n:05}"),
            email: EmailAddress::parse(&format!("{prefix}.{n}@example.com")).expect("address"),
            first_name: Some("Bench".into()),
            last_name: Some(format!("User {n}{renamed}")),
            created_at: None,
            details: UserDetails::raw("clerk", serde_json::json!({})),
        },
    )
}

/// The app as a function builds it, from `vars`.
fn app(vars: &[(&str, String)]) -> App {
    let config = Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .expect("configuration");
    App::from_config(config).expect("app")
}

/// (writes, 429s) Attio received.
fn writes_and_refusals(attio: &AttioStandIn) -> (usize, usize) {
    let requests = attio.requests();
    let writes = requests
        .iter()
        .filter(|r| r.method != "GET" && r.method != "POST" && r.status == 200)
        .count();
    (writes, requests.iter().filter(|r| r.status == 429).count())
}

/// The template's `WorkerMaximumConcurrency` default: the event source's workers at once.
const TEMPLATE_WORKERS: u64 = 2;

#[tokio::main]
async fn main() {
    let latencies = env_numbers("BENCH_LATENCY_MS", &[0, 150]);
    let users = env_number("BENCH_QUEUE_USERS", 600);
    let workers = env_numbers("BENCH_WORKERS", &[TEMPLATE_WORKERS]);
    let secret_id = create_bench_secret().await;
    println!("## Over a network: Attio enforcing 25 writes/s, answering after each latency");
    println!("| latency | scenario | figure |");
    println!("| --- | --- | --- |");
    for latency in latencies {
        let latency = Duration::from_millis(latency);
        for workers in &workers {
            drain(latency, users, *workers, &secret_id).await;
        }
        okta_batch(latency, &secret_id).await;
    }
}

/// `users` new users (every fourth renamed later) queued and drained by `workers` workers.
async fn drain(latency: Duration, users: u64, workers: u64, secret_id: &str) {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(latency);
    let queues = queue::Queues::create(Duration::from_secs(1), 10).await;
    let mut vars = vec![
        ("ATTIO_SYNC_SECRET_ID", secret_id.to_owned()),
        ("ATTIO_API_URL", attio.url()),
        ("ATTIO_WRITE_SHARES", workers.to_string()),
    ];
    vars.extend(queues.env());
    let sqs = attio_user_sync::queue::client_from_lookup(reqwest::Client::new(), |n| {
        std::env::var(n).ok()
    });
    let sending = SyncQueue::new(sqs, queues.url.clone());
    let created: Vec<UserEvent> = (0..users).map(|n| new_user("queued", n)).collect();
    let renamed: Vec<UserEvent> = (0..users)
        .step_by(4)
        .map(|n| user_event("queued", n, UserChange::Updated, " renamed"))
        .collect();
    for (delivery, (event_type, events)) in [("user.created", &created), ("user.updated", &renamed)]
        .into_iter()
        .enumerate()
    {
        for (i, chunk) in events.chunks(10).enumerate() {
            let body = [delivery as u8, i as u8, (i >> 8) as u8];
            let outgoing = Outgoing::new(
                "clerk",
                event_type,
                DeliveryIdentity {
                    id: Some("bench"),
                    body: &body,
                },
                i * 10,
                chunk,
                &AttributeMap::default(),
            );
            sending.send(&outgoing).await.expect("queue the users");
        }
    }
    // Each worker is its own container: its own app, limiter and connections.
    let pool: Vec<Arc<Worker>> = (0..workers)
        .map(|_| Arc::new(Worker::from_app(app(&vars))))
        .collect();
    let queues = Arc::new(queues);
    let started = Instant::now();
    let mut pollers = tokio::task::JoinSet::new();
    for worker in pool {
        let queues = queues.clone();
        // The event source's poller receives the next batch while the worker applies one
        // (SQS keeps a group in flight from being handed out twice), so moto's receive, slower
        // than SQS's, is not counted as the worker's time.
        pollers.spawn(async move {
            let limit = Instant::now() + Duration::from_secs(600);
            let mut next = queues.take_batch(10).await;
            while Instant::now() < limit {
                if next.is_empty() {
                    if queues.depth().await == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    next = queues.take_batch(10).await;
                    continue;
                }
                let batch = std::mem::take(&mut next);
                (_, next) = tokio::join!(queues.hand_over(&worker, batch), queues.take_batch(10));
            }
        });
    }
    pollers.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let (writes, refused) = writes_and_refusals(&attio);
    let synced = attio.records("users").len();
    check_each_event_applied_once_in_order(&attio, users);
    let dead = queues.dead_letters().await.len();
    assert_eq!(synced as u64, users, "every queued user reaches Attio");
    assert_eq!(dead, 0, "nothing is dead-lettered");
    let rate = writes as f64 / elapsed;
    println!(
        "| {} ms | queue: {users} new users + {} renames, {workers} workers, batches of 10 | {writes} writes in {elapsed:.1} s = {rate:.2} writes/s = {:.1} % of 25; {refused} 429s; each event applied once, in order; 0 dead letters; projected drain of 10,000 / 100,000 new users: {:.0} min / {:.1} h |",
        latency.as_millis(),
        renamed.len(),
        rate / 25.0 * 100.0,
        // A new user is two writes: the projection is by writes, at the rate measured.
        10_000.0 * 2.0 / rate / 60.0,
        100_000.0 * 2.0 / rate / 3600.0,
    );
}

/// Every user's person was asserted once per event queued for it, in the order queued: its
/// creation, then (every fourth) its rename; the stand-in's request log says so, not the queue.
fn check_each_event_applied_once_in_order(attio: &AttioStandIn, users: u64) {
    let mut seen: std::collections::HashMap<String, Vec<bool>> = Default::default();
    for r in attio.requests() {
        if r.method != "PUT" || r.object != "people" || r.status != 200 {
            continue;
        }
        let body = r.body.to_string();
        let Some(at) = body.find("queued.") else {
            continue;
        };
        let address: String = body[at..].chars().take_while(|c| *c != '"').collect();
        seen.entry(address)
            .or_default()
            .push(body.contains(" renamed"));
    }
    for n in 0..users {
        let address = format!("queued.{n}@example.com");
        let expected = if n % 4 == 0 {
            vec![false, true]
        } else {
            vec![false]
        };
        assert_eq!(
            seen.get(&address),
            Some(&expected),
            "user {n}: its person written once per event, in the order queued (false: created, true: renamed)"
        );
    }
}

/// An Okta delivery of 60 new users, one attempt within Okta's 2.5 s.
async fn okta_batch(latency: Duration, secret_id: &str) {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(latency);
    let vars = [
        ("ATTIO_SYNC_SECRET_ID", secret_id.to_owned()),
        ("ATTIO_API_URL", attio.url()),
    ];
    let app = app(&vars);
    let secrets = app.secrets().await.expect("the secret");
    let batch: Vec<UserEvent> = (0..60).map(|n| new_user("okta", n)).collect();
    let started = Instant::now();
    let mut budget = AttioBudget::from_now(Duration::from_millis(2500));
    let results = app.apply_by_user(&batch, None, secrets, &mut budget).await;
    let elapsed = started.elapsed().as_secs_f64();
    let applied = results.iter().filter(|r| matches!(r, Some(Ok(_)))).count();
    let (writes, refused) = writes_and_refusals(&attio);
    println!(
        "| {} ms | Okta batch of 60 new users, one 2.5 s attempt | {applied} applied, {writes} writes in {elapsed:.2} s; {refused} 429s |",
        latency.as_millis()
    );
}
