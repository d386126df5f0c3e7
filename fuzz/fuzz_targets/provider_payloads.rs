//! Every registered provider's payload parser on arbitrary bodies: never panics, what it
//! accepts holds usable users, and what it refuses is explained without quoting the body's
//! values (they are users' data, or an attacker's text, and errors reach logs). A provider
//! added to the registry is fuzzed with no change here.
#![no_main]

use attio_user_sync::domain::UserEvent;
use attio_user_sync::providers::PROVIDERS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let values = long_string_values(data);
    for provider in PROVIDERS {
        match provider.parse(data) {
            Ok(delivery) => {
                for event in delivery.events {
                    if let UserEvent::Upserted { user, .. } = event {
                        assert!(user.email.as_str().contains('@'), "{}", provider.route());
                    }
                }
            }
            Err(e) => {
                let message = e.to_string();
                assert!(message.len() < 1_000, "{}: a {}-byte message", provider.route(), message.len());
                for value in &values {
                    assert!(!message.contains(value.as_str()), "{}: the error quotes {value:?}", provider.route());
                }
            }
        }
    }
});

/// The body's string values of 20 or more characters, other than lower-case names (which a
/// message may rightly hold, as the name of a field).
fn long_string_values(data: &[u8]) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s)
                if s.chars().count() >= 20 && !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.') =>
            {
                out.push(s.clone())
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        walk(&value, &mut out);
    }
    out
}
