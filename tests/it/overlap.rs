//! Ordering under concurrency, driven the way senders behave: eight senders deliver every
//! user's versions in bursts, so one user's deliveries are in flight at the same time on
//! different containers (four, as Lambda scales), one in ten is redelivered, and every non-2xx
//! is retried on its own compressed Svix schedule while later versions keep coming; Attio takes
//! 25 writes/s, and may be down for a stretch first. The ordering attribute
//! (`ATTIO_USER_EVENT_TIME_ATTRIBUTE`) is set throughout.
//!
//! A user is *stale* when Attio ends with anything but its newest version: an older last name
//! on the person, or on the user record an event time that is not the newest version's (a
//! version split across the two records counts too).
//!
//! In the configuration the README recommends for ordering (the attribute and a queue), the
//! suite asserts stale 0 on a short run; `./scripts/ordering-test.sh` runs the long one ten
//! times, with and without an outage, and the direct mode beside it for RELIABILITY.md.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attio_user_sync::App;
use attio_user_sync::domain::Timestamp;
use attio_user_sync::worker::Worker;

use crate::support::queue::Queues;
use crate::support::*;

const CONTAINERS: usize = 4;
const SENDERS: usize = 8;
const WORKERS: usize = 2;
const PREFIX: &str = "user_overlap_";

/// Where the events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The attribute and a queue: every event through the queue's per-user message group.
    Recommended,
    /// The attribute without a queue: written by whichever container receives it.
    Direct,
}

/// What a run ended with.
#[derive(Debug, Default)]
struct Figures {
    deliveries: u32,
    queued: u32,
    retried: u32,
    lost: u32,
    missing: usize,
    duplicated: usize,
    stale: usize,
    /// Of the stale: the person's name of one version, the user's event time of another.
    split: usize,
}

#[derive(Default)]
struct Counts {
    deliveries: AtomicU32,
    queued: AtomicU32,
    retried: AtomicU32,
    lost: AtomicU32,
}

/// Every user's versions, each user's shuffled and one in ten sent twice, the users' bursts
/// in a random order: (user, version) in the order the senders take them; and each user's newest.
fn deliveries(events: usize, users: usize, seed: u64) -> (VecDeque<(usize, u32)>, Vec<u32>) {
    let per_user = (events / users).max(2) as u32;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut order: Vec<usize> = (0..users).collect();
    rng.shuffle(&mut order);
    let mut all = VecDeque::new();
    for user in order {
        let mut versions: Vec<u32> = (0..per_user).collect();
        rng.shuffle(&mut versions);
        for v in versions {
            all.push_back((user, v));
            if rng.u8(..10) == 0 {
                all.push_back((user, v));
            }
        }
    }
    (all, vec![per_user - 1; users])
}

/// Sends one delivery until a 2xx or its schedule runs out.
async fn deliver(app: Arc<App>, user: usize, version: u32, counts: Arc<Counts>) {
    for (attempt, wait) in SVIX_RETRIES_COMPRESSED.into_iter().enumerate() {
        tokio::time::sleep(wait).await;
        let event = versioned_clerk_event(PREFIX, user, version);
        let request = lambda_http::request::from_str(&event.to_string()).expect("event parses");
        let status = app.handle(request).await.status().as_u16();
        counts.deliveries.fetch_add(1, Ordering::SeqCst);
        if attempt > 0 {
            counts.retried.fetch_add(1, Ordering::SeqCst);
        }
        match status {
            200 => return,
            202 => {
                counts.queued.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {}
        }
    }
    counts.lost.fetch_add(1, Ordering::SeqCst);
}

/// Missing, duplicated, stale and split users, against each user's newest version.
fn verdict(attio: &AttioStandIn, latest: &[u32], figures: &mut Figures) {
    let users = attio.records("users");
    let people = attio.records("people");
    for (user, newest) in latest.iter().enumerate() {
        let id = format!("{PREFIX}{user}");
        let held: Vec<_> = users
            .iter()
            .filter(|r| r.text("user_id") == Some(id.as_str()))
            .collect();
        let record = match held.as_slice() {
            [] => {
                figures.missing += 1;
                continue;
            }
            [record] => record,
            _ => {
                figures.duplicated += 1;
                continue;
            }
        };
        let name_version = people
            .iter()
            .find(|p| Some(p.id.as_str()) == record.text("person"))
            .and_then(|p| p.first("name"))
            .and_then(|n| n["last_name"].as_str())
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|v| v.parse::<u32>().ok());
        let time_version = record
            .text("last_event_at")
            .and_then(Timestamp::parse)
            .and_then(|t| {
                let first = Timestamp::from_unix_millis(1_795_770_000_000)?;
                u32::try_from(t.millis_since(first) / 1000).ok()
            });
        if name_version != Some(*newest) || time_version != Some(*newest) {
            figures.stale += 1;
            if name_version != time_version {
                figures.split += 1;
            }
        }
    }
}

async fn run(setup: Setup, events: usize, users: usize, outage: Duration, seed: u64) -> Figures {
    let attio = Arc::new(AttioStandIn::start(TOKEN).await);
    attio.limit_rates(25, 100);
    attio.set_down(!outage.is_zero());
    let secret_id = create_secret(&default_secret()).await;
    let queues = match setup {
        // Many receives before a dead letter: the outage must not cost any.
        Setup::Recommended => Some(Arc::new(Queues::create(Duration::from_secs(1), 100).await)),
        Setup::Direct => None,
    };
    let mut env: Vec<(&'static str, String)> = queues.as_ref().map(|q| q.env()).unwrap_or_default();
    env.push(("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at".into()));
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut containers = Vec::new();
    for _ in 0..CONTAINERS {
        containers.push(Arc::new(app_for(&secret_id, &attio.url(), &vars).await));
    }
    let recovery = {
        let attio = attio.clone();
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            attio.set_down(false);
        })
    };
    let senders_done = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    if let Some(queues) = &queues {
        for _ in 0..WORKERS {
            let worker = Arc::new(worker_for(&secret_id, &attio.url(), &vars).await);
            let (queues, done) = (queues.clone(), senders_done.clone());
            pollers.push(tokio::spawn(async move {
                drain_while_sending(&worker, &queues, &done).await;
            }));
        }
    }

    let (todo, latest) = deliveries(events, users, seed);
    let todo = Arc::new(Mutex::new(todo));
    let counts = Arc::new(Counts::default());
    let in_flight = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (todo, containers, counts, in_flight) = (
            todo.clone(),
            containers.clone(),
            counts.clone(),
            in_flight.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed * 31 + sender as u64);
            loop {
                let Some((user, version)) = todo.lock().unwrap().pop_front() else {
                    return;
                };
                // Any container may receive it, as Lambda routes deliveries.
                let app = containers[rng.usize(..containers.len())].clone();
                let first = lambda_http::request::from_str(
                    &versioned_clerk_event(PREFIX, user, version).to_string(),
                )
                .expect("event parses");
                let status = app.handle(first).await.status().as_u16();
                counts.deliveries.fetch_add(1, Ordering::SeqCst);
                match status {
                    200 => {}
                    202 => {
                        counts.queued.fetch_add(1, Ordering::SeqCst);
                    }
                    // Retried on its own schedule while this sender moves on, as Svix does.
                    _ => {
                        let retry = containers[rng.usize(..containers.len())].clone();
                        let counts = counts.clone();
                        in_flight.lock().unwrap().spawn(async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            deliver(retry, user, version, counts).await;
                        });
                    }
                }
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    loop {
        let next = in_flight.lock().unwrap().try_join_next();
        match next {
            Some(done) => done.expect("retry"),
            None if in_flight.lock().unwrap().is_empty() => break,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    senders_done.store(true, Ordering::SeqCst);
    recovery.await.expect("recovery");
    for poller in pollers {
        poller.await.expect("poller");
    }

    let mut figures = Figures {
        deliveries: counts.deliveries.load(Ordering::SeqCst),
        queued: counts.queued.load(Ordering::SeqCst),
        retried: counts.retried.load(Ordering::SeqCst),
        lost: counts.lost.load(Ordering::SeqCst),
        ..Figures::default()
    };
    verdict(&attio, &latest, &mut figures);
    if let Some(queues) = &queues {
        assert_eq!(queues.depth().await, 0, "the queue drained");
        assert!(
            queues.dead_letters().await.is_empty(),
            "nothing dead-lettered"
        );
    }
    println!(
        "ordering ({setup:?}, outage {:.0} s, seed {seed}): {events} events from {users} users, \
         {} deliveries ({} retried, {} answered 202 queued), lost {}, missing {}, duplicated {}, \
         stale {} (split {})",
        outage.as_secs_f64(),
        figures.deliveries,
        figures.retried,
        figures.queued,
        figures.lost,
        figures.missing,
        figures.duplicated,
        figures.stale,
        figures.split,
    );
    figures
}

/// One worker's event source, polling until the senders are done and the queue is empty.
async fn drain_while_sending(worker: &Worker, queues: &Queues, senders_done: &AtomicBool) {
    loop {
        let (handed, _) = queues.poll_once(worker, 10).await;
        if handed == 0 {
            if senders_done.load(Ordering::SeqCst) && queues.depth().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn assert_nothing_lost_or_stale(figures: &Figures) {
    assert_eq!(
        (
            figures.lost,
            figures.missing,
            figures.duplicated,
            figures.stale
        ),
        (0, 0, 0, 0),
        "{figures:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_deliveries_of_one_user_end_at_its_newest_version_through_the_queue() {
    let figures = run(Setup::Recommended, 240, 40, Duration::ZERO, 1).await;
    assert_nothing_lost_or_stale(&figures);
    assert_eq!(
        figures.queued, figures.deliveries,
        "every event went through the queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_outage_too() {
    let figures = run(Setup::Recommended, 240, 40, Duration::from_secs(3), 2).await;
    assert_nothing_lost_or_stale(&figures);
}

/// The long runs: `./scripts/ordering-test.sh`. `ORDERING_RUNS` consecutive runs (10) of the
/// recommended configuration, each without and with an outage, asserted; with
/// `ORDERING_SETUP=direct`, the attribute without a queue, measured (not asserted: it is the
/// configuration that cannot promise order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes many minutes; run with ./scripts/ordering-test.sh"]
async fn long_ordering_runs() {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (events, users, runs) = (
        var("ORDERING_EVENTS", 1200) as usize,
        var("ORDERING_USERS", 200) as usize,
        var("ORDERING_RUNS", 10),
    );
    let outage = Duration::from_secs(var("ORDERING_OUTAGE_SECONDS", 30));
    let direct = std::env::var("ORDERING_SETUP").as_deref() == Ok("direct");
    let started = Instant::now();
    let mut stale = Vec::new();
    for run_number in 0..runs {
        for wait in [Duration::ZERO, outage] {
            let seed = 100 + run_number;
            let figures = if direct {
                run(Setup::Direct, events, users, wait, seed).await
            } else {
                let figures = run(Setup::Recommended, events, users, wait, seed).await;
                assert_nothing_lost_or_stale(&figures);
                figures
            };
            stale.push(figures.stale);
        }
    }
    println!(
        "ordering ({}): {runs} runs each without and with a {} s outage: stale per run {stale:?}; {:.0} s in all",
        if direct { "direct" } else { "recommended" },
        outage.as_secs(),
        started.elapsed().as_secs_f64()
    );
}
