//! Every way a request can fail, and the one mapping from failure to HTTP status and code.

use std::time::Duration;

use lambda_http::http::StatusCode;
use thiserror::Error;

use crate::attio::AttioError;
use crate::jwks::JwksError;
use crate::providers::PayloadError;
use crate::queue::QueueError;
use crate::secrets::SecretsError;
use crate::signature::SignatureError;
use crate::sync::SyncError;

/// Largest body accepted; identity provider user events are a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A request that did not end in a synced or ignored event.
#[derive(Debug, Error)]
pub enum AppError {
    /// The path is not `…/webhooks/<known route>`.
    #[error("no webhook route at this path; use POST /webhooks/<provider>")]
    UnknownRoute,
    /// A known route called with another method than POST.
    #[error("webhook routes accept POST only")]
    MethodNotAllowed,
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("the body is {0} bytes, over the {MAX_BODY_BYTES}-byte limit")]
    BodyTooLarge(usize),
    /// The Secrets Manager secret could not be fetched or read.
    #[error("configuration problem: {0}")]
    Secrets(#[from] SecretsError),
    /// A setting this route needs is not set.
    #[error("configuration problem: {0} is not set, and this route needs it")]
    MissingSetting(&'static str),
    /// A provider's published signing keys could not be fetched.
    #[error("{0}")]
    Jwks(#[from] JwksError),
    /// The secret has no signing secret for this route.
    #[error("configuration problem: the secret has no webhook_secrets.{0} entry")]
    NoSigningSecret(&'static str),
    /// The request is not authentic (or the signing secret is unusable).
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The body is not a usable payload.
    #[error("{0}")]
    Payload(#[from] PayloadError),
    /// Attio did not confirm the write.
    #[error("{0}")]
    Attio(#[from] AttioError),
    /// A membership arrived for a user Attio does not have yet.
    #[error("{0}")]
    UserNotYetSynced(SyncError),
    /// `DELIVERY_MODE=queued`, and the queue did not take the events.
    #[error("{0}; the sender should retry")]
    Queue(QueueError),
}

impl From<SyncError> for AppError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Attio(e) => Self::Attio(e),
            e @ SyncError::UserNotYetSynced(_) => Self::UserNotYetSynced(e),
        }
    }
}

impl AppError {
    /// The HTTP status the sender sees. 2xx is never here: only a confirmed write earns one.
    /// 4xx tells the sender to stop retrying; 5xx asks it to retry later.
    pub fn status(&self) -> StatusCode {
        use AttioError as A;
        match self {
            Self::UnknownRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Secrets(_) | Self::NoSigningSecret(_) | Self::MissingSetting(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Jwks(_) => StatusCode::BAD_GATEWAY,
            Self::Signature(SignatureError::UnusableSecret) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::Payload(PayloadError::Malformed { .. }) => StatusCode::BAD_REQUEST,
            Self::UserNotYetSynced(_) | Self::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Payload(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Attio(e) => match e {
                A::Unauthorized { .. } | A::Forbidden { .. } | A::ObjectNotActivated { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                A::UniquenessConflict { .. } => StatusCode::CONFLICT,
                A::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                A::RateLimited { .. } | A::OutOfTime { .. } => StatusCode::SERVICE_UNAVAILABLE,
                // A record vanishing between two calls is a race a retry resolves.
                A::ServerError { .. }
                | A::Unreachable { .. }
                | A::UnexpectedResponse(_)
                | A::RecordNotFound => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// The stable snake_case code in the error body.
    pub fn code(&self) -> &'static str {
        use AttioError as A;
        match self {
            Self::UnknownRoute => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UserNotYetSynced(_) => "user_not_yet_synced",
            Self::Queue(_) => "queue_unavailable",
            Self::BodyTooLarge(_) => "payload_too_large",
            Self::Secrets(SecretsError::Fetch(_)) => "secret_unavailable",
            Self::Secrets(_) => "secret_malformed",
            Self::NoSigningSecret(_) => "signing_secret_missing",
            Self::MissingSetting(_) => "setting_missing",
            Self::Jwks(_) => "signing_keys_unavailable",
            Self::Signature(e) => match e {
                SignatureError::MissingHeader(_) => "missing_signature",
                SignatureError::InvalidTimestamp | SignatureError::TimestampOutOfTolerance(_) => {
                    "invalid_timestamp"
                }
                SignatureError::TooManySignatures
                | SignatureError::NoMatch
                | SignatureError::UnknownKey
                | SignatureError::InvalidToken(_) => "invalid_signature",
                SignatureError::UnusableSecret => "signing_secret_invalid",
            },
            Self::Payload(e) => match e {
                PayloadError::Malformed { .. } => "invalid_payload",
                PayloadError::NoEmail => "missing_email",
                PayloadError::InvalidEmail(_) => "invalid_email",
            },
            Self::Attio(e) => match e {
                A::Unauthorized { .. } => "attio_unauthorized",
                A::Forbidden { .. } => "attio_forbidden",
                A::ObjectNotActivated { .. } => "attio_object_not_activated",
                A::UniquenessConflict { .. } => "attio_uniqueness_conflict",
                A::Invalid { .. } => "attio_rejected",
                A::RateLimited { .. } => "attio_rate_limited",
                A::OutOfTime { .. } => "time_budget_exhausted",
                A::ServerError { .. } => "attio_unavailable",
                A::Unreachable { .. } => "attio_unreachable",
                A::UnexpectedResponse(_) => "attio_bad_response",
                A::RecordNotFound => "attio_record_not_found",
            },
        }
    }

    /// Whether a later attempt of the same event can succeed with nothing changed but time:
    /// Attio unavailable, slow or rate-limiting, or a membership whose user is not in Attio
    /// yet. These are what the queue takes over from the sender.
    pub fn is_transient(&self) -> bool {
        use AttioError as A;
        matches!(
            self,
            Self::UserNotYetSynced(_)
                | Self::Attio(
                    A::RateLimited { .. }
                        | A::OutOfTime { .. }
                        | A::ServerError { .. }
                        | A::Unreachable { .. }
                        | A::UnexpectedResponse(_)
                        | A::RecordNotFound
                )
        )
    }

    /// `Retry-After` for the sender, when Attio is rate-limiting.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            // Long enough for the user's own event to land first.
            Self::UserNotYetSynced(_) => Some(Duration::from_secs(60)),
            Self::Queue(_) => Some(Duration::from_secs(5)),
            // Attio is fine: the next attempt brings a new time budget.
            Self::Attio(AttioError::OutOfTime { .. }) => Some(Duration::from_secs(1)),
            Self::Attio(AttioError::RateLimited { retry_after }) => Some(
                retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_secs(1)),
            ),
            _ => None,
        }
    }
}

/// How a failure is reported to Lambda when an invocation fails (the Cognito trigger): the
/// code as the error type, the sentence as the message.
impl From<AppError> for lambda_runtime::Diagnostic {
    fn from(e: AppError) -> Self {
        Self {
            error_type: e.code().to_owned(),
            error_message: crate::domain::redact_emails(&e.to_string()),
        }
    }
}
