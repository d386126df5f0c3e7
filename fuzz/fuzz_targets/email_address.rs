//! Email parsing and redaction: never panics; an accepted address is in its one normal form
//! (parsing it again gives it back) and holds nothing unseen; a redacted form never holds the
//! local part.
#![no_main]

use attio_user_sync::domain::{EmailAddress, redact_emails};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(email) = EmailAddress::parse(data) {
        let again = EmailAddress::parse(email.as_str()).expect("a parsed address parses again");
        assert_eq!(again.as_str(), email.as_str(), "one mailbox, one form");
        assert!(
            !email.as_str().chars().any(|c| c.is_whitespace() || c.is_control() || ('\u{200B}'..='\u{200F}').contains(&c)),
            "an accepted address holds an unseen character"
        );
        let (local, domain) = email.as_str().rsplit_once('@').expect("parsed addresses hold @");
        assert!(domain.is_ascii(), "the domain is in its ASCII form");
        // A local part that already reads as its own mask (`j***`, `***`, after any opening
        // quotes or brackets, which redaction keeps) has nothing more to hide.
        let bare = local.trim_start_matches(['"', '\'', '(', '<', '[']);
        let rest: String = bare.chars().skip(1).collect();
        if bare.chars().all(|c| c == '*') || rest == "***" {
            return;
        }
        assert!(!email.redacted().contains(email.as_str()), "redaction kept the address");
        let in_text = redact_emails(&format!("value \"{}\" rejected", email.as_str()));
        assert!(!in_text.contains(email.as_str()), "redact_emails kept the address");
    }
    let _ = redact_emails(data);
});
