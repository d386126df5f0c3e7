//! The HTTP adapter: route, authenticate, parse, apply through the [`App`], answer. The one
//! place where a failure becomes an HTTP status ([`error`]) and where lambda_http is read
//! ([`lambda`]: the webhook function's event loop).

pub mod error;
pub mod lambda;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{Method, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::attio::AttioBudget;
use crate::config::DeliveryMode;
use crate::domain::{UserEvent, redact_emails};
use crate::logging::loggable_token;
use crate::metrics::Tally;
use crate::providers::{Delivery, Provider, WebhookRequest, provider_for_route};
use crate::queue::{DeliveryIdentity, QueueError};
use crate::secrets::SyncSecrets;
use crate::signature::SignatureError;
use crate::sync::{SyncError, SyncOutcome};
use error::{AppError, MAX_BODY_BYTES};

/// Time kept back from the Lambda deadline to answer in after giving up on Attio.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// What the log line may repeat of a request: set only after it is verified.
#[derive(Default)]
struct Verified<'r> {
    delivery_id: Option<&'r str>,
    event_type: Option<String>,
    /// Events applied (this attempt or an earlier one), of the delivery's events.
    applied: Option<(usize, usize)>,
    /// Why the queue did not take events it was sent, for the log line.
    queue_error: Option<QueueError>,
}

/// Identifies a verified delivery across a sender's retries: the route, the sender's delivery
/// id (stable across retries, distinct per message) and the body (Okta's and Auth0's retries
/// resend the same bytes). A new message with the same content has a new id, or, for senders
/// without one, a new event id or time in its body, and so is applied again.
fn delivery_key(route: &str, delivery_id: Option<&str>, body: &[u8]) -> u64 {
    crate::recent::keyed_hash((route, delivery_id, body))
}

/// What a successfully handled delivery produced.
enum Handled {
    Synced(Vec<SyncOutcome>),
    Ignored,
    /// A one-time endpoint verification, answered with exactly this body.
    Challenge(serde_json::Value),
    /// The first events were applied (`applied`), the rest are safe in the queue (`queued`).
    Queued {
        applied: Vec<SyncOutcome>,
        queued: usize,
    },
}

impl App {
    /// Handles one webhook request. Never fails: every outcome is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let provider = route(request.uri().path()).and_then(provider_for_route);
        let mut budget = AttioBudget::until(self.attio_deadline(&request, provider));
        let mut seen = Verified::default();
        let result = match provider {
            None => Err(AppError::UnknownRoute),
            Some(p) => {
                self.handle_provider(p, &request, &mut budget, &mut seen)
                    .await
            }
        };
        let provider_name = provider.map_or("none", |p| p.route());
        let mut tally = Tally::default();
        tally.add_attio(&budget);
        let (response, outcome, detail, warnings) = match result {
            Ok((delivery, handled)) => {
                count(&handled, &mut tally);
                let outcome = match &handled {
                    // One event: its own status, as the answer says it (`outdated`, `ignored`…).
                    Handled::Synced(outcomes) => match outcomes.as_slice() {
                        [only] => only.status(),
                        _ => "synced",
                    },
                    Handled::Ignored => "ignored",
                    Handled::Challenge(_) => "challenge",
                    Handled::Queued { .. } => "queued",
                };
                (
                    success(provider_name, &delivery, &handled),
                    outcome,
                    String::new(),
                    warned_attributes(&handled),
                )
            }
            Err(error) => (
                {
                    if error.status().is_client_error() {
                        tally.rejected += 1;
                    } else {
                        tally.failed += 1;
                    }
                    failure(&error, seen.applied)
                },
                error.code(),
                log_detail(&match &seen.queue_error {
                    // The event stays with the sender; say why the queue did not take it.
                    Some(queue) => format!("{error}; and the queue did not take it: {queue}"),
                    None => error.to_string(),
                }),
                String::new(),
            ),
        };
        tracing::info!(
            provider = provider_name,
            event_type = seen.event_type.as_deref().map_or("", loggable_token),
            webhook_id = seen.delivery_id.map_or("", loggable_token),
            outcome,
            status = response.status().as_u16(),
            events = seen.applied.map(|(_, of)| of),
            events_applied = seen.applied.map(|(applied, _)| applied),
            attio_calls = budget.calls,
            attio_status = budget.last_status,
            duration_ms = started.elapsed().as_millis() as u64,
            detail,
            warnings,
            "webhook handled"
        );
        tally.emit(provider_name);
        response
    }

    /// Authenticates, parses and applies one request to a known route. What the log line may
    /// repeat of the request goes into `seen`, and only once the request is verified.
    async fn handle_provider<'r>(
        &self,
        provider: &dyn Provider,
        request: &'r Request,
        budget: &mut AttioBudget,
        seen: &mut Verified<'r>,
    ) -> Result<(Delivery, Handled), AppError> {
        if request.method() == Method::GET
            && let Some(challenge) = provider.answer_challenge(request.headers())
        {
            // A verification request carries the same credentials as deliveries.
            let secrets = self.secrets.get().await?;
            self.verify(provider, request, secrets).await?;
            return Ok((
                Delivery::ignored("verification"),
                Handled::Challenge(challenge?),
            ));
        }
        if request.method() != Method::POST {
            return Err(AppError::MethodNotAllowed);
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(AppError::BodyTooLarge(body.len()));
        }
        let secrets = self.secrets.get().await?;
        let secrets = self.verify(provider, request, secrets).await?;
        seen.delivery_id = provider.delivery_id(request.headers());

        let delivery = provider.parse(body)?;
        seen.event_type = Some(delivery.event_type.clone());
        if delivery.events.is_empty() && delivery.skipped.is_empty() {
            return Ok((delivery, Handled::Ignored));
        }
        let identity = DeliveryIdentity {
            id: seen.delivery_id,
            body,
        };
        if delivery.events.iter().any(|e| self.sync.needs_attio(e))
            && (self.config.delivery_mode == DeliveryMode::Queued || self.queue_has_backlog().await)
        {
            let queued = self
                .enqueue_events(
                    provider.route(),
                    &delivery.event_type,
                    identity,
                    0,
                    &delivery.events,
                )
                .await
                .map_err(AppError::Queue)?;
            seen.applied = Some((0, delivery.events.len()));
            return Ok((
                delivery,
                Handled::Queued {
                    applied: Vec::new(),
                    queued,
                },
            ));
        }
        let key = delivery_key(provider.route(), seen.delivery_id, body);
        let results = self
            .apply_by_user(&delivery.events, Some(key), secrets, budget)
            .await;
        let mut applied = Vec::with_capacity(results.len());
        let mut left: Vec<(usize, &UserEvent)> = Vec::new();
        // Why not every event was applied: the first failure a retry can mend, else the first.
        let mut stopped: Option<SyncError> = None;
        for (position, result) in results.into_iter().enumerate() {
            match result {
                Some(Ok(outcome)) => applied.push(outcome),
                failed => {
                    left.push((position, &delivery.events[position]));
                    if let Some(Err(error)) = failed
                        && stopped
                            .as_ref()
                            .is_none_or(|s| !s.is_transient() && error.is_transient())
                    {
                        stopped = Some(error);
                    }
                }
            }
        }
        seen.applied = Some((applied.len(), delivery.events.len()));
        let Some(error) = stopped else {
            return Ok((delivery, Handled::Synced(applied)));
        };
        if !(error.is_transient() && self.queue.is_some()) {
            return Err(error.into());
        }
        // What Attio could not take in time is queued; an event Attio refused goes too, so that
        // the worker dead-letters it with its reason rather than it being lost with the answer.
        match self
            .enqueue_at(provider.route(), &delivery.event_type, identity, &left)
            .await
        {
            Ok(queued) => {
                self.note_backlog(true);
                Ok((delivery, Handled::Queued { applied, queued }))
            }
            Err(queue_error) => {
                seen.queue_error = Some(queue_error);
                Err(error.into())
            }
        }
    }

    /// When Attio work must be done by: `ATTIO_MAX_ELAPSED_MS` from now, or sooner if the
    /// sender waits less (Okta) or the Lambda deadline (less a margin to answer in) comes first.
    fn attio_deadline(
        &self,
        request: &Request,
        provider: Option<&dyn Provider>,
    ) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let configured = self.config.attio_max_elapsed;
        let sender_limit = provider
            .and_then(|p| p.answer_within())
            .unwrap_or(configured);
        let cap = now + configured.min(sender_limit);
        // Lambda sends the deadline as epoch milliseconds. A deadline already past at the start
        // is no real deadline (cargo lambda's emulator sends its timeout, 600000, instead).
        let lambda_left = request
            .lambda_context_ref()
            .and_then(|context| context.deadline().duration_since(SystemTime::now()).ok());
        match lambda_left {
            Some(left) => cap.min(now + left.saturating_sub(DEADLINE_MARGIN)),
            None => cap,
        }
    }

    /// Verifies the request against the route's secrets; when none matches, refetches the
    /// secret (bounded) in case the signing secret was rotated, and tries once more. Providers
    /// that sign with published keys (Kinde) are verified against those instead.
    async fn verify(
        &self,
        provider: &dyn Provider,
        request: &Request,
        secrets: Arc<SyncSecrets>,
    ) -> Result<Arc<SyncSecrets>, AppError> {
        if let Some(url) = provider.jwks_url(&self.config) {
            let url = url.map_err(AppError::MissingSetting)?;
            self.verify_with_published_keys(provider, request, &url)
                .await?;
            return Ok(secrets);
        }
        let webhook_request = self.webhook_request(request, None);
        let check = |s: &SyncSecrets| {
            let route_secrets = s.webhook_secrets_for(provider.route());
            if route_secrets.is_empty() {
                return Err(AppError::NoSigningSecret(provider.route()));
            }
            Ok(provider.verify(&webhook_request, route_secrets)?)
        };
        match check(&secrets) {
            Ok(()) => Ok(secrets),
            Err(AppError::Signature(SignatureError::NoMatch))
            | Err(AppError::NoSigningSecret(_)) => {
                match self.secrets.refresh_after_rejection().await {
                    Some(fresh) => check(&fresh).map(|()| fresh),
                    None => check(&secrets).map(|()| secrets),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Verifies against the key set at `url`; a token naming a key the cached set lacks
    /// refetches the set (bounded) once, for key rotation.
    async fn verify_with_published_keys(
        &self,
        provider: &dyn Provider,
        request: &Request,
        url: &str,
    ) -> Result<(), AppError> {
        let keys = self.jwks.get(url).await?;
        let check =
            |keys: &JwkSet| provider.verify(&self.webhook_request(request, Some(keys)), &[]);
        match check(&keys) {
            Err(SignatureError::UnknownKey) => match self.jwks.refresh(url).await {
                Some(fresh) => Ok(check(&fresh)?),
                None => Err(SignatureError::UnknownKey.into()),
            },
            other => Ok(other?),
        }
    }

    fn webhook_request<'a>(
        &self,
        request: &'a Request,
        keys: Option<&'a JwkSet>,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            headers: request.headers(),
            body: request.body().as_ref(),
            now: SystemTime::now(),
            tolerance: self.config.webhook_tolerance,
            keys,
        }
    }
}

/// Longest failure detail a log line holds.
const MAX_LOGGED_DETAIL: usize = 400;

/// A failure's message as the log may show it: addresses redacted, control characters
/// dropped, bounded (an Attio message can be long).
fn log_detail(message: &str) -> String {
    let redacted = redact_emails(message);
    let mut shown = redacted.chars().filter(|c| !c.is_control());
    let mut detail: String = shown.by_ref().take(MAX_LOGGED_DETAIL).collect();
    if shown.next().is_some() {
        detail.push('…');
    }
    detail
}

/// The route name from a path ending in `/webhooks/<route>`, whatever comes before it
/// (an API Gateway stage, a custom domain's base path).
fn route(path: &str) -> Option<&str> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let name = segments.next()?;
    (segments.next()? == "webhooks" && !name.is_empty()).then_some(name)
}

fn success(provider: &str, delivery: &Delivery, handled: &Handled) -> Response<Body> {
    let mut body = json!({ "provider": provider, "event_type": delivery.event_type });
    match handled {
        Handled::Challenge(answer) => return json_response(StatusCode::OK, answer),
        Handled::Queued { applied, queued } => {
            body["status"] = json!("queued");
            body["queued"] = json!(queued);
            if !applied.is_empty() {
                body["applied"] = json!(applied.len());
                body["records"] = applied.iter().map(outcome_json).collect();
            }
            return json_response(StatusCode::ACCEPTED, &body);
        }
        Handled::Ignored => body["status"] = json!("ignored"),
        Handled::Synced(outcomes) => match outcomes.as_slice() {
            [only] => merge(&mut body, outcome_json(only)),
            many => {
                body["status"] = json!("synced");
                body["records"] = many.iter().map(outcome_json).collect();
            }
        },
    }
    if !delivery.skipped.is_empty() {
        body["skipped"] = json!(delivery.skipped);
    }
    json_response(StatusCode::OK, &body)
}

/// One outcome as the sender sees it: a `status` and the Attio record ids involved.
fn outcome_json(outcome: &SyncOutcome) -> serde_json::Value {
    let mut v = match outcome {
        SyncOutcome::Synced {
            record_id,
            person_record_id,
            workspace_record_ids,
            ..
        } => {
            let mut v = json!({ "record_id": record_id, "person_record_id": person_record_id });
            if !workspace_record_ids.is_empty() {
                v["workspace_record_ids"] = json!(workspace_record_ids);
            }
            v
        }
        SyncOutcome::Linked {
            record_id,
            workspace_record_id,
            ..
        } => json!({ "record_id": record_id, "workspace_record_id": workspace_record_id }),
        SyncOutcome::SignedIn { record_id, .. } => json!({ "record_id": record_id }),
        SyncOutcome::Unlinked { record_id } | SyncOutcome::Deleted { record_id } => {
            json!({ "record_id": record_id })
        }
        SyncOutcome::Outdated { record_id } => {
            json!({ "record_id": record_id, "reason": "Attio already holds a newer change of this user" })
        }
        SyncOutcome::Ignored { reason } => json!({ "reason": reason }),
    };
    v["status"] = json!(outcome.status());
    // `"warnings": [{"object", "attribute", "reason"}]` when mapped attributes were left out.
    if !outcome.warnings().is_empty() {
        v["warnings"] = outcome
            .warnings()
            .iter()
            .map(|w| json!({ "object": w.object, "attribute": w.attribute, "reason": w.reason }))
            .collect();
    }
    v
}

/// Counts what a handled delivery did, for the metrics.
fn count(handled: &Handled, tally: &mut Tally) {
    let mut count_outcomes = |outcomes: &[SyncOutcome]| {
        for outcome in outcomes {
            match outcome {
                SyncOutcome::Ignored { .. } => tally.ignored += 1,
                _ => tally.synced += 1,
            }
        }
    };
    match handled {
        Handled::Synced(outcomes) => count_outcomes(outcomes),
        Handled::Queued { applied, queued } => {
            count_outcomes(applied);
            tally.queued += *queued as u32;
        }
        Handled::Ignored => tally.ignored += 1,
        Handled::Challenge(_) => {}
    }
}

/// `users.plan,people.job_title`: the attributes left out, for the log line (no values).
fn warned_attributes(handled: &Handled) -> String {
    let Handled::Synced(outcomes) = handled else {
        return String::new();
    };
    let names: Vec<String> = outcomes
        .iter()
        .flat_map(SyncOutcome::warnings)
        .map(|w| format!("{}.{}", w.object, w.attribute))
        .collect();
    names.join(",")
}

fn merge(body: &mut serde_json::Value, fields: serde_json::Value) {
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
}

/// An error answer; for a batch cut short, it says how many of its events are applied (a
/// retry of the same delivery applies only the rest).
fn failure(error: &AppError, applied: Option<(usize, usize)>) -> Response<Body> {
    let mut body = json!({ "error": { "code": error.code(), "message": error.to_string() } });
    if let Some((applied, of)) = applied.filter(|(_, of)| *of > 1) {
        body["error"]["applied"] = json!(applied);
        body["error"]["remaining"] = json!(of - applied);
    }
    let mut response = json_response(error.status(), &body);
    let headers = response.headers_mut();
    if let Some(wait) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, wait.as_secs().into());
    }
    if matches!(error, AppError::MethodNotAllowed) {
        headers.insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{MAX_LOGGED_DETAIL, log_detail, route};

    #[test]
    fn log_details_are_bounded_redacted_and_free_of_control_characters() {
        let long = format!("ada@example.com\n{}", "x".repeat(1000));
        let detail = log_detail(&long);
        assert_eq!(detail.chars().count(), MAX_LOGGED_DETAIL + 1);
        assert!(detail.ends_with('…') && !detail.contains('\n'));
        assert!(!detail.contains("ada@"), "{detail}");
        assert_eq!(log_detail("short"), "short");
    }

    #[test]
    fn routes_by_the_last_two_segments_whatever_the_prefix() {
        assert_eq!(route("/webhooks/clerk"), Some("clerk"));
        assert_eq!(route("/prod/webhooks/clerk"), Some("clerk"));
        assert_eq!(route("/webhooks/standard/"), Some("standard"));
        assert_eq!(route("/webhooks/"), None);
        assert_eq!(route("/clerk"), None);
        assert_eq!(route("/"), None);
        assert_eq!(route(""), None);
    }
}
