//! A stand-in for Auth0's Management API users list, strict about what Auth0 documents: a token
//! from `POST /oauth/token` (JSON client-credentials grant, audience `https://<domain>/api/v2/`),
//! `GET /api/v2/users?page=&per_page=&include_totals=true` (per_page at most 100) answering
//! `{start, limit, length, total, users}`, and `400` past the first 1,000 records; organisations
//! and their members with checkpoint paging (`GET /api/v2/organizations?take=&from=` answering
//! `{organizations, next?}`, `GET /api/v2/organizations/{id}/members?take=&from=` answering
//! `{members, next?}`, `take` at most 100).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const AUTH0_DOMAIN: &str = "acme.test.auth0.com";
pub const AUTH0_CLIENT_ID: &str = "auth0-client-id";
pub const AUTH0_CLIENT_SECRET: &str = "auth0-client-secret";
const TOKEN: &str = "auth0-management-token";

/// An Auth0 user as the list (and the export job) writes it.
pub fn auth0_listed_user(n: usize) -> Value {
    json!({
        "user_id": format!("auth0|backfill{n:06}"), "email": format!("auth0.user.{n}@example.com"),
        "email_verified": true, "username": null, "given_name": "Auth0", "family_name": format!("User {n}"),
        "name": format!("Auth0 User {n}"), "nickname": "auth0", "picture": null, "identities": [],
        "app_metadata": {}, "user_metadata": {}, "created_at": "2026-10-01T00:00:00.000Z",
        "updated_at": "2026-10-02T00:00:00.000Z", "last_login": null, "logins_count": 1
    })
}

/// Organisations and their members' user ids.
type Organisations = Arc<Mutex<Vec<(Value, Vec<String>)>>>;

pub struct Auth0Api {
    addr: std::net::SocketAddr,
    organisations: Organisations,
    pages: Arc<Mutex<Vec<String>>>,
    rate_limited: Arc<AtomicU32>,
    _server: tokio::task::JoinHandle<()>,
}

/// The users, the requests served, and `429`s still to play.
type Shared = (Arc<Vec<Value>>, Arc<Mutex<Vec<String>>>, Arc<AtomicU32>);

impl Auth0Api {
    pub async fn start(users: Vec<Value>) -> Self {
        let pages = Arc::new(Mutex::new(Vec::new()));
        let rate_limited = Arc::new(AtomicU32::new(0));
        let organisations = Organisations::default();
        let app = Router::new()
            .route("/api/v2/organizations", get(organisations_list))
            .route("/api/v2/organizations/{id}/members", get(members_list))
            .with_state(organisations.clone())
            .route("/oauth/token", post(token))
            .route("/api/v2/users", get(list))
            .with_state((Arc::new(users), pages.clone(), rate_limited.clone()));
        let (addr, server) = super::serve_on_loopback(app, "Auth0 stand-in").await;
        Self {
            addr,
            organisations,
            pages,
            rate_limited,
            _server: server,
        }
    }

    /// The tenant's organisations from now on: (id, name, the `n`s of its members, as
    /// [`auth0_listed_user`] numbers them).
    pub fn set_organisations(&self, organisations: &[(&str, &str, &[usize])]) {
        *self.organisations.lock().unwrap() = organisations
            .iter()
            .map(|(id, name, members)| {
                (
                    json!({"id": id, "name": name, "display_name": name.to_uppercase(), "branding": {}}),
                    members.iter().map(|n| format!("auth0|backfill{n:06}")).collect(),
                )
            })
            .collect();
    }

    /// `AUTH0_API_URL` for it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The backfill's directory of this tenant, with the client credentials the stand-in
    /// grants a token for, `per_page` users a page.
    pub fn directory(
        &self,
        per_page: u64,
    ) -> attio_user_sync::providers::auth0::directory::Auth0Directory {
        use attio_user_sync::providers::auth0::directory::{Auth0Directory, Auth0Token};
        Auth0Directory::new(
            reqwest::Client::new(),
            AUTH0_DOMAIN,
            Some(&self.url()),
            Auth0Token::Client {
                id: AUTH0_CLIENT_ID.into(),
                secret: AUTH0_CLIENT_SECRET.into(),
            },
            per_page,
        )
    }

    /// Answers the next `n` list requests `429` with `x-ratelimit-reset` (epoch seconds) one
    /// second ahead, as Auth0 does.
    pub fn rate_limit(&self, n: u32) {
        self.rate_limited.store(n, Ordering::SeqCst);
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.rate_limited.load(Ordering::SeqCst)
    }

    /// The `page` numbers asked for.
    pub fn pages(&self) -> Vec<String> {
        self.pages.lock().unwrap().clone()
    }
}

async fn token(body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    if body["grant_type"] == "client_credentials"
        && body["client_id"] == AUTH0_CLIENT_ID
        && body["client_secret"] == AUTH0_CLIENT_SECRET
        && body["audience"] == format!("https://{AUTH0_DOMAIN}/api/v2/")
    {
        axum::Json(json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 86400}))
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "access_denied"})),
        )
            .into_response()
    }
}

async fn list(
    State((users, pages, rate_limited)): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let error = |status: StatusCode, message: &str| {
        (
            status,
            axum::Json(
                json!({"statusCode": status.as_u16(), "error": "Bad Request", "message": message}),
            ),
        )
            .into_response()
    };
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return error(StatusCode::UNAUTHORIZED, "Invalid token");
    }
    if rate_limited
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 1;
        let mut answer = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached"})),
        )
            .into_response();
        let h = answer.headers_mut();
        h.insert("x-ratelimit-limit", 2.into());
        h.insert("x-ratelimit-remaining", 0.into());
        h.insert("x-ratelimit-reset", reset.into());
        return answer;
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let per_page: usize = match query.get("per_page").map(|p| p.parse::<usize>()) {
        None => 50,
        Some(Ok(p)) if p <= 100 => p,
        _ => return error(StatusCode::BAD_REQUEST, "per_page must be at most 100"),
    };
    if (page + 1) * per_page > 1000 {
        return error(
            StatusCode::BAD_REQUEST,
            "You can only page through the first 1000 records",
        );
    }
    pages.lock().unwrap().push(page.to_string());
    let slice: Vec<Value> = users
        .iter()
        .skip(page * per_page)
        .take(per_page)
        .cloned()
        .collect();
    if query.get("include_totals").map(String::as_str) != Some("true") {
        return axum::Json(Value::Array(slice)).into_response();
    }
    axum::Json(json!({"start": page * per_page, "limit": per_page, "length": slice.len(), "total": users.len(), "users": slice})).into_response()
}

/// `take` (1–100) and `from` (the index to start at, as this stand-in's checkpoints are) of a
/// checkpoint-paged list; `Err` is the message of Auth0's `400`.
fn checkpoint(query: &HashMap<String, String>) -> Result<(usize, usize), &'static str> {
    let take = match query.get("take").map(|t| t.parse::<usize>()) {
        None => 50,
        Some(Ok(t)) if (1..=100).contains(&t) => t,
        _ => return Err("take must be between 1 and 100"),
    };
    let from = match query.get("from").map(|f| f.parse::<usize>()) {
        None => 0,
        Some(Ok(f)) => f,
        Some(Err(_)) => return Err("from is not a checkpoint of this list"),
    };
    Ok((take, from))
}

/// A checkpoint-paged list request's `(take, from)`, or the answer Auth0 gives a request
/// without the token or with paging it cannot read.
fn paged(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(usize, usize), Box<Response>> {
    if !authorised(headers) {
        return Err(Box::new(StatusCode::UNAUTHORIZED.into_response()));
    }
    checkpoint(query).map_err(|message| Box::new(bad_request(message)))
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"statusCode": 400, "error": "Bad Request", "message": message})),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

/// A checkpoint page of `items` under `key`, with `next` while more remain.
fn checkpoint_page(key: &str, items: Vec<Value>, take: usize, from: usize) -> Response {
    let page: Vec<Value> = items.iter().skip(from).take(take).cloned().collect();
    let mut body = json!({ key: page });
    if from + take < items.len() {
        body["next"] = json!((from + take).to_string());
    }
    axum::Json(body).into_response()
}

async fn organisations_list(
    State(organisations): State<Organisations>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (take, from) = match paged(&headers, &query) {
        Ok(paging) => paging,
        Err(answer) => return *answer,
    };
    let all: Vec<Value> = organisations
        .lock()
        .unwrap()
        .iter()
        .map(|(o, _)| o.clone())
        .collect();
    checkpoint_page("organizations", all, take, from)
}

async fn members_list(
    State(organisations): State<Organisations>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (take, from) = match paged(&headers, &query) {
        Ok(paging) => paging,
        Err(answer) => return *answer,
    };
    let members: Option<Vec<Value>> = organisations
        .lock()
        .unwrap()
        .iter()
        .find(|(o, _)| o["id"] == id)
        .map(|(_, members)| {
            members
                .iter()
                .map(|user_id| json!({"user_id": user_id, "email": "hidden@example.com", "picture": "", "name": "Member"}))
                .collect()
        });
    match members {
        Some(members) => checkpoint_page("members", members, take, from),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"statusCode": 404, "error": "Not Found", "message": "No organization found by that id"})),
        )
            .into_response(),
    }
}
