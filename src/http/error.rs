//! Every way a request can fail, and the one mapping from failure to HTTP status and code.

use std::time::Duration;

use http::StatusCode;
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
        match self {
            Self::UnknownRoute => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UserNotYetSynced(e) => e.code(),
            Self::Queue(_) => "queue_unavailable",
            Self::BodyTooLarge(_) => "payload_too_large",
            Self::Secrets(e) => e.code(),
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
            Self::Payload(e) => e.code(),
            Self::Attio(e) => e.code(),
        }
    }

    /// Whether a later attempt of the same event can succeed with nothing changed but time
    /// (what the queue takes over from the sender): as [`SyncError::is_transient`].
    pub fn is_transient(&self) -> bool {
        match self {
            Self::UserNotYetSynced(e) => e.is_transient(),
            Self::Attio(e) => e.is_transient(),
            _ => false,
        }
    }

    /// `Retry-After` for the sender.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::UserNotYetSynced(e) => e.retry_after(),
            Self::Queue(_) => Some(Duration::from_secs(5)),
            Self::Attio(e) => e.retry_after(),
            _ => None,
        }
    }
}
