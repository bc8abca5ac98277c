//! `aoai-ledger`: ingest APIM → Event Hubs events into the lake; run named
//! reports, SQL and exports over it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use aoai_ledger::ingest::ingest_files;
use aoai_ledger::output::{self, Format};
use aoai_ledger::progress::{Bar, RowsBar};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use ledger_core::filter::CallFilter;
use ledger_lake::{Lake, Table};
use ledger_pipeline::{CommitPolicy, LedgerSettings, Secrets, Sink};
use ledger_query::reports::DefaultRange;
use ledger_query::{LedgerQuery, QueryOptions, REPORTS, TimeRange};
use std::io::IsTerminal;

/// mimalloc: the ingest allocates many small, short-lived strings and maps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "aoai-ledger",
    version,
    about = "Audit and usage ledger for Azure OpenAI traffic behind API Management"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "AOAI_LEDGER_LOG_FORMAT")]
    log_format: LogFormat,
    /// Pin "now" (RFC 3339) for reports that default to this month; also
    /// AOAI_LEDGER_NOW. For reproducible output and tests.
    #[arg(long, global = true)]
    now: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
struct LakeArg {
    /// The lake: a directory, or az://container/prefix for Blob Storage.
    #[arg(long, env = "AOAI_LEDGER_LAKE", default_value = "./ledger-lake")]
    lake: String,
}

#[derive(clap::Args, Clone)]
struct RangeArgs {
    /// Only calls at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Only calls before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
}

#[derive(clap::Args, Clone)]
struct OutArgs {
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Compliance search filters of `export calls`; a call must match all.
#[derive(clap::Args, Clone)]
struct FilterArgs {
    #[arg(long)]
    caller_ip: Option<String>,
    /// Subscription id or name.
    #[arg(long)]
    subscription: Option<String>,
    /// APIM user id, or the request's `user` field.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    app_id: Option<String>,
    /// Model as reported (gpt-4o-2024-08-06) or its family (gpt-4o).
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    deployment: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    /// Case-insensitive substring of the prompt or the response.
    #[arg(long)]
    text: Option<String>,
}

impl From<FilterArgs> for CallFilter {
    fn from(a: FilterArgs) -> CallFilter {
        CallFilter {
            caller_ip: a.caller_ip,
            subscription: a.subscription,
            user: a.user,
            app_id: a.app_id,
            model: a.model,
            deployment: a.deployment,
            request_id: a.request_id,
            text: a.text,
        }
    }
}

/// What a query reads and where its output goes.
#[derive(clap::Args, Clone)]
struct Target {
    #[command(flatten)]
    lake: LakeArg,
    /// Read the lake as it was: a version of the calls table (see
    /// `history`), or a time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    as_of: Option<String>,
    #[command(flatten)]
    range: RangeArgs,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(clap::Args, Clone)]
struct DbArg {
    /// postgres://user@host/db or sqlserver://user@host/db, no password
    /// (AOAI_LEDGER_DB_PASSWORD, or PGPASSWORD / SQLCMDPASSWORD).
    #[arg(long, env = "AOAI_LEDGER_DB")]
    db: String,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply the migrations the database lacks (schemas/sql/<engine>/).
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Replace the cost quotas (R5) with a CSV `subscription_id,cost_quota`.
    LoadQuota {
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
}

/// Opens the database sink; migrations applied when `migrate`.
async fn open_db(url: &str, migrate: bool) -> Result<ledger_sql::SqlSink> {
    let settings = ledger_sql::DbSettings {
        url: url.to_string(),
        migrate,
        ..Default::default()
    };
    Ok(ledger_sql::SqlSink::open(&settings, &ledger_sql::DbSecrets::from_env()).await?)
}

#[derive(Subcommand)]
enum Command {
    /// Ingest JSON Lines (one Event Hubs event body per line) into the lake.
    Ingest {
        /// Files to read; `-` or nothing reads stdin.
        files: Vec<String>,
        #[command(flatten)]
        lake: LakeArg,
        /// Seconds a call waits for its missing half before it is written as
        /// partial (default: LedgerSettings' timeout_secs, 600).
        #[arg(long)]
        timeout: Option<u64>,
        /// Price table replacing the built-in one (format of schemas/prices.json).
        #[arg(long, env = "AOAI_LEDGER_PRICES")]
        prices: Option<PathBuf>,
        /// Mask e-mail addresses, phone and card numbers in prompts and responses.
        #[arg(long)]
        mask_pii: bool,
        /// After ingesting, print this named report over the whole lake.
        #[arg(long)]
        report: Option<String>,
        /// Also write to this database (postgres://user@host/db or
        /// sqlserver://user@host/db, no password: AOAI_LEDGER_DB_PASSWORD or
        /// PGPASSWORD / SQLCMDPASSWORD). Its migrations are applied first.
        #[arg(long, env = "AOAI_LEDGER_DB")]
        db: Option<String>,
        /// No progress bar (it is shown only when stderr is a terminal).
        #[arg(long, short)]
        quiet: bool,
    },
    /// The relational database: migrations and quotas.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// List the named reports.
    Reports,
    /// Run a local Event Hubs test broker that the official SDKs talk to as
    /// to the service; prints the connection string to use.
    Broker(BrokerArgs),
    /// Replay JSON Lines captures into an Event Hubs (the broker, the
    /// emulator or a namespace) with the official SDK, batched. The
    /// connection string comes from AOAI_LEDGER_EVENTHUB_CONNECTION_STRING.
    Send {
        /// Files to send, one event per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Send everything to this partition.
        #[arg(long, conflicts_with = "by_key")]
        partition: Option<u32>,
        /// Use this top-level JSON field's value as the partition key.
        /// Default: each dialect's policy routing (ledger/v1 by request id,
        /// enterprise-logging to 0, enterprise-logging-tf requests to 0 and
        /// responses to 1, the others by their id).
        #[arg(long)]
        by_key: Option<String>,
        /// Events per second, at most.
        #[arg(long)]
        rate: Option<f64>,
        /// Event hub, when the connection string has no EntityPath.
        #[arg(long)]
        hub: Option<String>,
        /// Plain-AMQP endpoint to connect to (amqp://host:port); derived
        /// from emulator connection strings (UseDevelopmentEmulator=true).
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a named report.
    Report {
        name: String,
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Cost quotas for cost-by-subscription: CSV `subscription_id,cost_quota`.
        #[arg(long)]
        quota: Option<PathBuf>,
    },
    /// Run SQL over the lake (tables `calls`, `dead_letters`; views
    /// `"ApiManagementGatewayLogs"`, `"ApiManagementGatewayLlmLog"`).
    Sql {
        query: String,
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run KQL over the lake's Log Analytics compatibility tables
    /// (ApiManagementGatewayLogs, ApiManagementGatewayLlmLog, PRICING_CL,
    /// SUBSCRIPTION_QUOTA_CL); a query naming no table (print, datatable,
    /// range) runs without a lake.
    Kql {
        /// The query text (or --file, or --report).
        #[arg(required_unless_present_any = ["file", "report"])]
        query: Option<String>,
        /// Read the query from this file.
        #[arg(long, conflicts_with = "query")]
        file: Option<PathBuf>,
        /// A named KQL report (queries/NAME.kql).
        #[arg(long, conflicts_with_all = ["query", "file"])]
        report: Option<String>,
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Cost quotas for SUBSCRIPTION_QUOTA_CL: CSV `subscription_id,cost_quota`.
        #[arg(long)]
        quota: Option<PathBuf>,
        /// Draw the query's `render` as an SVG chart into this file.
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// List the commits of the lake's tables: version, time, operation,
    /// source partition and range, rows and files added and removed.
    History {
        #[command(flatten)]
        lake: LakeArg,
        /// One table only.
        #[arg(long, value_enum)]
        table: Option<ExportTable>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Prove that nothing was lost: per source partition, the range
    /// covered, gaps (expired ranges marked lost before ingestion), how
    /// every event was accounted for, totals; and whether the tables hold
    /// the rows their commits wrote. Exits non-zero on a gap or mismatch.
    Audit {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        partition: Option<String>,
        /// Commits made at or after this time.
        #[arg(long)]
        since: Option<String>,
        /// Commits made before this time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Rewrite small data files into files of about --target-mb per date
    /// (Delta OPTIMIZE); leftover copies of one call are folded into one
    /// row. Safe while a worker writes.
    Compact {
        #[command(flatten)]
        lake: LakeArg,
        /// One table only.
        #[arg(long, value_enum)]
        table: Option<ExportTable>,
        /// Only dates from this day on (YYYY-MM-DD).
        #[arg(long)]
        since: Option<NaiveDate>,
        /// Size of the files to write, in MB.
        #[arg(long, default_value_t = 256)]
        target_mb: u64,
    },
    /// Delete data files no longer in the tables and older than --retain
    /// (replaced by merges, compaction or erasure; or left by a writer
    /// that died before committing). Versions older than the retention
    /// can no longer be read with --as-of afterwards.
    Vacuum {
        #[command(flatten)]
        lake: LakeArg,
        /// How long replaced files are kept: 7d, 12h, 30m, 0s.
        #[arg(long, default_value = "7d")]
        retain: String,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Erase the prompt and response content of a data subject's calls
    /// (usage, cost, caller and timing stay), recorded in `history`. The
    /// old files go with the next `vacuum` past the retention.
    Erase {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long)]
        subscription: Option<String>,
        /// APIM user id, or the request's `user` field.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        caller_ip: Option<String>,
        #[arg(long)]
        request_id: Option<String>,
        /// Only calls requested before this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        before: Option<String>,
        /// Who asks for the erasure, for the history (default: $USER).
        #[arg(long, env = "USER", default_value = "unknown")]
        by: String,
        /// Count what would be erased, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export a table of the lake.
    Export {
        #[arg(value_enum)]
        table: ExportTable,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportTable {
    Calls,
    DeadLetters,
}

/// The tables a command names, or both.
fn tables(table: Option<ExportTable>) -> Vec<Table> {
    match table {
        Some(ExportTable::Calls) => vec![Table::Calls],
        Some(ExportTable::DeadLetters) => vec![Table::DeadLetters],
        None => Table::ALL.to_vec(),
    }
}

#[derive(clap::Args, Debug)]
struct BrokerArgs {
    /// Port to listen on (5672 is the emulator's; 0 picks a free one).
    #[arg(long, default_value_t = 5672)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Event hub name (repeat for several).
    #[arg(long = "hub", default_value = "eh1")]
    hubs: Vec<String>,
    /// Partitions per hub, 1 to 32.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Consumer groups besides $Default (repeat for several).
    #[arg(long = "consumer-group", default_value = "cg1")]
    consumer_groups: Vec<String>,
    /// Keep events in this directory, so that a restart keeps them.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The shared access key SAS tokens must be signed with (rule
    /// RootManageSharedAccessKey). Default: the emulator's SAS_KEY_VALUE.
    #[arg(long, env = "AOAI_LEDGER_BROKER_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Accept `jwt` tokens from this test issuer, signed (HS256) with
    /// AOAI_LEDGER_BROKER_JWT_KEY.
    #[arg(long)]
    jwt_issuer: Option<String>,
    /// Keep at most this many events per partition.
    #[arg(long)]
    retention_events: Option<usize>,
    /// Keep events at most this long (`90s`, `30m`, `24h`, `7d`).
    #[arg(long)]
    retention_age: Option<String>,
    /// Serve the fault-injection HTTP endpoint on this port.
    #[arg(long)]
    control_port: Option<u16>,
    /// The message size limit announced on attach, in bytes.
    #[arg(long, default_value_t = ledger_eh_broker::DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: u64,
}

fn parse_age(text: &str) -> Result<std::time::Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("cannot read `{text}` as an age (e.g. 24h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("unknown unit in `{text}`: use s, m, h or d"),
    };
    Ok(std::time::Duration::from_secs(secs))
}

async fn run_broker(args: BrokerArgs) -> Result<()> {
    use ledger_eh_broker::{Broker, BrokerConfig, JwtIssuer, Retention, SasKey};
    let jwt = match args.jwt_issuer {
        Some(issuer) => Some(JwtIssuer {
            issuer,
            signing_key: std::env::var("AOAI_LEDGER_BROKER_JWT_KEY")
                .context("--jwt-issuer needs AOAI_LEDGER_BROKER_JWT_KEY, the HS256 signing key")?,
        }),
        None => None,
    };
    let config = BrokerConfig {
        listen: std::net::SocketAddr::new(args.bind, args.port),
        hubs: args.hubs,
        partitions: args.partitions,
        consumer_groups: args.consumer_groups,
        data_dir: args.data,
        retention: Retention {
            max_events: args.retention_events,
            max_age: args.retention_age.as_deref().map(parse_age).transpose()?,
        },
        keys: vec![SasKey {
            name: ledger_eh_broker::DEFAULT_KEY_NAME.into(),
            key: args
                .key
                .unwrap_or_else(|| ledger_eh_broker::DEFAULT_KEY.into()),
        }],
        jwt,
        max_message_size: args.max_message_size,
        ..BrokerConfig::default()
    };
    let broker = std::sync::Arc::new(
        Broker::start(config)
            .await
            .context("cannot start the broker (is the port taken? try --port 0)")?,
    );
    println!("{}", broker.connection_string());
    eprintln!(
        "event hubs test broker on {} (Rust SDK: with_custom_endpoint(\"{}\")); Ctrl-C stops it",
        broker.local_addr(),
        broker.endpoint()
    );
    if let Some(port) = args.control_port {
        let addr = broker
            .serve_control(std::net::SocketAddr::new(args.bind, port))
            .await?;
        eprintln!("fault injection: http://{addr}/faults/…");
    }
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    broker.stop();
    Ok(())
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AOAI_LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    ledger_core::time::parse_day_or_time(s)
        .with_context(|| format!("cannot read time `{s}` (use RFC 3339 or YYYY-MM-DD)"))
}

fn range(args: &RangeArgs, default: DefaultRange, now: Option<&str>) -> Result<TimeRange> {
    let mut r = TimeRange {
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
    };
    if r.since.is_none() && r.until.is_none() && default == DefaultRange::ThisMonth {
        let now = ledger_query::clock::now(now)?;
        let start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single();
        let (y, m) = if now.month() == 12 {
            (now.year() + 1, 1)
        } else {
            (now.year(), now.month() + 1)
        };
        r = TimeRange {
            since: start,
            until: Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single(),
        };
    }
    Ok(r)
}

fn sink(out: &OutArgs) -> Result<Box<dyn Write + Send>> {
    Ok(match &out.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

async fn run_query(
    lake: &mut Lake,
    opts: QueryOptions,
    what: Query<'_>,
    format: Format,
    out: &OutArgs,
) -> Result<()> {
    let q = LedgerQuery::open(lake, &opts).await?;
    let df = match what {
        Query::Sql(s) => q.sql(s).await?,
        Query::Report(name) => q.report(name).await?,
        Query::Calls(filter) => q.export_calls(filter).await?,
        Query::Kql(text, now, chart) => kql_frame(q.context(), text, now, chart).await?,
    };
    write_frame(df, format, out).await
}

/// Plans a KQL query; its `render` is drawn into `chart` (SVG) when given,
/// otherwise ignored with a note.
async fn kql_frame(
    ctx: &datafusion::prelude::SessionContext,
    text: &str,
    now: DateTime<Utc>,
    chart: Option<&Path>,
) -> Result<datafusion::prelude::DataFrame> {
    let planned = ledger_kql::plan(ctx, text, now).await?;
    match (&planned.render, chart) {
        (Some(r), Some(path)) => {
            let batches = planned.frame.clone().collect().await?;
            let svg = ledger_kql::chart::svg(&r.kind, &batches)?;
            std::fs::write(path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        (Some(r), None) => {
            eprintln!(
                "note: `render {}` at {} ignored (give --chart FILE.svg to draw it)",
                r.kind, r.pos
            );
        }
        (None, Some(_)) => bail!("--chart needs a `render` operator in the query"),
        (None, None) => {}
    }
    Ok(ledger_kql::for_display(planned.frame)?)
}

async fn write_frame(
    df: datafusion::prelude::DataFrame,
    format: Format,
    out: &OutArgs,
) -> Result<()> {
    // Batch by batch: an export of any size holds one batch at a time.
    let schema = df.schema().inner().clone();
    let mut stream = df.execute_stream().await?;
    let to_terminal = out.out.is_none() && std::io::stdout().is_terminal();
    let bar = RowsBar::new(to_terminal);
    let mut writer = output::BatchWriter::new(format, sink(out)?, schema)?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        bar.add(batch.num_rows());
        writer.write(&batch)?;
    }
    writer.finish()?;
    bar.finish();
    Ok(())
}

/// Opens the target's lake and runs one query over the target's range.
async fn query(
    target: &Target,
    default: DefaultRange,
    quotas: Option<PathBuf>,
    what: Query<'_>,
    format: Format,
    now: Option<&str>,
) -> Result<()> {
    let mut lake = Lake::open_existing(&target.lake.lake)?;
    let as_of = target
        .as_of
        .as_deref()
        .map(str::parse::<ledger_lake::AsOf>)
        .transpose()?;
    let opts = QueryOptions {
        range: range(&target.range, default, now)?,
        quotas,
        as_of,
    };
    run_query(&mut lake, opts, what, format, &target.out).await
}

/// The bytes of all files, when every one is a regular file.
fn total_size(files: &[String]) -> Option<u64> {
    files
        .iter()
        .map(|f| {
            (f != "-")
                .then(|| std::fs::metadata(f).ok().map(|m| m.len()))
                .flatten()
        })
        .sum()
}

enum Query<'a> {
    Sql(&'a str),
    Report(&'a str),
    Calls(&'a CallFilter),
    Kql(&'a str, DateTime<Utc>, Option<&'a Path>),
}

#[tokio::main]
async fn main() -> Result<()> {
    match run().await {
        // The reader went away (`export | head`): not a failure.
        Err(e) if broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    use datafusion::arrow::error::ArrowError;
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::BrokenPipe;
        }
        match c.downcast_ref::<ArrowError>() {
            Some(ArrowError::IoError(_, io)) => io.kind() == std::io::ErrorKind::BrokenPipe,
            // The CSV writer keeps only the I/O error's text.
            Some(ArrowError::CsvError(text)) => text.contains("Broken pipe"),
            _ => false,
        }
    })
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let now = cli.now.as_deref();
    match cli.command {
        Command::Ingest {
            files,
            lake,
            timeout,
            prices,
            mask_pii,
            report,
            db,
            quiet,
        } => {
            if let Some(name) = &report
                && ledger_query::reports::find(name).is_none()
            {
                bail!("unknown report `{name}` (run `aoai-ledger reports` for the list)");
            }
            let defaults = LedgerSettings::default();
            let settings = LedgerSettings {
                timeout_secs: timeout.unwrap_or(defaults.timeout_secs),
                mask_pii,
                prices,
                ..defaults
            };
            let config = settings.build(&Secrets::from_env())?;
            let files = if files.is_empty() {
                vec!["-".to_string()]
            } else {
                files
            };
            let mut lake = Lake::open(&lake.lake)?;
            let mut database = match &db {
                Some(url) => Some(open_db(url, true).await?),
                None => None,
            };
            let mut bar = Bar::new(quiet, total_size(&files));
            let mut sinks: Vec<&mut dyn Sink> = vec![&mut lake];
            if let Some(d) = database.as_mut() {
                sinks.push(d);
            }
            let total = ingest_files(
                &files,
                &mut sinks,
                config,
                CommitPolicy::default(),
                &mut bar,
            )
            .await;
            bar.finish();
            let db_name = database
                .as_ref()
                .map(|d| format!("  database: {}", d.name()))
                .unwrap_or_default();
            println!("{}  lake: {}{db_name}", total?, lake.location().display);
            if let Some(name) = report {
                println!();
                run_query(
                    &mut lake,
                    QueryOptions::default(),
                    Query::Report(&name),
                    Format::Table,
                    &OutArgs { out: None },
                )
                .await?;
            }
        }
        Command::Db { command } => match command {
            DbCommand::Migrate { db } => {
                let mut sink = open_db(&db.db, false).await?;
                let summary = sink.migrate().await?;
                println!(
                    "{}: applied {} migration(s) {:?}, {} already applied",
                    sink.name(),
                    summary.applied.len(),
                    summary.applied,
                    summary.already
                );
            }
            DbCommand::LoadQuota { file, db } => {
                let csv = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let mut sink = open_db(&db.db, true).await?;
                let n = sink.load_quotas(&file.display().to_string(), &csv).await?;
                println!("{}: {n} quota(s) loaded", sink.name());
            }
        },
        Command::Broker(args) => run_broker(args).await?,
        Command::Send {
            files,
            partition,
            by_key,
            rate,
            hub,
            endpoint,
            quiet,
        } => {
            use aoai_ledger::send::{self, Routing, SendOptions};
            let connection_string = std::env::var(send::CONNECTION_STRING_ENV)
                .map_err(|_| send::SendError::NoConnectionString)?;
            let routing = match (partition, by_key) {
                (Some(p), _) => Routing::Partition(p),
                (None, Some(field)) => Routing::ByKey(field),
                (None, None) => Routing::Policy,
            };
            let options = SendOptions {
                files,
                routing,
                rate,
                quiet,
            };
            let started = std::time::Instant::now();
            let producer = send::open_producer(&connection_string, endpoint, hub).await?;
            let summary = send::send(&producer, &options).await?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            let routes: Vec<String> = summary
                .routes
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            println!(
                "sent {} events ({:.1} MiB) in {} batches, {:.0} events/s; {}{}",
                summary.events,
                summary.bytes as f64 / 1048576.0,
                summary.batches,
                summary.events as f64 / secs,
                routes.join(", "),
                if summary.too_large > 0 {
                    format!("; {} too large, not sent", summary.too_large)
                } else {
                    String::new()
                }
            );
            let _ = producer.close().await;
            if summary.too_large > 0 {
                bail!(
                    "{} events were larger than the hub's message size limit",
                    summary.too_large
                );
            }
        }
        Command::Reports => {
            for r in REPORTS {
                println!("{:<26} {}", r.name, r.title);
            }
            println!();
            println!("KQL reports (aoai-ledger kql --report NAME):");
            for r in ledger_kql::reports::KQL_REPORTS {
                println!("  {:<34} {}", r.name, r.title);
            }
        }
        Command::Report {
            name,
            target,
            format,
            quota,
        } => {
            let report = ledger_query::reports::find(&name).with_context(|| {
                format!("unknown report `{name}` (run `aoai-ledger reports` for the list)")
            })?;
            let what = Query::Report(&name);
            query(&target, report.default_range, quota, what, format, now).await?;
        }
        Command::Kql {
            query: text,
            file,
            report,
            target,
            format,
            quota,
            chart,
        } => {
            let text = match (text, file, report) {
                (Some(t), _, _) => t,
                (None, Some(f), _) => std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                (None, None, Some(name)) => ledger_kql::reports::find(&name)
                    .with_context(|| format!("unknown KQL report `{name}`"))?
                    .kql
                    .to_string(),
                (None, None, None) => bail!("give a query, --file or --report"),
            };
            let pinned = ledger_query::clock::now(now)?;
            if ledger_kql::tables(&text)?.is_empty() {
                // print / datatable / range: no lake to open.
                let ctx = datafusion::prelude::SessionContext::new();
                let df = kql_frame(&ctx, &text, pinned, chart.as_deref()).await?;
                write_frame(df, format, &target.out).await?;
            } else {
                let what = Query::Kql(&text, pinned, chart.as_deref());
                query(&target, DefaultRange::All, quota, what, format, now).await?;
            }
        }
        Command::Sql {
            query: sql,
            target,
            format,
        } => {
            query(
                &target,
                DefaultRange::All,
                None,
                Query::Sql(&sql),
                format,
                now,
            )
            .await?;
        }
        Command::History {
            lake,
            table,
            format,
            out,
        } => {
            let mut lake = Lake::open_existing(&lake.lake)?;
            let mut batches = Vec::new();
            for t in tables(table) {
                let entries = lake.history(t).await?;
                batches.push(ledger_query::history::history_batch(t, &entries)?);
            }
            output::write(&batches, format, sink(&out)?)?;
        }
        Command::Audit {
            lake,
            source,
            partition,
            since,
            until,
            format,
        } => {
            let scope = ledger_lake::audit::AuditScope {
                source,
                partition,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
            };
            let mut lake = Lake::open_existing(&lake.lake)?;
            let report = lake.audit(&scope).await?;
            let problems = report.problems();
            if format == Format::Json {
                let json = serde_json::json!({
                    "passed": report.passed(),
                    "problems": problems,
                    "partitions": report.partitions,
                    "rows": report.rows,
                });
                println!("{json:#}");
            } else {
                let batch = ledger_query::history::audit_batch(&report)?;
                output::write(&[batch], format, sink(&OutArgs { out: None })?)?;
                for r in &report.rows {
                    println!(
                        "{}: {} rows held, {} written by its commits",
                        r.table, r.found, r.expected
                    );
                }
                for p in &problems {
                    println!("PROBLEM {p}");
                }
            }
            if !report.passed() {
                bail!("audit failed: {} problems", problems.len());
            }
        }
        Command::Compact {
            lake,
            table,
            since,
            target_mb,
        } => {
            let mut lake = Lake::open_existing(&lake.lake)?;
            for t in tables(table) {
                let s = lake
                    .compact(t, since, target_mb.saturating_mul(1 << 20))
                    .await?;
                println!(
                    "{}: files {} -> {}  rows rewritten: {}  copies folded: {}{}",
                    t.dir(),
                    s.files_before,
                    s.files_after,
                    s.rows,
                    s.folded,
                    if s.skipped_dates.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "  left for the next run (changed meanwhile): {}",
                            s.skipped_dates.join(", ")
                        )
                    }
                );
            }
        }
        Command::Vacuum {
            lake,
            retain,
            dry_run,
        } => {
            let retention = ledger_lake::parse_retention(&retain).with_context(|| {
                format!("cannot read --retain `{retain}` (use 7d, 12h, 30m, 0s)")
            })?;
            let mut lake = Lake::open_existing(&lake.lake)?;
            let s = lake.vacuum(retention, dry_run).await?;
            for f in &s.deleted {
                println!("{} {f}", if dry_run { "would delete" } else { "deleted" });
            }
            println!(
                "{} {} files ({} bytes); {} unreferenced files younger than {retain} kept",
                if dry_run { "would delete" } else { "deleted" },
                s.deleted.len(),
                s.bytes,
                s.kept_young
            );
        }
        Command::Erase {
            lake,
            subscription,
            user,
            caller_ip,
            request_id,
            before,
            by,
            dry_run,
        } => {
            let filter = CallFilter {
                subscription,
                user,
                caller_ip,
                request_id,
                ..Default::default()
            };
            if filter.is_empty() {
                bail!("erase needs --subscription, --user, --caller-ip or --request-id");
            }
            let before = before.as_deref().map(parse_time).transpose()?;
            let mut lake = Lake::open_existing(&lake.lake)?;
            let s = lake.erase(&filter, before, &by, dry_run).await?;
            println!(
                "{} the content of {} calls in {} files{}",
                if dry_run { "would erase" } else { "erased" },
                s.calls,
                s.files,
                if dry_run {
                    ""
                } else {
                    " (run vacuum to delete the old files)"
                }
            );
        }
        Command::Export {
            table,
            target,
            filter,
            format,
        } => {
            let filter = CallFilter::from(filter);
            let what = match table {
                ExportTable::Calls => Query::Calls(&filter),
                ExportTable::DeadLetters if filter != CallFilter::default() => {
                    bail!("the call filters apply to `export calls` only")
                }
                ExportTable::DeadLetters => {
                    Query::Sql("SELECT * FROM dead_letters ORDER BY eh_partition, eh_sequence")
                }
            };
            query(&target, DefaultRange::All, None, what, format, now).await?;
        }
    }
    Ok(())
}
