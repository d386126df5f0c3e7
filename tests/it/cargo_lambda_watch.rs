//! End to end through cargo-lambda's Lambda emulator: the built binaries (not the library) run
//! against `cargo lambda watch`'s Runtime API, and samples from `events/` go in with
//! `cargo lambda invoke`, webhook ones re-signed with the shipped `scripts/sign-event.py`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 60 s");
}

fn spawn(command: &mut Command, what: &str) -> Child {
    command
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not start {what} ({e}); ./scripts/test.sh installs cargo-lambda")
        })
}

/// A binary running against `cargo lambda watch --only-lambda-apis`, with JSON logs captured.
struct Emulated {
    port: u16,
    _emulator: Child,
    function: Child,
}

impl Emulated {
    async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let emulator = spawn(
            Command::new("cargo")
                .args([
                    "lambda",
                    "watch",
                    "--only-lambda-apis",
                    "-A",
                    "127.0.0.1",
                    "-P",
                    &port.to_string(),
                ])
                .current_dir(root())
                .stdout(Stdio::null()),
            "cargo lambda watch",
        );
        wait_for_port(port, "cargo lambda watch").await;
        let mut command = Command::new(binary);
        command
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let function = spawn(&mut command, binary);
        Self {
            port,
            _emulator: emulator,
            function,
        }
    }

    /// The webhook function with the default secret, writing to `attio`.
    async fn webhooks(attio: &AttioStandIn) -> Self {
        Self::webhooks_with(attio, &[]).await
    }

    /// As [`webhooks`](Self::webhooks), with more environment variables.
    async fn webhooks_with(attio: &AttioStandIn, env: &[(&str, String)]) -> Self {
        let secret_id = create_secret(&default_secret()).await;
        let mut all = vec![
            ("ATTIO_SYNC_SECRET_ID", secret_id),
            ("ATTIO_API_URL", attio.url()),
        ];
        all.extend(env.iter().cloned());
        Self::start(env!("CARGO_BIN_EXE_attio-user-sync"), &all).await
    }

    /// Invokes the function with `event` (written to a data file, as a user would).
    async fn invoke_event(&self, event: &Value) -> Value {
        let file = std::env::temp_dir().join(format!(
            "attio-user-sync-event-{}-{:08x}.json",
            self.port,
            fastrand::u32(..)
        ));
        std::fs::write(&file, event.to_string()).expect("write the event file");
        let answer = self.invoke(&file).await;
        let _ = std::fs::remove_file(&file);
        answer
    }

    /// `cargo lambda invoke --data-file`: the function's answer.
    async fn invoke(&self, data_file: &Path) -> Value {
        let output = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(data_file)
            .current_dir(root())
            .output()
            .await
            .expect("cargo lambda invoke runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the invoke prints the function's answer")
    }

    /// Stops the function and returns everything it logged, one JSON value a line.
    async fn logs(mut self) -> (String, Vec<Value>) {
        self.function.start_kill().expect("stop the function");
        let output = self
            .function
            .wait_with_output()
            .await
            .expect("function output");
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = logs
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
            })
            .collect();
        (logs, lines)
    }
}

#[tokio::test]
async fn signed_sample_event_through_cargo_lambda_watch_creates_the_user() {
    let attio = AttioStandIn::start(TOKEN).await;
    let function = Emulated::webhooks(&attio).await;

    let signed = std::env::temp_dir().join(format!("attio-user-sync-e2e-{}.json", function.port));
    let status = Command::new("python3")
        .arg(root().join("scripts/sign-event.py"))
        .arg(root().join("events/clerk-user-created.json"))
        .args(["--secret", CLERK_SECRET, "-o"])
        .arg(&signed)
        .status()
        .await
        .expect("python3 runs the re-signing script");
    assert!(status.success());
    let response = function.invoke(&signed).await;
    let _ = std::fs::remove_file(&signed);

    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let [user] = attio
        .records("users")
        .try_into()
        .expect("one user in Attio");
    assert_eq!(body["status"], "synced");
    assert_eq!(body["record_id"], user.id);
    assert_eq!(user.text("user_id"), Some("user_2adaLovelace0001"));

    // The logs are JSON lines, say what happened, and hold no address, token or secret.
    let (logs, lines) = function.logs().await;
    let handled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "webhook handled")
        .unwrap_or_else(|| panic!("no 'webhook handled' line in {logs}"));
    assert_eq!(handled["fields"]["outcome"], "synced");
    assert_eq!(handled["fields"]["webhook_id"], "msg_2demoClerkCreated0001");
    // One CloudWatch EMF document for the request: what it did, under the provider.
    let metrics = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no EMF line in {logs}"));
    assert_eq!(
        metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "AttioUserSync"
    );
    assert_eq!(metrics["Provider"], "clerk");
    // A read (no other user holds the address), then the person and the user.
    assert_eq!(
        (metrics["Synced"].as_u64(), metrics["AttioCalls"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(metrics["Rejected"], 0);
    for secret in ["ada.lovelace@example.com", TOKEN, CLERK_SECRET] {
        assert!(!logs.contains(secret), "the logs contain {secret}: {logs}");
    }
}

#[tokio::test]
async fn cognito_trigger_binary_returns_the_event_and_creates_the_user() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;
    let function = Emulated::start(
        env!("CARGO_BIN_EXE_cognito-post-confirmation"),
        &[
            ("ATTIO_SYNC_SECRET_ID", secret_id),
            ("ATTIO_API_URL", attio.url()),
        ],
    )
    .await;
    let sample = root().join("events/cognito/post-confirmation-sign-up.json");

    let returned = function.invoke(&sample).await;

    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
    assert_eq!(returned, sent, "Cognito gets its event back unchanged");
    let [user] = attio
        .records("users")
        .try_into()
        .expect("one user in Attio");
    assert_eq!(
        user.text("user_id"),
        Some("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")
    );
    let (logs, lines) = function.logs().await;
    assert!(
        logs.contains("post confirmation handled") && !logs.contains("mae.jemison@example.com"),
        "{logs}"
    );
    let metrics = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no EMF line in {logs}"));
    assert_eq!(
        (
            metrics["Provider"].as_str(),
            metrics["Synced"].as_u64(),
            metrics["AttioCalls"].as_u64()
        ),
        (Some("cognito"), Some(1), Some(3)),
        "a read, then the person and the user"
    );
}

#[tokio::test]
async fn logs_repeat_nothing_from_a_body_or_from_unverified_headers() {
    const MARKER: &str = "HOSTILE-MARKER-c41d";
    let attio = AttioStandIn::start(TOKEN).await;
    let function = Emulated::webhooks(&attio).await;
    // A signed event whose field holds 200,000 characters of text (and an address).
    let mut body = clerk_user("user.created", "user_1", "a@example.com", "A", "B");
    body["data"]["created_at"] = serde_json::json!(format!(
        "{MARKER} leak.body@example.com {}",
        "x".repeat(200_000)
    ));
    let oversized_field = with_body("clerk-user-created.json", &body, CLERK_SECRET);
    // Unsigned requests whose delivery id is an address, or 60 KB of text.
    let unsigned = |id: String| {
        let mut event = event_file("clerk-user-created.json");
        event["headers"]["svix-id"] = serde_json::json!(id);
        event
    };
    // A signed request whose (signed) delivery id is not made like an id.
    let mut odd_id = event_file("clerk-user-created.json");
    odd_id["headers"]["svix-id"] = serde_json::json!("msg_leak.verified@example.com");
    let odd_id = resign(odd_id, CLERK_SECRET);
    let cases = [
        (oversized_field, 400),
        (unsigned("leak.someone@example.com".into()), 401),
        (unsigned(format!("{MARKER}{}", "y".repeat(60_000))), 401),
        (odd_id, 200),
    ];

    for (i, (event, status)) in cases.iter().enumerate() {
        let response = function.invoke_event(event).await;
        assert_eq!(response["statusCode"], *status, "case {i}: {response}");
    }

    let (logs, lines) = function.logs().await;
    for leak in [MARKER, "leak.", "xxxxxxxxxx", "yyyyyyyyyy"] {
        assert!(!logs.contains(leak), "the logs repeat {leak:?}: {logs}");
    }
    let handled: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "webhook handled")
        .collect();
    assert_eq!(handled.len(), cases.len(), "{logs}");
    for line in &lines {
        assert!(
            line.to_string().len() < 2_000,
            "a log line of {} bytes",
            line.to_string().len()
        );
    }
    let field = |i: usize, name: &str| handled[i]["fields"][name].as_str().unwrap_or("").to_owned();
    assert!(field(0, "detail").contains("data.created_at"), "{logs}");
    assert_eq!(field(0, "webhook_id"), "msg_2demoClerkCreated0001");
    for unverified in [1, 2] {
        assert_eq!(field(unverified, "webhook_id"), "", "{logs}");
        assert_eq!(field(unverified, "outcome"), "invalid_timestamp", "{logs}");
    }
    assert_eq!(field(3, "webhook_id"), "(withheld)", "{logs}");
}

#[tokio::test]
async fn events_lambda_http_cannot_read_are_answered_400_and_the_function_keeps_serving() {
    let attio = AttioStandIn::start(TOKEN).await;
    let function = Emulated::webhooks(&attio).await;
    let sample = || event_file("clerk-user-created.json");
    let mut not_base64 = sample();
    not_base64["isBase64Encoded"] = serde_json::json!(true);
    not_base64["body"] = serde_json::json!("{not base64!}");
    let mut bad_host = sample();
    bad_host["headers"]["host"] = serde_json::json!("bad host");
    let mut bad_proto = sample();
    bad_proto["headers"]["x-forwarded-proto"] = serde_json::json!("ht tp");
    let genuine = new_user_event();

    let mut answers = Vec::new();
    for event in [not_base64, bad_host, bad_proto, genuine] {
        answers.push(function.invoke_event(&event).await);
    }

    for unreadable in &answers[..3] {
        assert_eq!(unreadable["statusCode"], 400, "{unreadable}");
        let body: Value = serde_json::from_str(unreadable["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "invalid_payload", "{body}");
    }
    assert_eq!(
        answers[3]["statusCode"], 200,
        "the function still serves: {}",
        answers[3]
    );
    assert_eq!(attio.records("users").len(), 1);
    // Every line, the panics' included, is JSON (`logs` parses each).
    let (logs, lines) = function.logs().await;
    let panics = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("panicked"))
        })
        .count();
    assert_eq!(panics, 3, "{logs}");
}

#[tokio::test]
async fn a_mapped_field_left_out_is_logged_by_name_without_its_value() {
    let attio = AttioStandIn::start(TOKEN).await;
    let map = r#"{"users": {"seats": "/public_metadata/seats", "plan": "/public_metadata/plan"}}"#;
    let function =
        Emulated::webhooks_with(&attio, &[("ATTIO_ATTRIBUTE_MAP", map.to_owned())]).await;
    let mut body = clerk_user("user.created", "user_1", "ada@example.com", "Ada", "L");
    body["data"]["public_metadata"] =
        serde_json::json!({"seats": "MARKER-seats-value", "plan": "Pro"});

    let response = function
        .invoke_event(&with_body("clerk-user-created.json", &body, CLERK_SECRET))
        .await;

    assert_eq!(response["statusCode"], 200, "{response}");
    let [user] = attio.records("users").try_into().expect("one user");
    assert_eq!(user.values["plan"], serde_json::json!(["Pro"]));
    let (logs, lines) = function.logs().await;
    let handled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "webhook handled")
        .unwrap_or_else(|| panic!("no 'webhook handled' line in {logs}"));
    assert_eq!(handled["fields"]["warnings"], "users.seats", "{logs}");
    for leak in ["MARKER-seats-value", "ada@example.com"] {
        assert!(!logs.contains(leak), "the logs contain {leak}: {logs}");
    }
}

#[tokio::test]
async fn the_worker_binary_applies_an_sqs_batch_under_cargo_lambda_watch() {
    let queues = crate::support::queue::Queues::create(std::time::Duration::from_secs(1), 3).await;
    let env = queues.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DELIVERY_MODE", "queued"));
    let t = TestApp::spawn_with(&default_secret(), &vars).await;
    let queued = t.send(&new_user_event()).await;
    assert_eq!(queued.status, 202, "{:?}", queued.body);
    let [message] = queues.take_all().await.try_into().expect("one message");
    let worker = Emulated::start(
        env!("CARGO_BIN_EXE_attio-user-sync-worker"),
        &[
            ("ATTIO_SYNC_SECRET_ID", t.secret_id.clone()),
            ("ATTIO_API_URL", t.attio.url()),
            ("SYNC_DEAD_LETTER_QUEUE_URL", queues.dead_letter_url.clone()),
        ],
    )
    .await;
    // The event Lambda's SQS event source sends, holding what the queue held.
    let event = serde_json::json!({"Records": [{
        "messageId": "4d2a6d2e-0c1b-4a3e-9e57-3f6d1c2b7a10", "receiptHandle": "AQEB",
        "body": message.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "clerk:g", "SentTimestamp": "1795770000000"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:attio-user-sync.fifo", "awsRegion": "us-east-1"
    }]});

    let answer = worker.invoke_event(&event).await;

    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("user_1"));
    let (logs, lines) = worker.logs().await;
    let handled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "queued event handled")
        .unwrap_or_else(|| panic!("no 'queued event handled' line in {logs}"));
    assert_eq!(handled["fields"]["outcome"], "synced");
    let metrics = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no EMF line in {logs}"));
    assert_eq!(
        (metrics["Provider"].as_str(), metrics["Synced"].as_u64()),
        (Some("clerk"), Some(1))
    );
    assert!(!logs.contains("a@example.com"), "{logs}");
}

#[tokio::test]
async fn the_log_line_says_what_the_answer_says_outdated_and_queued() {
    let attio = AttioStandIn::start(TOKEN).await;
    let ordered = (
        "ATTIO_USER_EVENT_TIME_ATTRIBUTE",
        "last_event_at".to_owned(),
    );
    let function = Emulated::webhooks_with(&attio, std::slice::from_ref(&ordered)).await;
    let t1 = 1_795_770_000_000_i64;
    let newer = function
        .invoke_event(&clerk_event_at(
            "user.updated",
            "user_ada",
            "Newer",
            t1 + 60_000,
        ))
        .await;
    let older = function
        .invoke_event(&clerk_event_at("user.updated", "user_ada", "Older", t1))
        .await;
    let status = |answer: &Value| -> Value {
        serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap()["status"].clone()
    };
    assert_eq!(status(&newer), "synced", "{newer}");
    assert_eq!(status(&older), "outdated", "{older}");
    let (logs, lines) = function.logs().await;
    let outcomes: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "webhook handled")
        .map(|l| &l["fields"]["outcome"])
        .collect();
    assert_eq!(outcomes, ["synced", "outdated"], "{logs}");

    // The attribute with a queue: the event is queued, and the log line says so.
    let queues = crate::support::queue::Queues::create(std::time::Duration::from_secs(1), 3).await;
    let mut env = queues.env();
    env.push(ordered);
    let function = Emulated::webhooks_with(&attio, &env).await;
    let queued = function
        .invoke_event(&clerk_event_at(
            "user.updated",
            "user_ada",
            "Queued",
            t1 + 120_000,
        ))
        .await;
    assert_eq!(queued["statusCode"], 202, "{queued}");
    let (logs, lines) = function.logs().await;
    let handled = lines
        .iter()
        .find(|l| l["fields"]["message"] == "webhook handled")
        .unwrap_or_else(|| panic!("no 'webhook handled' line in {logs}"));
    assert_eq!(handled["fields"]["outcome"], "queued", "{logs}");
    assert_eq!(queues.depth().await, 1);
}

#[tokio::test]
async fn an_okta_batch_of_60_lands_within_oktas_two_attempts_with_attio_150_ms_away() {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.limit_rates(25, 100);
    attio.set_latency(std::time::Duration::from_millis(150));
    let function = Emulated::webhooks(&attio).await;
    let delivery = crate::batches::okta_creations(60);

    // Okta waits 3 s for an answer and retries a failed delivery once.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            function.invoke_event(&delivery),
        )
        .await;
        let Ok(answer) = attempt else {
            answers.push(Value::Null);
            continue;
        };
        let done = answer["statusCode"] == 200;
        answers.push(answer);
        if done {
            break;
        }
    }

    let users = attio.records("users").len();
    assert_eq!(users, 60, "every user lands: {answers:?}");
    for answer in &answers[..answers.len() - 1] {
        assert_eq!(answer["statusCode"], 503, "{answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "time_budget_exhausted", "{body}");
    }
}

#[tokio::test]
async fn the_scheduled_reconcile_emits_the_drift_of_each_route_under_cargo_lambda_watch() {
    use crate::support::clerk_api::{CLERK_SECRET_KEY, ClerkApi, clerk_listed_user};
    let attio = AttioStandIn::start(TOKEN).await;
    let listed: Vec<Value> = (0..6)
        .map(|n| clerk_listed_user(n, Some(&format!("scheduled.{n}@example.com"))))
        .collect();
    // Attio holds users 0 to 4 as synced, user 4 under an old name, and a user Clerk no
    // longer lists; user 5 is missing.
    let people = attio.seed(
        "people",
        (0..5).map(|n| {
            let last = if n == 4 {
                "Old".to_owned()
            } else {
                format!("User {n}")
            };
            serde_json::json!({"email_addresses": [format!("scheduled.{n}@example.com")],
                "name": [{"first_name": "Backfill", "last_name": last,
                          "full_name": format!("Backfill {last}")}]})
        }),
    );
    let mut users: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(n, person)| {
            serde_json::json!({"user_id": [format!("user_backfill_{n:04}")],
                "primary_email_address": [format!("scheduled.{n}@example.com")], "person": [person]})
        })
        .collect();
    users.push(serde_json::json!({"user_id": ["user_gone"], "primary_email_address": ["gone@example.com"]}));
    attio.seed("users", users);
    let clerk = ClerkApi::start(listed).await;
    // The list API's key comes from the function's secret.
    let mut secret = default_secret();
    secret["list_api"] = serde_json::json!({"CLERK_SECRET_KEY": CLERK_SECRET_KEY});
    let secret_id = create_secret(&secret).await;
    let function = Emulated::start(
        env!("CARGO_BIN_EXE_attio-user-sync-reconcile"),
        &[
            ("ATTIO_SYNC_SECRET_ID", secret_id.clone()),
            ("ATTIO_API_URL", attio.url()),
            ("CLERK_API_URL", clerk.url()),
            ("RECONCILE_ROUTES", "clerk".into()),
        ],
    )
    .await;
    // What an EventBridge schedule sends.
    let scheduled = serde_json::json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2026-12-03T06:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/attio-user-sync-reconcile"], "detail": {}});

    let answer = function.invoke_event(&scheduled).await;

    assert_eq!(
        (
            &answer["clerk"]["same"],
            &answer["clerk"]["missing"],
            &answer["clerk"]["differs"],
            &answer["clerk"]["orphans"]
        ),
        (
            &Value::from(4),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        ),
        "{answer}"
    );
    let writes = attio
        .requests()
        .iter()
        .filter(|r| r.method != "POST" && r.method != "GET")
        .count();
    assert_eq!(writes, 0, "a check writes nothing");
    let (logs, lines) = function.logs().await;
    let metrics = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .unwrap_or_else(|| panic!("no EMF line in {logs}"));
    assert_eq!(metrics["Provider"], "clerk");
    assert_eq!(
        (
            metrics["Missing"].as_u64(),
            metrics["Differs"].as_u64(),
            metrics["Orphans"].as_u64(),
            metrics["Drift"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(3))
    );
    assert_eq!(metrics["ReconcileFailed"].as_u64(), Some(0));
    let declared: Vec<&str> = metrics["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["Name"].as_str())
        .collect();
    assert!(
        declared.contains(&"Drift") && declared.contains(&"ReconcileSeconds"),
        "{declared:?}"
    );
    assert!(!logs.contains("@example.com"), "{logs}");

    // Asked to repair through the queue: the missing and the differing user are queued for the
    // worker, nothing is written from the reconcile, the orphan stays.
    let queues = crate::support::queue::Queues::create(Duration::from_secs(1), 3).await;
    let mut env = vec![
        ("ATTIO_SYNC_SECRET_ID", secret_id),
        ("ATTIO_API_URL", attio.url()),
        ("CLERK_API_URL", clerk.url()),
        ("RECONCILE_ROUTES", "clerk".into()),
        ("RECONCILE_REPAIR", "queue".into()),
    ];
    env.extend(queues.env());
    let repairing = Emulated::start(env!("CARGO_BIN_EXE_attio-user-sync-reconcile"), &env).await;

    let answer = repairing.invoke_event(&scheduled).await;

    assert_eq!(answer["clerk"]["queued"], 2, "{answer}");
    assert_eq!(
        queues.take_upserted_user_ids().await,
        ["user_backfill_0004", "user_backfill_0005"]
    );
    let writes = attio
        .requests()
        .iter()
        .filter(|r| r.method != "POST" && r.method != "GET")
        .count();
    assert_eq!(writes, 0, "the reconcile queues, the worker writes");
}
