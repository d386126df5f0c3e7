//! Whole-process figures for BENCHMARKS.md: cold start, warm CPU per event, latency, peak RSS
//! and outbound calls of the release `bootstrap`, each beside the floor (a hello-world
//! lambda_http function built the same way, `floor/`).
//!
//! A minimal Lambda Runtime API runs in this process on loopback; the function under test is
//! spawned against it, with moto's Secrets Manager (behind a counting proxy) and the local
//! Attio stand-in. Run it with `./scripts/bench.sh`, which builds the binaries and starts moto.
//! Settings: BENCH_BINARY, BENCH_FLOOR (paths), BENCH_COLD_RUNS (default 20),
//! BENCH_WARM_EVENTS (default 1000), BENCH_FUNCTION_ENV ("K=V K=V" for the function).

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;
#[path = "../tests/it/support/https_front.rs"]
mod https_front;
mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{ROUTES, TOKEN, create_bench_secret, event};

use attio_stand_in::AttioStandIn;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// One invocation handed to the function, and where its answer goes.
struct Invocation {
    event: Value,
    answered: oneshot::Sender<(Instant, Value)>,
}

#[derive(Default)]
struct Emulator {
    /// The time of the first `next` call (the end of init), per run.
    init_done: Mutex<Option<Instant>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<(Instant, Value)>>>,
}

type Shared = (
    Arc<Emulator>,
    Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
);

/// `GET /2018-06-01/runtime/invocation/next`: the next queued event.
async fn next(State((emulator, queue)): State<Shared>) -> impl IntoResponse {
    emulator
        .init_done
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let Some(invocation) = queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let id = format!("{:032x}", fastrand::u128(..));
    emulator
        .waiting
        .lock()
        .unwrap()
        .insert(id.clone(), invocation.answered);
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".parse().unwrap(),
    );
    (StatusCode::OK, headers, invocation.event.to_string())
}

/// `POST …/invocation/{id}/response` (and `/error`): the function's answer.
async fn answer(
    State((emulator, _)): State<Shared>,
    Path((id, _kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&body) }));
    if let Some(tx) = emulator.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send((at, value));
    }
    StatusCode::ACCEPTED
}

/// A runtime API on a free loopback port; returns its address and the queue feeding it.
async fn start_emulator() -> (String, Arc<Emulator>, mpsc::Sender<Invocation>) {
    let emulator = Arc::new(Emulator::default());
    let (tx, rx) = mpsc::channel(1);
    let shared: Shared = (emulator.clone(), Arc::new(tokio::sync::Mutex::new(rx)));
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route(
            "/2018-06-01/runtime/init/error",
            post(|| async { StatusCode::ACCEPTED }),
        )
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, emulator, tx)
}

/// Secrets Manager calls seen by the proxy, and the time moto took to answer them.
#[derive(Default)]
struct ProxyStats {
    calls: AtomicU32,
    nanos: AtomicU64,
}

impl ProxyStats {
    fn waited(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A proxy in front of moto that counts Secrets Manager calls and times moto's answers.
async fn start_counting_proxy(target: String) -> (String, Arc<ProxyStats>) {
    let calls = Arc::new(ProxyStats::default());
    let client = reqwest::Client::new();
    let counted = calls.clone();
    let app = Router::new().fallback(any(move |headers: HeaderMap, body: Bytes| {
        let (client, target, counted) = (client.clone(), target.clone(), counted.clone());
        async move {
            counted.calls.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let mut request = client.post(&target).body(body);
            for (name, value) in &headers {
                if name != "host" {
                    request = request.header(name, value);
                }
            }
            let response = request.send().await.expect("moto answers");
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            let content_type = response.headers().get("content-type").cloned();
            let body = response.bytes().await.unwrap_or_default();
            counted
                .nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
            let mut answer = (status, body).into_response();
            if let Some(ct) = content_type {
                answer.headers_mut().insert("content-type", ct);
            }
            answer
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

/// A process under test, with its CPU time and peak memory read from /proc.
struct Process {
    child: tokio::process::Child,
}

impl Process {
    fn spawn(binary: &str, runtime_api: &str, env: &[(&str, String)]) -> Self {
        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        Self {
            child: command.spawn().unwrap_or_else(|e| panic!("{binary}: {e}")),
        }
    }

    /// (user + system CPU time, peak RSS in KiB).
    fn usage(&self) -> (Duration, u64) {
        let pid = self.child.id().expect("running");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // Fields 14 and 15 of stat (utime, stime), counted after the ")" as 12 and 13.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let hz = 100; // USER_HZ on Linux
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (Duration::from_millis(ticks * 1000 / hz), hwm)
    }
}

async fn invoke(queue: &mpsc::Sender<Invocation>, event: Value) -> (Instant, Instant, Value) {
    let (tx, rx) = oneshot::channel();
    let sent = Instant::now();
    queue
        .send(Invocation {
            event,
            answered: tx,
        })
        .await
        .expect("emulator running");
    let (at, value) = rx.await.expect("the function answered");
    (sent, at, value)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn percentile(xs: &mut [Duration], p: f64) -> Duration {
    xs.sort();
    xs[((xs.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct ColdStart {
    init: Duration,
    first_response: Duration,
    /// Time spent waiting on moto and the Attio stand-in: the emulated network.
    network: Duration,
}

/// Starts `binary` cold, sends one event, and times init and the first answer.
async fn cold_start(
    binary: &str,
    env: &[(&str, String)],
    event: Value,
    proxy: Option<&ProxyStats>,
    attio: Option<&AttioStandIn>,
) -> ColdStart {
    let (addr, emulator, queue) = start_emulator().await;
    let moto_before = proxy.map_or(Duration::ZERO, ProxyStats::waited);
    let attio_before = attio.map_or(0, AttioStandIn::request_count);
    let started = Instant::now();
    let _process = Process::spawn(binary, &addr, env);
    let (_, answered, response) = invoke(&queue, event).await;
    assert_eq!(response["statusCode"], 200, "cold start answer: {response}");
    let init_done = emulator
        .init_done
        .lock()
        .unwrap()
        .expect("the function asked for an event");
    let network = proxy.map_or(Duration::ZERO, |p| p.waited() - moto_before)
        + attio.map_or(Duration::ZERO, |a| a.time_handling_since(attio_before));
    ColdStart {
        init: init_done - started,
        first_response: answered - started,
        network,
    }
}

struct Warm {
    cpu_per_event: Duration,
    p50: Duration,
    p99: Duration,
    own_p50: Duration,
    own_p99: Duration,
    events_per_second: f64,
    peak_rss_kib: u64,
    attio_calls_per_event: f64,
    secrets_calls: u32,
}

/// One warm process answering `count` events of `route` (new users each time).
async fn warm(
    binary: &str,
    env: &[(&str, String)],
    route: &str,
    count: usize,
    attio: Option<&AttioStandIn>,
    secrets_calls: Option<&ProxyStats>,
) -> Warm {
    let (addr, _emulator, queue) = start_emulator().await;
    let process = Process::spawn(binary, &addr, env);
    // Warm up: the first event pays for init, the first connections and the secret fetch.
    invoke(&queue, event(route, 1_000_000)).await;
    let requests_before = attio.map_or(0, AttioStandIn::request_count);
    let secrets_before = secrets_calls.map_or(0, |c| c.calls.load(Ordering::SeqCst));
    let (cpu_before, _) = process.usage();
    let mut latencies = Vec::with_capacity(count);
    let mut own = Vec::with_capacity(count);
    let started = Instant::now();
    for n in 0..count {
        let seen = attio.map_or(0, AttioStandIn::request_count);
        let (sent, answered, response) = invoke(&queue, event(route, n)).await;
        assert_eq!(response["statusCode"], 200, "{route}: {response}");
        let total = answered - sent;
        let in_attio = attio.map_or(Duration::ZERO, |a| a.time_handling_since(seen));
        latencies.push(total);
        own.push(total.saturating_sub(in_attio));
    }
    let elapsed = started.elapsed();
    let (cpu_after, peak_rss_kib) = process.usage();
    let attio_calls = attio.map_or(0, |a| a.request_count() - requests_before);
    Warm {
        cpu_per_event: (cpu_after - cpu_before) / count as u32,
        p50: percentile(&mut latencies, 0.5),
        p99: percentile(&mut latencies, 0.99),
        own_p50: percentile(&mut own, 0.5),
        own_p99: percentile(&mut own, 0.99),
        events_per_second: count as f64 / elapsed.as_secs_f64(),
        peak_rss_kib,
        attio_calls_per_event: attio_calls as f64 / count as f64,
        secrets_calls: secrets_calls.map_or(0, |c| c.calls.load(Ordering::SeqCst)) - secrets_before,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let binary = var("BENCH_BINARY", "target/release/attio-user-sync");
    let floor = var("BENCH_FLOOR", "target/floor/release/floor");
    let cold_runs: usize = var("BENCH_COLD_RUNS", "20").parse().unwrap();
    let warm_events: usize = var("BENCH_WARM_EVENTS", "1000").parse().unwrap();
    let moto = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .expect("AWS_ENDPOINT_URL_SECRETS_MANAGER: run ./scripts/bench.sh, which starts moto");

    let attio = AttioStandIn::start(TOKEN).await;
    let (proxy, secrets_calls) = start_counting_proxy(moto.clone()).await;
    let secret_id = create_bench_secret().await;
    // BENCH_FUNCTION_ENV="K=V K=V" adds variables to the function's environment.
    let extra = std::env::var("BENCH_FUNCTION_ENV").unwrap_or_default();
    let mut env: Vec<(&str, String)> = extra
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (&*Box::leak(k.to_owned().into_boxed_str()), v.to_owned()))
        .collect();
    env.extend([
        ("ATTIO_SYNC_SECRET_ID", secret_id.clone()),
        ("ATTIO_API_URL", attio.url()),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", proxy.clone()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]);

    println!("## Cold start ({cold_runs} runs each, medians)");
    // The function trusts compiled-in roots and reads no CA file, unless SSL_CERT_FILE names a
    // bundle: the second series sets it to the system's bundle (about 150 certificates) to show
    // what reading and parsing one costs.
    let bundle = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a CA bundle");
    let mut bundle_env = env.clone();
    bundle_env.push(("SSL_CERT_FILE", bundle.to_owned()));
    // Production speaks TLS to both: a third series puts HTTPS fronts (the test CA, trusted
    // through SSL_CERT_FILE) before moto's proxy and the stand-in, so the function's handshakes
    // count as its own work while the fronts' share stays in the harness.
    let mut https_env: Vec<(&str, String)> = env
        .iter()
        .filter(|(k, _)| *k != "ATTIO_API_URL" && *k != "AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .cloned()
        .collect();
    https_env.extend([
        (
            "ATTIO_API_URL",
            https_front::https_front(&attio.url()).await,
        ),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            https_front::https_front(&proxy).await,
        ),
        ("SSL_CERT_FILE", https_front::test_ca_bundle()),
    ]);
    let mut https_cold = Vec::new();
    let mut bundle_cold = Vec::new();
    let mut function_cold = (Vec::new(), Vec::new(), Vec::new());
    let mut floor_cold = (Vec::new(), Vec::new());
    for n in 0..cold_runs {
        let f = cold_start(&floor, &[], event("floor", n), None, None).await;
        floor_cold.0.push(f.init);
        floor_cold.1.push(f.first_response);
        let c = cold_start(
            &binary,
            &env,
            event("clerk", 2_000_000 + n),
            Some(&secrets_calls),
            Some(&attio),
        )
        .await;
        let a = cold_start(
            &binary,
            &bundle_env,
            event("clerk", 3_000_000 + n),
            Some(&secrets_calls),
            Some(&attio),
        )
        .await;
        bundle_cold.push(a.first_response.saturating_sub(a.network));
        let h = cold_start(
            &binary,
            &https_env,
            event("clerk", 4_000_000 + n),
            Some(&secrets_calls),
            Some(&attio),
        )
        .await;
        https_cold.push(h.first_response.saturating_sub(h.network));
        function_cold.0.push(c.init);
        function_cold.1.push(c.first_response);
        function_cold
            .2
            .push(c.first_response.saturating_sub(c.network));
    }
    let (fi, ff, fx) = (
        median(function_cold.0),
        median(function_cold.1),
        median(function_cold.2),
    );
    let (li, lf) = (median(floor_cold.0), median(floor_cold.1));
    let cold_row = |figure: &str, ours: Duration, floor: Duration| {
        println!(
            "| {figure} | {} | {} | {:.2}x |",
            ms(ours),
            ms(floor),
            ours.as_secs_f64() / floor.as_secs_f64()
        )
    };
    println!("| figure | attio-user-sync | floor | ratio |");
    println!("| --- | --- | --- | --- |");
    cold_row("init (process start to first `next`)", fi, li);
    cold_row("first response (process start to answer)", ff, lf);
    cold_row(
        "first response, less time waiting on moto and the Attio stand-in",
        fx,
        lf,
    );
    cold_row(
        "same, over TLS (both endpoints behind HTTPS on loopback, handshakes included)",
        median(https_cold),
        lf,
    );
    cold_row(
        "same, with `SSL_CERT_FILE` set to the system's CA bundle",
        median(bundle_cold),
        lf,
    );

    println!();
    println!("## Warm ({warm_events} events per route, one process, new user each event)");
    let floor_warm = warm(&floor, &[], "floor", warm_events, None, None).await;
    println!(
        "| route | CPU/event | p50 | p99 | own p50 | own p99 | events/s | peak RSS | Attio calls/event | Secrets Manager calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, w: &Warm| {
        println!(
            "| {name} | {} µs | {} | {} | {} | {} | {:.0} | {:.1} MiB | {:.2} | {} |",
            w.cpu_per_event.as_micros(),
            ms(w.p50),
            ms(w.p99),
            ms(w.own_p50),
            ms(w.own_p99),
            w.events_per_second,
            w.peak_rss_kib as f64 / 1024.0,
            w.attio_calls_per_event,
            w.secrets_calls
        )
    };
    row("floor (hello world)", &floor_warm);
    let mut peak = 0;
    for route in ROUTES {
        let w = warm(
            &binary,
            &env,
            route,
            warm_events,
            Some(&attio),
            Some(&secrets_calls),
        )
        .await;
        peak = peak.max(w.peak_rss_kib);
        row(route, &w);
    }
    let bundle = warm(
        &binary,
        &bundle_env,
        "clerk",
        warm_events,
        Some(&attio),
        Some(&secrets_calls),
    )
    .await;
    row("clerk, `SSL_CERT_FILE` = system CA bundle", &bundle);
    println!();
    println!(
        "peak RSS ratio (largest route / floor): {:.2}x; with `SSL_CERT_FILE` = system CA bundle: {:.2}x",
        peak as f64 / floor_warm.peak_rss_kib as f64,
        bundle.peak_rss_kib as f64 / floor_warm.peak_rss_kib as f64
    );
}
