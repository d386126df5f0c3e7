//! Values compared the way Attio stores them: what the function would write and what Attio
//! answers meet in one canonical text per value (emails and domains lower-cased, timestamps as
//! the moment they name, numbers by value, select and status options by title, names by their
//! three parts, references by the record they point at), and a list of them in one 64-bit
//! fingerprint, the same whatever the order. An empty list and an absent attribute compare
//! equal.

use serde_json::Value;

/// One value of an attribute of type `kind` as compared: `item` is either as the function
/// writes it (`"a@b.com"`, `12`, `{"first_name", …}`) or as Attio answers it
/// (`{"email_address": …}`, `{"value": 12.0}`, `{"option": {"title": …}}`). `None` when it
/// holds nothing comparable.
pub fn canonical(kind: &str, item: &Value) -> Option<String> {
    let field = |name: &str| item.get(name).unwrap_or(item);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match kind {
        "email-address" => text(field("email_address")).map(|s| s.trim().to_lowercase()),
        "domain" => text(field("domain")).map(|s| s.trim().to_lowercase()),
        "timestamp" => {
            let at = time::OffsetDateTime::parse(
                field("value").as_str()?.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(at.unix_timestamp_nanos().to_string())
        }
        "number" | "rating" => {
            let v = field("value");
            let n = v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
            // 12 and 12.0 are one number.
            Some(format!("{n}"))
        }
        "checkbox" => field("value").as_bool().map(|b| b.to_string()),
        "select" => option_title(item, "option"),
        "status" => option_title(item, "status"),
        "phone-number" => item
            .get("phone_number")
            .or_else(|| item.get("original_phone_number"))
            .unwrap_or(item)
            .as_str()
            .map(|s| s.replace([' ', '-', '(', ')', '.'], "")),
        "personal-name" => {
            let part = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
            Some(format!(
                "{}\u{1f}{}\u{1f}{}",
                part("first_name"),
                part("last_name"),
                part("full_name")
            ))
        }
        "record-reference" => text(field("target_record_id")),
        // text, date, and any other type holding a plain value.
        _ => text(field("value")),
    }
}

/// A select or status option's title: the title itself (as written), `{"option": "Pro"}`, or
/// Attio's `{"option": {"title": "Pro", …}}`.
fn option_title(item: &Value, key: &str) -> Option<String> {
    let option = item.get(key).unwrap_or(item);
    option
        .get("title")
        .unwrap_or(option)
        .as_str()
        .map(str::to_owned)
}

/// A fingerprint of an attribute's values (`list`: a JSON list, one value, or nothing), the
/// same for the same values in any order.
pub fn fingerprint(kind: &str, list: Option<&Value>) -> u64 {
    let mut values: Vec<String> = match list {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(|i| canonical(kind, i)).collect(),
        Some(one) => canonical(kind, one).into_iter().collect(),
    };
    values.sort_unstable();
    values.dedup();
    crate::recent::keyed_hash(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Written as the function writes it, answered as Attio answers it: the same.
    #[test]
    fn what_is_written_and_what_attio_answers_compare_the_same() {
        let cases = [
            (
                "email-address",
                json!(["Ada@Example.com"]),
                json!([{"email_address": "ada@example.com", "attribute_type": "email-address"}]),
            ),
            (
                "domain",
                json!(["Example.com"]),
                json!([{"domain": "example.com", "root_domain": "example.com"}]),
            ),
            (
                "timestamp",
                json!(["2026-11-27T10:00:00+01:00"]),
                json!([{"value": "2026-11-27T09:00:00.000000000Z"}]),
            ),
            (
                "timestamp",
                json!(["2026-11-27T09:00:00.123Z"]),
                json!([{"value": "2026-11-27T09:00:00.123000000Z"}]),
            ),
            ("number", json!([12]), json!([{"value": 12.0}])),
            ("rating", json!([4]), json!([{"value": 4}])),
            ("checkbox", json!([true]), json!([{"value": true}])),
            (
                "select",
                json!(["Pro"]),
                json!([{"option": {"id": {}, "title": "Pro", "is_archived": false}}]),
            ),
            (
                "status",
                json!(["Active"]),
                json!([{"status": {"title": "Active"}}]),
            ),
            (
                "phone-number",
                json!(["+14155550100"]),
                json!([{"original_phone_number": "+1 415 555 0100", "phone_number": "+14155550100"}]),
            ),
            (
                "personal-name",
                json!([{"first_name": "Ada", "last_name": "L", "full_name": "Ada L"}]),
                json!([{"first_name": "Ada", "last_name": "L", "full_name": "Ada L", "attribute_type": "personal-name"}]),
            ),
            (
                "record-reference",
                json!([{"target_object": "people", "target_record_id": "r1"}]),
                json!([{"target_object": "people", "target_record_id": "r1"}]),
            ),
            ("text", json!(["pro"]), json!([{"value": "pro"}])),
            (
                "date",
                json!(["2022-05-31"]),
                json!([{"value": "2022-05-31"}]),
            ),
            // Empty against absent; order of a multi-value list.
            ("text", json!([]), Value::Null),
            (
                "select",
                json!(["A", "B"]),
                json!([{"option": {"title": "B"}}, {"option": {"title": "A"}}]),
            ),
        ];
        for (kind, written, stored) in cases {
            assert_eq!(
                fingerprint(kind, Some(&written)),
                fingerprint(kind, Some(&stored)),
                "{kind}: {written} against {stored}"
            );
        }
    }

    #[test]
    fn a_different_value_differs() {
        let cases = [
            (
                "email-address",
                json!(["ada@example.com"]),
                json!([{"email_address": "bob@example.com"}]),
            ),
            (
                "timestamp",
                json!(["2026-11-27T09:00:00Z"]),
                json!([{"value": "2026-11-27T09:00:00.001000000Z"}]),
            ),
            ("number", json!([12]), json!([{"value": 12.5}])),
            ("checkbox", json!([true]), json!([{"value": false}])),
            (
                "select",
                json!(["Pro"]),
                json!([{"option": {"title": "Free"}}]),
            ),
            (
                "personal-name",
                json!([{"first_name": "Ada", "last_name": "L", "full_name": "Ada L"}]),
                json!([{"first_name": "Ada", "last_name": "", "full_name": "Ada"}]),
            ),
            ("text", json!(["pro"]), Value::Null),
            ("text", json!(["Pro"]), json!([{"value": "pro"}])),
        ];
        for (kind, written, stored) in cases {
            assert_ne!(
                fingerprint(kind, Some(&written)),
                fingerprint(kind, Some(&stored)),
                "{kind}: {written} against {stored}"
            );
        }
    }
}
