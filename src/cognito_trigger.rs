//! Amazon Cognito's Post Confirmation trigger: invoked directly by Cognito (no HTTP, no
//! signature). `PostConfirmation_ConfirmSignUp` syncs the new user; anything else passes
//! through. The event is always returned unchanged, within Cognito's 5 s. Cognito never
//! retries a trigger: with `SYNC_QUEUE_URL` set, a user Attio cannot take in time is queued for
//! the worker instead. Otherwise (or if the queue refuses too) the failure is logged with the
//! user's `sub` and the sign-up goes on; with `COGNITO_BLOCK_SIGNUP_ON_ERROR=true` it fails
//! the sign-up instead.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::App;
use crate::attio::AttioBudget;
use crate::domain::{UserChange, UserEvent};
use crate::providers::cognito::{CONFIRM_SIGN_UP, ROUTE, confirmed_user};
use crate::providers::provider::PayloadError;
use crate::queue::DeliveryIdentity;
use crate::secrets::SecretsError;
use crate::sync::SyncError;

/// Cognito waits 5 s; keep time to return.
const COGNITO_BUDGET: Duration = Duration::from_secs(4);

/// Why a confirmed user was not synced.
#[derive(Debug, Error)]
pub enum TriggerError {
    /// The event is not a Post Confirmation event, or its user cannot be a user record.
    #[error("{0}")]
    Payload(#[from] PayloadError),
    /// The Secrets Manager secret could not be fetched or read.
    #[error("configuration problem: {0}")]
    Secrets(#[from] SecretsError),
    /// Attio did not confirm the write (and no queue took the user).
    #[error("{0}")]
    Sync(#[from] SyncError),
}

impl TriggerError {
    /// The stable snake_case code, as the webhook answers it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Payload(e) => e.code(),
            Self::Secrets(e) => e.code(),
            Self::Sync(e) => e.code(),
        }
    }

    /// Whether the user itself cannot be synced (its data, or a value Attio refuses), rather
    /// than the function or Attio failing.
    fn rejected(&self) -> bool {
        match self {
            Self::Payload(_) => true,
            Self::Sync(SyncError::Attio(e)) => {
                e.concerns_one_record() && !matches!(e, crate::attio::AttioError::RecordNotFound)
            }
            _ => false,
        }
    }
}

/// How a failure is reported to Lambda when the trigger blocks the sign-up: the code as the
/// error type, the sentence as the message.
impl From<TriggerError> for lambda_runtime::Diagnostic {
    fn from(e: TriggerError) -> Self {
        Self {
            error_type: e.code().to_owned(),
            error_message: crate::domain::redact_emails(&e.to_string()),
        }
    }
}

/// Handles one Post Confirmation invocation: returns the event unchanged, or an error only
/// when configured to block sign-ups on failure.
pub async fn post_confirmation(app: &App, event: Value) -> Result<Value, TriggerError> {
    let started = std::time::Instant::now();
    let user_id = event
        .pointer("/request/userAttributes/sub")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut budget = AttioBudget::from_now(COGNITO_BUDGET);
    let result = sync(app, &event, &mut budget).await;
    let (outcome, detail) = match &result {
        Ok(Some(outcome)) => (*outcome, String::new()),
        Ok(None) => ("ignored", String::new()),
        Err(e) => (e.code(), crate::domain::redact_emails(&e.to_string())),
    };
    tracing::info!(
        provider = ROUTE,
        user_sub = user_id.as_deref().unwrap_or(""),
        outcome,
        duration_ms = started.elapsed().as_millis() as u64,
        detail,
        "post confirmation handled"
    );
    let mut tally = crate::metrics::Tally::default();
    tally.add_attio(&budget);
    match &result {
        Ok(Some("queued")) => tally.queued += 1,
        Ok(Some("ignored")) | Ok(None) => tally.ignored += 1,
        Ok(Some(_)) => tally.synced += 1,
        Err(e) if e.rejected() => tally.rejected += 1,
        Err(_) => tally.failed += 1,
    }
    tally.emit(ROUTE);
    match result {
        Err(e) if app.config().cognito_block_signup_on_error => Err(e),
        _ => Ok(event),
    }
}

/// Syncs the confirmed user: `synced`, `queued` (Attio could not take it in time and the queue
/// did), or `None` for triggers other than sign-up.
async fn sync(
    app: &App,
    event: &Value,
    budget: &mut AttioBudget,
) -> Result<Option<&'static str>, TriggerError> {
    let Some(user) = confirmed_user(event)? else {
        return Ok(None);
    };
    let secrets = app.secrets().await?;
    // Cognito sends no delivery id, and confirms a user once: the event identifies it.
    let body = event.to_string();
    let events = [UserEvent::upserted(UserChange::Created, user)];
    match app
        .apply(&events, None, secrets, budget)
        .await
        .into_result()
    {
        Ok(outcomes) => Ok(outcomes.first().map(|o| o.status())),
        Err(error) if error.is_transient() && app.queue().is_some() => {
            match app
                .enqueue_events(
                    ROUTE,
                    CONFIRM_SIGN_UP,
                    DeliveryIdentity {
                        id: None,
                        body: body.as_bytes(),
                    },
                    0,
                    &events,
                )
                .await
            {
                Ok(_) => Ok(Some("queued")),
                Err(queue_error) => {
                    tracing::warn!(error = %queue_error, "the queue did not take the user either");
                    Err(error.into())
                }
            }
        }
        Err(error) => Err(error.into()),
    }
}
