//! `attio-user-sync-backfill`: brings Attio in step with every user a provider already has.
//! It reads what Attio holds first and compares each listed user with it (`missing`, `differs`,
//! `same`), writing only the difference through the same sync as the webhook, paced under
//! Attio's limits, resumable from a checkpoint; or, with `--enqueue`, sends the difference to
//! the function's queue for its worker. After a complete listing, Attio's users the provider
//! no longer has are orphans: reported, and deleted with `--delete-orphans` as the guard
//! allows. `--check` compares and writes nothing; `--rewrite-all` writes every user without
//! comparing. Run by a person (a laptop, CI, cron): a progress bar on a terminal or a plain line
//! every 5 s on stderr, a summary on stdout, exit code 0 when every user was written or skipped
//! for its own data (with `--check`: Attio equals the provider), 1 when writes failed or the
//! deletion guard refused, 2 when it could not run, 3 when `--check` found drift.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use attio_user_sync::App;
use attio_user_sync::backfill::file::FileDirectory;
use attio_user_sync::backfill::{self, BackfillError, Mode, Noted, Options, Reconcile};
use attio_user_sync::checkpoint::Checkpoint;
use attio_user_sync::directory::{Directory, Settings};
use attio_user_sync::pace::WriteLimiter;
use attio_user_sync::secrets::Secret;
use clap::Parser;

/// Write every existing user of an identity provider to Attio.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The provider's route: clerk, workos, okta, stytch, kinde, auth0, cognito, supabase-db
    /// (or standard, for Supabase's Auth hook) with SUPABASE_URL, or any route with --from-file.
    route: String,
    /// Read and convert every user, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Continue from the checkpoint an interrupted run left.
    #[arg(long)]
    resume: bool,
    /// Where the checkpoint is kept [default: attio-user-sync-backfill.ROUTE.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Attio writes a second, evenly spaced (Attio allows 25; the default leaves room for
    /// network jitter).
    #[arg(long, default_value_t = 24.5, value_parser = writes_per_second)]
    writes_per_second: f64,
    /// Users in flight at once (a new one starts as soon as one finishes; the writes are paced
    /// by --writes-per-second): 16 fills Attio's limit with its ~150 ms round trip.
    #[arg(long, default_value_t = attio_user_sync::backfill::DEFAULT_CONCURRENCY as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
    concurrency: u64,
    /// Users read per page from the provider, capped at its maximum [default: 200 for Okta and
    /// 500 for Kinde (their maximums), 60 for Cognito (its maximum), 100 for the others].
    #[arg(long)]
    page_size: Option<u64>,
    /// Write one JSON line per skipped or failed user ({"user_id", "reason"}) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Read the users from this file instead of the provider's API: its own user objects (a
    /// JSON array or JSON Lines), or a .csv with user_id,email,first_name,last_name headers.
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Send the users to the function's queue (SYNC_QUEUE_URL) for its worker to write at
    /// Attio's pace, instead of writing them from here. With an Attio secret or token only
    /// the users that are missing or differ are sent; without one, every user.
    #[arg(long, conflicts_with = "dry_run")]
    enqueue: bool,
    /// Compare with Attio and write nothing: print the drift, exit 0 when Attio equals the
    /// provider, 3 when it has drifted (users missing, differing, or orphaned).
    #[arg(long, conflicts_with_all = ["dry_run", "enqueue", "resume", "delete_orphans"])]
    check: bool,
    /// Write every user without comparing first (two writes each), as before reconcile.
    #[arg(long, conflicts_with_all = ["check", "delete_orphans"])]
    rewrite_all: bool,
    /// Delete the `users` records of Attio's users of this route that the provider's complete
    /// listing did not name (their people stay). Never when the listing did not complete, read
    /// no users, or found more orphans than --max-deletes.
    #[arg(long, conflicts_with_all = ["dry_run", "resume"])]
    delete_orphans: bool,
    /// The most orphans --delete-orphans deletes [default: the larger of 10 and 1 % of
    /// Attio's users of this route, rounded up]; with more, it deletes none.
    #[arg(long, requires = "delete_orphans")]
    max_deletes: Option<u64>,
}

/// 1 to 25, fractions allowed.
fn writes_per_second(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (1.0..=25.0).contains(&rate) => Ok(rate),
        _ => Err("a number of writes a second from 1 to 25 (Attio's limit)".into()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<std::process::ExitCode, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (config, token) = attio_user_sync::config::from_lookup_or_token(|name| {
        match (name, var(name)) {
            // The worker writes what --enqueue sends: no Attio secret is read from here.
            ("ATTIO_SYNC_SECRET_ID", None) if args.enqueue => {
                Some("(not read with --enqueue)".into())
            }
            (_, value) => value,
        }
    })
    .map_err(|e| e.to_string())?;
    let limiter = Arc::new(WriteLimiter::new(args.writes_per_second));
    let mut app = App::from_config_paced(config, Some(limiter)).map_err(|e| e.to_string())?;
    if let Some(token) = token {
        app = app.with_access_token(Secret::new(token));
    }
    let app = Arc::new(app);
    let route = attio_user_sync::routes::named(&args.route)
        .ok_or_else(|| format!("{:?} is not a route", args.route))?;
    if let Some(file) = &args.from_file {
        let directory = FileDirectory::open(file, route)?;
        return backfill_from(app, &directory, &args).await;
    }
    let source = attio_user_sync::providers::source_for(route)
        .ok_or_else(|| format!("{route} has no list API to read"))?;
    let directory = (source.open)(&Settings {
        var: &var,
        http: app.http_client(),
        page_size: args.page_size,
    })?;
    backfill_from(app, &directory, &args).await
}

async fn backfill_from(
    app: Arc<App>,
    directory: &impl Directory,
    args: &Args,
) -> Result<std::process::ExitCode, String> {
    if args.enqueue && app.queue().is_none() {
        return Err("--enqueue sends to the function's queue: set SYNC_QUEUE_URL (the stack's SyncQueueUrl output)".into());
    }
    let path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| Checkpoint::default_path(directory.route()));
    let checkpoint = match (
        Checkpoint::load(&path, directory.route()).map_err(|e| e.to_string())?,
        args.resume,
    ) {
        (Some(saved), true) => {
            eprintln!(
                "resuming from {}: {} users read so far",
                path.display(),
                saved.counts.read
            );
            saved
        }
        // A dry run and a check write no checkpoint: an interrupted run's is left for --resume.
        (Some(_), false) if !args.dry_run && !args.check => {
            return Err(format!(
                "{} holds an interrupted run: add --resume to continue it, or remove the file to start over",
                path.display()
            ));
        }
        _ => Checkpoint::start(directory.route()),
    };
    let total = directory.total().await;
    let mut report = match &args.report {
        Some(path) => {
            Some(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    let mode = match (args.dry_run, args.enqueue, args.check) {
        (true, _, _) => Mode::DryRun,
        (_, _, true) => Mode::Check,
        (false, true, false) => Mode::Enqueue,
        (false, false, false) => Mode::Write,
    };
    // From a laptop with only the queue's URL there is nothing to compare with: every user is
    // queued, as with --rewrite-all.
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let no_attio = args.enqueue
        && var("ATTIO_SYNC_SECRET_ID").is_none()
        && var("ATTIO_ACCESS_TOKEN").is_none();
    if no_attio && !args.rewrite_all {
        eprintln!(
            "no Attio secret or token here: every user is queued (set ATTIO_SYNC_SECRET_ID or ATTIO_ACCESS_TOKEN to queue only the difference)"
        );
    }
    let compares = mode == Mode::Check || !(args.rewrite_all || no_attio || args.dry_run);
    let options = Options {
        mode,
        concurrency: args.concurrency as usize,
        reconcile: compares.then_some(Reconcile {
            delete_orphans: args.delete_orphans,
            max_deletes: args.max_deletes,
        }),
        reading: Default::default(),
    };
    if compares {
        eprintln!("reading what Attio holds of {}'s users…", directory.route());
    }
    let started = Instant::now();
    let mut progress = Progress::new(total, checkpoint.counts.read, compares);
    let mut reasons = Reasons::default();
    let done = backfill::run(
        app,
        directory,
        checkpoint,
        &path,
        &options,
        |c| progress.update(c),
        |noted| {
            let line = match noted {
                Noted::Skipped(skipped) => {
                    reasons.add(skipped);
                    serde_json::json!({"user_id": skipped.user_id, "reason": skipped.reason, "failed": skipped.failed})
                }
                Noted::Found(found) => {
                    reasons.found(found);
                    found.to_json()
                }
            };
            if let Some(file) = report.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        },
    )
    .await;
    progress.finish();
    let (done, refused) = match done {
        Ok(done) => (done, None),
        Err(BackfillError::Refused(refusal, done)) => (*done, Some(refusal)),
        Err(e) => {
            return Err(format!(
                "{e}; {} keeps the position: rerun with --resume",
                path.display()
            ));
        }
    };

    let c = &done.counts;
    let done_what = match mode {
        Mode::DryRun => format!("would write {}", c.read - c.skipped),
        Mode::Enqueue => format!("queued {}", c.queued),
        Mode::Write => format!("synced {}", c.synced),
        Mode::Check => "checked, nothing written".into(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let route = directory.route();
    if compares {
        let deleted = if args.delete_orphans {
            format!(", deleted {}", c.deleted)
        } else {
            String::new()
        };
        println!(
            "{route}: read {}: same {}, missing {}, differs {}, orphans {}; {done_what}{deleted}, skipped {}, failed {} in {elapsed:.1} s",
            c.read, c.same, c.missing, c.differs, c.orphans, c.skipped, c.failed,
        );
    } else {
        println!(
            "{route}: read {}, {done_what}, unchanged {}, skipped {}, failed {} in {elapsed:.1} s",
            c.read, c.unchanged, c.skipped, c.failed,
        );
    }
    reasons.print();
    if !matches!(mode, Mode::DryRun | Mode::Check) {
        // Finished: the next run starts over (and writes nothing twice: asserts are idempotent).
        let _ = std::fs::remove_file(&path);
    }
    if let Some(refusal) = &refused {
        eprintln!("orphans not deleted: {refusal}");
    }
    Ok(if c.failed > 0 || refused.is_some() {
        std::process::ExitCode::from(1)
    } else if mode == Mode::Check && c.drift() > 0 {
        std::process::ExitCode::from(3)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// What a person watches while the backfill runs, on stderr: a progress bar on a terminal
/// (users of the total where the provider says, rate, ETA, failures so far); elsewhere (CI, a
/// pipe, a log) a plain line every five seconds. A comparing run shows its classes as they
/// are found.
struct Progress {
    view: View,
    compares: bool,
}

enum View {
    Bar(indicatif::ProgressBar),
    Lines {
        total: Option<u64>,
        started: Instant,
        from: u64,
        last: Instant,
    },
}

impl Progress {
    fn new(total: Option<u64>, already_read: u64, compares: bool) -> Self {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            let now = Instant::now();
            let view = View::Lines {
                total,
                started: now,
                from: already_read,
                last: now,
            };
            return Self { view, compares };
        }
        let (bar, template) = match total {
            Some(total) => (
                indicatif::ProgressBar::new(total),
                "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} users  {per_sec}  ETA {eta}  {msg}",
            ),
            None => (
                indicatif::ProgressBar::no_length(),
                "{spinner} {elapsed_precise} {human_pos} users  {per_sec}  {msg}",
            ),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_position(already_read);
        bar.reset_eta();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Self {
            view: View::Bar(bar),
            compares,
        }
    }

    fn update(&mut self, c: &Checkpoint) {
        let counts = &c.counts;
        let tally = || {
            if self.compares {
                format!(
                    "found: same {}  missing {}  differs {}  orphans {}; written {}  queued {}  failed {}",
                    counts.same,
                    counts.missing,
                    counts.differs,
                    counts.orphans,
                    counts.synced,
                    counts.queued,
                    counts.failed
                )
            } else {
                format!(
                    "synced {}  unchanged {}  queued {}  skipped {}  failed {}",
                    counts.synced, counts.unchanged, counts.queued, counts.skipped, counts.failed
                )
            }
        };
        match &mut self.view {
            View::Bar(bar) => {
                bar.set_position(counts.read);
                bar.set_message(tally());
            }
            View::Lines {
                total,
                started,
                from,
                last,
            } => {
                if last.elapsed().as_secs() < 5 {
                    return;
                }
                *last = Instant::now();
                let of = total.map_or(String::new(), |t| format!(" of {t}"));
                let rate =
                    (counts.read - *from) as f64 / started.elapsed().as_secs_f64().max(0.001);
                eprintln!("read {}{of}  {}  ({rate:.1} users/s)", counts.read, tally());
            }
        }
    }

    fn finish(&self) {
        if let View::Bar(bar) = &self.view {
            // The last state stays on screen, above the summary.
            bar.finish();
        }
    }
}

/// Why users were skipped or failed, and which attributes differed, grouped for the summary.
#[derive(Default)]
struct Reasons {
    skipped: std::collections::BTreeMap<String, u64>,
    failed: std::collections::BTreeMap<String, u64>,
    differs: std::collections::BTreeMap<String, u64>,
}

impl Reasons {
    fn add(&mut self, s: &backfill::Skipped) {
        // A failure's reason starts with its code (`attio_unavailable: …`): grouped by that.
        let (map, key) = if s.failed {
            let code = s.reason.split(':').next().unwrap_or(&s.reason);
            (&mut self.failed, code.to_owned())
        } else {
            (&mut self.skipped, s.reason.clone())
        };
        *map.entry(key).or_insert(0) += 1;
    }

    fn found(&mut self, found: &attio_user_sync::reconcile::Found) {
        for attribute in &found.attributes {
            *self.differs.entry(attribute.clone()).or_insert(0) += 1;
        }
    }

    fn print(&self) {
        if !self.differs.is_empty() {
            let by: Vec<String> = self
                .differs
                .iter()
                .map(|(a, n)| format!("{a} {n}"))
                .collect();
            println!("  differs by attribute: {}", by.join(", "));
        }
        for (title, map) in [("skipped", &self.skipped), ("failed", &self.failed)] {
            for (reason, n) in map {
                println!("  {title} {n}: {reason}");
            }
        }
    }
}
