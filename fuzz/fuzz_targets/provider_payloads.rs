//! Every registered provider's payload parser on arbitrary bodies: never panics, and what it
//! accepts holds usable users. A provider added to the registry is fuzzed with no change here.
#![no_main]

use attio_user_sync::domain::UserEvent;
use attio_user_sync::providers::PROVIDERS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for provider in PROVIDERS {
        if let Ok(delivery) = provider.parse(data) {
            for event in delivery.events {
                if let UserEvent::Upserted { user, .. } = event {
                    assert!(user.email.as_str().contains('@'), "{}", provider.route());
                }
            }
        }
    }
});
