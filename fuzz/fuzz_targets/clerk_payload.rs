//! Clerk payload parsing on arbitrary bodies: never panics; what it accepts is a usable user.
#![no_main]

use attio_user_sync::providers::provider_for_route;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let provider = provider_for_route("clerk").expect("clerk is registered");
    if let Ok(delivery) = provider.parse(data) {
        for event in delivery.events {
            assert!(event.user.email.as_str().contains('@'));
        }
    }
});
