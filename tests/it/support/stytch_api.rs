//! A stand-in for Stytch's consumer users search, strict about what Stytch documents: `POST
//! /v1/users/search` with a JSON body `{limit (1–1000, default 100), cursor, query}`,
//! `Authorization: Basic base64(project_id:secret)`, answering `{request_id, results,
//! results_metadata: {total, next_cursor}, status_code}` with `next_cursor: null` at the end, and
//! `429` `{status_code, error_type: "too_many_requests"}` with no reset header.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

pub const STYTCH_PROJECT_ID: &str = "project-test-backfill";
pub const STYTCH_SECRET: &str = "secret-test-backfill";

/// A Stytch consumer user as the search returns it.
pub fn stytch_listed_user(n: usize) -> Value {
    json!({
        "user_id": format!("user-test-{n:08}"), "status": "active",
        "emails": [{"email_id": format!("email-test-{n}"), "email": format!("stytch.user.{n}@example.com"), "verified": true}],
        "phone_numbers": [], "name": {"first_name": "Stytch", "middle_name": "", "last_name": format!("User {n}")},
        "trusted_metadata": {}, "untrusted_metadata": {}, "created_at": "2026-10-01T00:00:00Z", "providers": [], "roles": ["stytch_user"]
    })
}

struct Inner {
    users: Vec<Value>,
    rate_limited: u32,
    bodies: Vec<Value>,
}

/// A running stand-in.
pub struct StytchApi {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<Inner>>,
    _server: tokio::task::JoinHandle<()>,
}

impl StytchApi {
    pub async fn start(users: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(Inner {
            users,
            rate_limited: 0,
            bodies: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/users/search", post(search))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("Stytch stand-in");
        });
        Self {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn rate_limit(&self, n: u32) {
        self.state.lock().unwrap().rate_limited = n;
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.state.lock().unwrap().rate_limited
    }

    /// The search bodies received.
    pub fn bodies(&self) -> Vec<Value> {
        self.state.lock().unwrap().bodies.clone()
    }
}

fn error(status: StatusCode, error_type: &str) -> Response {
    (status, axum::Json(json!({"status_code": status.as_u16(), "request_id": "request-id-test", "error_type": error_type, "error_message": error_type}))).into_response()
}

async fn search(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{STYTCH_PROJECT_ID}:{STYTCH_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized_credentials");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        return error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    }
    s.bodies.push(body.clone());
    let limit = match body.get("limit") {
        None => 100,
        Some(l) => match l.as_u64() {
            Some(l) if (1..=1000).contains(&l) => l as usize,
            _ => return error(StatusCode::BAD_REQUEST, "invalid_limit"),
        },
    };
    // The cursor is opaque to clients: here, the index of the next user, disguised.
    let start = match body.get("cursor").and_then(Value::as_str) {
        None => 0,
        Some(c) => match c
            .strip_prefix("cursor-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "invalid_cursor"),
        },
    };
    let results: Vec<Value> = s.users.iter().skip(start).take(limit).cloned().collect();
    let end = start + results.len();
    let next = (end < s.users.len()).then(|| format!("cursor-{end}"));
    axum::Json(
        json!({"request_id": "request-id-test", "status_code": 200, "results": results,
                      "results_metadata": {"total": s.users.len(), "next_cursor": next}}),
    )
    .into_response()
}
