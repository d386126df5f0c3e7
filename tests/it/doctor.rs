//! `attio-user-sync-doctor`: every check passing, and each failing with a fix, against moto's
//! Secrets Manager, the Attio stand-in and a JWKS server; then the binary as a person runs it.

use std::collections::HashMap;

use attio_user_sync::doctor::{Doctor, Report};
use serde_json::{Value, json};

use crate::support::*;

/// The function's environment for a doctor run: the secret `secret_id`, the stand-in, and `env`.
fn environment(
    attio: &AttioStandIn,
    secret_id: Option<&str>,
    env: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ]
    .into_iter()
    .filter_map(|k| Some((k.to_owned(), std::env::var(k).ok()?)))
    .collect();
    vars.insert("ATTIO_API_URL".into(), attio.url());
    if let Some(id) = secret_id {
        vars.insert("ATTIO_SYNC_SECRET_ID".into(), id.to_owned());
    }
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    vars
}

async fn diagnose(
    attio: &AttioStandIn,
    secret: &Value,
    env: &[(&str, &str)],
    routes: &[&str],
) -> Report {
    let secret_id = create_secret(secret).await;
    let vars = environment(attio, Some(&secret_id), env);
    let doctor = Doctor::from_lookup(
        |k| vars.get(k).cloned(),
        routes.iter().map(|r| (*r).to_owned()).collect(),
    )
    .expect("a valid configuration");
    doctor.run().await
}

/// The check named `name`, as (passed, detail and fix).
fn check(report: &Report, name: &str) -> (bool, String) {
    let c = report
        .checks
        .iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {:#?}", report.lines()));
    (
        c.ok,
        format!("{} {}", c.detail, c.fix.as_deref().unwrap_or("")),
    )
}

const MAP: &str = r#"{"users": {"plan": "/public_metadata/plan", "last_seen": "last_sign_in_at"}}"#;

#[tokio::test]
async fn every_check_passes_for_a_workspace_set_up_as_the_readme_says() {
    let attio = AttioStandIn::start(TOKEN).await;
    let jwks = JwksServer::start(&[1]).await;

    let report = diagnose(
        &attio,
        &default_secret(),
        &[
            ("ATTIO_ATTRIBUTE_MAP", MAP),
            ("KINDE_ISSUER_URL", &jwks.url),
        ],
        &[],
    )
    .await;

    assert!(report.passed(), "{:#?}", report.lines());
    for name in [
        "secret",
        "route clerk",
        "route workos",
        "route okta",
        "route kinde",
        "token",
        "users object",
        "workspaces object",
        "mapping users.plan",
        "mapping users.last_seen",
        "kinde keys",
    ] {
        assert!(check(&report, name).0, "{name}");
    }
    assert!(
        check(&report, "mapping users.plan")
            .1
            .contains("select attribute; takes text, as the option's title")
    );
}

#[tokio::test]
async fn a_token_attio_refuses_or_that_lacks_a_scope_fails_the_token_check() {
    let attio = AttioStandIn::start(TOKEN).await;
    let mut wrong_token = default_secret();
    wrong_token["attio_access_token"] = json!("not-a-token-attio-knows");

    let refused = diagnose(&attio, &wrong_token, &[], &[]).await;
    attio.set_scopes("record_permission:read-write");
    let narrow = diagnose(&attio, &default_secret(), &[], &[]).await;

    let (ok, said) = check(&refused, "token");
    assert!(!ok && said.contains("Settings › Developers"), "{said}");
    let (ok, said) = check(&narrow, "token");
    assert!(
        !ok && said.contains("without object_configuration:read"),
        "{said}"
    );
    assert!(!refused.passed() && !narrow.passed());
}

#[tokio::test]
async fn objects_not_activated_or_a_matching_attribute_not_unique_fail_their_checks() {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.disable_object("workspaces");
    let workspaces_off = diagnose(&attio, &default_secret(), &[], &[]).await;
    attio.make_not_unique("users", "user_id");
    let not_unique = diagnose(&attio, &default_secret(), &[], &[]).await;
    attio.disable_object("users");
    let users_off = diagnose(&attio, &default_secret(), &[], &[]).await;

    let (ok, said) = check(&workspaces_off, "workspaces object");
    assert!(
        !ok && said.contains("not activated") && said.contains("clerk"),
        "{said}"
    );
    assert!(check(&workspaces_off, "users object").0);
    let (ok, said) = check(&not_unique, "users object");
    assert!(!ok && said.contains("user_id is not unique"), "{said}");
    let (ok, said) = check(&users_off, "users object");
    assert!(!ok && said.contains("Settings › Objects"), "{said}");
}

#[tokio::test]
async fn a_workspace_not_activated_is_fine_when_no_configured_route_links_organisations() {
    let attio = AttioStandIn::start(TOKEN).await;
    attio.disable_object("workspaces");
    let secret = json!({"attio_access_token": TOKEN, "webhook_secrets": {"okta": OKTA_SECRET}});

    let report = diagnose(&attio, &secret, &[], &[]).await;

    assert!(report.passed(), "{:#?}", report.lines());
    assert!(report.checks.iter().all(|c| c.check != "workspaces object"));
}

#[tokio::test]
async fn mapped_attributes_that_are_missing_archived_or_of_a_type_the_mapping_cannot_write_fail() {
    let attio = AttioStandIn::start(TOKEN).await;
    let map = r#"{"users": {"favourite_colour": "/colour", "legacy_plan": "/plan"},
                  "workspaces": {"company": "organization_name"}}"#;

    let report = diagnose(
        &attio,
        &default_secret(),
        &[("ATTIO_ATTRIBUTE_MAP", map)],
        &[],
    )
    .await;

    let (ok, said) = check(&report, "mapping users.favourite_colour");
    assert!(
        !ok && said.contains("no attribute favourite_colour"),
        "{said}"
    );
    let (ok, said) = check(&report, "mapping users.legacy_plan");
    assert!(
        !ok && said.contains("archived") && said.contains("unarchive it in Attio"),
        "{said}"
    );
    assert!(!said.contains("create it"), "{said}");
    let (ok, said) = check(&report, "mapping workspaces.company");
    assert!(!ok && said.contains("record-reference"), "{said}");
}

#[tokio::test]
async fn signing_secrets_of_the_wrong_form_missing_or_for_unknown_routes_fail() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret = json!({"attio_access_token": TOKEN, "webhook_secrets": {
        "clerk": "whsec_not base64!", "workos": "", "github": "x"}});

    let report = diagnose(&attio, &secret, &[], &["clerk", "workos", "github", "okta"]).await;

    let (ok, said) = check(&report, "route clerk");
    assert!(!ok && said.contains("not whsec_<base64>"), "{said}");
    let (ok, said) = check(&report, "route workos");
    assert!(!ok && said.contains("empty"), "{said}");
    let (ok, said) = check(&report, "route github");
    assert!(!ok && said.contains("no such route"), "{said}");
    let (ok, said) = check(&report, "route okta");
    assert!(!ok && said.contains("webhook_secrets.okta"), "{said}");
    let text = format!("{:?}", report.lines());
    assert!(
        !text.contains("not base64!"),
        "no secret in the report: {text}"
    );
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_fails_and_leaves_the_token_unchecked() {
    let attio = AttioStandIn::start(TOKEN).await;
    let vars = environment(&attio, Some("attio-user-sync/test/does-not-exist"), &[]);

    let report = Doctor::from_lookup(|k| vars.get(k).cloned(), Vec::new())
        .unwrap()
        .run()
        .await;

    let (ok, said) = check(&report, "secret");
    assert!(!ok && said.contains("create-secret"), "{said}");
    assert!(!check(&report, "token").0);
    assert!(
        attio.requests().is_empty(),
        "Attio was not asked without a token"
    );
}

#[tokio::test]
async fn kinde_keys_that_are_not_served_fail() {
    let attio = AttioStandIn::start(TOKEN).await;
    let empty = JwksServer::start(&[]).await;
    let (closed, _) = stub_dropping_connections().await;

    let no_keys = diagnose(
        &attio,
        &default_secret(),
        &[("KINDE_ISSUER_URL", &empty.url)],
        &[],
    )
    .await;
    let unreachable = diagnose(
        &attio,
        &default_secret(),
        &[("KINDE_ISSUER_URL", &closed)],
        &[],
    )
    .await;

    let (ok, said) = check(&no_keys, "kinde keys");
    assert!(!ok && said.contains("serves no keys"), "{said}");
    let (ok, said) = check(&unreachable, "kinde keys");
    assert!(!ok && said.contains("KINDE_ISSUER_URL"), "{said}");
}

#[tokio::test]
async fn an_access_token_alone_is_enough_for_a_first_try() {
    let attio = AttioStandIn::start(TOKEN).await;
    let vars = environment(&attio, None, &[("ATTIO_ACCESS_TOKEN", TOKEN)]);

    let report = Doctor::from_lookup(|k| vars.get(k).cloned(), Vec::new())
        .unwrap()
        .run()
        .await;

    assert!(report.passed(), "{:#?}", report.lines());
    assert!(check(&report, "secret").1.contains("ATTIO_ACCESS_TOKEN"));
    assert!(check(&report, "token").0);
}

#[tokio::test]
async fn the_binary_prints_a_line_a_check_and_exits_non_zero_when_one_fails() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;
    let run = |extra: Vec<(&'static str, String)>, args: &'static [&'static str]| {
        // Async, so the stand-in (on this test's runtime) answers while the doctor runs.
        let mut command =
            tokio::process::Command::new(env!("CARGO_BIN_EXE_attio-user-sync-doctor"));
        command
            .args(args)
            .env_remove("ATTIO_ACCESS_TOKEN")
            .env("ATTIO_SYNC_SECRET_ID", &secret_id)
            .env("ATTIO_API_URL", attio.url());
        for (k, v) in extra {
            command.env(k, v);
        }
        command
    };

    let healthy = run(vec![], &[]).output().await.expect("the doctor runs");
    let json = run(
        vec![(
            "ATTIO_ATTRIBUTE_MAP",
            r#"{"users": {"nope": "email"}}"#.into(),
        )],
        &["--json"],
    )
    .output()
    .await
    .expect("the doctor runs");
    let invalid = run(vec![("ATTIO_ATTRIBUTE_MAP", "{not json".into())], &[])
        .output()
        .await
        .expect("the doctor runs");

    let out = String::from_utf8_lossy(&healthy.stdout);
    assert_eq!(healthy.status.code(), Some(0), "{out}");
    assert!(out.lines().all(|l| l.starts_with("✓ ")), "{out}");
    assert!(out.contains("✓ token: active for workspace"), "{out}");
    assert_eq!(json.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["check"], "mapping users.nope");
    assert!(failed[0]["fix"].is_string());
    assert_eq!(invalid.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("ATTIO_ATTRIBUTE_MAP"));
}

/// Runs `attio-user-sync-doctor` as a person would, against the stand-in and the secret;
/// (exit code, what it printed).
async fn run_doctor(attio: &AttioStandIn, secret_id: &str, env: &[(&str, &str)]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_attio-user-sync-doctor"))
        .env_remove("ATTIO_ACCESS_TOKEN")
        .env_remove("ATTIO_ATTRIBUTE_MAP")
        .env("ATTIO_SYNC_SECRET_ID", secret_id)
        .env("ATTIO_API_URL", attio.url())
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the doctor runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The line the doctor printed for `check`.
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l[l.find(' ').map_or(0, |i| i + 1)..].starts_with(&format!("{check}:")))
        .unwrap_or_else(|| panic!("no line for {check} in {out}"))
}

#[tokio::test]
async fn the_binary_fails_a_mapping_whose_source_can_never_become_the_attribute_s_type() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;
    let map = r#"{"users": {"seats": "email", "beta_tester": {"clerk": "created_at"},
                            "signed_up_with": "first_name", "plan": "/public_metadata/plan",
                            "last_seen": "last_sign_in_at"}}"#;

    let (code, out) = run_doctor(&attio, &secret_id, &[("ATTIO_ATTRIBUTE_MAP", map)]).await;

    assert_eq!(code, 1, "{out}");
    let seats = line(&out, "mapping users.seats");
    assert!(
        seats.starts_with("✗") && seats.contains("a number attribute can never take email"),
        "{seats}"
    );
    assert!(
        seats.contains("email-address"),
        "the fix names types that take it: {seats}"
    );
    let beta = line(&out, "mapping users.beta_tester");
    assert!(
        beta.starts_with("✗") && beta.contains("never take clerk's created_at"),
        "{beta}"
    );
    // Free text may be anything; a time converts to a timestamp.
    assert!(line(&out, "mapping users.signed_up_with").starts_with("✓"));
    assert!(line(&out, "mapping users.last_seen").starts_with("✓"));
    let plan = line(&out, "mapping users.plan");
    assert!(
        plan.starts_with("✓")
            && plan.contains("/public_metadata/plan cannot be checked before the first event"),
        "{plan}"
    );
}

#[tokio::test]
async fn the_binary_says_archived_for_a_mapping_to_an_archived_attribute() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;
    let map = r#"{"users": {"legacy_plan": "/public_metadata/plan"}}"#;

    let (code, out) = run_doctor(&attio, &secret_id, &[("ATTIO_ATTRIBUTE_MAP", map)]).await;

    assert_eq!(code, 1, "{out}");
    let legacy = line(&out, "mapping users.legacy_plan");
    assert!(
        legacy.starts_with("✗")
            && legacy.contains("archived")
            && legacy.contains("unarchive it in Attio, or map another attribute"),
        "{legacy}"
    );
    assert!(!legacy.contains("create it"), "{legacy}");
}

#[tokio::test]
async fn the_binary_accepts_a_higher_scope_level_and_refuses_a_lower_one() {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;

    attio.set_scopes("record_permission:read-write object_configuration:read-write");
    let (higher, higher_out) = run_doctor(&attio, &secret_id, &[]).await;
    attio.set_scopes("record_permission:read object_configuration:read-write");
    let (lower, lower_out) = run_doctor(&attio, &secret_id, &[]).await;

    assert_eq!(higher, 0, "{higher_out}");
    assert!(line(&higher_out, "token").starts_with("✓"), "{higher_out}");
    assert_eq!(lower, 1, "{lower_out}");
    let token = line(&lower_out, "token");
    assert!(
        token.starts_with("✗") && token.contains("without record_permission:read-write"),
        "{token}"
    );
}
