//! The backfill's Attio write rate (issue 12): `BENCH_BACKFILL_USERS` Clerk users (default 600)
//! read from the Clerk list stand-in and written through the backfill, with its default limiter
//! (24.5 writes/s) and concurrency (`BENCH_BACKFILL_CONCURRENCY` to try another), against the
//! Attio stand-in enforcing Attio's 25 writes/s and answering after `BENCH_LATENCY_MS` (0).
//! Prints the writes a second achieved, as a share of 25, the 429s met, and the projected time
//! for 10,000 and 1,000,000 users. Run by `./scripts/bench.sh`, or alone:
//! `cargo bench --bench backfill` with moto's Secrets Manager endpoint exported.

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;
#[path = "../tests/it/support/clerk_api.rs"]
mod clerk_api;
// Shared with the process bench, which uses the rest.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Instant;

use attio_stand_in::AttioStandIn;
use attio_user_sync::attio::{AttioClient, RetryPolicy};
use attio_user_sync::backfill::{self, Mode, Options};
use attio_user_sync::checkpoint::Checkpoint;
use attio_user_sync::pace::WriteLimiter;
use attio_user_sync::providers::clerk::directory::ClerkDirectory;
use attio_user_sync::{App, Config};
use clerk_api::{CLERK_SECRET_KEY, ClerkApi, clerk_listed_user};
use support::{TOKEN, create_bench_secret, env_number};

#[tokio::main]
async fn main() {
    let users = env_number("BENCH_BACKFILL_USERS", 600) as usize;
    let latency_ms = env_number("BENCH_LATENCY_MS", 0);
    let concurrency = env_number(
        "BENCH_BACKFILL_CONCURRENCY",
        attio_user_sync::backfill::DEFAULT_CONCURRENCY as u64,
    ) as usize;
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(std::time::Duration::from_millis(latency_ms));
    let listed = (0..users)
        .map(|n| clerk_listed_user(n, Some(&format!("bench.backfill.{n}@example.com"))))
        .collect();
    let clerk = ClerkApi::start(listed).await;
    let secret_id = create_bench_secret().await;
    let vars = [
        ("ATTIO_SYNC_SECRET_ID", secret_id),
        ("ATTIO_API_URL", attio.url()),
    ];
    let config = Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .expect("configuration");
    let tls = attio_user_sync::tls::client_config(None).expect("TLS");
    let client = AttioClient::new(&config.attio_api_url, RetryPolicy::default(), tls)
        .expect("client")
        .with_limiter(Arc::new(WriteLimiter::new(24.5)));
    let secrets = attio_user_sync::secrets::client_from_env(client.http_client());
    let app = Arc::new(App::new(config, secrets, client));
    let directory = ClerkDirectory::new(
        reqwest::Client::new(),
        &clerk.url(),
        CLERK_SECRET_KEY.into(),
        100,
    );
    let path = std::env::temp_dir().join(format!("bench-backfill-{}.json", std::process::id()));
    let options = Options {
        mode: Mode::Write,
        concurrency,
        reconcile: None,
        reading: Default::default(),
    };

    let started = Instant::now();
    let done = backfill::run(
        app,
        &directory,
        Checkpoint::start("clerk"),
        &path,
        &options,
        |_| {},
        |_| {},
    )
    .await
    .expect("the backfill runs");
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);

    let requests = attio.requests();
    let writes = requests
        .iter()
        .filter(|r| r.method != "GET" && r.method != "POST" && r.status == 200)
        .count();
    let refused = requests.iter().filter(|r| r.status == 429).count();
    let rate = writes as f64 / elapsed;
    let per_user = elapsed / done.counts.synced.max(1) as f64;
    println!(
        "## Backfill write rate ({users} Clerk users, limiter 24.5/s, concurrency {concurrency}, stand-in answering after {latency_ms} ms and enforcing 25 writes/s)"
    );
    println!("| figure | value |");
    println!("| --- | --- |");
    println!("| users synced | {} of {users} |", done.counts.synced);
    println!("| Attio writes | {writes} in {elapsed:.1} s |");
    println!(
        "| write rate | {rate:.2} /s = {:.1} % of 25 |",
        rate / 25.0 * 100.0
    );
    println!("| 429s met | {refused} |");
    println!(
        "| projected, 10,000 users | {:.0} min |",
        per_user * 10_000.0 / 60.0
    );
    println!(
        "| projected, 1,000,000 users | {:.1} h |",
        per_user * 1_000_000.0 / 3600.0
    );
}
