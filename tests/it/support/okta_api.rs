//! A stand-in for Okta's `GET /api/v1/users`, strict about what Okta documents: `Authorization:
//! SSWS <token>`, `limit` 1–200 (default 200), an opaque `after` cursor, the next page as an
//! absolute URL in a `Link: <…>; rel="next"` header beside `rel="self"` (no next on the last
//! page), and `429` with `X-Rate-Limit-Reset` (epoch seconds) and no `Retry-After`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The API token the stand-in accepts.
pub const OKTA_API_TOKEN: &str = "00okta-test-token";

/// An Okta user as the list returns it; `email` `None` for one without.
pub fn okta_listed_user(n: usize, email: Option<&str>) -> Value {
    json!({
        "id": format!("00uBACKFILL{n:05}"), "status": "ACTIVE", "created": "2026-10-01T00:00:00.000Z",
        "activated": null, "statusChanged": null, "lastLogin": null, "lastUpdated": "2026-10-02T00:00:00.000Z",
        "type": {"id": "oty1"},
        "profile": {"firstName": "Okta", "lastName": format!("User {n}"), "mobilePhone": null, "secondEmail": null,
                    "login": format!("okta.user.{n}"), "email": email},
        "_links": {"self": {"href": format!("https://example.okta.com/api/v1/users/00uBACKFILL{n:05}")}}
    })
}

struct Inner {
    users: Vec<Value>,
    base: String,
    rate_limited: u32,
    requests: Vec<String>,
}

/// A running stand-in.
pub struct OktaApi {
    base: String,
    state: Arc<Mutex<Inner>>,
    _server: tokio::task::JoinHandle<()>,
}

impl OktaApi {
    /// Serves `users`.
    pub async fn start(users: Vec<Value>) -> Self {
        let loopback = super::Loopback::bind().await;
        let base = format!("http://{}", loopback.addr);
        let state = Arc::new(Mutex::new(Inner {
            users,
            base: base.clone(),
            rate_limited: 0,
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/api/v1/users", get(list))
            .with_state(state.clone());
        let server = loopback.serve(app, "Okta stand-in");
        Self {
            base,
            state,
            _server: server,
        }
    }

    /// `OKTA_ORG_URL` for it.
    pub fn url(&self) -> String {
        self.base.clone()
    }

    /// Answers the next `n` requests `429`.
    pub fn rate_limit(&self, n: u32) {
        self.state.lock().unwrap().rate_limited = n;
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.state.lock().unwrap().rate_limited
    }

    /// The query strings served.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn list(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let error = |status: StatusCode, code: &str, summary: &str| {
        (
            status,
            axum::Json(json!({"errorCode": code, "errorSummary": summary, "errorCauses": []})),
        )
            .into_response()
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("SSWS {OKTA_API_TOKEN}") {
        return error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
        answer
            .headers_mut()
            .insert("x-rate-limit-limit", HeaderValue::from_static("600"));
        answer
            .headers_mut()
            .insert("x-rate-limit-remaining", HeaderValue::from_static("0"));
        answer.headers_mut().insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        return answer;
    }
    let mut keys: Vec<_> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    keys.sort();
    s.requests.push(keys.join("&"));
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 200,
        Some(Ok(l)) if (1..=200).contains(&l) => l,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
            );
        }
    };
    // The cursor is opaque to clients: here, the id of the last user served.
    let start = match query.get("after") {
        None => 0,
        Some(after) => match s.users.iter().position(|u| u["id"] == *after) {
            Some(i) => i + 1,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: after",
                );
            }
        },
    };
    let page: Vec<Value> = s.users.iter().skip(start).take(limit).cloned().collect();
    let mut answer = axum::Json(Value::Array(page.clone())).into_response();
    let links = answer.headers_mut();
    links.append(
        "link",
        HeaderValue::from_str(&format!(
            "<{}/api/v1/users?limit={limit}>; rel=\"self\"",
            s.base
        ))
        .unwrap(),
    );
    if start + page.len() < s.users.len() {
        let after = page
            .last()
            .and_then(|u| u["id"].as_str())
            .unwrap_or_default();
        links.append(
            "link",
            HeaderValue::from_str(&format!(
                "<{}/api/v1/users?after={after}&limit={limit}>; rel=\"next\"",
                s.base
            ))
            .unwrap(),
        );
    }
    answer
}
