//! CloudWatch metrics, written as Embedded Metric Format (EMF) log lines: one JSON document per
//! webhook request, Cognito invocation, or provider of a worker batch, on its own stdout line,
//! which CloudWatch Logs turns into metrics in the `AttioUserSync` namespace with the dimension
//! `Provider`. No agent, no API call, nothing on the request's path but one formatted line.
//!
//! Written by hand rather than through `metrics_cloudwatch_embedded`: that crate brings the
//! `metrics` facade (a global recorder) and its own Lambda run loop, where this needs a dozen
//! counters and one line per invocation; the format is small and documented
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::attio::AttioBudget;

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "AttioUserSync";

/// What one invocation did, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events written to Attio (synced, linked, unlinked, deleted, signed in), or found
    /// already applied (outdated).
    pub synced: u32,
    /// Events answered `ignored` (nothing to write).
    pub ignored: u32,
    /// Requests or events refused for good (a `4xx` answer: bad signature, payload, email…).
    pub rejected: u32,
    /// Requests answered with a retryable `5xx` (the sender keeps the event), or queue
    /// messages left for another attempt.
    pub failed: u32,
    /// Events sent to the queue.
    pub queued: u32,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u32,
    /// HTTP calls to Attio.
    pub attio_calls: u32,
    /// Of those, retries.
    pub attio_retries: u32,
    /// Attio answers that were `429`.
    pub attio_rate_limited: u32,
    /// Time spent waiting on Attio.
    pub attio_latency: Duration,
}

impl Tally {
    /// Adds what a budget recorded of the Attio calls made under it.
    pub fn add_attio(&mut self, budget: &AttioBudget) {
        self.attio_calls += budget.calls;
        self.attio_retries += budget.retries;
        self.attio_rate_limited += budget.rate_limited;
        self.attio_latency += budget.waited;
    }

    /// The EMF document for `provider` (a route name: never user data).
    pub fn document(&self, provider: &str, at: SystemTime) -> Value {
        let counts = [
            ("Synced", self.synced),
            ("Ignored", self.ignored),
            ("Rejected", self.rejected),
            ("Failed", self.failed),
            ("Queued", self.queued),
            ("DeadLettered", self.dead_lettered),
            ("AttioCalls", self.attio_calls),
            ("AttioRetries", self.attio_retries),
            ("AttioRateLimited", self.attio_rate_limited),
        ];
        let mut definitions: Vec<Value> = counts
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut document = Map::new();
        for (name, value) in counts {
            document.insert(name.into(), value.into());
        }
        if self.attio_calls > 0 {
            definitions.push(json!({"Name": "AttioLatency", "Unit": "Milliseconds"}));
            document.insert(
                "AttioLatency".into(),
                json!(self.attio_latency.as_secs_f64() * 1000.0),
            );
        }
        document.insert("Provider".into(), provider.into());
        emf(document, definitions, json!([["Provider"]]), at)
    }

    /// Writes the document as one stdout line, where Lambda's log capture picks it up.
    pub fn emit(&self, provider: &str) {
        // println!, not a raw stdout handle: the test harness captures it like any output.
        println!("{}", self.document(provider, SystemTime::now()));
    }
}

/// The EMF document of one scheduled reconcile of `route`: its classes as counts, `Drift` (the
/// users missing, differing or orphaned), `ReconcileFailed` (1 when the run did not finish) and
/// how long it took.
pub fn reconcile_document(
    route: &str,
    counts: &crate::checkpoint::Counts,
    failed: bool,
    took: Duration,
    at: SystemTime,
) -> Value {
    let values = [
        ("Same", counts.same),
        ("Missing", counts.missing),
        ("Differs", counts.differs),
        ("Orphans", counts.orphans),
        ("Drift", counts.drift()),
        ("ReconcileFailed", u64::from(failed)),
    ];
    let mut definitions: Vec<Value> = values
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    definitions.push(json!({"Name": "ReconcileSeconds", "Unit": "Seconds"}));
    let mut document = Map::new();
    for (name, value) in values {
        document.insert(name.into(), value.into());
    }
    document.insert("ReconcileSeconds".into(), json!(took.as_secs_f64()));
    document.insert("Provider".into(), route.into());
    // By provider, and in all (the drift alarm's metric).
    emf(document, definitions, json!([["Provider"], []]), at)
}

/// `document` (the metrics' values and their dimensions' values) as an EMF document: the
/// metric `definitions` declared under the namespace with `dimensions`, stamped `at`.
fn emf(
    mut document: Map<String, Value>,
    definitions: Vec<Value>,
    dimensions: Value,
    at: SystemTime,
) -> Value {
    let timestamp = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_every_metric_it_holds_under_the_namespace_and_provider() {
        let tally = Tally {
            synced: 2,
            queued: 1,
            attio_calls: 3,
            attio_retries: 1,
            attio_rate_limited: 1,
            attio_latency: Duration::from_millis(42),
            ..Tally::default()
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_795_770_000_123);

        let doc = tally.document("clerk", at);

        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_770_000_123_u64);
        assert_eq!(spec["Namespace"], "AttioUserSync");
        assert_eq!(spec["Dimensions"], json!([["Provider"]]));
        assert_eq!(doc["Provider"], "clerk");
        let declared: Vec<&str> = spec["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        // EMF: every declared metric is a top-level number of the document.
        for name in &declared {
            assert!(doc[name].is_number(), "{name}");
        }
        assert!(declared.contains(&"AttioLatency"));
        assert_eq!(doc["Synced"], 2);
        assert_eq!(doc["AttioRateLimited"], 1);
        assert_eq!(doc["AttioLatency"], 42.0);
        let without_calls = Tally::default().document("okta", at);
        assert!(without_calls.get("AttioLatency").is_none());
    }
}
