//! In-process figures for BENCHMARKS.md (criterion): the CPU time the function itself spends
//! on one webhook, apart from the Lambda runtime client that the floor pays as well.
//!
//! - `handle/<route>/new_user`: `App::handle` from a parsed request (lambda_http's own event
//!   parsing builds it, outside the timing) to the response: routing, signature, payload,
//!   the two Attio asserts through the real HTTP client, the JSON answer and the log line.
//! - `handle/clerk/person_unchanged`: the same user again; the person assert is skipped.
//! - `http/attio_assert_round_trip`: one Attio assert through the same HTTP client, alone:
//!   the part of `handle` that is the HTTP client and the kernel rather than the function.
//! - `verify_and_parse/<route>`: the signature check and payload reading alone.
//!
//! The `handle` benches report **CPU time of the function's thread** (`CLOCK_THREAD_CPUTIME_ID`),
//! not wall time: the function runs on a current-thread runtime as in `main`, while the Attio
//! stand-in answers from a runtime on other threads, so its work is not counted but the
//! function's socket system calls are. Secrets Manager is moto (`AWS_ENDPOINT_URL_SECRETS_MANAGER`);
//! the secret is fetched once, before timing, as on a warm container.
//! Run with `./scripts/bench.sh` (starts moto), or `cargo bench --bench handler` with moto set.

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;
mod support;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use attio_stand_in::AttioStandIn;
use attio_user_sync::attio::{AttioClient, RetryPolicy};
use attio_user_sync::providers::{WebhookRequest, provider_for_route};
use attio_user_sync::secrets::SyncSecrets;
use attio_user_sync::{App, Config};
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::Request;
use support::{ROUTES, TOKEN, create_bench_secret, event, secret_string};

/// CPU time consumed so far by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A webhook event as the function receives it, parsed by lambda_http.
fn request(route: &str, n: usize) -> Request {
    lambda_http::request::from_str(&event(route, n).to_string()).expect("a valid Lambda event")
}

fn benches(c: &mut Criterion) {
    // Attio stand-in and the secret's setup on a runtime of their own (other threads).
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let attio = servers.block_on(AttioStandIn::start(TOKEN));
    let secret_id = servers.block_on(create_bench_secret());

    // The function: a current-thread runtime on this thread, built as `main` builds it.
    let function = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vars = HashMap::from([
        ("ATTIO_SYNC_SECRET_ID", secret_id),
        ("ATTIO_API_URL", attio.url()),
    ]);
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("bench configuration");
    let tls = attio_user_sync::tls::client_config(None).unwrap();
    let attio_client =
        AttioClient::new(&config.attio_api_url, RetryPolicy::default(), tls).unwrap();
    // The app's own HTTP client (a handle to its pool), for the round trip measured alone.
    let http = attio_client.http_client();
    let app = function.block_on(async {
        let client = attio_user_sync::secrets::client_from_env(attio_client.http_client());
        let app = App::new(config, client, attio_client);
        app.prefetch_secret().await;
        // The first request of each route opens the connection and warms the caches.
        for route in ROUTES {
            let answer = app.handle(request(route, usize::MAX - 1)).await;
            assert_eq!(answer.status(), 200, "{route} warm-up");
        }
        app
    });

    let mut next_user = 0;
    let mut group = c.benchmark_group("handle");
    for route in ROUTES {
        group.bench_function(format!("{route}/new_user"), |b| {
            b.iter_custom(|iters| {
                let requests: Vec<Request> = (0..iters)
                    .map(|_| {
                        next_user += 1;
                        request(route, next_user)
                    })
                    .collect();
                let start = thread_cpu_time();
                function.block_on(async {
                    for r in requests {
                        let answer = app.handle(r).await;
                        assert_eq!(answer.status(), 200, "{route}");
                        black_box(answer);
                    }
                });
                thread_cpu_time() - start
            })
        });
    }
    group.bench_function("clerk/person_unchanged", |b| {
        b.iter_custom(|iters| {
            let requests: Vec<Request> = (0..iters).map(|_| request("clerk", 7)).collect();
            let calls_before = attio.request_count();
            let start = thread_cpu_time();
            function.block_on(async {
                for r in requests {
                    let answer = app.handle(r).await;
                    assert_eq!(answer.status(), 200, "clerk again");
                }
            });
            let spent = thread_cpu_time() - start;
            // One user assert per event once the person is remembered (the first may add one).
            let calls = attio.request_count() - calls_before;
            assert!(
                calls as u64 <= iters + 1,
                "{calls} Attio calls for {iters} events"
            );
            spent
        })
    });
    group.finish();

    // The same HTTP client alone: one Attio assert round trip, the body built beforehand.
    // What `handle` costs beyond its Attio calls is the function's own work.
    let assert_url = format!(
        "{}/v2/objects/people/records?matching_attribute=email_addresses",
        attio.url()
    );
    c.bench_function("http/attio_assert_round_trip", |b| {
        b.iter_custom(|iters| {
            let bodies: Vec<String> = (0..iters)
                .map(|_| {
                    next_user += 1;
                    serde_json::json!({"data": {"values": {
                        "email_addresses": [format!("bench.http.{next_user}@example.com")],
                        "name": [{"first_name": "Bench", "last_name": "User", "full_name": "Bench User"}]}}})
                    .to_string()
                })
                .collect();
            let start = thread_cpu_time();
            function.block_on(async {
                for body in bodies {
                    let answer = http
                        .put(&assert_url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("the stand-in answers");
                    assert_eq!(answer.status(), 200);
                    black_box(answer.bytes().await.expect("a body"));
                }
            });
            thread_cpu_time() - start
        })
    });

    let secrets = SyncSecrets::parse(&secret_string()).expect("bench secret");
    let mut group = c.benchmark_group("verify_and_parse");
    for route in ROUTES {
        let provider = provider_for_route(route).expect("a provider");
        let request = request(route, 42);
        let webhook = WebhookRequest {
            headers: request.headers(),
            body: request.body().as_ref(),
            now: SystemTime::now(),
            tolerance: Duration::from_secs(300),
            keys: None,
        };
        group.bench_function(route, |b| {
            b.iter(|| {
                provider
                    .verify(&webhook, secrets.webhook_secrets_for(route))
                    .expect("a valid signature");
                black_box(provider.parse(webhook.body).expect("a valid payload"))
            })
        });
    }
    group.finish();
}

criterion_group!(handler, benches);
criterion_main!(handler);
