//! Standard Webhooks verification on arbitrary headers and bodies: never panics, and accepts
//! only what the secret really signed.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use attio_user_sync::signature::{SignedMessage, verify_standard_webhook};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

fuzz_target!(|data: &[u8]| {
    // id \n timestamp \n signature header \n body
    let mut parts = data.splitn(4, |&b| b == b'\n');
    let (Some(id), Some(ts), Some(sigs)) = (parts.next(), parts.next(), parts.next()) else { return };
    let body = parts.next().unwrap_or_default();
    let (Ok(id), Ok(ts), Ok(sigs)) = (std::str::from_utf8(id), std::str::from_utf8(ts), std::str::from_utf8(sigs)) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_649_367_553);
    let message = SignedMessage { id, timestamp: ts, signatures: sigs, body };
    let result = verify_standard_webhook(&message, &[SECRET], now, Duration::from_secs(300));
    if result.is_ok() {
        // The one message this secret signed is the official vector (the seed); a forgery
        // would be anything else accepted.
        assert_eq!((id, ts, body), (ID, "1649367553", &BODY[..]), "accepted a message the secret did not sign");
    }
});
