//! Configuration read from the environment once, at cold start, and validated there.

use std::time::Duration;

use thiserror::Error;

use crate::mapping::AttributeMap;

/// Which unique attribute of Attio's `users` object identifies a user on assert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMatchingAttribute {
    /// `user_id`: the identity provider's user id; stable when the email changes.
    UserId,
    /// `primary_email_address`.
    PrimaryEmailAddress,
}

impl UserMatchingAttribute {
    /// The Attio attribute slug.
    pub fn slug(self) -> &'static str {
        match self {
            Self::UserId => "user_id",
            Self::PrimaryEmailAddress => "primary_email_address",
        }
    }
}

/// What a `user.deleted` (or equivalent) event does (`ON_USER_DELETED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUserDeleted {
    /// Answer `200 ignored`; Attio keeps the user (the default: CRM history is kept).
    Ignore,
    /// Delete the Attio `users` record; the `people` record stays.
    Delete,
}

/// When the webhook writes to Attio (`DELIVERY_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Try Attio within the request's budget; queue what Attio cannot take in time (when a
    /// queue is configured). The default.
    Direct,
    /// Queue every event and answer `202` at once, without calling Attio (bursts, Okta's 3 s).
    /// The default when `ATTIO_USER_EVENT_TIME_ATTRIBUTE` and a queue are both configured: the
    /// queue's FIFO message group applies one user's changes one at a time, which is what keeps
    /// an older change from landing over a newer one.
    Queued,
}

/// Everything the function needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name or ARN of the Secrets Manager secret (`ATTIO_SYNC_SECRET_ID`).
    pub secret_id: String,
    /// Base URL of the Attio API, without a trailing slash (`ATTIO_API_URL`).
    pub attio_api_url: String,
    /// `ATTIO_USER_MATCHING_ATTRIBUTE`.
    pub user_matching_attribute: UserMatchingAttribute,
    /// How far a webhook timestamp may be from now, in either direction (`WEBHOOK_TOLERANCE_SECONDS`).
    pub webhook_tolerance: Duration,
    /// How long a fetched secret is used before it is fetched again (`SECRET_CACHE_TTL_SECONDS`).
    pub secret_cache_ttl: Duration,
    /// Most time spent on Attio per request, retries included (`ATTIO_MAX_ELAPSED_MS`); the
    /// Lambda deadline may cut it shorter.
    pub attio_max_elapsed: Duration,
    /// Attio writes a second this process starts at most: `ATTIO_WRITES_PER_SECOND` (24.5,
    /// under Attio's 25 for arrival jitter) divided by `ATTIO_WRITE_SHARES`, the processes that
    /// share the limit at once (the template sets it to the worker's maximum concurrency).
    pub attio_writes_per_second: f64,
    /// `ON_USER_DELETED`.
    pub on_user_deleted: OnUserDeleted,
    /// Kinde tenant URL, `https://<sub>.kinde.com` (`KINDE_ISSUER_URL`); needed for Kinde only.
    pub kinde_issuer_url: Option<String>,
    /// A timestamp attribute of `users` to write the provider's sign-up time to
    /// (`ATTIO_USER_CREATED_AT_ATTRIBUTE`); none by default, since Attio has no standard one.
    pub user_created_at_attribute: Option<String>,
    /// A timestamp attribute of `users` holding the time of the last change applied
    /// (`ATTIO_USER_EVENT_TIME_ATTRIBUTE`). When set, an event older than it is not applied.
    pub user_event_time_attribute: Option<String>,
    /// Cognito trigger only: fail the sign-up when Attio cannot be written
    /// (`COGNITO_BLOCK_SIGNUP_ON_ERROR=true`). Off by default: a sign-up never waits on the CRM.
    pub cognito_block_signup_on_error: bool,
    /// Which user fields go to which Attio attributes beyond those every sync writes
    /// (`ATTIO_ATTRIBUTE_MAP`); empty when unset.
    pub attribute_map: AttributeMap,
    /// The SQS FIFO queue events go to when Attio cannot take them (`SYNC_QUEUE_URL`).
    pub sync_queue_url: Option<String>,
    /// The FIFO dead-letter queue the worker moves messages that can never succeed to
    /// (`SYNC_DEAD_LETTER_QUEUE_URL`).
    pub dead_letter_queue_url: Option<String>,
    /// `DELIVERY_MODE`.
    pub delivery_mode: DeliveryMode,
    /// A PEM bundle of the certificate authorities to trust instead of the compiled-in
    /// Mozilla roots (`SSL_CERT_FILE`); see [`crate::tls`].
    pub ca_bundle: Option<std::path::PathBuf>,
}

/// A variable that is missing or holds a value the function cannot use.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("environment variable {variable} {problem}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong with it, as the end of a sentence.
    pub problem: String,
}

const DEFAULT_ATTIO_API_URL: &str = "https://api.attio.com";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let secret_id = get("ATTIO_SYNC_SECRET_ID").ok_or_else(|| ConfigError {
            variable: "ATTIO_SYNC_SECRET_ID",
            problem: "is not set: give the name or ARN of the Secrets Manager secret".into(),
        })?;

        let attio_api_url = get("ATTIO_API_URL").unwrap_or_else(|| DEFAULT_ATTIO_API_URL.into());
        if !(attio_api_url.starts_with("https://") || attio_api_url.starts_with("http://")) {
            return Err(ConfigError {
                variable: "ATTIO_API_URL",
                problem: format!("must be an http(s) URL, got {attio_api_url:?}"),
            });
        }
        let attio_api_url = attio_api_url.trim_end_matches('/').to_owned();

        let user_matching_attribute = match get("ATTIO_USER_MATCHING_ATTRIBUTE").as_deref() {
            None | Some("user_id") => UserMatchingAttribute::UserId,
            Some("primary_email_address") => UserMatchingAttribute::PrimaryEmailAddress,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ATTIO_USER_MATCHING_ATTRIBUTE",
                    problem: format!("must be user_id or primary_email_address, got {other:?}"),
                });
            }
        };

        let on_user_deleted = match get("ON_USER_DELETED").as_deref() {
            None | Some("ignore") => OnUserDeleted::Ignore,
            Some("delete") => OnUserDeleted::Delete,
            Some(other) => {
                return Err(ConfigError {
                    variable: "ON_USER_DELETED",
                    problem: format!("must be ignore or delete, got {other:?}"),
                });
            }
        };
        let kinde_issuer_url = match get("KINDE_ISSUER_URL") {
            None => None,
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(url) => {
                return Err(ConfigError {
                    variable: "KINDE_ISSUER_URL",
                    problem: format!(
                        "must be an http(s) URL such as https://yours.kinde.com, got {url:?}"
                    ),
                });
            }
        };
        let cognito_block_signup_on_error = match get("COGNITO_BLOCK_SIGNUP_ON_ERROR").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "COGNITO_BLOCK_SIGNUP_ON_ERROR",
                    problem: format!("must be true or false, got {other:?}"),
                });
            }
        };
        let webhook_tolerance = seconds(&get, "WEBHOOK_TOLERANCE_SECONDS", 300, 1..=86_400)?;
        let secret_cache_ttl = seconds(&get, "SECRET_CACHE_TTL_SECONDS", 300, 0..=86_400)?;
        // Below Svix's 15 s delivery timeout, so the sender hears an answer before it gives up.
        let attio_max_elapsed = Duration::from_millis(number(
            &get,
            "ATTIO_MAX_ELAPSED_MS",
            "milliseconds",
            10_000,
            100..=900_000,
        )?);
        let writes_per_second = match get("ATTIO_WRITES_PER_SECOND") {
            None => 24.5,
            Some(raw) => match raw.parse::<f64>() {
                Ok(n) if (1.0..=25.0).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        variable: "ATTIO_WRITES_PER_SECOND",
                        problem: format!(
                            "must be a number from 1 to 25 (Attio's limit), got {raw:?}"
                        ),
                    });
                }
            },
        };
        let write_shares = number(&get, "ATTIO_WRITE_SHARES", "processes", 1, 1..=1000)?;
        let attio_writes_per_second = (writes_per_second / write_shares as f64).max(1.0);

        let sync_queue_url = fifo_queue_url(&get, "SYNC_QUEUE_URL")?;
        let dead_letter_queue_url = fifo_queue_url(&get, "SYNC_DEAD_LETTER_QUEUE_URL")?;
        let user_event_time_attribute = attribute_slug(&get, "ATTIO_USER_EVENT_TIME_ATTRIBUTE")?;
        let delivery_mode = match get("DELIVERY_MODE").as_deref() {
            // Ordering by event time holds only when one user's changes are applied one at a
            // time (Attio has no conditional write): with a queue, its FIFO message group does
            // that, so every event goes through it unless DELIVERY_MODE says otherwise.
            None if user_event_time_attribute.is_some() && sync_queue_url.is_some() => {
                DeliveryMode::Queued
            }
            None | Some("direct") => DeliveryMode::Direct,
            Some("queued") if sync_queue_url.is_some() => DeliveryMode::Queued,
            Some("queued") => {
                return Err(ConfigError {
                    variable: "DELIVERY_MODE",
                    problem:
                        "is queued, which needs SYNC_QUEUE_URL (the SQS FIFO queue to send to)"
                            .into(),
                });
            }
            Some(other) => {
                return Err(ConfigError {
                    variable: "DELIVERY_MODE",
                    problem: format!("must be direct or queued, got {other:?}"),
                });
            }
        };

        Ok(Self {
            secret_id,
            sync_queue_url,
            dead_letter_queue_url,
            delivery_mode,
            attio_api_url,
            user_matching_attribute,
            webhook_tolerance,
            secret_cache_ttl,
            attio_max_elapsed,
            attio_writes_per_second,
            on_user_deleted,
            kinde_issuer_url,
            cognito_block_signup_on_error,
            ca_bundle: get("SSL_CERT_FILE").map(Into::into),
            user_created_at_attribute: attribute_slug(&get, "ATTIO_USER_CREATED_AT_ATTRIBUTE")?,
            user_event_time_attribute,
            attribute_map: match get("ATTIO_ATTRIBUTE_MAP") {
                None => AttributeMap::default(),
                Some(json) => {
                    AttributeMap::parse(&json, crate::routes::ALL).map_err(|problem| {
                        ConfigError {
                            variable: "ATTIO_ATTRIBUTE_MAP",
                            problem,
                        }
                    })?
                }
            },
        })
    }
}

/// The configuration of a binary a person runs, which may be given the Attio token itself:
/// `ATTIO_ACCESS_TOKEN` is used when `ATTIO_SYNC_SECRET_ID` is not set (and returned).
pub fn from_lookup_or_token(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Config, Option<String>), ConfigError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let token = get("ATTIO_ACCESS_TOKEN").filter(|_| get("ATTIO_SYNC_SECRET_ID").is_none());
    let config = Config::from_lookup(|name| match name {
        "ATTIO_SYNC_SECRET_ID" if token.is_some() => Some("(ATTIO_ACCESS_TOKEN)".into()),
        _ => lookup(name),
    })?;
    Ok((config, token))
}

/// An optional SQS FIFO queue URL: `https://sqs.<region>.amazonaws.com/<account>/<name>.fifo`
/// (any http(s) URL ending in `.fifo`, for local emulators).
fn fifo_queue_url(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<String>, ConfigError> {
    match get(variable) {
        None => Ok(None),
        Some(url)
            if (url.starts_with("https://") || url.starts_with("http://"))
                && url.ends_with(".fifo") =>
        {
            Ok(Some(url))
        }
        Some(_) => Err(ConfigError {
            variable,
            problem: "must be the URL of an SQS FIFO queue (https://sqs.<region>.amazonaws.com/<account>/<name>.fifo)".into(),
        }),
    }
}

/// An optional Attio attribute slug: lowercase letters, digits and underscores.
fn attribute_slug(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<String>, ConfigError> {
    match get(variable) {
        None => Ok(None),
        Some(slug)
            if slug.len() <= 64
                && slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            Ok(Some(slug))
        }
        Some(slug) => Err(ConfigError {
            variable,
            problem: format!("must be an Attio attribute slug (a-z, 0-9, _), got {slug:?}"),
        }),
    }
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    number(get, variable, "seconds", default, range).map(Duration::from_secs)
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    unit: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    match raw.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError {
            variable,
            problem: format!(
                "must be a whole number of {unit} from {} to {}, got {raw:?}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_apply_when_only_the_secret_id_is_set() {
        let c = config(&[("ATTIO_SYNC_SECRET_ID", "attio-user-sync")]).unwrap();
        assert_eq!(c.attio_api_url, "https://api.attio.com");
        assert_eq!(c.user_matching_attribute, UserMatchingAttribute::UserId);
        assert_eq!(c.webhook_tolerance, Duration::from_secs(300));
        assert_eq!(c.secret_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.attio_max_elapsed, Duration::from_secs(10));
        assert_eq!(c.attio_writes_per_second, 24.5);
    }

    #[test]
    fn the_write_pace_is_shared_by_the_processes_that_write_at_once() {
        let c = config(&[("ATTIO_SYNC_SECRET_ID", "s"), ("ATTIO_WRITE_SHARES", "2")]).unwrap();
        assert_eq!(c.attio_writes_per_second, 12.25);
        let c = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            ("ATTIO_WRITES_PER_SECOND", "20"),
            ("ATTIO_WRITE_SHARES", "4"),
        ])
        .unwrap();
        assert_eq!(c.attio_writes_per_second, 5.0);
        let e = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            ("ATTIO_WRITES_PER_SECOND", "40"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "ATTIO_WRITES_PER_SECOND");
    }

    #[test]
    fn queue_settings_take_fifo_queue_urls_and_queued_mode_needs_a_queue() {
        let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/attio-user-sync.fifo";
        let c = config(&[("ATTIO_SYNC_SECRET_ID", "s")]).unwrap();
        assert_eq!(
            (c.sync_queue_url, c.delivery_mode),
            (None, DeliveryMode::Direct)
        );
        let c = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            ("SYNC_QUEUE_URL", queue),
            ("DELIVERY_MODE", "queued"),
        ])
        .unwrap();
        assert_eq!(c.sync_queue_url.as_deref(), Some(queue));
        assert_eq!(c.delivery_mode, DeliveryMode::Queued);
        for variable in ["SYNC_QUEUE_URL", "SYNC_DEAD_LETTER_QUEUE_URL"] {
            let err = config(&[
                ("ATTIO_SYNC_SECRET_ID", "s"),
                (
                    variable,
                    "https://sqs.us-east-1.amazonaws.com/123456789012/standard-queue",
                ),
            ])
            .unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().contains("FIFO"), "{err}");
        }
    }

    #[test]
    fn ordering_by_event_time_with_a_queue_queues_unless_told_direct() {
        let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/attio-user-sync.fifo";
        let mode = |extra: &[(&str, &str)]| {
            let mut vars = vec![("ATTIO_SYNC_SECRET_ID", "s")];
            vars.extend_from_slice(extra);
            config(&vars).unwrap().delivery_mode
        };
        let ordered = ("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at");
        assert_eq!(
            mode(&[ordered, ("SYNC_QUEUE_URL", queue)]),
            DeliveryMode::Queued
        );
        assert_eq!(
            mode(&[
                ordered,
                ("SYNC_QUEUE_URL", queue),
                ("DELIVERY_MODE", "direct")
            ]),
            DeliveryMode::Direct
        );
        assert_eq!(mode(&[ordered]), DeliveryMode::Direct, "no queue");
        assert_eq!(
            mode(&[("SYNC_QUEUE_URL", queue)]),
            DeliveryMode::Direct,
            "no ordering"
        );
    }

    #[test]
    fn missing_secret_id_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.variable, "ATTIO_SYNC_SECRET_ID");
        assert!(err.to_string().contains("ATTIO_SYNC_SECRET_ID"));
    }

    #[test]
    fn bad_values_fail_naming_their_variable() {
        for (variable, value) in [
            ("ATTIO_USER_MATCHING_ATTRIBUTE", "email"),
            ("WEBHOOK_TOLERANCE_SECONDS", "five"),
            ("WEBHOOK_TOLERANCE_SECONDS", "0"),
            ("SECRET_CACHE_TTL_SECONDS", "-1"),
            ("ATTIO_MAX_ELAPSED_MS", "10s"),
            ("ATTIO_MAX_ELAPSED_MS", "0"),
            ("ON_USER_DELETED", "remove"),
            ("KINDE_ISSUER_URL", "yours.kinde.com"),
            ("COGNITO_BLOCK_SIGNUP_ON_ERROR", "yes"),
            ("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "Last Event"),
            ("ATTIO_API_URL", "api.attio.com"),
            ("DELIVERY_MODE", "later"),
            ("DELIVERY_MODE", "queued"),
        ] {
            let err = config(&[("ATTIO_SYNC_SECRET_ID", "s"), (variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn a_malformed_attribute_map_fails_naming_the_variable_and_the_entry() {
        let err = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            (
                "ATTIO_ATTRIBUTE_MAP",
                r#"{"users": {"plan": "public_metadata.plan"}}"#,
            ),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "ATTIO_ATTRIBUTE_MAP");
        assert!(err.to_string().contains("users.plan"), "{err}");
        let ok = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            ("ATTIO_ATTRIBUTE_MAP", r#"{"people": {"job_title": {"cognito": "/custom:title", "okta": "/displayName"}}}"#),
        ])
        .unwrap();
        assert!(!ok.attribute_map.is_empty());
    }

    #[test]
    fn accepts_primary_email_matching_and_strips_trailing_slash() {
        let c = config(&[
            ("ATTIO_SYNC_SECRET_ID", "s"),
            ("ATTIO_USER_MATCHING_ATTRIBUTE", "primary_email_address"),
            ("ATTIO_API_URL", "http://127.0.0.1:4010/"),
        ])
        .unwrap();
        assert_eq!(
            c.user_matching_attribute,
            UserMatchingAttribute::PrimaryEmailAddress
        );
        assert_eq!(c.attio_api_url, "http://127.0.0.1:4010");
    }
}
