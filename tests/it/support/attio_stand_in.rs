//! A local, in-memory stand-in for Attio's REST API, strict about the request and error
//! shapes Attio documents (see ../shared/reference/attio.md): bearer auth, the assert
//! endpoint's `matching_attribute` and `{"data":{"values":…}}` body, attribute types, required
//! and unique attributes, record references. Tests also use it to inject faults.
//!
//! Used by the integration tests (`tests/it`) and, through `examples/attio_stand_in.rs`, by
//! the demo.

#![allow(dead_code)] // Each user of this module calls a different part of it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

const WORKSPACE_ID: &str = "14beef7a-99f7-4534-a87e-70b564330a4c";

/// The kind of value an attribute holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AttributeType {
    Text,
    EmailAddress,
    PersonalName,
    Timestamp,
    RecordReference(&'static [&'static str]),
    Number,
    Checkbox,
    Date,
    /// A select attribute and its option titles.
    Select(&'static [&'static str]),
    /// A status attribute and its statuses' titles.
    Status(&'static [&'static str]),
    /// A rating, a whole number from 0 to 5.
    Rating,
    PhoneNumber,
    Domain,
}

impl AttributeType {
    /// The type's name in Attio's API.
    fn api_name(self) -> &'static str {
        match self {
            Text => "text",
            EmailAddress => "email-address",
            PersonalName => "personal-name",
            Timestamp => "timestamp",
            RecordReference(_) => "record-reference",
            Number => "number",
            Checkbox => "checkbox",
            Date => "date",
            Select(_) => "select",
            Status(_) => "status",
            Rating => "rating",
            PhoneNumber => "phone-number",
            Domain => "domain",
        }
    }
}

struct Attribute {
    slug: &'static str,
    kind: AttributeType,
    multi: bool,
    unique: bool,
    required: bool,
    /// Archived in the workspace: listed, but takes no values.
    archived: bool,
}

const fn attr(
    slug: &'static str,
    kind: AttributeType,
    multi: bool,
    unique: bool,
    required: bool,
) -> Attribute {
    Attribute {
        slug,
        kind,
        multi,
        unique,
        required,
        archived: false,
    }
}

/// A custom attribute a workspace admin could add: optional, not unique.
const fn custom(slug: &'static str, kind: AttributeType, multi: bool) -> Attribute {
    attr(slug, kind, multi, false, false)
}

use AttributeType::*;

/// The standard objects' attributes this project writes, as Attio defines them.
fn schema(object: &str) -> Option<&'static [Attribute]> {
    static PEOPLE: &[Attribute] = &[
        attr("email_addresses", EmailAddress, true, true, false),
        attr("name", PersonalName, false, false, false),
        attr("job_title", Text, false, false, false),
        attr("phone_numbers", PhoneNumber, true, false, false),
    ];
    static USERS: &[Attribute] = &[
        attr("user_id", Text, false, true, true),
        attr("primary_email_address", EmailAddress, false, true, true),
        attr("person", RecordReference(&["people"]), false, false, false),
        attr(
            "workspace",
            RecordReference(&["workspaces"]),
            true,
            false,
            false,
        ),
        // Custom timestamp attributes, as a workspace admin could add them; the function
        // writes them only when configured to (ATTIO_USER_*_ATTRIBUTE).
        attr("signed_up_at", Timestamp, false, false, false),
        attr("last_event_at", Timestamp, false, false, false),
        // Custom attributes of each type the attribute mapping converts to.
        custom("plan", Select(&["Free", "Pro", "Enterprise"]), false),
        custom("stage", Status(&["Trial", "Active", "Churned"]), false),
        custom("satisfaction", Rating, false),
        custom("signed_up_with", Text, false),
        custom("last_seen", Timestamp, false),
        custom("seats", Number, false),
        custom("beta_tester", Checkbox, false),
        custom("birthday", Date, false),
        custom("mobile", PhoneNumber, false),
        custom("company_domain", Domain, false),
        custom("work_email", EmailAddress, false),
        Attribute {
            archived: true,
            ..custom("legacy_plan", Text, false)
        },
    ];
    static WORKSPACES: &[Attribute] = &[
        attr("workspace_id", Text, false, true, true),
        attr("name", Text, false, false, false),
        attr("users", RecordReference(&["users"]), true, false, false),
        custom("domains", Domain, true),
        attr(
            "company",
            RecordReference(&["companies"]),
            false,
            false,
            false,
        ),
    ];
    match object {
        "people" => Some(PEOPLE),
        "users" => Some(USERS),
        "workspaces" => Some(WORKSPACES),
        _ => None,
    }
}

/// A request the stand-in received, as Attio would have seen it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// HTTP method.
    pub method: String,
    /// The object slug from the path.
    pub object: String,
    /// `matching_attribute` from the query, if any.
    pub matching_attribute: Option<String>,
    /// The record id from the path, if any.
    pub record_id: Option<String>,
    /// The JSON body (Null when not JSON).
    pub body: Value,
    /// The status the stand-in answered.
    pub status: u16,
    /// How long the stand-in took to answer, from the request's arrival to its answer.
    pub handled_in: Duration,
}

/// A stored record: id plus values, each a list of normalised values.
#[derive(Debug, Clone)]
pub struct Record {
    /// Record id (UUID).
    pub id: String,
    /// Attribute slug to values, normalised (`"a@b.com"`, `"text"`, a name object, a record id).
    pub values: Map<String, Value>,
}

impl Record {
    /// The first value of an attribute, as a string where it is one.
    pub fn first(&self, slug: &str) -> Option<&Value> {
        self.values
            .get(slug)
            .and_then(|v| v.as_array())
            .and_then(|a| a.first())
    }

    /// The first value of an attribute as a string.
    pub fn text(&self, slug: &str) -> Option<&str> {
        self.first(slug).and_then(Value::as_str)
    }
}

/// A scripted answer for the next assert, instead of the real one.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with Attio's error body, and `Retry-After` if given.
    Status {
        /// The HTTP status.
        status: u16,
        /// Attio's error code.
        code: &'static str,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Wait this long, then answer as usual (if the caller is still there).
    Slow(Duration),
    /// Answer 200 with this body instead of the record (an answer Attio's docs do not allow).
    Garbled(&'static str),
}

#[derive(Default)]
struct Inner {
    tokens: HashSet<String>,
    disabled: HashSet<String>,
    records: HashMap<String, Vec<Record>>,
    requests: Vec<ReceivedRequest>,
    /// Faults to play, each for any request (None) or one object's writes.
    faults: VecDeque<(Option<String>, Fault)>,
    /// Most writes and reads per wall-clock second before answering 429, as Attio does
    /// (25 writes, 100 reads).
    limits: Option<(usize, usize)>,
    /// The second of the current window and the writes and reads counted in it.
    window: (u64, usize, usize),
    /// The token's scopes, as `GET /v2/self` lists them.
    scopes: String,
    /// Attributes listed as not unique although the schema makes them so (a misconfigured
    /// workspace, for the doctor's tests).
    not_unique: HashSet<(String, String)>,
    /// An outage: every request is answered 503 until it ends.
    down: bool,
    /// The network between the function and Attio: every answer comes this long after its
    /// request was sent, half on the way there, half on the way back.
    latency: Duration,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: (usize, usize),
}

/// A running stand-in. Dropping it stops the server.
pub struct AttioStandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for AttioStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl AttioStandIn {
    /// Starts on a free loopback port, accepting `token`.
    pub async fn start(token: &str) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("literal address"), token).await
    }

    /// Starts on `addr`, accepting `token`.
    pub async fn start_on(addr: SocketAddr, token: &str) -> Self {
        let state = Arc::new(Mutex::new(Inner {
            scopes: "record_permission:read-write object_configuration:read user_management:read"
                .into(),
            ..Inner::default()
        }));
        lock(&state).tokens.insert(token.to_owned());
        let app = Router::new()
            .route("/v2/objects/{object}/records", put(assert_route))
            .route("/v2/objects/{object}/records/query", post(query_route))
            .route(
                "/v2/objects/{object}/records/{record_id}",
                get(get_route)
                    .patch(append_route)
                    .put(overwrite_route)
                    .delete(delete_route),
            )
            .route("/v2/objects/{object}/attributes", get(attributes_route))
            .route("/v2/self", get(self_route))
            .route("/__stand-in/records/{object}", get(list_records))
            .route(
                "/__stand-in/outage",
                post(|State(state): Shared| async move {
                    lock(&state).down = true;
                    StatusCode::NO_CONTENT
                })
                .delete(|State(state): Shared| async move {
                    lock(&state).down = false;
                    StatusCode::NO_CONTENT
                }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in server");
        });
        Self {
            addr,
            state,
            server,
        }
    }

    /// The base URL to give the function as `ATTIO_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.state).requests.clone()
    }

    /// How many requests have arrived so far.
    pub fn request_count(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// The time the stand-in spent answering requests number `from` onwards.
    pub fn time_handling_since(&self, from: usize) -> Duration {
        lock(&self.state).requests[from..]
            .iter()
            .map(|r| r.handled_in)
            .sum()
    }

    /// Every answer from now on arrives `round_trip` after its request was sent (half before
    /// the stand-in sees the request, half after it answers), as over the internet from a
    /// Lambda region to a SaaS API (150 ms is realistic); zero on loopback.
    pub fn set_latency(&self, round_trip: Duration) {
        lock(&self.state).latency = round_trip;
    }

    /// The most requests the stand-in was answering at the same time.
    pub fn most_at_once(&self) -> usize {
        lock(&self.state).in_flight.1
    }

    /// The records of one object.
    pub fn records(&self, object: &str) -> Vec<Record> {
        lock(&self.state)
            .records
            .get(object)
            .cloned()
            .unwrap_or_default()
    }

    /// Delete a record, as someone in the Attio app would.
    pub fn remove_record(&self, object: &str, id: &str) {
        if let Some(records) = lock(&self.state).records.get_mut(object) {
            records.retain(|r| r.id != id);
        }
    }

    /// Accept only `token` from now on (a rotation in Attio).
    pub fn rotate_token(&self, token: &str) {
        let mut s = lock(&self.state);
        s.tokens.clear();
        s.tokens.insert(token.to_owned());
    }

    /// The token's scopes from now on (space-separated).
    pub fn set_scopes(&self, scopes: &str) {
        lock(&self.state).scopes = scopes.to_owned();
    }

    /// List `object`'s `slug` as not unique from now on.
    pub fn make_not_unique(&self, object: &str, slug: &str) {
        lock(&self.state)
            .not_unique
            .insert((object.to_owned(), slug.to_owned()));
    }

    /// Deactivate an object, as a workspace that never activated it.
    pub fn disable_object(&self, object: &str) {
        lock(&self.state).disabled.insert(object.to_owned());
    }

    /// Starts (true) or ends (false) an outage: meanwhile every request is answered 503.
    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// Answer the next assert, of any object, with `fault` instead.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push_back((None, fault));
    }

    /// Answer the next write (assert, update, delete) of `object` with `fault` instead; reads
    /// of it are answered as usual.
    pub fn inject_for(&self, object: &str, fault: Fault) {
        lock(&self.state)
            .faults
            .push_back((Some(object.to_owned()), fault));
    }

    /// Adds records to `object` directly (not through the API, nothing logged): each
    /// `{"<slug>": [<stored value>, …]}` as the stand-in stores values (record ids by themselves
    /// for references). For tests that need a large workspace quickly.
    /// Returns the new records' ids, in order.
    pub fn seed(&self, object: &str, records: impl IntoIterator<Item = Value>) -> Vec<String> {
        let mut s = lock(&self.state);
        let list = s.records.entry(object.to_owned()).or_default();
        let mut ids = Vec::new();
        for values in records {
            let Value::Object(values) = values else {
                panic!("seed records as JSON objects");
            };
            let id = uuid();
            ids.push(id.clone());
            list.push(Record { id, values });
        }
        ids
    }

    /// Enforce Attio's rate limits: past `writes` writes or `reads` reads in one second,
    /// answer 429 with `Retry-After` set to the next second as an HTTP date.
    pub fn limit_rates(&self, writes: usize, reads: usize) {
        lock(&self.state).limits = Some((writes, reads));
    }
}

fn lock(state: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body =
        json!({"status_code": status.as_u16(), "type": kind, "code": code, "message": message});
    (status, axum::Json(body)).into_response()
}

fn invalid(code: &str, message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
    )
}

async fn list_records(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(object): Path<String>,
) -> Response {
    let s = lock(&state);
    let records: Vec<Value> = s
        .records
        .get(&object)
        .map(|rs| {
            rs.iter()
                .map(|r| json!({"id": r.id, "values": r.values}))
                .collect()
        })
        .unwrap_or_default();
    axum::Json(json!({ "data": records })).into_response()
}

/// What a request asks of the stand-in.
#[derive(Debug, Clone)]
enum Op {
    /// `PUT /v2/objects/{object}/records?matching_attribute=…`
    Assert(Option<String>),
    /// `POST /v2/objects/{object}/records/query`
    Query,
    /// `GET /v2/objects/{object}/records/{id}`
    Get(String),
    /// `PATCH /v2/objects/{object}/records/{id}`: appends to multi-value attributes.
    Append(String),
    /// `PUT /v2/objects/{object}/records/{id}`: replaces the attributes given.
    Overwrite(String),
    /// `DELETE /v2/objects/{object}/records/{id}`
    Delete(String),
    /// `GET /v2/objects/{object}/attributes`; archived ones only with `show_archived=true`.
    ListAttributes { show_archived: bool },
    /// `GET /v2/self`
    SelfInfo,
}

impl Op {
    fn method(&self) -> &'static str {
        match self {
            Op::Assert(_) | Op::Overwrite(_) => "PUT",
            Op::Query => "POST",
            Op::Get(_) | Op::ListAttributes { .. } | Op::SelfInfo => "GET",
            Op::Append(_) => "PATCH",
            Op::Delete(_) => "DELETE",
        }
    }

    fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Query | Op::Get(_) | Op::ListAttributes { .. } | Op::SelfInfo
        )
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn assert_route(
    state: Shared,
    Path(object): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let op = Op::Assert(query.get("matching_attribute").cloned());
    handle(state, op, object, headers, body).await
}

async fn self_route(state: Shared, headers: HeaderMap) -> Response {
    handle(state, Op::SelfInfo, "self".into(), headers, Bytes::new()).await
}

async fn attributes_route(
    state: Shared,
    Path(object): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // Attio leaves archived attributes out unless asked for them.
    let show_archived = query.get("show_archived").is_some_and(|v| v == "true");
    handle(
        state,
        Op::ListAttributes { show_archived },
        object,
        headers,
        Bytes::new(),
    )
    .await
}

async fn query_route(
    state: Shared,
    Path(object): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, Op::Query, object, headers, body).await
}

async fn get_route(
    state: Shared,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    handle(state, Op::Get(id), object, headers, Bytes::new()).await
}

async fn append_route(
    state: Shared,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, Op::Append(id), object, headers, body).await
}

async fn overwrite_route(
    state: Shared,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, Op::Overwrite(id), object, headers, body).await
}

async fn delete_route(
    state: Shared,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    handle(state, Op::Delete(id), object, headers, Bytes::new()).await
}

/// Plays an injected fault if one is due, else answers as Attio would; records the request.
async fn handle(
    State(state): Shared,
    op: Op,
    object: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let half_trip = {
        let mut s = lock(&state);
        s.in_flight.0 += 1;
        s.in_flight.1 = s.in_flight.1.max(s.in_flight.0);
        s.latency / 2
    };
    if !half_trip.is_zero() {
        tokio::time::sleep(half_trip).await;
    }
    let response = answer_request(&state, op, object, headers, body).await;
    if !half_trip.is_zero() {
        tokio::time::sleep(half_trip).await;
    }
    lock(&state).in_flight.0 -= 1;
    response
}

/// [`handle`] once the request has crossed the network.
async fn answer_request(
    state: &Arc<Mutex<Inner>>,
    op: Op,
    object: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = std::time::Instant::now();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fault = {
        let mut s = lock(state);
        if s.down {
            return fault_response(503, "service_unavailable", None);
        }
        let i = s
            .faults
            .iter()
            .position(|(o, _)| o.as_ref().is_none_or(|o| *o == object && op.writes()));
        i.and_then(|i| s.faults.remove(i)).map(|(_, f)| f)
    };
    let response = match fault {
        Some(Fault::Status {
            status,
            code,
            retry_after,
        }) => fault_response(status, code, retry_after),
        Some(Fault::Garbled(body)) => {
            (StatusCode::OK, [("content-type", "application/json")], body).into_response()
        }
        Some(Fault::Slow(delay)) => {
            // The caller may give up meanwhile; then this answer goes nowhere, as with Attio.
            tokio::time::sleep(delay).await;
            answer(&mut lock(state), &op, &object, &headers, &parsed)
        }
        None => answer(&mut lock(state), &op, &object, &headers, &parsed),
    };
    let (matching_attribute, record_id) = match &op {
        Op::Assert(m) => (m.clone(), None),
        Op::Query | Op::ListAttributes { .. } | Op::SelfInfo => (None, None),
        Op::Get(id) | Op::Append(id) | Op::Overwrite(id) | Op::Delete(id) => {
            (None, Some(id.clone()))
        }
    };
    lock(state).requests.push(ReceivedRequest {
        method: op.method().into(),
        object,
        matching_attribute,
        record_id,
        body: parsed,
        status: response.status().as_u16(),
        handled_in: arrived.elapsed(),
    });
    response
}

fn fault_response(status: u16, code: &str, retry_after: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).expect("valid fault status");
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_error"
    } else {
        "api_error"
    };
    let mut response = error(status, kind, code, "Injected fault.");
    if let Some(ra) = retry_after {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&ra).expect("header value"),
        );
    }
    response
}

/// Counts a call against its per-second limit; `Some(retry_after)` when over it.
fn over_rate_limit(s: &mut Inner, writes: bool) -> Option<String> {
    let (write_limit, read_limit) = s.limits?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    if s.window.0 != now {
        s.window = (now, 0, 0);
    }
    let (count, limit) = if writes {
        (&mut s.window.1, write_limit)
    } else {
        (&mut s.window.2, read_limit)
    };
    if *count >= limit {
        let next = DateTime::from_secs((now + 1) as i64);
        return Some(
            next.fmt(DateTimeFormat::HttpDate)
                .expect("formattable date"),
        );
    }
    *count += 1;
    None
}

fn answer(s: &mut Inner, op: &Op, object: &str, headers: &HeaderMap, body: &Value) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| s.tokens.contains(t)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "auth_error",
            "unauthorized",
            "Invalid or expired access token.",
        );
    }
    if let Some(retry_after) = over_rate_limit(s, op.writes()) {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
            "Rate limit exceeded, please try again later.",
        );
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&retry_after).expect("header value"),
        );
        return response;
    }
    // `GET /v2/self` is about the token, not an object.
    let attributes = match (op, schema(object)) {
        (Op::SelfInfo, _) => &[][..],
        (_, Some(attributes)) => attributes,
        (_, None) => {
            return not_found(&format!("Object with slug/ID \"{object}\" not found."));
        }
    };
    if s.disabled.contains(object) {
        return invalid(
            "standard_object_disabled",
            &format!("The standard object \"{object}\" is not enabled in this workspace."),
        );
    }
    match op {
        // Attio's shape: the token's facts at the top level.
        Op::SelfInfo => axum::Json(json!({
            "active": true, "scope": s.scopes, "client_id": "stand-in-client",
            "token_type": "Bearer", "workspace_id": WORKSPACE_ID,
            "workspace_name": "Attio stand-in", "workspace_slug": "stand-in",
            "authorized_by_workspace_member_id": null
        }))
        .into_response(),
        Op::ListAttributes { show_archived } => {
            let listed: Vec<Value> = attributes
                .iter()
                .filter(|a| *show_archived || !a.archived)
                .map(|a| {
                    json!({
                        "id": {"workspace_id": WORKSPACE_ID, "object_id": format!("obj-{object}"),
                               "attribute_id": format!("attr-{object}-{}", a.slug)},
                        "title": a.slug, "api_slug": a.slug, "type": a.kind.api_name(),
                        "is_system_attribute": a.required, "is_writable": true,
                        "is_required": a.required,
                        "is_unique": a.unique && !s.not_unique.contains(&(object.to_owned(), a.slug.to_owned())),
                        "is_multiselect": a.multi,
                        "is_default_value_enabled": false, "is_archived": a.archived,
                        "relationship": null, "created_at": "2026-01-01T00:00:00.000000000Z",
                        "config": {}
                    })
                })
                .collect();
            axum::Json(json!({ "data": listed })).into_response()
        }
        Op::Assert(matching) => assert_values(s, object, attributes, matching.as_deref(), body),
        Op::Query => query(s, object, attributes, body),
        Op::Get(id) => match find(s, object, id) {
            Some(record) => axum::Json(record_body(object, &record, attributes)).into_response(),
            None => not_found(&format!("Record with ID \"{id}\" not found.")),
        },
        Op::Append(id) | Op::Overwrite(id) => {
            let Some(record) = find(s, object, id) else {
                return not_found(&format!("Record with ID \"{id}\" not found."));
            };
            let incoming = match incoming_values(s, attributes, body) {
                Ok(incoming) => incoming,
                Err((code, message)) => return invalid(code, &message),
            };
            let append = matches!(op, Op::Append(_));
            store(
                s,
                object,
                attributes,
                record,
                incoming,
                |def, _| append && def.multi,
                false,
            )
        }
        Op::Delete(id) => {
            let records = s.records.entry(object.to_owned()).or_default();
            match records.iter().position(|r| r.id == *id) {
                Some(i) => {
                    records.remove(i);
                    axum::Json(json!({})).into_response()
                }
                None => not_found(&format!("Record with ID \"{id}\" not found.")),
            }
        }
    }
}

fn not_found(message: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        message,
    )
}

fn find(s: &Inner, object: &str, id: &str) -> Option<Record> {
    s.records.get(object)?.iter().find(|r| r.id == id).cloned()
}

/// `{"data":{"values":{…}}}` checked against the object's attributes and normalised.
fn incoming_values(
    s: &Inner,
    attributes: &[Attribute],
    body: &Value,
) -> Result<Map<String, Value>, (&'static str, String)> {
    let Some(values) = body_values(body) else {
        return Err((
            "validation_type",
            "Body payload validation error: expected {\"data\":{\"values\":{...}}}.".into(),
        ));
    };
    let mut incoming = Map::new();
    for (slug, raw) in values {
        let Some(def) = attributes.iter().find(|a| a.slug == slug) else {
            return Err((
                "value_not_found",
                format!("Cannot find attribute with slug/ID \"{slug}\"."),
            ));
        };
        if def.archived {
            return Err((
                "validation_type",
                format!("Attribute \"{slug}\" is archived and cannot take values."),
            ));
        }
        match normalise(s, def, raw) {
            Ok(list) => {
                incoming.insert(slug.clone(), Value::Array(list));
            }
            Err(message) => return Err(("validation_type", message)),
        }
    }
    Ok(incoming)
}

/// `{"filter":{"<attribute>":"<value>"},"limit":n}`: records whose attribute holds the value.
fn query(s: &Inner, object: &str, attributes: &[Attribute], body: &Value) -> Response {
    // Without a filter, every record (a page of them); with one, the shorthand form
    // `{"<attribute>": <value>}`, the only one this stand-in reads.
    let filter = match body.get("filter") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) if f.len() == 1 => f.iter().next(),
        Some(_) => {
            return invalid(
                "validation_type",
                "Body payload validation error: expected {\"filter\":{\"<attribute>\":<value>}}.",
            );
        }
    };
    let wanted = match filter {
        None => None,
        Some((slug, wanted)) => {
            let Some(def) = attributes.iter().find(|a| a.slug == slug) else {
                return invalid(
                    "value_not_found",
                    &format!("Cannot find attribute with slug/ID \"{slug}\"."),
                );
            };
            let Ok(wanted) = normalise(s, def, wanted) else {
                return invalid(
                    "validation_type",
                    &format!("Invalid filter value for \"{slug}\"."),
                );
            };
            Some((slug, wanted))
        }
    };
    let number = |key: &'static str, default: u64| match body.get(key) {
        None => Ok(default),
        Some(v) => v.as_u64().ok_or(key),
    };
    let (limit, offset) = match (number("limit", 500), number("offset", 0)) {
        (Ok(limit), Ok(offset)) => (limit as usize, offset as usize),
        (Err(key), _) | (_, Err(key)) => {
            return invalid(
                "validation_type",
                &format!("Body payload validation error: {key} must be a non-negative integer."),
            );
        }
    };
    let found: Vec<Value> = s
        .records
        .get(object)
        .into_iter()
        .flatten()
        .filter(|r| match &wanted {
            None => true,
            Some((slug, wanted)) => r
                .values
                .get(slug.as_str())
                .and_then(Value::as_array)
                .is_some_and(|held| held.iter().any(|v| wanted.contains(v))),
        })
        .skip(offset)
        .take(limit)
        .map(|r| record_body(object, r, attributes)["data"].clone())
        .collect();
    axum::Json(json!({ "data": found })).into_response()
}

fn assert_values(
    s: &mut Inner,
    object: &str,
    attributes: &'static [Attribute],
    matching_attribute: Option<&str>,
    body: &Value,
) -> Response {
    let Some(matching) = matching_attribute else {
        return invalid(
            "validation_type",
            "Query parameter matching_attribute is required.",
        );
    };
    let Some(matching_def) = attributes.iter().find(|a| a.slug == matching) else {
        return not_found(&format!("Attribute with slug/ID \"{matching}\" not found."));
    };
    if !matching_def.unique {
        return invalid(
            "matching_attribute_definition_not_unique",
            &format!("Attribute \"{matching}\" is not unique and cannot be used to match records."),
        );
    }
    let incoming = match incoming_values(s, attributes, body) {
        Ok(incoming) => incoming,
        Err((code, message)) => return invalid(code, &message),
    };
    let Some(match_values) = incoming
        .get(matching)
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .cloned()
    else {
        return invalid(
            "missing_value",
            &format!("The matching attribute \"{matching}\" must be given a value."),
        );
    };
    let existing = s.records.get(object).into_iter().flatten().find(|r| {
        r.values
            .get(matching)
            .and_then(Value::as_array)
            .is_some_and(|held| held.iter().any(|v| match_values.contains(v)))
    });
    let is_new = existing.is_none();
    let record = existing.cloned().unwrap_or_else(|| Record {
        id: uuid(),
        values: Map::new(),
    });
    // Assert appends to a multi-value matching attribute and replaces every other one given.
    store(
        s,
        object,
        attributes,
        record,
        incoming,
        |def, slug| def.multi && slug == matching,
        is_new,
    )
}

/// Applies `incoming` to `record` (appending where `appends` says, replacing elsewhere),
/// checks required and unique attributes, saves it and answers with it.
fn store(
    s: &mut Inner,
    object: &str,
    attributes: &'static [Attribute],
    mut record: Record,
    incoming: Map<String, Value>,
    appends: impl Fn(&Attribute, &str) -> bool,
    is_new: bool,
) -> Response {
    for (slug, list) in incoming {
        let def = attributes
            .iter()
            .find(|a| a.slug == slug)
            .expect("checked by incoming_values");
        if appends(def, &slug) {
            let held = record.values.entry(slug).or_insert_with(|| json!([]));
            let held = held.as_array_mut().expect("stored as array");
            for v in list.as_array().expect("normalised") {
                if !held.contains(v) || def.kind != EmailAddress {
                    held.push(v.clone());
                }
            }
        } else {
            record.values.insert(slug, list);
        }
    }
    if is_new {
        for def in attributes.iter().filter(|a| a.required) {
            if record
                .values
                .get(def.slug)
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty())
            {
                return invalid(
                    "missing_value",
                    &format!(
                        "Required value for attribute \"{}\" was not provided.",
                        def.slug
                    ),
                );
            }
        }
    }
    let records = s.records.entry(object.to_owned()).or_default();
    for def in attributes.iter().filter(|a| a.unique) {
        let Some(mine) = record.values.get(def.slug).and_then(Value::as_array) else {
            continue;
        };
        let clash = records.iter().any(|other| {
            other.id != record.id
                && other
                    .values
                    .get(def.slug)
                    .and_then(Value::as_array)
                    .is_some_and(|theirs| theirs.iter().any(|v| mine.contains(v)))
        });
        if clash {
            return invalid(
                "uniqueness_conflict",
                &format!(
                    "The value for unique attribute \"{}\" is already held by another record.",
                    def.slug
                ),
            );
        }
    }
    match records.iter().position(|r| r.id == record.id) {
        Some(i) => records[i] = record.clone(),
        None => records.push(record.clone()),
    }
    axum::Json(record_body(object, &record, attributes)).into_response()
}

fn body_values(body: &Value) -> Option<&Map<String, Value>> {
    let top = body.as_object().filter(|o| o.len() == 1)?;
    let data = top.get("data")?.as_object().filter(|o| o.len() == 1)?;
    data.get("values")?.as_object()
}

/// Checks one attribute's input against its type; returns the normalised list.
fn normalise(s: &Inner, def: &Attribute, raw: &Value) -> Result<Vec<Value>, String> {
    let items: Vec<&Value> = match raw {
        Value::Array(a) => a.iter().collect(),
        Value::Null => {
            return Err(format!(
                "Attribute \"{}\" cannot be null; send [] to clear it.",
                def.slug
            ));
        }
        other => vec![other],
    };
    if !def.multi && items.len() > 1 {
        return Err(format!(
            "Attribute \"{}\" accepts a single value.",
            def.slug
        ));
    }
    items
        .into_iter()
        .map(|item| match def.kind {
            Text => item
                .as_str()
                .or_else(|| item.get("value").and_then(Value::as_str))
                .map(|t| json!(t))
                .ok_or_else(|| format!("Invalid value for text attribute \"{}\".", def.slug)),
            // Stored in UTC with nanoseconds, whatever the offset and precision sent.
            Timestamp => item
                .as_str()
                .or_else(|| item.get("value").and_then(Value::as_str))
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
                .map(|t| json!(attio_timestamp(t)))
                .ok_or_else(|| format!("Invalid ISO 8601 timestamp for attribute \"{}\".", def.slug)),
            EmailAddress => {
                let addr = item
                    .as_str()
                    .or_else(|| item.get("email_address").and_then(Value::as_str))
                    .ok_or_else(|| format!("Invalid value for email attribute \"{}\".", def.slug))?;
                if strict_email(addr) {
                    Ok(json!(addr.to_lowercase()))
                } else {
                    Err(format!("Invalid email address \"{addr}\" for attribute \"{}\".", def.slug))
                }
            }
            PersonalName => {
                let parts = ["first_name", "last_name", "full_name"];
                match item.as_object() {
                    Some(o) if parts.iter().all(|p| o.get(*p).is_some_and(Value::is_string)) && o.len() == 3 => {
                        Ok(item.clone())
                    }
                    _ => Err(format!("Attribute \"{}\" expects first_name, last_name and full_name.", def.slug)),
                }
            }
            Number => item
                .as_f64()
                .or_else(|| item.get("value").and_then(Value::as_f64))
                .map(|n| json!(n))
                .ok_or_else(|| format!("Invalid value for number attribute \"{}\".", def.slug)),
            Checkbox => item
                .as_bool()
                .or_else(|| item.get("value").and_then(Value::as_bool))
                .map(|b| json!(b))
                .ok_or_else(|| format!("Invalid value for checkbox attribute \"{}\".", def.slug)),
            Date => item
                .as_str()
                .or_else(|| item.get("value").and_then(Value::as_str))
                .filter(|d| {
                    // A real calendar date, as RFC 3339 reads it at midnight.
                    time::OffsetDateTime::parse(
                        &format!("{d}T00:00:00Z"),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .is_ok()
                        && d.len() == 10
                })
                .map(|d| json!(d))
                .ok_or_else(|| format!("Invalid date (YYYY-MM-DD) for attribute \"{}\".", def.slug)),
            Status(statuses) => {
                let title = item
                    .as_str()
                    .or_else(|| item.get("status").and_then(Value::as_str))
                    .ok_or_else(|| format!("Invalid value for status attribute \"{}\".", def.slug))?;
                if statuses.contains(&title) {
                    Ok(json!(title))
                } else {
                    Err(format!("Cannot find status with title \"{title}\" for attribute \"{}\".", def.slug))
                }
            }
            Rating => item
                .as_u64()
                .or_else(|| item.get("value").and_then(Value::as_u64))
                .filter(|r| *r <= 5)
                .map(|r| json!(r))
                .ok_or_else(|| format!("Invalid rating (0 to 5) for attribute \"{}\".", def.slug)),
            Select(options) => {
                let title = item
                    .as_str()
                    .or_else(|| item.get("option").and_then(Value::as_str))
                    .ok_or_else(|| format!("Invalid value for select attribute \"{}\".", def.slug))?;
                if options.contains(&title) {
                    Ok(json!(title))
                } else {
                    Err(format!("Cannot find select option with title \"{title}\" for attribute \"{}\".", def.slug))
                }
            }
            PhoneNumber => item
                .as_str()
                .or_else(|| item.get("original_phone_number").and_then(Value::as_str))
                .filter(|p| {
                    let digits = p.strip_prefix('+').unwrap_or("");
                    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
                })
                .map(|p| json!(p))
                .ok_or_else(|| format!("Invalid E.164 phone number for attribute \"{}\".", def.slug)),
            Domain => item
                .as_str()
                .or_else(|| item.get("domain").and_then(Value::as_str))
                .filter(|d| {
                    d.contains('.')
                        && d.split('.').all(|l| {
                            !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        })
                })
                .map(|d| json!(d.to_lowercase()))
                .ok_or_else(|| format!("Invalid domain for attribute \"{}\".", def.slug)),
            RecordReference(targets) => {
                let target = item.get("target_object").and_then(Value::as_str);
                let id = item.get("target_record_id").and_then(Value::as_str);
                match (target, id) {
                    (Some(t), Some(id)) if targets.contains(&t) => {
                        let exists = s.records.get(t).is_some_and(|rs| rs.iter().any(|r| r.id == id));
                        if exists {
                            Ok(json!(id))
                        } else {
                            Err(format!("Referenced {t} record \"{id}\" does not exist."))
                        }
                    }
                    _ => Err(format!("Attribute \"{}\" expects {{target_object, target_record_id}} referencing {targets:?}.", def.slug)),
                }
            }
        })
        .collect()
}

/// A time as Attio returns a timestamp attribute's value: UTC, nanoseconds, `Z`.
pub fn attio_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Attio validates email addresses strictly; this is close enough for tests.
fn strict_email(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    !local.is_empty()
        && local.chars().all(ok_char)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn record_body(object: &str, record: &Record, attributes: &[Attribute]) -> Value {
    let now = "2026-01-01T00:00:00.000000000Z";
    let values: Map<String, Value> = attributes
        .iter()
        .map(|def| {
            let list = record
                .values
                .get(def.slug)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let rendered: Vec<Value> = list
                .into_iter()
                .map(|v| {
                    let mut out = json!({"active_from": now, "active_until": null,
                        "created_by_actor": {"type": "api-token", "id": null}});
                    match def.kind {
                        Text => {
                            out["attribute_type"] = json!("text");
                            out["value"] = v;
                        }
                        Timestamp => {
                            out["attribute_type"] = json!("timestamp");
                            out["value"] = v;
                        }
                        EmailAddress => {
                            out["attribute_type"] = json!("email-address");
                            out["email_address"] = v;
                        }
                        PersonalName => {
                            out["attribute_type"] = json!("personal-name");
                            for (k, part) in v.as_object().into_iter().flatten() {
                                out[k] = part.clone();
                            }
                        }
                        RecordReference(targets) => {
                            out["attribute_type"] = json!("record-reference");
                            out["target_object"] = json!(targets[0]);
                            out["target_record_id"] = v;
                        }
                        Status(_) => {
                            out["attribute_type"] = json!("status");
                            out["status"] = json!({ "title": v, "is_archived": false });
                        }
                        Rating => {
                            out["attribute_type"] = json!("rating");
                            out["value"] = v;
                        }
                        Select(_) => {
                            out["attribute_type"] = json!("select");
                            out["option"] = json!({ "title": v });
                        }
                        PhoneNumber => {
                            out["attribute_type"] = json!("phone-number");
                            out["original_phone_number"] = v.clone();
                            out["phone_number"] = v;
                        }
                        Domain => {
                            out["attribute_type"] = json!("domain");
                            out["domain"] = v;
                        }
                        Number | Checkbox | Date => {
                            out["attribute_type"] = json!(def.kind.api_name());
                            out["value"] = v;
                        }
                    }
                    out
                })
                .collect();
            (def.slug.to_owned(), Value::Array(rendered))
        })
        .collect();
    json!({"data": {
        "id": {"workspace_id": WORKSPACE_ID, "object_id": format!("obj-{object}"), "record_id": record.id},
        "created_at": now,
        "web_url": format!("https://app.attio.com/stand-in/{object}/{}", record.id),
        "values": values,
    }})
}

fn uuid() -> String {
    let hex = format!("{:032x}", fastrand::u128(..));
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
