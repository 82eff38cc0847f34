//! `vigil-cloud`: the cloud service binary. Parses flags, installs logging, calls the library.
//!
//! Exit codes: 0 success; 1 runtime failure (e.g. database unreachable after retrying); 2 bad
//! command line (clap); 78 (EX_CONFIG) configuration error (missing or malformed database URL,
//! invalid provisioning input).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use cloud_api::AppState;
use cloud_api::error::chain;
use cloud_api::server::{connect_with_retry, load_tls, maintain_partitions, serve, serve_tls};
use cloud_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long startup keeps retrying an unreachable database.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// How often upcoming event partitions are created.
const PARTITION_INTERVAL: Duration = Duration::from_secs(3600);
/// How long shutdown waits for in-flight requests once the listener has closed.
const DRAIN_DEADLINE: Duration = Duration::from_secs(35);
/// Log filter when `RUST_LOG` is unset: INFO, minus PostgreSQL's routine notices.
const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";
/// EX_CONFIG from sysexits.h.
const EXIT_CONFIG: u8 = 78;

/// The Vigil cloud service: event ingest from edges and the tenant API.
#[derive(Debug, Parser)]
#[command(name = "vigil-cloud", version)]
struct Cli {
    /// PostgreSQL URL, e.g. postgres://vigil:secret@db:5432/vigil (required by every command).
    #[arg(long, env = "VIGIL_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, then serve the HTTP API until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Create (or reuse) a tenant and site, create an edge (or rotate its token) and issue an API
    /// key; print them as one line of JSON on stdout.
    Provision(ProvisionArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PEM certificate chain for serving HTTPS directly (with --tls-key); without both, plain HTTP
    /// for use behind a TLS-terminating proxy or ingress.
    #[arg(long, env = "VIGIL_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key matching --tls-cert.
    #[arg(long, env = "VIGIL_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProvisionArgs {
    /// Tenant name; created when missing.
    #[arg(long)]
    tenant: String,
    /// Site name within the tenant; created when missing.
    #[arg(long)]
    site: String,
    /// Edge name within the site; an existing edge gets a new token.
    #[arg(long)]
    edge: String,
    /// IANA time zone of the site (e.g. Europe/Paris); a new site defaults to UTC.
    #[arg(long)]
    timezone: Option<String>,
}

/// A problem with the configuration rather than the environment (exit 78).
#[derive(Debug)]
struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Like `{error:#}`, without the repeats some driver errors produce.
            eprintln!("error: {}", chain(&*error));
            exit_code(&error)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database_url.ok_or_else(|| ConfigError("--database-url or VIGIL_DATABASE_URL is required".into()))?;
    match cli.command {
        Command::Serve(args) => run_serve(&url, args).await,
        Command::Migrate => {
            connect_and_migrate(&url).await?;
            tracing::info!("Migrations applied.");
            Ok(())
        }
        Command::Provision(args) => run_provision(&url, args).await,
    }
}

async fn connect_and_migrate(url: &str) -> anyhow::Result<Store> {
    let store = connect_with_retry(url, CONNECT_DEADLINE).await.context("cannot connect to the database")?;
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store)
}

async fn run_serve(url: &str, args: ServeArgs) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key).map_err(|e| ConfigError(e.to_string()))?),
        _ => None,
    };
    let store = connect_and_migrate(url).await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("cannot read the listening address")?;

    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(maintain_partitions(store.clone(), PARTITION_INTERVAL, cancel.child_token()));
    tasks.spawn(cancel_on_signal(cancel.clone()));

    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "listening on {addr}");
    let state = AppState::new(store.clone());
    let server = async {
        match tls {
            Some(tls) => serve_tls(listener, tls, state, cancel.clone()).await,
            None => serve(listener, state, cancel.clone()).await,
        }
    };
    let drain_deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    tokio::select! {
        result = server => result.context("the HTTP server failed")?,
        () = drain_deadline => tracing::warn!(deadline = ?DRAIN_DEADLINE, "Drain deadline passed; dropping open connections."),
    }
    cancel.cancel();
    tasks.close();
    tasks.wait().await;
    store.close().await;
    tracing::info!("Stopped.");
    Ok(())
}

async fn run_provision(url: &str, args: ProvisionArgs) -> anyhow::Result<()> {
    let store = connect_and_migrate(url).await?;
    let p = store
        .provision_edge(&args.tenant, &args.site, &args.edge, args.timezone.as_deref())
        .await
        .context("cannot provision the edge")?;
    let line = serde_json::json!({
        "tenant_id": p.tenant_id.as_uuid(),
        "site_id": p.site_id,
        "edge_id": p.edge_id,
        "edge_token": p.edge_token,
        "api_key": p.api_key,
    });
    println!("{line}");
    store.close().await;
    Ok(())
}

/// Cancels `cancel` on SIGTERM or Ctrl-C; returns early if it is cancelled otherwise.
async fn cancel_on_signal(cancel: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM; only Ctrl-C stops the server.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => return,
        () = terminate => tracing::info!("SIGTERM received; shutting down."),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received; shutting down."),
    }
    cancel.cancel();
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// 78 for configuration errors anywhere in the chain, 1 otherwise.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let config = error.chain().any(|cause| {
        cause.is::<ConfigError>()
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(StoreError::InvalidUrl { .. } | StoreError::Invalid { .. })
            )
    });
    ExitCode::from(if config { EXIT_CONFIG } else { 1 })
}
