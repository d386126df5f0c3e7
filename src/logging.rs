//! Logging as every binary does it: JSON lines for Lambda, and what a log line may repeat of
//! a sender's text.

/// Logging as Lambda wants it: JSON lines with `AWS_LAMBDA_LOG_FORMAT=JSON`, at the level of
/// `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`; `INFO` by default); and panics logged as one such
/// line with their place in the code but not their message, which can quote input.
///
/// lambda_runtime's `init_default_subscriber` does the same through tracing-subscriber's
/// `EnvFilter`, whose per-target directives (`RUST_LOG=crate=debug`) bring the regex crates
/// along: about 270 KiB of the binary for a level Lambda gives as one word.
pub fn init_logging() {
    use lambda_runtime::tracing::subscriber::filter::LevelFilter;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let level = match level.trim().to_ascii_uppercase().as_str() {
        // tracing would read an empty level as ERROR.
        "" => LevelFilter::INFO,
        // Lambda's levels include FATAL, which tracing has not.
        "FATAL" => LevelFilter::ERROR,
        other => other.parse().unwrap_or(LevelFilter::INFO),
    };
    let logs = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            location,
            "panicked; the message is not logged, as it can quote input"
        );
    }));
}

/// Longest id or event type a log line repeats.
const MAX_LOGGED_TOKEN: usize = 128;
/// A sender's id or event type as the log may show it: ids and event types are short and made
/// of letters, digits and `._:/-`; anything else is withheld, since it is the sender's text.
pub fn loggable_token(value: &str) -> &str {
    let plain = (1..=MAX_LOGGED_TOKEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
    if plain { value } else { "(withheld)" }
}
