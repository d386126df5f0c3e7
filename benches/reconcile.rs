//! Reconcile against rewriting (issue 21): a tenant of `BENCH_RECONCILE_USERS` Clerk users
//! (default 10,000) already in the Attio stand-in (seeded as the sync writes them: a person
//! with the address and name, a user linked to it), the stand-in enforcing Attio's 25 writes/s
//! and 100 reads/s and answering after `BENCH_LATENCY_MS` (0). In one run, side by side:
//!
//! 1. the compare-first rerun of the unchanged tenant (the backfill binary's default): time,
//!    writes (0 expected), reads;
//! 2. the same with 1 % drift (half renamed at the provider: a person write each; half deleted
//!    from Attio: a person and a user write each): writes against what the drift needs;
//! 3. the rewrite-all rerun (`--rewrite-all`, as before reconcile) of the unchanged tenant;
//!    `BENCH_SKIP_REWRITE=1` skips it (at 25 writes/s it takes about 14 minutes for 10,000).
//!
//! And the memory the users snapshot keeps per Attio user (a counting allocator: bytes held
//! after the read, and the peak while reading, the stand-in answering at once);
//! `BENCH_MEMORY_ONLY=1` measures only that (`BENCH_RECONCILE_USERS=1000000` for a million). Run by `./scripts/bench.sh`, or alone:
//! `cargo bench --bench reconcile` with moto's Secrets Manager endpoint exported.

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;
#[path = "../tests/it/support/clerk_api.rs"]
mod clerk_api;
// Shared with the process bench, which uses the rest.
#[allow(dead_code)]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use attio_stand_in::AttioStandIn;
use attio_user_sync::backfill::{self, Mode, Options, Reconcile};
use attio_user_sync::checkpoint::{Checkpoint, Counts};
use attio_user_sync::pace::WriteLimiter;
use attio_user_sync::providers::clerk::directory::ClerkDirectory;
use attio_user_sync::reconcile::snapshot::{AttioUsers, Reading};
use attio_user_sync::secrets::Secret;
use attio_user_sync::{App, Config};
use clerk_api::{CLERK_SECRET_KEY, ClerkApi, clerk_listed_user};
use serde_json::{Value, json};
use support::{TOKEN, create_bench_secret, env_number};

/// Counts the bytes held, and the most held since the last reset.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(held, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let held = HELD.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                + (new_size - layout.size());
            PEAK.fetch_max(held, Ordering::Relaxed);
        } else {
            HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn email(n: usize) -> String {
    format!("bench.reconcile.{n}@example.com")
}

fn listed(n: usize) -> Value {
    clerk_listed_user(n, Some(&email(n)))
}

/// Seeds Attio with `users` users as the sync writes them.
fn seed(attio: &AttioStandIn, users: usize) {
    let people = attio.seed(
        "people",
        (0..users).map(|n| {
            json!({"email_addresses": [email(n)],
                   "name": [{"first_name": "Backfill", "last_name": format!("User {n}"),
                             "full_name": format!("Backfill User {n}")}]})
        }),
    );
    attio.seed(
        "users",
        people.iter().enumerate().map(|(n, person)| {
            json!({"user_id": [format!("user_backfill_{n:04}")],
                   "primary_email_address": [email(n)], "person": [person]})
        }),
    );
}

struct Measured {
    seconds: f64,
    writes: usize,
    reads: usize,
    refused: usize,
    counts: Counts,
}

async fn run(
    app: Arc<App>,
    attio: &AttioStandIn,
    clerk: &ClerkApi,
    reconcile: Option<Reconcile>,
) -> Measured {
    let before = attio.request_count();
    let directory = ClerkDirectory::new(
        reqwest::Client::new(),
        &clerk.url(),
        CLERK_SECRET_KEY.into(),
        500,
    );
    let path = std::env::temp_dir().join(format!("bench-reconcile-{}.json", std::process::id()));
    let options = Options {
        mode: Mode::Write,
        concurrency: backfill::DEFAULT_CONCURRENCY,
        reconcile,
        reading: Reading::default(),
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
    .expect("the run ends");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    let requests = &attio.requests()[before..];
    let is_read = |r: &&attio_stand_in::ReceivedRequest| r.method == "POST" || r.method == "GET";
    Measured {
        seconds,
        writes: requests
            .iter()
            .filter(|r| !is_read(r) && r.status == 200)
            .count(),
        reads: requests.iter().filter(is_read).count(),
        refused: requests.iter().filter(|r| r.status == 429).count(),
        counts: done.counts,
    }
}

#[tokio::main]
async fn main() {
    let users = env_number("BENCH_RECONCILE_USERS", 10_000) as usize;
    let latency_ms = env_number("BENCH_LATENCY_MS", 0);
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    seed(&attio, users);
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
    // The backfill binary's app: writes at 24.5 a second, reads at 98.
    let app = || {
        Arc::new(
            App::from_config_paced(config.clone(), Some(Arc::new(WriteLimiter::new(24.5))))
                .expect("app"),
        )
    };

    // Memory: the snapshot alone, read as a comparing run reads it.
    let token = Secret::new(TOKEN.to_owned());
    let written = {
        let app = app();
        let mut budget =
            attio_user_sync::attio::AttioBudget::from_now(std::time::Duration::from_secs(60));
        app.sync()
            .written_attributes(&token, &mut budget)
            .await
            .expect("attributes")
    };
    let reader = app();
    let read_snapshot = || async {
        AttioUsers::read(
            reader.attio(),
            &token,
            None,
            &written,
            Reading::default(),
            |_| {},
        )
        .await
        .expect("snapshot")
    };
    // Once first, so the connection pool and its buffers (which stay) are not counted.
    drop(read_snapshot().await);
    let before = HELD.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let snapshot = read_snapshot().await;
    let held = HELD.load(Ordering::Relaxed).saturating_sub(before);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    assert_eq!(snapshot.len(), users);
    drop(snapshot);
    let memory = format!(
        "snapshot memory: {:.0} bytes held per Attio user ({:.1} MB for {users}), peak while reading {:.1} MB; projected held: {:.0} MB for 100,000, {:.0} MB for 1,000,000",
        held as f64 / users as f64,
        held as f64 / 1e6,
        peak as f64 / 1e6,
        held as f64 / users as f64 * 1e5 / 1e6,
        held as f64 / users as f64 * 1e6 / 1e6,
    );
    if std::env::var_os("BENCH_MEMORY_ONLY").is_some() {
        println!("{memory}");
        return;
    }
    // Memory is measured with Attio answering at once: with a delay, the stand-in in this
    // process and the client open connections (and their buffers) while the snapshot is read,
    // which would be counted as the snapshot's. The runs below have the delay.
    attio.set_latency(std::time::Duration::from_millis(latency_ms));

    let clerk = ClerkApi::start((0..users).map(listed).collect()).await;
    let same = run(app(), &attio, &clerk, Some(Reconcile::default())).await;

    // 1 % drift: half renamed at the provider, half deleted from Attio.
    let drifted = users / 100;
    let renamed: Vec<usize> = (0..drifted / 2).map(|i| i * 100 + 7).collect();
    let deleted: Vec<usize> = (drifted / 2..drifted).map(|i| i * 100 + 7).collect();
    let mut changed: Vec<Value> = (0..users).map(listed).collect();
    for &n in &renamed {
        changed[n]["last_name"] = json!(format!("Renamed {n}"));
    }
    let records = attio.records("users");
    for &n in &deleted {
        let id = format!("user_backfill_{n:04}");
        let record = records
            .iter()
            .find(|r| r.text("user_id") == Some(id.as_str()))
            .expect("seeded");
        attio.remove_record("users", &record.id);
    }
    let clerk_drifted = ClerkApi::start(changed).await;
    let drift = run(app(), &attio, &clerk_drifted, Some(Reconcile::default())).await;
    let needed = renamed.len() + 2 * deleted.len();

    let rewrite = if std::env::var_os("BENCH_SKIP_REWRITE").is_some() {
        None
    } else {
        Some(run(app(), &attio, &clerk_drifted, None).await)
    };

    println!(
        "## Reconcile against rewrite-all ({users} Clerk users already in Attio; stand-in enforcing 25 writes/s and 100 reads/s, answering after {latency_ms} ms)"
    );
    println!("| run | time | Attio writes | Attio reads | 429s | classes (same/missing/differs) |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, m: &Measured| {
        println!(
            "| {name} | {:.1} s | {} | {} | {} | {}/{}/{} |",
            m.seconds,
            m.writes,
            m.reads,
            m.refused,
            m.counts.same,
            m.counts.missing,
            m.counts.differs
        );
    };
    row("compare-first, unchanged", &same);
    row(
        &format!("compare-first, 1 % drift ({needed} writes needed)"),
        &drift,
    );
    if let Some(rewrite) = &rewrite {
        row("rewrite-all, unchanged", rewrite);
        println!(
            "\ncompare-first is {:.0}x faster than rewrite-all, with {} writes instead of {}",
            rewrite.seconds / same.seconds,
            same.writes,
            rewrite.writes
        );
    }
    println!("\n{memory}");
    let per_user = same.seconds / users as f64;
    println!(
        "projected compare-first rerun of an unchanged tenant: {:.0} s for 100,000, {:.0} s for 1,000,000",
        per_user * 1e5,
        per_user * 1e6
    );
}
