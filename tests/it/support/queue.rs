//! moto's SQS as the function's queue, and Lambda's SQS event source played the way Lambda
//! plays it: receive up to 10 messages (one user's messages are not handed out while one of
//! them is in flight: moto keeps FIFO groups as SQS does), invoke the worker with them as an
//! `SqsEvent`, delete what it did not list in `batchItemFailures`, and let the rest come back
//! after the visibility timeout (or reach the dead-letter queue through the redrive policy).
//!
//! One part is played by the harness instead of moto: the end of a failed message's visibility
//! timeout. moto 5.2 loses a FIFO group's order when several of its messages become visible
//! again by timing out (it skips the group's first messages while later ones still count as
//! in flight, and hands out the last one first), where SQS hands them out in order again. So
//! the queue's own timeout is set beyond any test, and the harness makes failed messages
//! visible after `visibility`, in the order they were received (`ChangeMessageVisibility` 0,
//! which moto handles as SQS does). A message that came back sooner (the worker shortens the
//! timeout to Attio's `Retry-After` itself) and was received again is not released by its old
//! receipt: moto would accept the stale receipt and make the message visible while its new
//! receiver still holds it, letting the user's next message out beside it, which SQS never
//! does. Receives and releases are one at a time across the harness's pollers for that reason.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use attio_user_sync::worker::Worker;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

/// Whether a message before `m` in this batch is of `group` (one batch may hold several of a
/// group's messages, in order).
fn received_earlier_in(
    batch: &[aws_sdk_sqs::types::Message],
    m: &aws_sdk_sqs::types::Message,
    group: &str,
) -> bool {
    batch
        .iter()
        .take_while(|other| other.message_id() != m.message_id())
        .any(|other| Queues::group(other) == group)
}

/// An SQS client for moto's server, which `scripts/test.sh` starts.
pub async fn sqs_client() -> aws_sdk_sqs::Client {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some(),
        "AWS_ENDPOINT_URL_SQS is not set: run the tests with ./scripts/test.sh, which starts moto"
    );
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_sqs::Client::new(&config)
}

/// A FIFO queue and its FIFO dead-letter queue, as `template.yaml` makes them.
pub struct Queues {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub dead_letter_url: String,
    arn: String,
    /// How long a failed message stays invisible.
    visibility: Duration,
    /// Failed messages waiting out their visibility timeout: (when, message id, receipt).
    invisible: Mutex<Vec<(Instant, String, String)>>,
    /// Each message's receipt from its latest receive: only that one may release it.
    latest_receipt: Mutex<HashMap<String, String>>,
    /// Held while releasing and receiving, so neither runs between the other's steps.
    receiving: tokio::sync::Mutex<()>,
    /// The message groups (users) a worker is applying now: SQS never hands out a group's
    /// message while another of the group is in flight, and the harness checks moto does not
    /// either, so that a test cannot pass or fail on an emulator's slip.
    groups_in_flight: Mutex<std::collections::HashSet<String>>,
}

/// A message of the dead-letter queue: its body and string attributes.
#[derive(Debug)]
pub struct DeadLetter {
    pub body: Value,
    pub attributes: HashMap<String, String>,
}

impl Queues {
    /// New queues with unique names; messages come back `visibility` after a failed attempt
    /// and move to the dead-letter queue after `max_receives` receives.
    pub async fn create(visibility: Duration, max_receives: u32) -> Self {
        let client = sqs_client().await;
        let name = format!("attio-user-sync-test-{:012x}", fastrand::u64(..1 << 48));
        let dead_letter_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("create the dead-letter queue in moto")
            .queue_url
            .expect("a queue URL");
        let dead_letter_arn = client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dead-letter queue attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("an ARN");
        let url = client
            .create_queue()
            .queue_name(format!("{name}.fifo"))
            .attributes(QueueAttributeName::FifoQueue, "true")
            // Beyond any test: the harness ends failed messages' timeouts itself (see above).
            .attributes(QueueAttributeName::VisibilityTimeout, "600")
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receives})
                    .to_string(),
            )
            .send()
            .await
            .expect("create the queue in moto")
            .queue_url
            .expect("a queue URL");
        let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}.fifo");
        Self {
            client,
            url,
            dead_letter_url,
            arn,
            visibility,
            invisible: Mutex::new(Vec::new()),
            latest_receipt: Mutex::new(HashMap::new()),
            receiving: tokio::sync::Mutex::new(()),
            groups_in_flight: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Ends the visibility timeout of the failed messages whose time has come, in order; not
    /// of those received again since (see above).
    async fn release_due(&self) {
        let due: Vec<String> = {
            let mut invisible = self.invisible.lock().unwrap();
            let now = Instant::now();
            let (due, waiting): (Vec<_>, Vec<_>) =
                invisible.drain(..).partition(|(at, _, _)| *at <= now);
            *invisible = waiting;
            let latest = self.latest_receipt.lock().unwrap();
            due.into_iter()
                .filter(|(_, id, receipt)| latest.get(id) == Some(receipt))
                .map(|(_, _, receipt)| receipt)
                .collect()
        };
        for receipt in due {
            self.client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .expect("change visibility in moto");
        }
    }

    /// The environment that points the function at these queues.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SYNC_QUEUE_URL", self.url.clone()),
            ("SYNC_DEAD_LETTER_QUEUE_URL", self.dead_letter_url.clone()),
        ]
    }

    /// Messages in the queue, visible or in flight.
    pub async fn depth(&self) -> usize {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .filter_map(|k| attributes.get(k)?.parse::<usize>().ok())
        .sum()
    }

    /// The bodies of the messages waiting in the queue, taken out of it (for tests that check
    /// what was queued without a worker).
    pub async fn take_all(&self) -> Vec<Value> {
        let mut bodies = Vec::new();
        loop {
            let received = self.receive(&self.url, 10).await;
            if received.is_empty() {
                return bodies;
            }
            for m in received {
                bodies
                    .push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
                self.delete(&self.url, m.receipt_handle().unwrap_or_default())
                    .await;
            }
        }
    }

    /// The user ids of the upserts waiting in the queue, sorted, taken out of it.
    pub async fn take_upserted_user_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .take_all()
            .await
            .iter()
            .filter_map(|m| m["event"]["user"]["user_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// Everything in the dead-letter queue.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let mut letters = Vec::new();
        loop {
            let received = self.receive(&self.dead_letter_url, 10).await;
            if received.is_empty() {
                return letters;
            }
            for m in received {
                letters.push(DeadLetter {
                    body: serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null),
                    attributes: m
                        .message_attributes()
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| (k.clone(), v.string_value().unwrap_or("").into()))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                self.delete(
                    &self.dead_letter_url,
                    m.receipt_handle().unwrap_or_default(),
                )
                .await;
            }
        }
    }

    pub async fn receive(&self, url: &str, max: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive from moto")
            .messages
            .unwrap_or_default()
    }

    async fn delete(&self, url: &str, receipt: &str) {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .expect("delete from moto");
    }

    /// One poll of Lambda's event source: up to `batch_size` messages, handed to `worker` as
    /// an `SqsEvent`; what it does not report as failed is deleted. Returns (messages handed
    /// over, failures reported); (0, 0) when nothing was visible.
    pub async fn poll_once(&self, worker: &Worker, batch_size: i32) -> (usize, usize) {
        let received = self.take_batch(batch_size).await;
        self.hand_over(worker, received).await
    }

    /// The receive half of [`poll_once`](Self::poll_once): up to `batch_size` visible
    /// messages, their groups held as in flight until [`hand_over`](Self::hand_over).
    pub async fn take_batch(&self, batch_size: i32) -> Vec<aws_sdk_sqs::types::Message> {
        {
            let _one_at_a_time = self.receiving.lock().await;
            self.release_due().await;
            let received = self.receive(&self.url, batch_size).await;
            let mut latest = self.latest_receipt.lock().unwrap();
            let mut in_flight = self.groups_in_flight.lock().unwrap();
            for m in &received {
                latest.insert(
                    m.message_id().unwrap_or_default().to_owned(),
                    m.receipt_handle().unwrap_or_default().to_owned(),
                );
                let group = Self::group(m);
                assert!(
                    !in_flight.contains(&group) || received_earlier_in(&received, m, &group),
                    "moto handed out a message of group {group} while another poller holds one"
                );
                in_flight.insert(group);
            }
            received
        }
    }

    /// The invoke half of [`poll_once`](Self::poll_once): `received` handed to `worker` as an
    /// `SqsEvent`, what it does not report as failed deleted. Returns (messages handed over,
    /// failures reported).
    pub async fn hand_over(
        &self,
        worker: &Worker,
        received: Vec<aws_sdk_sqs::types::Message>,
    ) -> (usize, usize) {
        if received.is_empty() {
            return (0, 0);
        }
        let records: Vec<Value> = received.iter().map(|m| self.record(m)).collect();
        // The event as Lambda sends it, read by aws_lambda_events as the runtime reads it.
        let event = serde_json::from_value(json!({ "Records": records }))
            .expect("aws_lambda_events reads the SQS event");
        let response = worker
            .handle(event, Some(SystemTime::now() + Duration::from_secs(60)))
            .await;
        // The worker is done with these users (its failed messages come back when their
        // visibility says, its applied ones are deleted below).
        {
            let mut in_flight = self.groups_in_flight.lock().unwrap();
            for m in &received {
                in_flight.remove(&Self::group(m));
            }
        }
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        // What the worker did not list is deleted in one DeleteMessageBatch, as the event
        // source does.
        let mut applied = Vec::new();
        for m in &received {
            let receipt = m.receipt_handle().unwrap_or_default();
            if failed.contains(&m.message_id().unwrap_or_default()) {
                self.invisible.lock().unwrap().push((
                    Instant::now() + self.visibility,
                    m.message_id().unwrap_or_default().to_owned(),
                    receipt.to_owned(),
                ));
            } else {
                applied.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(applied.len().to_string())
                        .receipt_handle(receipt)
                        .build()
                        .expect("a delete entry"),
                );
            }
        }
        if !applied.is_empty() {
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(applied))
                .send()
                .await
                .expect("delete from moto");
        }
        (received.len(), failed.len())
    }

    fn group(m: &aws_sdk_sqs::types::Message) -> String {
        m.attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned()
            .unwrap_or_default()
    }

    /// Polls until the queue is empty or `limit` passes; returns the messages handed over.
    pub async fn drain(&self, worker: &Worker, batch_size: i32, limit: Duration) -> usize {
        let started = Instant::now();
        let mut handed = 0;
        while started.elapsed() < limit {
            let (n, _) = self.poll_once(worker, batch_size).await;
            handed += n;
            if n == 0 {
                if self.depth().await == 0 {
                    return handed;
                }
                // Failed messages are invisible until their visibility timeout ends.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        handed
    }

    /// A message as Lambda's SQS event source writes it into the event's `Records`.
    pub fn record(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let message_attributes: serde_json::Map<String, Value> = m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        let value = json!({
                            "stringValue": v.string_value(),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type(),
                        });
                        (k.clone(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": "us-east-1",
        })
    }
}
