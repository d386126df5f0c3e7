//! `attio-user-sync-doctor`: checks the function's configuration against Attio, Secrets
//! Manager and the providers before the first event. Exit code 0: every check passed; 1: a
//! check failed; 2: the configuration itself is invalid.

use attio_user_sync::doctor::Doctor;
use clap::Parser;

/// Checks what attio-user-sync needs before its first event: the Attio token and its scopes,
/// the users (and workspaces) objects, every mapped attribute, the secret's signing secrets,
/// Kinde's published keys. Reads the same environment as the function (ATTIO_SYNC_SECRET_ID,
/// ATTIO_API_URL, ATTIO_ATTRIBUTE_MAP, KINDE_ISSUER_URL, AWS_* …); ATTIO_ACCESS_TOKEN stands in
/// for the secret when ATTIO_SYNC_SECRET_ID is unset.
#[derive(Parser)]
#[command(name = "attio-user-sync-doctor", version)]
struct Args {
    /// Print the checks as JSON instead of lines.
    #[arg(long)]
    json: bool,
    /// A route you will use (repeatable); by default, the routes the secret configures.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let doctor = match Doctor::from_lookup(|name| std::env::var(name).ok(), args.routes) {
        Ok(doctor) => doctor,
        Err(problem) => {
            eprintln!("✗ configuration: {problem}");
            return std::process::ExitCode::from(2);
        }
    };
    let report = doctor.run().await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        for line in report.lines() {
            println!("{line}");
        }
    }
    if report.passed() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
