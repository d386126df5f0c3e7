//! What both benchmarks send: signed webhook events per provider route, wrapped as Lambda
//! Function URL events, and the Secrets Manager secret (in moto) that verifies them.

use std::time::{SystemTime, UNIX_EPOCH};

use attio_user_sync::signature::{hmac_sha256_hex, sign_standard_webhook};
use serde_json::{Value, json};

pub const TOKEN: &str = "bench-attio-token";
const CLERK: &str = "whsec_YmVuY2ggY2xlcmsgc2lnbmluZyBzZWNyZXQhIQ==";
const STANDARD: &str = "whsec_YmVuY2ggc3RhbmRhcmQgc2lnbmluZyBzZWNyZXQ=";
const WORKOS: &str = "bench-workos-secret";
const OKTA: &str = "bench-okta-shared-secret";

/// The routes every benchmark covers: the two Svix-style schemes, WorkOS's HMAC header and a
/// shared-secret header (Okta's; Auth0 and Supabase database webhooks check the same way).
pub const ROUTES: [&str; 4] = ["clerk", "standard", "workos", "okta"];

/// The function's secret: the Attio token and every route's signing secret.
pub fn secret_string() -> String {
    json!({"attio_access_token": TOKEN,
        "webhook_secrets": {"clerk": CLERK, "standard": STANDARD, "workos": WORKOS, "okta": OKTA}})
    .to_string()
}

/// Creates the function's secret in moto (`AWS_ENDPOINT_URL_SECRETS_MANAGER`) under a fresh
/// name and returns the name.
pub async fn create_bench_secret() -> String {
    let secret_id = format!("attio-user-sync/bench/{:x}", fastrand::u64(..));
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&secret_id)
        .secret_string(secret_string())
        .send()
        .await
        .expect("create the bench secret in moto");
    secret_id
}

/// The number in the variable `name`, else `default` (a bench's size, latency, …).
#[allow(dead_code)] // the handler and process benches take no numbers
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Function URL event for `path` with `headers` and `body`.
fn url_event(path: &str, headers: Value, body: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1",
            "userAgent": "bench"}, "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:09:00:00 +0000",
            "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    })
}

/// A signed event of `route` for user number `n`.
pub fn event(route: &str, n: usize) -> Value {
    let email = format!("bench.{route}.{n}@example.com");
    match route {
        "clerk" | "standard" => {
            let (secret, prefix, body) = if route == "clerk" {
                let body = json!({"type": "user.created", "object": "event", "data": {"id": format!("user_{n}"),
                    "first_name": "Bench", "last_name": format!("User {n}"), "primary_email_address_id": "idn_1",
                    "email_addresses": [{"id": "idn_1", "email_address": email}], "created_at": 1_795_770_000_000_i64,
                    "updated_at": 1_795_770_000_000_i64}});
                (CLERK, "svix", body)
            } else {
                let body = json!({"type": "user.created", "data": {"id": format!("user_{n}"), "email": email,
                    "first_name": "Bench", "last_name": format!("User {n}")}});
                (STANDARD, "webhook", body)
            };
            let body = body.to_string();
            let id = format!("msg_{n}");
            let ts = now();
            let signature = sign_standard_webhook(secret, &id, ts, body.as_bytes()).unwrap();
            let headers = json!({"content-type": "application/json", format!("{prefix}-id"): id,
                format!("{prefix}-timestamp"): ts.to_string(), format!("{prefix}-signature"): signature});
            url_event(&format!("/webhooks/{route}"), headers, &body)
        }
        "workos" => {
            let body = json!({"id": format!("event_{n}"), "event": "user.created", "data": {"object": "user",
                "id": format!("user_{n}"), "email": email, "first_name": "Bench", "last_name": format!("User {n}")}})
            .to_string();
            let t = (now() * 1000).to_string();
            let hex = hmac_sha256_hex(WORKOS.as_bytes(), &[t.as_bytes(), b".", body.as_bytes()]);
            let headers = json!({"content-type": "application/json", "workos-signature": format!("t={t}, v1={hex}")});
            url_event("/webhooks/workos", headers, &body)
        }
        "okta" => {
            let body = json!({"eventType": "com.okta.event_hook", "data": {"events": [{"eventType": "user.lifecycle.create",
                "published": "2026-11-27T09:00:00.000Z", "target": [{"id": format!("00u{n}"), "type": "User",
                "alternateId": email, "displayName": format!("Bench User{n}")}]}]}})
            .to_string();
            url_event(
                "/webhooks/okta",
                json!({"content-type": "application/json", "authorization": OKTA}),
                &body,
            )
        }
        "floor" => url_event("/", json!({"content-type": "application/json"}), "{}"),
        other => panic!("no bench event for {other}"),
    }
}
