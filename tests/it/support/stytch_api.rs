//! A stand-in for Stytch's consumer users search, strict about what Stytch documents: `POST
//! /v1/users/search` with a JSON body `{limit (1–1000, default 100), cursor, query}`,
//! `Authorization: Basic base64(project_id:secret)`, answering `{request_id, results,
//! results_metadata: {total, next_cursor}, status_code}` with `next_cursor: null` at the end, and
//! `429` `{status_code, error_type: "too_many_requests"}` with no reset header. For B2B
//! projects: `POST /v1/b2b/organizations/search` (`{limit, cursor}` → `{organizations,
//! results_metadata}`) and `POST /v1/b2b/organizations/members/search`, which requires at least
//! one of `organization_ids` and answers `{members, results_metadata, organizations: {id →
//! organization}}`.
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

/// A B2B organisation as the organisations search returns it.
pub fn stytch_organisation(n: usize) -> Value {
    json!({"organization_id": format!("organization-test-{n:04}"), "organization_name": format!("Org {n}"),
           "organization_slug": format!("org-{n}"), "email_allowed_domains": [], "trusted_metadata": {}})
}

/// A B2B member of `organisation` as the members search returns it; `email` `None` for one
/// without an address.
pub fn stytch_member(n: usize, organisation: &str, email: Option<&str>) -> Value {
    json!({"member_id": format!("member-test-{n:06}"), "organization_id": organisation,
           "email_address": email.unwrap_or(""), "email_address_verified": email.is_some(),
           "name": format!("Member {n}"), "status": "active", "roles": [], "is_admin": false,
           "trusted_metadata": {}, "untrusted_metadata": {},
           "created_at": "2026-10-01T00:00:00Z", "updated_at": "2026-10-02T00:00:00Z"})
}

#[derive(Default)]
struct Inner {
    users: Vec<Value>,
    organisations: Vec<Value>,
    members: Vec<Value>,
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
    /// A consumer project with `users`.
    pub async fn start(users: Vec<Value>) -> Self {
        Self::serve(Inner {
            users,
            ..Inner::default()
        })
        .await
    }

    /// A B2B project with `organisations` and their `members`.
    pub async fn start_b2b(organisations: Vec<Value>, members: Vec<Value>) -> Self {
        Self::serve(Inner {
            organisations,
            members,
            ..Inner::default()
        })
        .await
    }

    async fn serve(inner: Inner) -> Self {
        let state = Arc::new(Mutex::new(inner));
        let app = Router::new()
            .route("/v1/users/search", post(search))
            .route("/v1/b2b/organizations/search", post(organisations))
            .route("/v1/b2b/organizations/members/search", post(members))
            .with_state(state.clone());
        let (addr, server) = super::serve_on_loopback(app, "Stytch stand-in").await;
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

/// An error answer: its status and Stytch's `error_type`.
type Refusal = (StatusCode, &'static str);

/// Checks the credentials, plays a pending `429`, reads the body; `Err` is the answer to give.
fn gate(state: &Mutex<Inner>, headers: &HeaderMap, body: &str) -> Result<Value, Refusal> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{STYTCH_PROJECT_ID}:{STYTCH_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err((StatusCode::UNAUTHORIZED, "unauthorized_credentials"));
    }
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return Err((StatusCode::BAD_REQUEST, "invalid_json"));
    };
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        return Err((StatusCode::TOO_MANY_REQUESTS, "too_many_requests"));
    }
    s.bodies.push(body.clone());
    Ok(body)
}

/// The page of `items` the body's `limit` (1–1000, default 100) and `cursor` ask for, and the
/// next cursor; `Err` is the answer to give.
fn paged(items: &[Value], body: &Value) -> Result<(Vec<Value>, Option<String>), Refusal> {
    let limit = match body.get("limit") {
        None => 100,
        Some(l) => match l.as_u64() {
            Some(l) if (1..=1000).contains(&l) => l as usize,
            _ => return Err((StatusCode::BAD_REQUEST, "invalid_limit")),
        },
    };
    // The cursor is opaque to clients: here, the index of the next item, disguised.
    let start = match body.get("cursor").and_then(Value::as_str) {
        None => 0,
        Some(c) => match c
            .strip_prefix("cursor-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return Err((StatusCode::BAD_REQUEST, "invalid_cursor")),
        },
    };
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    Ok((page, (end < items.len()).then(|| format!("cursor-{end}"))))
}

/// The page of `items` the body asks for, under `key` as Stytch's searches answer, with the
/// total and next cursor, and `extra` fields.
fn answer(key: &str, items: &[Value], body: &Value, extra: Value) -> Response {
    match paged(items, body) {
        Ok((page, next)) => {
            let mut answer = json!({"request_id": "request-id-test", "status_code": 200,
                "results_metadata": {"total": items.len(), "next_cursor": next}});
            answer[key] = Value::Array(page);
            if let (Value::Object(answer), Value::Object(extra)) = (&mut answer, extra) {
                answer.extend(extra);
            }
            axum::Json(answer).into_response()
        }
        Err((status, kind)) => error(status, kind),
    }
}

async fn search(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = match gate(&state, &headers, &body) {
        Ok(body) => body,
        Err((status, kind)) => return error(status, kind),
    };
    let users = state.lock().unwrap().users.clone();
    answer("results", &users, &body, json!({}))
}

async fn organisations(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = match gate(&state, &headers, &body) {
        Ok(body) => body,
        Err((status, kind)) => return error(status, kind),
    };
    let organisations = state.lock().unwrap().organisations.clone();
    answer("organizations", &organisations, &body, json!({}))
}

async fn members(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = match gate(&state, &headers, &body) {
        Ok(body) => body,
        Err((status, kind)) => return error(status, kind),
    };
    let ids: Vec<&str> = match body.get("organization_ids").and_then(Value::as_array) {
        Some(ids) if !ids.is_empty() => ids.iter().filter_map(Value::as_str).collect(),
        _ => return error(StatusCode::BAD_REQUEST, "organization_ids_required"),
    };
    let in_them = |v: &&Value| ids.contains(&v["organization_id"].as_str().unwrap_or_default());
    let (members, named): (Vec<Value>, serde_json::Map<String, Value>) = {
        let s = state.lock().unwrap();
        (
            s.members.iter().filter(in_them).cloned().collect(),
            s.organisations
                .iter()
                .filter(in_them)
                .map(|o| (o["organization_id"].as_str().unwrap().to_owned(), o.clone()))
                .collect(),
        )
    };
    answer(
        "members",
        &members,
        &body,
        json!({ "organizations": named }),
    )
}
