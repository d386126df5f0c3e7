//! A stand-in for Kinde's Management API list of users, strict about what Kinde documents: an
//! M2M token from `POST /oauth2/token` (form-encoded `client_credentials` with the audience
//! `<issuer>/api`), then `GET /api/v1/users?page_size=&next_token=` with `Authorization: Bearer
//! <token>`, `page_size` at most 500, answering `{code, message, users, next_token}`, and `429`
//! with `RateLimit-Reset` (seconds) when asked to play one.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

pub const KINDE_CLIENT_ID: &str = "m2m-client-id";
pub const KINDE_CLIENT_SECRET: &str = "m2m-client-secret";
const TOKEN: &str = "kinde-management-token";

/// A Kinde user as the list returns it, member of `org_<n % 3>`.
pub fn kinde_listed_user(n: usize) -> Value {
    json!({
        "id": format!("kp_backfill{n:06}"), "provided_id": null, "email": format!("kinde.user.{n}@example.com"),
        "phone": null, "username": null, "first_name": "Kinde", "last_name": format!("User {n}"),
        "is_suspended": false, "picture": null, "total_sign_ins": 1, "failed_sign_ins": 0,
        "last_signed_in": "2026-11-01T00:00:00.000000+00:00", "created_on": "2026-10-01T00:00:00.000000+00:00",
        "organizations": [format!("org_{}", n % 3)]
    })
}

struct Inner {
    users: Vec<Value>,
    base: String,
    tokens_issued: u32,
    rate_limited: u32,
    pages: Vec<String>,
}

pub struct KindeApi {
    base: String,
    state: Arc<Mutex<Inner>>,
    _server: tokio::task::JoinHandle<()>,
}

impl KindeApi {
    pub async fn start(users: Vec<Value>) -> Self {
        let loopback = super::Loopback::bind().await;
        let base = format!("http://{}", loopback.addr);
        let state = Arc::new(Mutex::new(Inner {
            users,
            base: base.clone(),
            tokens_issued: 0,
            rate_limited: 0,
            pages: Vec::new(),
        }));
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .route("/api/v1/users", get(list))
            .with_state(state.clone());
        let server = loopback.serve(app, "Kinde stand-in");
        Self {
            base,
            state,
            _server: server,
        }
    }

    /// `KINDE_ISSUER_URL` for it.
    pub fn url(&self) -> String {
        self.base.clone()
    }

    pub fn rate_limit(&self, n: u32) {
        self.state.lock().unwrap().rate_limited = n;
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.state.lock().unwrap().rate_limited
    }

    pub fn tokens_issued(&self) -> u32 {
        self.state.lock().unwrap().tokens_issued
    }

    /// The `next_token`s asked for ("" for the first page).
    pub fn pages(&self) -> Vec<String> {
        self.state.lock().unwrap().pages.clone()
    }
}

async fn token(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let mut s = state.lock().unwrap();
    let form_encoded = headers.get("content-type").and_then(|v| v.to_str().ok())
        == Some("application/x-www-form-urlencoded");
    let valid = form_encoded
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some(KINDE_CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(KINDE_CLIENT_SECRET)
        && form.get("audience") == Some(&format!("{}/api", s.base));
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    s.tokens_issued += 1;
    axum::Json(json!({"access_token": TOKEN, "expires_in": 86399, "scope": "read:users", "token_type": "Bearer"})).into_response()
}

async fn list(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": [{"code": "UNAUTHORIZED"}]})),
        )
            .into_response();
    }
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        let mut answer = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"errors": [{"code": "TOO_MANY_REQUESTS"}]})),
        )
            .into_response();
        answer
            .headers_mut()
            .insert("ratelimit-reset", HeaderValue::from_static("1"));
        return answer;
    }
    let page_size = match query.get("page_size").map(|p| p.parse::<usize>()) {
        None => 10,
        Some(Ok(p)) if (1..=500).contains(&p) => p,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"errors": [{"code": "INVALID_PAGE_SIZE"}]})),
            )
                .into_response();
        }
    };
    let next = query.get("next_token").cloned().unwrap_or_default();
    s.pages.push(next.clone());
    // The token is opaque to clients: here, base64 of the next index.
    let start = if next.is_empty() {
        0
    } else {
        match base64::engine::general_purpose::STANDARD
            .decode(&next)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse().ok())
        {
            Some(i) => i,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"errors": [{"code": "INVALID_NEXT_TOKEN"}]})),
                )
                    .into_response();
            }
        }
    };
    let users: Vec<Value> = s
        .users
        .iter()
        .skip(start)
        .take(page_size)
        .cloned()
        .collect();
    let end = start + users.len();
    let next_token = (end < s.users.len())
        .then(|| base64::engine::general_purpose::STANDARD.encode(end.to_string()));
    axum::Json(
        json!({"code": "OK", "message": "Success", "users": users, "next_token": next_token}),
    )
    .into_response()
}
