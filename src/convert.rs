//! A mapped value turned into what its Attio attribute takes, by the attribute's type: unix
//! seconds or milliseconds and ISO strings to timestamps or dates, `"true"` to a checkbox,
//! numeric strings to numbers, strings to select or status option titles, E.164 strings to
//! phone numbers, domains, email addresses, text. Errors say what was expected, never the value.

use serde_json::Value;

use crate::attio::AttributeInfo;
use crate::domain::{EmailAddress, Timestamp};

/// The value to write to `attribute` (always a list, as Attio returns values), or why `value`
/// cannot be written to it.
pub fn to_attio(value: &Value, attribute: &AttributeInfo) -> Result<Value, String> {
    let items: Vec<&Value> = match value {
        Value::Array(items) if attribute.is_multiselect => items.iter().collect(),
        Value::Array(items) if items.len() == 1 => vec![&items[0]],
        Value::Array(_) => {
            return Err("a list, for an attribute that holds one value".into());
        }
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| one(item, &attribute.kind))
        .collect::<Result<Vec<Value>, String>>()
        .map(Value::Array)
}

/// Which conversion applies to an attribute type, for the doctor and the README; `None` when
/// the mapping cannot write that type.
pub fn conversion(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "text" => "text as is; numbers and true/false as text",
        "number" => "numbers, and numeric text",
        "checkbox" => "true/false, and the text \"true\"/\"false\"",
        "timestamp" => "unix seconds or milliseconds, ISO 8601 text",
        "date" => "unix seconds or milliseconds, ISO 8601 text (the UTC date)",
        "select" | "status" => "text, as the option's title",
        "phone-number" => "E.164 text (+ and the country code)",
        "domain" => "a domain or a URL's host",
        "email-address" => "an email address",
        "rating" => "a whole number from 0 to 5",
        _ => return None,
    })
}

/// The attribute types the mapping writes, in the order messages list them.
pub const WRITABLE_TYPES: [&str; 11] = [
    "text",
    "select",
    "status",
    "email-address",
    "number",
    "checkbox",
    "timestamp",
    "date",
    "phone-number",
    "domain",
    "rating",
];

/// Whether a `kind` attribute takes at least one of `shapes` (values standing for what a
/// source gives, [`crate::mapping::CanonicalField::shapes`]).
pub fn takes_any(kind: &str, shapes: &[Value]) -> bool {
    shapes.iter().any(|value| one(value, kind).is_ok())
}

fn one(value: &Value, kind: &str) -> Result<Value, String> {
    let text = || value.as_str().map(str::trim).filter(|s| !s.is_empty());
    let expected = |what: &str| format!("expected {what} for a {kind} attribute");
    match kind {
        "text" => match value {
            Value::String(s) => Ok(Value::from(s.as_str())),
            Value::Number(n) => Ok(Value::from(n.to_string())),
            Value::Bool(b) => Ok(Value::from(b.to_string())),
            _ => Err(expected("text, a number or true/false")),
        },
        "number" => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => text()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|n| n.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(|n| {
                    // Whole numbers stay integers (`"12"` → 12, not 12.0).
                    match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                        _ => Value::Number(n),
                    }
                })
                .ok_or_else(|| expected("a number")),
        },
        "checkbox" => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            _ => match text().map(str::to_ascii_lowercase).as_deref() {
                Some("true") => Ok(Value::Bool(true)),
                Some("false") => Ok(Value::Bool(false)),
                _ => Err(expected("true or false")),
            },
        },
        "timestamp" => moment(value)
            .map(|t| Value::from(t.to_rfc3339()))
            .ok_or_else(|| expected("unix seconds or milliseconds, or ISO 8601 text")),
        "date" => {
            if let Some(date) = text().filter(|s| is_plain_date(s)) {
                return Ok(Value::from(date));
            }
            moment(value)
                .map(|t| Value::from(t.to_rfc3339()[..10].to_owned()))
                .ok_or_else(|| expected("a date, unix seconds or milliseconds, or ISO 8601 text"))
        }
        "select" | "status" => text()
            .map(Value::from)
            .ok_or_else(|| expected("an option's title")),
        "phone-number" => text()
            .map(|s| s.replace([' ', '-', '(', ')', '.'], ""))
            .filter(|s| is_e164(s))
            .map(Value::from)
            .ok_or_else(|| expected("an E.164 phone number (+ and the country code)")),
        "domain" => text()
            .and_then(host_of)
            .map(Value::from)
            .ok_or_else(|| expected("a domain")),
        "email-address" => text()
            .and_then(|s| EmailAddress::parse(s).ok())
            .map(|e| Value::from(e.as_str()))
            .ok_or_else(|| expected("an email address")),
        "rating" => value
            .as_u64()
            .or_else(|| text().and_then(|s| s.parse().ok()))
            .filter(|r| *r <= 5)
            .map(Value::from)
            .ok_or_else(|| expected("a whole number from 0 to 5")),
        _ => Err(format!("the mapping cannot write {kind} attributes")),
    }
}

/// Unix seconds or milliseconds (a number or numeric text), ISO 8601 text, or a plain date.
fn moment(value: &Value) -> Option<Timestamp> {
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let Some(n) = number.filter(|n| n.is_finite()) {
        // 1e11 seconds is the year 5138; 1e11 milliseconds is 1973.
        let millis = if n.abs() >= 1e11 { n } else { n * 1000.0 };
        return Timestamp::from_unix_millis(millis as i64);
    }
    let text = value.as_str()?.trim();
    Timestamp::parse(text).or_else(|| {
        is_plain_date(text)
            .then(|| Timestamp::parse(&format!("{text}T00:00:00Z")))
            .flatten()
    })
}

fn is_plain_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `example.com` from `example.com`, `https://www.example.com/about` or `Example.COM`.
fn host_of(s: &str) -> Option<String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = rest.split(['/', '?', '#']).next()?;
    let ascii = idna::domain_to_ascii_strict(host).ok()?;
    (ascii.contains('.') && !ascii.starts_with('.') && !ascii.ends_with('.')).then_some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attribute(kind: &str, multi: bool) -> AttributeInfo {
        AttributeInfo {
            api_slug: "a".into(),
            attribute_id: String::new(),
            kind: kind.into(),
            is_writable: true,
            is_archived: false,
            is_multiselect: multi,
            is_unique: false,
        }
    }

    fn convert(value: Value, kind: &str) -> Result<Value, String> {
        to_attio(&value, &attribute(kind, false))
    }

    #[test]
    fn times_from_seconds_milliseconds_and_iso_text() {
        let at = json!(["2022-05-31T15:56:31.514Z"]);
        assert_eq!(
            convert(json!(1_654_012_591_514_i64), "timestamp"),
            Ok(at.clone())
        );
        assert_eq!(convert(json!("1654012591514"), "timestamp"), Ok(at.clone()));
        assert_eq!(
            convert(json!("2022-05-31T17:56:31.514+02:00"), "timestamp"),
            Ok(at)
        );
        assert_eq!(
            convert(json!(1_654_012_591), "timestamp"),
            Ok(json!(["2022-05-31T15:56:31Z"]))
        );
        assert_eq!(
            convert(json!(1_654_012_591), "date"),
            Ok(json!(["2022-05-31"]))
        );
        assert_eq!(
            convert(json!("1815-12-10"), "date"),
            Ok(json!(["1815-12-10"]))
        );
        assert!(convert(json!("soon"), "timestamp").is_err());
        assert!(convert(json!(true), "date").is_err());
    }

    #[test]
    fn checkboxes_numbers_and_text() {
        assert_eq!(convert(json!("TRUE"), "checkbox"), Ok(json!([true])));
        assert_eq!(convert(json!(false), "checkbox"), Ok(json!([false])));
        assert!(convert(json!("yes"), "checkbox").is_err());
        assert_eq!(convert(json!("12"), "number"), Ok(json!([12])));
        assert_eq!(convert(json!(" 2.5 "), "number"), Ok(json!([2.5])));
        assert!(convert(json!("twelve"), "number").is_err());
        assert_eq!(convert(json!(42), "text"), Ok(json!(["42"])));
        assert!(convert(json!({"a": 1}), "text").is_err());
        assert_eq!(convert(json!("Pro"), "select"), Ok(json!(["Pro"])));
        assert_eq!(convert(json!(4), "rating"), Ok(json!([4])));
        assert!(convert(json!(6), "rating").is_err());
    }

    #[test]
    fn phones_domains_and_addresses() {
        assert_eq!(
            convert(json!("+1 (555) 867-5309"), "phone-number"),
            Ok(json!(["+15558675309"]))
        );
        assert!(convert(json!("555 867 5309"), "phone-number").is_err());
        assert_eq!(
            convert(json!("https://www.Example.com/about"), "domain"),
            Ok(json!(["www.example.com"]))
        );
        assert!(convert(json!("not a domain"), "domain").is_err());
        assert_eq!(
            convert(json!("ada@bücher.example"), "email-address"),
            Ok(json!(["ada@xn--bcher-kva.example"]))
        );
        assert!(convert(json!("<ada@example.com>"), "email-address").is_err());
    }

    #[test]
    fn lists_only_for_multiselect_attributes_and_errors_never_quote_the_value() {
        let multi = attribute("select", true);
        assert_eq!(to_attio(&json!(["A", "B"]), &multi), Ok(json!(["A", "B"])));
        assert_eq!(to_attio(&json!("A"), &multi), Ok(json!(["A"])));
        assert_eq!(convert(json!(["only"]), "text"), Ok(json!(["only"])));
        assert!(convert(json!(["a", "b"]), "text").is_err());
        let err = convert(json!("SECRET-VALUE"), "number").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(
            convert(json!("x"), "record-reference")
                .unwrap_err()
                .contains("cannot write")
        );
        assert_eq!(conversion("location"), None);
        assert!(conversion("timestamp").is_some());
    }
}
