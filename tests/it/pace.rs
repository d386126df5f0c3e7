//! Pacing writes to Attio's limit: many writes in flight through one client with a
//! [`WriteLimiter`], against the stand-in enforcing Attio's 25 writes/s, meet no `429`; the same
//! load without it does.

use std::sync::Arc;
use std::time::Duration;

use attio_user_sync::attio::{AttioBudget, AttioClient, RetryPolicy};
use attio_user_sync::pace::WriteLimiter;
use attio_user_sync::secrets::Secret;
use serde_json::json;

use crate::support::*;

/// `writes` user asserts from `tasks` concurrent tasks; returns the stand-in's 429 count.
async fn write_concurrently(
    client: AttioClient,
    attio: &AttioStandIn,
    writes: usize,
    tasks: usize,
) -> usize {
    let client = Arc::new(client);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            for n in (t..writes).step_by(tasks) {
                let mut budget =
                    AttioBudget::from_now(Duration::from_secs(30));
                client
                    .assert_record(
                        &Secret::new(TOKEN),
                        "people",
                        "email_addresses",
                        json!({"email_addresses": [{"email_address": format!("paced.{n}@example.com")}]}),
                        &mut budget,
                    )
                    .await
                    .expect("the write lands");
            }
        }));
    }
    for h in handles {
        h.await.expect("writer");
    }
    assert_eq!(attio.records("people").len(), writes);
    attio.requests().iter().filter(|r| r.status == 429).count()
}

fn client(attio: &AttioStandIn) -> AttioClient {
    let tls = attio_user_sync::tls::client_config(None).expect("TLS");
    AttioClient::new(&attio.url(), RetryPolicy::default(), tls).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_writes_meet_no_429_where_unpaced_ones_do() {
    let unpaced = AttioStandIn::start(TOKEN).await;
    unpaced.limit_rates(25, 100);
    let refused = write_concurrently(client(&unpaced), &unpaced, 60, 8).await;
    assert!(
        refused > 0,
        "the unpaced load never met the limit, so it proves nothing"
    );

    let paced = AttioStandIn::start(TOKEN).await;
    paced.limit_rates(25, 100);
    let limiter = Arc::new(WriteLimiter::new(24.5));
    let refused = write_concurrently(client(&paced).with_limiter(limiter), &paced, 60, 8).await;

    assert_eq!(refused, 0);
}
