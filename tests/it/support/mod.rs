//! Shared fixtures: moto-backed secrets, the Attio stand-in, signed Lambda events.

pub mod attio_stand_in;

pub mod auth0_api;
pub mod aws_throttle;
pub mod clerk_api;
pub mod https_front;
pub mod kinde_api;
pub mod okta_api;
pub mod queue;
pub mod stytch_api;
pub mod supabase_api;
pub mod workos_api;

/// A stand-in of a provider's API that can answer `429` (or an AWS throttle) on demand.
pub trait RateLimited: Send + Sync {
    /// Makes the next `n` requests be refused for rate.
    fn rate_limit(&self, n: u32);
    /// Refusals asked for and not played yet.
    fn rate_limits_left(&self) -> u32;
}

/// A stand-in's server on a free loopback port. Bound first, for stand-ins whose answers name
/// their own URL (paging links, token issuers) and so need it before their routes are built.
pub struct Loopback {
    listener: tokio::net::TcpListener,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl Loopback {
    /// Binds 127.0.0.1 on a free port.
    pub async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("address");
        Self { listener, addr }
    }

    /// Serves `app` (`what`, for the message should the server fail) until the task is dropped.
    pub fn serve(self, app: axum::Router, what: &'static str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            axum::serve(self.listener, app)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        })
    }
}

/// Serves `app` on a free loopback port: its address and the server's task.
pub async fn serve_on_loopback(
    app: axum::Router,
    what: &'static str,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let loopback = Loopback::bind().await;
    let addr = loopback.addr;
    (addr, loopback.serve(app, what))
}

/// Each list-API stand-in's own `rate_limit` and `rate_limits_left` (inherent, since the demo's
/// example includes a stand-in's file alone), as [`RateLimited`].
macro_rules! rate_limited {
    ($($api:ty),*) => {$(
        impl RateLimited for $api {
            fn rate_limit(&self, n: u32) {
                <$api>::rate_limit(self, n)
            }
            fn rate_limits_left(&self) -> u32 {
                <$api>::rate_limits_left(self)
            }
        }
    )*};
}
rate_limited!(
    clerk_api::ClerkApi,
    workos_api::WorkOsApi,
    okta_api::OktaApi,
    auth0_api::Auth0Api,
    stytch_api::StytchApi,
    kinde_api::KindeApi,
    supabase_api::SupabaseApi
);

impl RateLimited for aws_throttle::ThrottlingFront {
    fn rate_limit(&self, n: u32) {
        self.throttle(n)
    }
    fn rate_limits_left(&self) -> u32 {
        self.throttles_left()
    }
}

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use attio_user_sync::attio::{AttioClient, RetryPolicy};
use attio_user_sync::queue::SyncQueue;
use attio_user_sync::secrets::client_from_lookup;
use attio_user_sync::signature::{hmac_sha256_hex, sign_standard_webhook};
use attio_user_sync::worker::Worker;
use attio_user_sync::{App, Config};
use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

pub use attio_stand_in::{AttioStandIn, Fault, Record};

/// The Attio token the stand-in accepts by default.
pub const TOKEN: &str = "attio-test-token";
/// Clerk's signing secret in tests.
pub const CLERK_SECRET: &str = "whsec_dGVzdCBjbGVyayBzaWduaW5nIHNlY3JldCAjMQ==";
/// Stytch's signing secret (Svix).
pub const STYTCH_SECRET: &str = "whsec_dGVzdCBzdHl0Y2ggc2lnbmluZyBzZWNyZXQhIQ==";
/// WorkOS's signing secret (used as UTF-8 bytes, not base64).
pub const WORKOS_SECRET: &str = "test_workos_secret_0123456789";
/// Shared `Authorization` header values of the routes that use one.
pub const OKTA_SECRET: &str = "okta-test-shared-secret";
pub const AUTH0_SECRET: &str = "Bearer auth0-test-token";
pub const SUPABASE_DB_SECRET: &str = "Bearer supabase-db-test-secret";
/// The Standard Webhooks route's two secrets, as during a rotation.
pub const STANDARD_OLD: &str = "whsec_dGVzdCBzdGFuZGFyZCBzZWNyZXQgKG9sZCkhIQ==";
pub const STANDARD_NEW: &str = "whsec_dGVzdCBzdGFuZGFyZCBzZWNyZXQgKG5ldykhIQ==";

/// The secret's JSON with the default token and signing secrets.
pub fn default_secret() -> Value {
    json!({
        "attio_access_token": TOKEN,
        "webhook_secrets": {
            "clerk": CLERK_SECRET,
            "standard": [STANDARD_OLD, STANDARD_NEW],
            "workos": WORKOS_SECRET,
            "stytch": STYTCH_SECRET,
            "okta": OKTA_SECRET,
            "auth0": AUTH0_SECRET,
            "supabase-db": SUPABASE_DB_SECRET,
        }
    })
}

/// A Secrets Manager client for moto's server, which `scripts/test.sh` starts.
pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    moto_endpoint();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_secretsmanager::Client::new(&config)
}

/// Checks that moto's Secrets Manager is configured, or says how to start it.
fn moto_endpoint() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some(),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set: run the tests with ./scripts/test.sh, which starts moto's Secrets Manager"
    );
}

/// Creates a secret with a unique name holding `content`; returns its name.
pub async fn create_secret(content: &Value) -> String {
    let name = format!("attio-user-sync/test/{:016x}", fastrand::u64(..));
    secrets_client()
        .await
        .create_secret()
        .name(&name)
        .secret_string(content.to_string())
        .send()
        .await
        .expect("create secret in moto");
    name
}

/// Replaces the secret's value, as a rotation would.
pub async fn put_secret(name: &str, content: &Value) {
    secrets_client()
        .await
        .put_secret_value()
        .secret_id(name)
        .secret_string(content.to_string())
        .send()
        .await
        .expect("put secret value in moto");
}

/// The function, its Attio stand-in and its secret.
pub struct TestApp {
    pub app: App,
    pub attio: AttioStandIn,
    pub secret_id: String,
}

/// What the sender saw.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// With the default secret and configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(&default_secret(), &[]).await
    }

    /// With this secret content and extra environment variables.
    pub async fn spawn_with(secret: &Value, env: &[(&str, &str)]) -> Self {
        let attio = AttioStandIn::start(TOKEN).await;
        let secret_id = create_secret(secret).await;
        let app = app_for(&secret_id, &attio.url(), env).await;
        Self {
            app,
            attio,
            secret_id,
        }
    }

    /// Runs the handler on a Lambda event, as the Lambda runtime would.
    pub async fn send(&self, event: &Value) -> Answer {
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("lambda_http parses the event");
        self.answer(request).await
    }

    /// As [`send`](Self::send), in an invocation whose Lambda deadline is `deadline`.
    pub async fn send_with_deadline(&self, event: &Value, deadline: SystemTime) -> Answer {
        use lambda_http::RequestExt as _;
        let mut context = lambda_http::Context::default();
        context.deadline = deadline
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("lambda_http parses the event")
            .with_lambda_context(context);
        self.answer(request).await
    }

    async fn answer(&self, request: lambda_http::Request) -> Answer {
        let response = self.app.handle(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = serde_json::from_slice(response.body().as_ref()).expect("the answer is JSON");
        Answer {
            status,
            body,
            headers,
        }
    }
}

/// Builds the app the way `main` does, with `Config::from_lookup` instead of the process env.
pub async fn app_for(secret_id: &str, attio_url: &str, env: &[(&str, &str)]) -> App {
    moto_endpoint();
    app_with(None, secret_id, attio_url, env)
}

/// An app whose Secrets Manager is at `endpoint` (a fault-injecting stub) instead of moto.
pub async fn app_with_secrets_endpoint(secret_id: &str, attio_url: &str, endpoint: &str) -> App {
    app_with(Some(endpoint), secret_id, attio_url, &[])
}

/// [`app_for`] with its Attio writes not paced: for the backfill's paging tests, which read
/// thousands of users from stand-ins that do not limit Attio's rate (the backfill binary paces
/// its own writes, and `benches/backfill.rs` measures that pace).
pub async fn unpaced_app_for(secret_id: &str, attio_url: &str) -> App {
    moto_endpoint();
    app_built(None, secret_id, attio_url, &[], |attio| {
        attio.with_limiter(std::sync::Arc::new(
            attio_user_sync::pace::WriteLimiter::bursting(1_000_000.0),
        ))
    })
}

fn app_with(
    secrets_endpoint: Option<&str>,
    secret_id: &str,
    attio_url: &str,
    env: &[(&str, &str)],
) -> App {
    app_built(secrets_endpoint, secret_id, attio_url, env, |attio| attio)
}

fn app_built(
    secrets_endpoint: Option<&str>,
    secret_id: &str,
    attio_url: &str,
    env: &[(&str, &str)],
    client: impl FnOnce(AttioClient) -> AttioClient,
) -> App {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("ATTIO_SYNC_SECRET_ID".into(), secret_id.to_owned()),
        ("ATTIO_API_URL".into(), attio_url.to_owned()),
    ]);
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test configuration");
    let tls = attio_user_sync::tls::client_config(config.ca_bundle.as_deref()).expect("TLS");
    let attio = client(
        AttioClient::new(&config.attio_api_url, RetryPolicy::default(), tls).expect("client"),
    );
    // Secrets Manager reached as the function reaches it: through its HTTP client, configured
    // from the environment (moto's endpoint, set by scripts/test.sh), or at `secrets_endpoint`.
    let secrets = client_from_lookup(attio.http_client(), |name| match secrets_endpoint {
        Some(url) if name == "AWS_ENDPOINT_URL_SECRETS_MANAGER" => Some(url.to_owned()),
        _ => std::env::var(name).ok(),
    });
    let http = attio.http_client();
    let app = App::new(config.clone(), secrets, attio);
    // SQS reached as the function reaches it: moto's endpoint from AWS_ENDPOINT_URL_SQS.
    match config.sync_queue_url {
        Some(url) => app.with_queue(SyncQueue::new(
            attio_user_sync::queue::client_from_lookup(http, |n| std::env::var(n).ok()),
            url,
        )),
        None => app,
    }
}

/// The queue worker, built as its binary builds it (dead letters to
/// `SYNC_DEAD_LETTER_QUEUE_URL` when `env` sets it).
pub async fn worker_for(secret_id: &str, attio_url: &str, env: &[(&str, &str)]) -> Worker {
    Worker::from_app(app_for(secret_id, attio_url, env).await)
}

/// A Secrets Manager endpoint that answers every call with ThrottlingException; returns its URL.
pub async fn stub_secrets_manager_throttling() -> String {
    use axum::http::StatusCode;
    let app = axum::Router::new().fallback(|| async {
        (
            StatusCode::BAD_REQUEST,
            [
                ("x-amzn-errortype", "ThrottlingException"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        )
    });
    let (addr, _detached) = serve_on_loopback(app, "stub server").await;
    format!("http://{addr}")
}

/// An endpoint that accepts connections and closes them without answering; returns its URL
/// and the number of connections accepted so far.
pub async fn stub_dropping_connections() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind stub");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, accepted)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A sample from `events/`, as shipped.
pub fn event_file(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event files are JSON")
}

/// Re-signs an event (Svix or Standard Webhooks headers) with `secret` at `timestamp`.
pub fn resign_at(mut event: Value, secret: &str, timestamp: i64) -> Value {
    if event["headers"].get("authorization").is_some() {
        // Okta, Auth0 and Supabase database webhooks repeat a shared secret instead of signing.
        event["headers"]["authorization"] = json!(secret);
        return event;
    }
    if event["headers"].get("workos-signature").is_some() {
        let body = event["body"].as_str().expect("body").to_owned();
        let t = (timestamp * 1000).to_string();
        let hex = hmac_sha256_hex(secret.as_bytes(), &[t.as_bytes(), b".", body.as_bytes()]);
        event["headers"]["workos-signature"] = json!(format!("t={t}, v1={hex}"));
        return event;
    }
    let prefix = if event["headers"].get("svix-id").is_some() {
        "svix"
    } else {
        "webhook"
    };
    let id = event["headers"][format!("{prefix}-id")]
        .as_str()
        .expect("id header")
        .to_owned();
    // Sign the bytes the sender sent: decoded, when the event carries them as base64.
    let body = event["body"].as_str().expect("body").to_owned();
    let body = if event["isBase64Encoded"] == json!(true) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body")
    } else {
        body.into_bytes()
    };
    let signature = sign_standard_webhook(secret, &id, timestamp, &body).expect("usable secret");

    event["headers"][format!("{prefix}-timestamp")] = json!(timestamp.to_string());
    event["headers"][format!("{prefix}-signature")] = json!(signature);
    event
}

/// The same event as a new message of the sender (a new `svix-id`/`webhook-id`), signed with
/// `secret` now: what a sender sends when the same content changes again, as opposed to a
/// redelivery of one message.
pub fn as_new_message(mut event: Value, secret: &str) -> Value {
    for id in ["svix-id", "webhook-id"] {
        if event["headers"].get(id).is_some() {
            event["headers"][id] = json!(format!("msg_{:016x}", fastrand::u64(..)));
        }
    }
    resign(event, secret)
}

/// Re-signs an event with `secret` now.
pub fn resign(event: Value, secret: &str) -> Value {
    resign_at(event, secret, now())
}

/// An event like `template` with another body, signed with `secret` now.
pub fn with_body(template: &str, body: &Value, secret: &str) -> Value {
    let mut event = event_file(template);
    event["body"] = json!(body.to_string());
    resign(event, secret)
}

/// A Clerk `user.created`/`user.updated` body.
pub fn clerk_user(event_type: &str, user_id: &str, email: &str, first: &str, last: &str) -> Value {
    json!({
        "type": event_type, "object": "event", "instance_id": "ins_test", "timestamp": 1_795_770_000_000_i64,
        "data": {
            "id": user_id, "object": "user", "first_name": first, "last_name": last,
            "email_addresses": [{"id": "idn_primary", "email_address": email, "object": "email_address"}],
            "primary_email_address_id": "idn_primary", "created_at": 1_795_770_000_000_i64
        }
    })
}

/// A signed Clerk delivery for a user.
pub fn clerk_event(event_type: &str, user_id: &str, email: &str, first: &str, last: &str) -> Value {
    with_body(
        "clerk-user-created.json",
        &clerk_user(event_type, user_id, email, first, last),
        CLERK_SECRET,
    )
}

/// A signed Clerk delivery for the user most tests use: `user_ada`, ada@example.com, "Ada"
/// with last name `last`.
pub fn ada_event(event_type: &str, last: &str) -> Value {
    clerk_event(event_type, "user_ada", "ada@example.com", "Ada", last)
}

/// A Function URL event for another path and method, unsigned.
pub fn request_to(method: &str, path: &str) -> Value {
    let mut event = event_file("clerk-user-created.json");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event
}

/// A signed Clerk `organizationMembership.*` delivery.
pub fn clerk_membership(
    event_type: &str,
    user_id: &str,
    identifier: &str,
    org_id: &str,
    org_name: &str,
) -> Value {
    let body = json!({
        "type": event_type, "object": "event", "instance_id": "ins_test",
        "data": {
            "id": format!("orgmem_{user_id}_{org_id}"), "object": "organization_membership", "role": "org:member",
            "organization": {"id": org_id, "name": org_name, "slug": org_name.to_lowercase(), "object": "organization"},
            "public_user_data": {"user_id": user_id, "identifier": identifier, "first_name": "Ada", "last_name": "Lovelace"}
        }
    });
    with_body("clerk-user-created.json", &body, CLERK_SECRET)
}

/// A JWKS endpoint for Kinde tests: `GET /.well-known/jwks.json` serves the keys it holds now.
pub struct JwksServer {
    pub url: String,
    keys: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl JwksServer {
    /// Serves test keys `1`, `2`, … (tests/it/fixtures/kinde-test-key-N.jwk.json).
    pub async fn start(key_numbers: &[u32]) -> Self {
        use std::sync::atomic::Ordering;
        let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let keys = served.lock().expect("keys lock").clone();
                    axum::Json(json!({ "keys": keys }))
                }
            }),
        );
        let (addr, _detached) = serve_on_loopback(app, "jwks server").await;
        let url = format!("http://{addr}");
        let server = Self { url, keys, fetches };
        server.serve(key_numbers);
        server
    }

    /// From now on serve these test keys (a rotation).
    pub fn serve(&self, key_numbers: &[u32]) {
        *self.keys.lock().expect("keys lock") = key_numbers.iter().map(|n| test_jwk(*n)).collect();
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> u32 {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn test_jwk(n: u32) -> Value {
    serde_json::from_str(&fixture(&format!("kinde-test-key-{n}.jwk.json"))).expect("JWK fixture")
}

/// A Kinde webhook token: `claims` signed RS256 with test key `n` (kid `kinde-test-N`).
pub fn kinde_token(claims: &Value, n: u32) -> String {
    use base64::Engine as _;
    let pem = fixture(&format!("kinde-test-key-{n}.pem"));
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .expect("PEM body");
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(format!("kinde-test-{n}"));
    jsonwebtoken::encode(&header, claims, &key).expect("sign test token")
}

/// Kinde `user.created` claims for a user in one organisation.
pub fn kinde_user_created(user_id: &str, email: &str, org: &str) -> Value {
    json!({
        "type": "user.created", "event_id": "event_test", "source": "admin", "timestamp": "2026-11-27T09:00:00Z",
        "data": {"user": {"id": user_id, "email": email, "first_name": "Gladys", "last_name": "West",
                          "organizations": [{"code": org, "permissions": null, "roles": null}]}}
    })
}

/// The Kinde sample event with `token` as its body.
pub fn kinde_event(token: &str) -> Value {
    let mut event = event_file("kinde-user-created.json");
    event["body"] = json!(token);
    event
}

/// A signed Clerk delivery whose user was last updated at `updated_at_ms` (Unix ms).
pub fn clerk_event_at(event_type: &str, user_id: &str, last: &str, updated_at_ms: i64) -> Value {
    let mut body = clerk_user(event_type, user_id, "ada@example.com", "Ada", last);
    body["data"]["updated_at"] = json!(updated_at_ms);
    with_body("clerk-user-created.json", &body, CLERK_SECRET)
}

/// A fault as Attio sends it: `status` with Attio's error `code`, no `Retry-After`.
pub fn attio_error(status: u16, code: &'static str) -> Fault {
    Fault::Status {
        status,
        code,
        retry_after: None,
    }
}

/// Makes the next call to `object` (or to any object) fail with `fault` on every attempt the
/// function's retry policy allows.
pub fn fail_every_attempt(attio: &AttioStandIn, object: Option<&str>, fault: Fault) {
    for _ in 0..attio_user_sync::attio::RetryPolicy::default().max_attempts {
        match object {
            Some(object) => attio.inject_for(object, fault.clone()),
            None => attio.inject(fault.clone()),
        }
    }
}

/// A signed Clerk `user.created` for a plain new user (`user_1`, `a@example.com`).
pub fn new_user_event() -> Value {
    clerk_event("user.created", "user_1", "a@example.com", "A", "B")
}

/// Svix's retry schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), compressed to
/// milliseconds-to-seconds so a load run ends in minutes.
pub const SVIX_RETRIES_COMPRESSED: [std::time::Duration; 8] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_millis(50),
    std::time::Duration::from_millis(250),
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(3),
    std::time::Duration::from_secs(3),
];

/// After a load run whose user `n` is `{prefix}{n}` and whose version `v` writes the last name
/// `v{v}`: how many users are missing from Attio, held twice, or left with another version than
/// their newest (`latest[n]`).
pub fn missing_duplicated_stale(
    attio: &AttioStandIn,
    prefix: &str,
    latest: &[u32],
) -> (usize, usize, usize) {
    let users = attio.records("users");
    let people = attio.records("people");
    let (mut missing, mut duplicated, mut stale) = (0, 0, 0);
    for (user, version) in latest.iter().enumerate() {
        let id = format!("{prefix}{user}");
        let held: Vec<_> = users
            .iter()
            .filter(|r| r.text("user_id") == Some(id.as_str()))
            .collect();
        match held.as_slice() {
            [] => missing += 1,
            [record] => {
                let name = people
                    .iter()
                    .find(|p| Some(p.id.as_str()) == record.text("person"))
                    .and_then(|p| p.first("name"))
                    .map(|n| n["last_name"].clone());
                if name != Some(Value::from(format!("v{version}"))) {
                    stale += 1;
                }
            }
            _ => duplicated += 1,
        }
    }
    (missing, duplicated, stale)
}

/// Version `version` of load-run user `{prefix}{user}` as a signed Clerk event: `user.created`
/// for version 0, else `user.updated`; last name `v{version}`; Clerk's `updated_at` (which orders
/// one user's changes) `version` seconds in; a `svix-id` per version, which its redeliveries keep.
pub fn versioned_clerk_event(prefix: &str, user: usize, version: u32) -> Value {
    let event_type = if version == 0 {
        "user.created"
    } else {
        "user.updated"
    };
    let mut body = clerk_user(
        event_type,
        &format!("{prefix}{user}"),
        &format!("{prefix}{user}@example.com").replace('_', "."),
        "Load",
        &format!("v{version}"),
    );
    body["data"]["updated_at"] = json!(1_795_770_000_000_i64 + i64::from(version) * 1000);
    let mut event = with_body("clerk-user-created.json", &body, CLERK_SECRET);
    event["headers"]["svix-id"] = json!(format!("msg_{prefix}{user}_{version}"));
    resign(event, CLERK_SECRET)
}

/// A user pool in moto with `count` users (`cognito-user-<n>`, given name "Cog", email
/// `cognito.user.<n>@example.com` unless `without_email(n)`), each confirmed with a permanent
/// password unless `unconfirmed(n)` (then `FORCE_CHANGE_PASSWORD`). Returns the pool's id and
/// each user's `sub`, in creation order.
pub async fn cognito_pool(
    count: usize,
    without_email: impl Fn(usize) -> bool,
    unconfirmed: impl Fn(usize) -> bool,
) -> (String, Vec<String>) {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER").is_some(),
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER is not set: run the tests with ./scripts/test.sh"
    );
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool_id = cognito
        .create_user_pool()
        .pool_name(format!("backfill-{:08x}", fastrand::u32(..)))
        .send()
        .await
        .expect("a user pool in moto")
        .user_pool()
        .and_then(|p| p.id())
        .expect("a pool id")
        .to_owned();
    let attribute = |name: &str, value: String| {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .expect("an attribute")
    };
    let mut subs = Vec::new();
    for n in 0..count {
        let mut attributes = vec![attribute("given_name", "Cog".into())];
        if !without_email(n) {
            attributes.push(attribute("email", format!("cognito.user.{n}@example.com")));
        }
        let username = format!("cognito-user-{n}");
        let created = cognito
            .admin_create_user()
            .user_pool_id(&pool_id)
            .username(&username)
            .set_user_attributes(Some(attributes))
            .send()
            .await
            .expect("a user in moto");
        subs.push(
            created
                .user()
                .and_then(|u| u.attributes().iter().find(|a| a.name() == "sub"))
                .and_then(|a| a.value())
                .expect("moto gives each user a sub")
                .to_owned(),
        );
        if !unconfirmed(n) {
            cognito
                .admin_set_user_password()
                .user_pool_id(&pool_id)
                .username(&username)
                .password("Correct-Horse-9!")
                .permanent(true)
                .send()
                .await
                .expect("a password in moto");
        }
    }
    (pool_id, subs)
}

/// The `user_id`s of the users Attio holds, sorted (one per record: a duplicate shows twice).
pub fn user_ids(attio: &AttioStandIn) -> Vec<String> {
    let mut ids: Vec<String> = attio
        .records("users")
        .iter()
        .filter_map(|u| u.text("user_id").map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The writes (asserts, updates, deletes) Attio received since its `from`th request: (method,
/// object) each. Queries and GETs are reads.
pub fn writes_since(attio: &AttioStandIn, from: usize) -> Vec<(String, String)> {
    attio.requests()[from..]
        .iter()
        .filter(|r| r.method != "POST" && r.method != "GET")
        .map(|r| (r.method.clone(), r.object.clone()))
        .collect()
}

/// A signed Clerk `user.updated` in which `user_b` takes the address `a@example.com` (another
/// user's, in the tests that use it) and a new name.
pub fn clerk_address_taken_from_user_a() -> Value {
    clerk_event(
        "user.updated",
        "user_b",
        "a@example.com",
        "Impostor",
        "Name",
    )
}

/// The names of the workspaces Attio holds, sorted.
pub fn workspace_names(attio: &AttioStandIn) -> Vec<String> {
    let mut names: Vec<String> = attio
        .records("workspaces")
        .iter()
        .filter_map(|w| w.text("name").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The `workspace_id`s of the workspaces Attio links to the user `user_id`.
pub fn linked_workspaces(attio: &AttioStandIn, user_id: &str) -> Vec<String> {
    let workspaces = attio.records("workspaces");
    let Some(user) = attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some(user_id))
    else {
        return Vec::new();
    };
    user.values
        .get("workspace")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|id| {
            let w = workspaces
                .iter()
                .find(|w| Some(w.id.as_str()) == id.as_str())?;
            w.text("workspace_id").map(str::to_owned)
        })
        .collect()
}

/// Runs `attio-user-sync-backfill` as a person would, with `env` set: (exit code, stdout,
/// stderr).
pub async fn run_backfill_binary(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_attio-user-sync-backfill"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("the backfill binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
