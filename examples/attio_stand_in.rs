//! The local Attio stand-in as a program, for the demo and for trying the function by hand.
//!
//! `cargo run --example attio_stand_in -- [PORT] [TOKEN]` listens on 127.0.0.1:PORT (default
//! 4010) and accepts `Authorization: Bearer TOKEN` (default `demo-attio-token`). It keeps
//! records in memory; `GET /__stand-in/records/users` lists them. `POST /__stand-in/outage`
//! starts an outage (every Attio call answered 503), `DELETE /__stand-in/outage` ends it.
//! `ATTIO_STAND_IN_LATENCY_MS=150` delays every answer by that round trip, as the internet does.

#[path = "../tests/it/support/attio_stand_in.rs"]
mod attio_stand_in;

use std::net::{Ipv4Addr, SocketAddr};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().map(|p| p.parse()) {
        None => 4010,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("error: PORT must be a number: {e}");
            std::process::exit(2);
        }
    };
    let token = args.next().unwrap_or_else(|| "demo-attio-token".into());
    let stand_in = attio_stand_in::AttioStandIn::start_on(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        &token,
    )
    .await;
    if let Some(ms) = std::env::var("ATTIO_STAND_IN_LATENCY_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        // The network the function really meets: every answer this long after its request.
        stand_in.set_latency(std::time::Duration::from_millis(ms));
    }
    eprintln!("Attio stand-in listening on {}", stand_in.url());
    std::future::pending::<()>().await;
}
