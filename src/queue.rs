//! The durable queue behind the webhook: an SQS FIFO queue (`SYNC_QUEUE_URL`) holding parsed
//! events that Attio could not take in time, for the worker ([`crate::worker`]) to apply. This
//! module is the message (its schema and version), its group and deduplication ids, and
//! sending it; SQS itself is the engine (ordering per user, deduplication, redrive to a
//! dead-letter queue).
//!
//! A message is a JSON document (the README documents it):
//! ```json
//! {"version": 1, "route": "clerk", "event_type": "user.updated", "delivery_id": "msg_…",
//!  "position": 0, "queued_at": "2026-11-28T09:00:00Z", "event": {"kind": "upserted", …}}
//! ```
//! `event` is a [`UserEvent`] as serde writes it. No raw body and no signature headers: the
//! event was verified before it was queued, and of the provider's user object it keeps only
//! what the attribute mapping reads ([`crate::mapping::AttributeMap::keep`]).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::{RouteName, Timestamp, UserEvent};
use crate::mapping::AttributeMap;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// SQS's limit on one `SendMessageBatch` call: entries, and bytes of all bodies together.
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// One parsed event, as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMessage {
    /// [`SCHEMA_VERSION`] when written.
    pub version: u32,
    /// The route the event came through (`clerk`, `cognito`, …).
    #[serde(deserialize_with = "crate::domain::route_name")]
    pub route: RouteName,
    /// The sender's event type (`user.updated`), for logs and metrics.
    pub event_type: String,
    /// The sender's delivery id, when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The event's position in its delivery (a batch holds several).
    pub position: usize,
    /// When the webhook queued it.
    pub queued_at: Timestamp,
    /// The event.
    pub event: UserEvent,
}

/// Why a message body is not a message this worker can apply. Never quotes the body.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// Not JSON, or not a message of any version.
    #[error("the message is not a queued event: {0}")]
    Malformed(String),
    /// Written by a build with another schema version.
    #[error(
        "the message has schema version {0}; this worker reads version {SCHEMA_VERSION} (deploy the matching worker, then redrive)"
    )]
    UnknownVersion(u64),
}

impl QueueMessage {
    /// Reads a message body: its version first, then the whole document. Errors name the field
    /// and what it should hold, never a value.
    pub fn read(body: &str) -> Result<Self, MessageError> {
        #[derive(Deserialize)]
        struct Version {
            version: u64,
        }
        let malformed = |e: crate::providers::PayloadError| match e {
            crate::providers::PayloadError::Malformed { reason, .. } => {
                MessageError::Malformed(reason)
            }
            other => MessageError::Malformed(other.to_string()),
        };
        let version: Version =
            crate::providers::read_body("queue message", body.as_bytes()).map_err(malformed)?;
        if version.version != u64::from(SCHEMA_VERSION) {
            return Err(MessageError::UnknownVersion(version.version));
        }
        crate::providers::read_body("queue message", body.as_bytes()).map_err(malformed)
    }

    /// The FIFO message group: one per user, so a user's events are applied one at a time, in
    /// the order they were queued. The user id is hashed (a group id is shown in the SQS
    /// console and is limited to 128 characters of a small alphabet).
    pub fn group_id(&self) -> String {
        format!(
            "{}:{}",
            self.route,
            &hex(&Sha256::digest(self.event.user_id().as_bytes()))[..32]
        )
    }
}

/// What identifies a delivery across a sender's retries, for SQS's deduplication: the
/// sender's delivery id when it sends one (Svix's `svix-id`, …) and the body, which a retry
/// resends byte for byte (Okta, Auth0 and Svix alike).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryIdentity<'a> {
    /// The sender's delivery id, if it sends one.
    pub id: Option<&'a str>,
    /// The body as delivered.
    pub body: &'a [u8],
}

/// The deduplication id of the event at `position` of a delivery: the same for a sender's
/// redelivery, whichever container queues it, so SQS stores it once (within its 5 minutes).
pub fn deduplication_id(route: &str, delivery: DeliveryIdentity<'_>, position: usize) -> String {
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update(b"\0");
    hash.update(delivery.id.unwrap_or_default().as_bytes());
    hash.update(b"\0");
    hash.update(Sha256::digest(delivery.body));
    hash.update(position.to_be_bytes());
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Events of one delivery, made into messages.
pub struct Outgoing {
    messages: Vec<(QueueMessage, String)>,
}

impl Outgoing {
    /// Messages for `events`, which start at `first_position` of their delivery. Of each
    /// user's provider object, only what `mapping` reads for `route` is kept.
    pub fn new(
        route: RouteName,
        event_type: &str,
        identity: DeliveryIdentity<'_>,
        first_position: usize,
        events: &[UserEvent],
        mapping: &AttributeMap,
    ) -> Self {
        let events: Vec<(usize, &UserEvent)> = events
            .iter()
            .enumerate()
            .map(|(i, event)| (first_position + i, event))
            .collect();
        Self::at_positions(route, event_type, identity, &events, mapping)
    }

    /// Messages for `events`, each at its position of the delivery (a batch applied user by
    /// user leaves events not applied here and there).
    pub fn at_positions(
        route: RouteName,
        event_type: &str,
        identity: DeliveryIdentity<'_>,
        events: &[(usize, &UserEvent)],
        mapping: &AttributeMap,
    ) -> Self {
        let queued_at = Timestamp::from_system_time(SystemTime::now());
        let messages = events
            .iter()
            .map(|&(position, event)| {
                let message = QueueMessage {
                    version: SCHEMA_VERSION,
                    route,
                    event_type: event_type.to_owned(),
                    delivery_id: identity.id.map(str::to_owned),
                    position,
                    queued_at,
                    event: minimised(event, route, mapping),
                };
                (message, deduplication_id(route, identity, position))
            })
            .collect();
        Self { messages }
    }

    /// How many messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, with their deduplication ids.
    pub fn messages(&self) -> &[(QueueMessage, String)] {
        &self.messages
    }
}

/// The event with its users' provider objects cut down to what the mapping reads.
fn minimised(event: &UserEvent, route: &str, mapping: &AttributeMap) -> UserEvent {
    let mut event = event.clone();
    let profile = match &mut event {
        UserEvent::Upserted { user, .. } => Some(user),
        UserEvent::JoinedWorkspace {
            user: crate::domain::UserRef::Profile(user),
            ..
        } => Some(user.as_mut()),
        _ => None,
    };
    if let Some(user) = profile {
        user.details.raw = user
            .details
            .raw
            .as_deref()
            .and_then(|raw| mapping.keep(route, raw))
            .map(std::sync::Arc::new);
    }
    event
}

/// Why messages could not be queued. The sender keeps the event (it is answered as before).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The SQS call failed (network, throttling, permissions…).
    #[error("SQS did not take the messages: {0}")]
    Unavailable(String),
    /// SQS took some entries of a batch and refused others.
    #[error("SQS refused {refused} of the messages ({code})")]
    Refused {
        /// How many it refused.
        refused: usize,
        /// Its error code for the first.
        code: String,
    },
}

/// An SQS FIFO queue the function sends to.
#[derive(Debug, Clone)]
pub struct SyncQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SyncQueue {
    /// The queue at `url`, reached through `client`.
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }

    /// The queue at `url`, reached through this one's client (the same account and endpoint).
    pub fn at(&self, url: String) -> Self {
        Self {
            client: self.client.clone(),
            url,
        }
    }

    /// Whether the queue holds messages, waiting or in flight (SQS's approximate counts).
    pub async fn holds_messages(&self) -> Result<bool, QueueError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(answer
            .attributes()
            .is_some_and(|a| a.values().any(|n| n.parse::<u64>().is_ok_and(|n| n > 0))))
    }

    /// Sends every message, in order, in as few `SendMessageBatch` calls as SQS allows; a
    /// refused entry is sent once more (SQS deduplicates what it already took). `Ok` only when
    /// SQS holds them all.
    pub async fn send(&self, outgoing: &Outgoing) -> Result<(), QueueError> {
        let entries: Vec<Entry> = outgoing
            .messages
            .iter()
            .map(|(message, dedup)| Entry {
                body: serde_json::to_string(message).unwrap_or_default(),
                group_id: message.group_id(),
                deduplication_id: dedup.clone(),
                attributes: Vec::new(),
            })
            .collect();
        self.send_entries(&entries).await
    }

    /// Makes received messages visible again after `wait` (whole seconds, at most SQS's 12 h),
    /// instead of after the queue's visibility timeout.
    pub async fn change_visibility(
        &self,
        receipts: &[&str],
        wait: std::time::Duration,
    ) -> Result<(), QueueError> {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        let seconds = wait.as_secs().clamp(1, 43_200) as i32;
        for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
            let mut request = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url);
            for (i, receipt) in chunk.iter().enumerate() {
                request = request.entries(
                    Entry::builder()
                        .id(i.to_string())
                        .receipt_handle(*receipt)
                        .visibility_timeout(seconds)
                        .build()
                        .map_err(|e| QueueError::Unavailable(e.to_string()))?,
                );
            }
            let answer = request.send().await.map_err(|e| {
                QueueError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
            if let Some(refused) = answer.failed().first() {
                return Err(QueueError::Refused {
                    refused: answer.failed().len(),
                    code: refused.code().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Sends ready-made entries (the worker's dead letters), as [`send`](Self::send) does.
    pub async fn send_entries(&self, entries: &[Entry]) -> Result<(), QueueError> {
        for chunk in chunks(entries) {
            let mut pending: Vec<&Entry> = chunk.iter().collect();
            for attempt in 0..2 {
                let refused = self.send_batch(&pending).await?;
                if refused.is_empty() {
                    break;
                }
                if attempt == 1 {
                    return Err(QueueError::Refused {
                        refused: refused.len(),
                        code: refused[0].1.clone(),
                    });
                }
                pending = refused.into_iter().map(|(i, _)| pending[i]).collect();
            }
        }
        Ok(())
    }

    /// One `SendMessageBatch`; returns the entries SQS refused (index into `entries`, code).
    async fn send_batch(&self, entries: &[&Entry]) -> Result<Vec<(usize, String)>, QueueError> {
        use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
        let mut request = self.client.send_message_batch().queue_url(&self.url);
        for (i, entry) in entries.iter().enumerate() {
            let mut built = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&entry.body)
                .message_group_id(&entry.group_id)
                .message_deduplication_id(&entry.deduplication_id);
            for (name, value) in &entry.attributes {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| QueueError::Unavailable(e.to_string()))?;
                built = built.message_attributes(*name, value);
            }
            request = request.entries(
                built
                    .build()
                    .map_err(|e| QueueError::Unavailable(e.to_string()))?,
            );
        }
        let answer = request.send().await.map_err(|e| {
            QueueError::Unavailable(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        })?;
        Ok(answer
            .failed()
            .iter()
            .filter_map(|f| Some((f.id().parse::<usize>().ok()?, f.code().to_owned())))
            .collect())
    }
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The body.
    pub body: String,
    /// `MessageGroupId`.
    pub group_id: String,
    /// `MessageDeduplicationId`.
    pub deduplication_id: String,
    /// String message attributes.
    pub attributes: Vec<(&'static str, String)>,
}

/// Splits entries into batches SQS accepts: at most 10, at most 256 KiB of bodies.
fn chunks(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, entry) in entries.iter().enumerate() {
        let size = entry.body.len()
            + entry
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>();
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            chunks.push(&entries[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < entries.len() {
        chunks.push(&entries[start..]);
    }
    chunks
}

/// An SQS client configured from the Lambda environment, as Secrets Manager's is
/// ([`crate::sdk_http::AwsEnvironment`]; endpoint `AWS_ENDPOINT_URL_SQS`), sending through `http`.
pub fn client_from_lookup(
    http: reqwest::Client,
    lookup: impl Fn(&str) -> Option<String>,
) -> aws_sdk_sqs::Client {
    crate::sdk_http::client_from_environment!(aws_sdk_sqs, http, lookup, "AWS_ENDPOINT_URL_SQS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, UserChange, UserDetails, UserProfile};

    fn event(user_id: &str) -> UserEvent {
        UserEvent::upserted(
            UserChange::Updated,
            UserProfile {
                user_id: user_id.into(),
                email: EmailAddress::parse("ada@example.com").unwrap(),
                first_name: Some("Ada".into()),
                last_name: None,
                created_at: Timestamp::from_unix_millis(1_654_012_591_514),
                details: UserDetails {
                    phone: Some("+15555550100".into()),
                    ..UserDetails::raw(
                        "clerk",
                        serde_json::json!({"public_metadata": {"plan": "Pro"}, "private_metadata": {"x": 1}}),
                    )
                },
            },
        )
    }

    #[test]
    fn a_message_reads_back_as_written_keeping_only_mapped_parts_of_the_user_object() {
        let mapping = AttributeMap::parse(
            r#"{"users": {"plan": "/public_metadata/plan"}}"#,
            &["clerk"],
        )
        .unwrap();
        let outgoing = Outgoing::new(
            "clerk",
            "user.updated",
            DeliveryIdentity {
                id: Some("msg_1"),
                body: b"{}",
            },
            3,
            &[event("user_1")],
            &mapping,
        );
        let (message, dedup) = &outgoing.messages()[0];
        let body = serde_json::to_string(message).unwrap();
        assert!(!body.contains("private_metadata"), "{body}");
        let read = QueueMessage::read(&body).unwrap();
        assert_eq!(&read, message);
        assert_eq!(read.position, 3);
        let UserEvent::Upserted { user, .. } = &read.event else {
            panic!("{read:?}")
        };
        assert_eq!(
            user.details.raw.as_deref(),
            Some(&serde_json::json!({"public_metadata": {"plan": "Pro"}}))
        );
        assert_eq!(dedup.len(), 64);
    }

    #[test]
    fn group_is_the_user_and_deduplication_the_delivery_and_position() {
        let mapping = AttributeMap::default();
        let message = |user: &str, id: &str, position| {
            Outgoing::new(
                "clerk",
                "user.updated",
                DeliveryIdentity {
                    id: Some(id),
                    body: b"{}",
                },
                position,
                &[event(user)],
                &mapping,
            )
            .messages()[0]
                .clone()
        };
        let (a, a_dedup) = message("user_1", "msg_1", 0);
        let (b, b_dedup) = message("user_1", "msg_2", 0);
        let (c, c_dedup) = message("user_2", "msg_1", 1);
        assert_eq!(a.group_id(), b.group_id());
        assert_ne!(a.group_id(), c.group_id());
        assert!(a.group_id().starts_with("clerk:") && a.group_id().len() <= 128);
        assert!(!a.group_id().contains("user_1"));
        assert_ne!(a_dedup, b_dedup);
        assert_ne!(a_dedup, c_dedup);
        assert_eq!(a_dedup, message("user_1", "msg_1", 0).1);
        assert_ne!(
            deduplication_id(
                "okta",
                DeliveryIdentity {
                    id: None,
                    body: b"{}"
                },
                0
            ),
            deduplication_id(
                "okta",
                DeliveryIdentity {
                    id: None,
                    body: b"{ }"
                },
                0
            )
        );
    }

    #[test]
    fn unreadable_messages_say_why_without_quoting_values() {
        for (body, expected) in [
            ("not json", "not a queued event"),
            (r#"{"version": 2}"#, "schema version 2"),
            (
                r#"{"version": 1, "route": "clerk", "event_type": "x", "position": 0, "queued_at": "2026-11-28T09:00:00Z",
                    "event": {"kind": "upserted", "change": "created", "user": {"user_id": "u", "email": "secret-ada@@example.com",
                    "details": {"provider": "clerk"}}}}"#,
                "event: not a valid email address",
            ),
            (
                r#"{"version": 1, "route": "github", "event_type": "x", "position": 0, "queued_at": "2026-11-28T09:00:00Z", "event": {}}"#,
                "route",
            ),
        ] {
            let error = QueueMessage::read(body).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
            assert!(!error.contains("secret-ada"), "{error}");
        }
    }

    #[test]
    fn the_readme_s_example_message_reads_and_writes_back_the_same() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("### The queue message (schema version 1)")
            .nth(1)
            .expect("the README documents the message");
        let example = section
            .split("```json")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("an example");
        let message = QueueMessage::read(example).expect("the example is a valid message");
        assert_eq!(message.route, "clerk");
        let written: serde_json::Value = serde_json::to_value(&message).unwrap();
        let documented: serde_json::Value = serde_json::from_str(example).unwrap();
        assert_eq!(written, documented);
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kib() {
        let entry = |size| Entry {
            body: "x".repeat(size),
            group_id: "g".into(),
            deduplication_id: "d".into(),
            attributes: Vec::new(),
        };
        let small: Vec<Entry> = (0..23).map(|_| entry(10)).collect();
        let sizes: Vec<usize> = chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let large: Vec<Entry> = (0..5).map(|_| entry(100 * 1024)).collect();
        let sizes: Vec<usize> = chunks(&large).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
