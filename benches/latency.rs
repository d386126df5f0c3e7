//! Bulk writes over a real network (issue 19): Attio's round trip from a Lambda region is about
//! 150 ms, which loopback hides. With the Attio stand-in answering after `BENCH_LATENCY_MS`
//! (default 150) and enforcing Attio's 25 writes and 100 reads a second, this measures:
//!
//! - the queue: `BENCH_QUEUE_USERS` (default 600) new users queued in moto's FIFO queue,
//!   drained by `BENCH_WORKERS` (default 2, the template's `WorkerMaximumConcurrency`) workers
//!   polling batches of 10, as Lambda's event source does, each paced at its share of the limit;
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
use support::{TOKEN, create_bench_secret};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A new user's creation, as a provider's parser makes it.
fn new_user(prefix: &str, n: u64) -> UserEvent {
    UserEvent::upserted(
        UserChange::Created,
        UserProfile {
            user_id: format!("{prefix}_{n:05}"),
            email: EmailAddress::parse(&format!("{prefix}.{n}@example.com")).expect("address"),
            first_name: Some("Bench".into()),
            last_name: Some(format!("User {n}")),
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

#[tokio::main]
async fn main() {
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 150));
    let users = env_number("BENCH_QUEUE_USERS", 600);
    let workers = env_number("BENCH_WORKERS", 2);
    let secret_id = create_bench_secret().await;

    println!(
        "## Over a network: Attio answering after {} ms, enforcing 25 writes/s",
        latency.as_millis()
    );
    println!("| scenario | figure |");
    println!("| --- | --- |");

    // The queue drained by `workers` workers.
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(latency);
    let queues = queue::Queues::create(Duration::from_secs(1), 10).await;
    let mut vars = vec![
        ("ATTIO_SYNC_SECRET_ID", secret_id.clone()),
        ("ATTIO_API_URL", attio.url()),
        ("ATTIO_WRITE_SHARES", workers.to_string()),
    ];
    vars.extend(queues.env());
    let sqs = attio_user_sync::queue::client_from_lookup(reqwest::Client::new(), |n| {
        std::env::var(n).ok()
    });
    let sending = SyncQueue::new(sqs, queues.url.clone());
    let events: Vec<UserEvent> = (0..users).map(|n| new_user("queued", n)).collect();
    for (i, chunk) in events.chunks(10).enumerate() {
        let body = [i as u8, (i >> 8) as u8];
        let outgoing = Outgoing::new(
            "clerk",
            "user.created",
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
    // Each worker is its own container: its own app, limiter and connections.
    let pool: Vec<Arc<Worker>> = (0..workers)
        .map(|_| Arc::new(Worker::from_app(app(&vars))))
        .collect();
    let queues = Arc::new(queues);
    let started = Instant::now();
    let mut pollers = tokio::task::JoinSet::new();
    for worker in pool {
        let queues = queues.clone();
        pollers.spawn(async move {
            let limit = Instant::now() + Duration::from_secs(600);
            while Instant::now() < limit {
                let (handed, _) = queues.poll_once(&worker, 10).await;
                if handed == 0 {
                    if queues.depth().await == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    pollers.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let (writes, refused) = writes_and_refusals(&attio);
    let synced = attio.records("users").len();
    println!(
        "| queue: {users} new users, {workers} workers, batches of 10 | {synced} users, {writes} writes in {elapsed:.1} s = {:.2} writes/s = {:.1} % of 25; {refused} 429s |",
        writes as f64 / elapsed,
        writes as f64 / elapsed / 25.0 * 100.0
    );

    // An Okta delivery of 60 new users, one attempt within Okta's 2.5 s.
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(latency);
    let vars = [
        ("ATTIO_SYNC_SECRET_ID", secret_id.clone()),
        ("ATTIO_API_URL", attio.url()),
    ];
    let app = app(&vars);
    let secrets = app.secrets().await.expect("the secret");
    let batch: Vec<UserEvent> = (0..60).map(|n| new_user("okta", n)).collect();
    let started = Instant::now();
    let mut budget = AttioBudget::until(tokio::time::Instant::now() + Duration::from_millis(2500));
    let results = app.apply_by_user(&batch, None, secrets, &mut budget).await;
    let elapsed = started.elapsed().as_secs_f64();
    let applied = results.iter().filter(|r| matches!(r, Some(Ok(_)))).count();
    let (writes, refused) = writes_and_refusals(&attio);
    println!(
        "| Okta batch of 60 new users, one 2.5 s attempt | {applied} applied, {writes} writes in {elapsed:.2} s; {refused} 429s |"
    );
}
