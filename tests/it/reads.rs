//! Reading Attio back (what reconcile builds on): every record of an object in pages of
//! Attio's query, and reads paced under Attio's 100 a second.

use std::sync::Arc;
use std::time::Duration;

use attio_user_sync::attio::{AttioBudget, AttioClient, RetryPolicy};
use attio_user_sync::pace::WriteLimiter;
use attio_user_sync::secrets::Secret;
use serde_json::json;

use crate::support::*;

fn client(attio: &AttioStandIn) -> AttioClient {
    let tls = attio_user_sync::tls::client_config(None).expect("TLS");
    AttioClient::new(&attio.url(), RetryPolicy::default(), tls).expect("client")
}

fn budget() -> AttioBudget {
    AttioBudget::from_now(Duration::from_secs(30))
}

/// `count` people asserted straight into the stand-in.
async fn people(attio: &AttioStandIn, count: usize) {
    let client = client(attio);
    for n in 0..count {
        client
            .assert_record(
                &Secret::new(TOKEN),
                "people",
                "email_addresses",
                json!({"email_addresses": [{"email_address": format!("read.{n}@example.com")}]}),
                &mut budget(),
            )
            .await
            .expect("the write lands");
    }
}

#[tokio::test]
async fn query_pages_hold_every_record_once_and_a_short_page_is_the_last() {
    let attio = AttioStandIn::start(TOKEN).await;
    people(&attio, 1_050).await;
    let client = client(&attio);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = client
            .query_records(
                &Secret::new(TOKEN),
                "people",
                500,
                seen.len() as u64,
                &mut budget(),
            )
            .await
            .expect("a page");
        sizes.push(page.len());
        let last = page.len() < 500;
        seen.extend(page.into_iter().map(|r| r.id));
        if last {
            break;
        }
    }

    assert_eq!(sizes, [500, 500, 50]);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1_050, "every record once");
    let stored: Vec<String> = attio.records("people").into_iter().map(|r| r.id).collect();
    assert_eq!(seen, stored, "in Attio's order");
}

/// `reads` lookups from `tasks` concurrent tasks; returns the stand-in's 429 count.
async fn read_concurrently(client: AttioClient, attio: &AttioStandIn, reads: usize) -> usize {
    let client = Arc::new(client);
    let tasks = 16;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            for n in (t..reads).step_by(tasks) {
                client
                    .find_record(
                        &Secret::new(TOKEN),
                        "people",
                        "email_addresses",
                        &format!("read.{}@example.com", n % 10),
                        &mut budget(),
                    )
                    .await
                    .expect("the read is answered");
            }
        }));
    }
    for h in handles {
        h.await.expect("reader");
    }
    attio
        .requests()
        .iter()
        .filter(|r| r.status == 429 && r.method == "POST")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_reads_meet_no_429_where_unpaced_ones_do() {
    let unpaced = AttioStandIn::start(TOKEN).await;
    people(&unpaced, 10).await;
    unpaced.limit_rates(25, 100);
    let refused = read_concurrently(client(&unpaced), &unpaced, 300).await;
    assert!(
        refused > 0,
        "the unpaced load never met the limit, so it proves nothing"
    );

    let paced = AttioStandIn::start(TOKEN).await;
    people(&paced, 10).await;
    paced.limit_rates(25, 100);
    let reads = Arc::new(WriteLimiter::new(95.0));
    let refused = read_concurrently(client(&paced).with_read_limiter(reads), &paced, 300).await;

    assert_eq!(refused, 0);
}

#[tokio::test]
async fn the_users_snapshot_finds_each_user_and_what_the_listing_did_not_name() {
    use attio_user_sync::reconcile::snapshot::AttioUsers;
    let attio = AttioStandIn::start(TOKEN).await;
    let writer = client(&attio);
    for n in 0..1_050 {
        writer
            .assert_record(
                &Secret::new(TOKEN),
                "users",
                "user_id",
                json!({"user_id": format!("u_{n}"),
                       "primary_email_address": [{"email_address": format!("u.{n}@example.com")}]}),
                &mut budget(),
            )
            .await
            .expect("the write lands");
    }
    attio.limit_rates(25, 100);
    let reader = client(&attio).with_read_limiter(Arc::new(WriteLimiter::new(95.0)));

    let mut pages = Vec::new();
    let mut users = AttioUsers::read(
        &reader,
        &Secret::new(TOKEN),
        None,
        &Default::default(),
        Default::default(),
        |read| pages.push(read),
    )
    .await
    .expect("read");

    assert_eq!(users.len(), 1_050);
    assert_eq!(pages, [500, 1_000, 1_050]);
    let stored = attio.records("users");
    let id_of = |user_id: &str| {
        stored
            .iter()
            .find(|r| r.text("user_id") == Some(user_id))
            .map(|r| r.id.clone())
    };
    for n in 0..1_000 {
        let user_id = format!("u_{n}");
        assert_eq!(users.listed(&user_id), id_of(&user_id), "{user_id}");
    }
    assert_eq!(users.listed("u_unknown"), None, "not in Attio: missing");
    let mut unlisted: Vec<String> = users.unlisted().collect();
    unlisted.sort();
    let mut expected: Vec<String> = (1_000..1_050)
        .map(|n| id_of(&format!("u_{n}")).unwrap())
        .collect();
    expected.sort();
    assert_eq!(unlisted, expected);
    assert_eq!(
        attio.requests().iter().filter(|r| r.status == 429).count(),
        0
    );
}

#[tokio::test]
async fn with_provider_mapped_only_the_routes_records_count() {
    use attio_user_sync::reconcile::snapshot::{AttioUsers, OfRoute};
    let attio = AttioStandIn::start(TOKEN).await;
    let writer = client(&attio);
    for (n, provider) in [
        (0, Some("clerk")),
        (1, Some("okta")),
        (2, None),
        (3, Some("clerk")),
    ] {
        let mut values = json!({"user_id": format!("u_{n}"),
            "primary_email_address": [{"email_address": format!("u.{n}@example.com")}]});
        if let Some(provider) = provider {
            values["signed_up_with"] = json!(provider);
        }
        writer
            .assert_record(
                &Secret::new(TOKEN),
                "users",
                "user_id",
                values,
                &mut budget(),
            )
            .await
            .expect("the write lands");
    }
    let clerk = OfRoute {
        slug: "signed_up_with".into(),
        route: "clerk",
    };

    let mut users = AttioUsers::read(
        &client(&attio),
        &Secret::new(TOKEN),
        Some(&clerk),
        &Default::default(),
        Default::default(),
        |_| {},
    )
    .await
    .expect("read");

    assert_eq!(
        users.len(),
        2,
        "u_0 and u_3: okta's and the unmarked record are not clerk's"
    );
    assert!(users.listed("u_0").is_some());
    assert!(users.listed("u_1").is_none());
    assert!(users.listed("u_2").is_none());
    assert!(users.listed("u_3").is_some());
}

#[tokio::test]
async fn a_provider_attribute_of_select_type_is_read_by_its_options_title() {
    use attio_user_sync::reconcile::snapshot::{AttioUsers, OfRoute};
    let attio = AttioStandIn::start(TOKEN).await;
    let writer = client(&attio);
    // The stand-in's select `plan` has the options Free, Pro and Enterprise; one stands for a
    // route here, as a select whose options are route names would.
    for (n, option) in [(0, "Pro"), (1, "Free"), (2, "Pro")] {
        writer
            .assert_record(
                &Secret::new(TOKEN),
                "users",
                "user_id",
                json!({"user_id": format!("u_{n}"), "plan": option,
                       "primary_email_address": [{"email_address": format!("u.{n}@example.com")}]}),
                &mut budget(),
            )
            .await
            .expect("the write lands");
    }
    let of_route = OfRoute {
        slug: "plan".into(),
        route: "Pro",
    };

    let mut users = AttioUsers::read(
        &client(&attio),
        &Secret::new(TOKEN),
        Some(&of_route),
        &Default::default(),
        Default::default(),
        |_| {},
    )
    .await
    .expect("read");

    assert_eq!(users.len(), 2);
    assert!(users.listed("u_0").is_some() && users.listed("u_2").is_some());
    assert!(users.listed("u_1").is_none());
}
