//! A stand-in for Clerk's Backend API list of users, for the demo's backfill:
//! `cargo run --example clerk_api_stand_in -- [PORT] [USERS]` listens on 127.0.0.1:PORT (default
//! 4020) and serves USERS generated users (default 40; every tenth without an email address)
//! to `GET /v1/users` and `GET /v1/users/count`, with the secret key `sk_test_backfill`.

#[path = "../tests/it/support/clerk_api.rs"]
mod clerk_api;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(4020);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(40);
    let users = (0..count)
        .map(|n| {
            let email = format!("existing.user.{n}@example.com");
            clerk_api::clerk_listed_user(n, (n % 10 != 9).then_some(email.as_str()))
        })
        .collect();
    let api = clerk_api::ClerkApi::start_on(
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)),
        users,
    )
    .await;
    eprintln!("Clerk list stand-in on {} ({count} users)", api.url());
    std::future::pending::<()>().await;
}
