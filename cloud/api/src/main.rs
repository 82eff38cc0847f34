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
use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};
use cloud_api::AppState;
use cloud_api::auth::password::check_new_password;
use cloud_api::auth::{AuthConfig, HashCost, PasswordHasher};
use cloud_api::error::chain;
use cloud_api::server::{connect_with_retry, load_tls, maintain_events, serve, serve_tls};
use cloud_store::{NewUser, Role, Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long startup keeps retrying an unreachable database.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// How often event maintenance (upcoming partitions, retention) runs.
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
    /// Create a user (by default the admin of a tenant, created when missing); the password is
    /// read from $VIGIL_USER_PASSWORD, never from a flag. Prints one line of JSON.
    CreateUser(CreateUserArgs),
}

#[derive(Debug, Args)]
struct CreateUserArgs {
    /// Tenant name; created when missing.
    #[arg(long)]
    tenant: String,
    /// Login email (unique across tenants).
    #[arg(long)]
    email: String,
    /// Username (unique within the tenant); defaults to the email's local part.
    #[arg(long)]
    username: Option<String>,
    /// Role: superuser, admin, security, user or viewer.
    #[arg(long, default_value = "admin")]
    role: String,
}

#[derive(Debug, Args)]
struct AuthArgs {
    /// Lifetime of access tokens (JWT), in seconds.
    #[arg(long, env = "VIGIL_ACCESS_TOKEN_TTL", default_value_t = 900)]
    access_token_ttl: u64,
    /// Lifetime of refresh tokens, in seconds (each refresh issues a fresh one).
    #[arg(long, env = "VIGIL_REFRESH_TOKEN_TTL", default_value_t = 7 * 24 * 3600)]
    refresh_token_ttl: u64,
    /// Requests per minute per client IP and account on the auth endpoints.
    #[arg(long, env = "VIGIL_AUTH_RATE_PER_MINUTE", default_value_t = 10)]
    auth_rate_per_minute: u32,
    /// Rate-limit by the last X-Forwarded-For address instead of the peer's (only behind a proxy
    /// that appends it).
    #[arg(long, env = "VIGIL_TRUST_X_FORWARDED_FOR")]
    trust_x_forwarded_for: bool,
}

impl AuthArgs {
    fn config(&self) -> Result<AuthConfig, ConfigError> {
        if self.access_token_ttl == 0 || self.refresh_token_ttl < self.access_token_ttl {
            return Err(ConfigError(
                "token lifetimes must be positive and the refresh one at least the access one".into(),
            ));
        }
        if self.auth_rate_per_minute == 0 {
            return Err(ConfigError("--auth-rate-per-minute must be at least 1".into()));
        }
        Ok(AuthConfig {
            access_ttl: Duration::from_secs(self.access_token_ttl),
            refresh_ttl: Duration::from_secs(self.refresh_token_ttl),
            auth_rate_per_minute: self.auth_rate_per_minute,
            trust_forwarded_for: self.trust_x_forwarded_for,
            ..AuthConfig::default()
        })
    }
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
    #[command(flatten)]
    auth: AuthArgs,
    /// Browser origins allowed by CORS, comma-separated (e.g. https://dashboard.example.com);
    /// none by default.
    #[arg(long, env = "VIGIL_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Days events are kept; older ones are dropped by whole UTC days (native partitions) or by a
    /// TimescaleDB retention policy. 0 keeps events forever.
    #[arg(long, env = "VIGIL_EVENTS_RETENTION_DAYS", default_value_t = cloud_store::DEFAULT_RETENTION_DAYS)]
    events_retention_days: u32,
    /// The cloud's public base URL as edges reach it (e.g. https://cloud.example.com), told to an
    /// edge when it enrols; without it, an edge keeps the address it enrolled with.
    #[arg(long, env = "VIGIL_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    media: MediaArgs,
}

/// Where clips and snapshots are stored: a local directory (default) or an S3 bucket. S3
/// credentials come from $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY only (never a flag, never logged).
#[derive(Debug, Args)]
struct MediaArgs {
    /// Directory for clips and snapshots when no S3 bucket is given.
    #[arg(long, env = "VIGIL_MEDIA_DIR", default_value = "media")]
    media_dir: PathBuf,
    /// Store clips and snapshots in this S3 bucket instead of --media-dir.
    #[arg(long, env = "VIGIL_MEDIA_S3_BUCKET")]
    media_s3_bucket: Option<String>,
    /// S3 endpoint of a self-hosted or other S3-protocol store (e.g. http://minio:9000); AWS when unset.
    #[arg(long, env = "VIGIL_MEDIA_S3_ENDPOINT", requires = "media_s3_bucket")]
    media_s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "VIGIL_MEDIA_S3_REGION", default_value = "us-east-1")]
    media_s3_region: String,
    /// Path-style requests (endpoint/bucket/key), as most self-hosted stores need.
    #[arg(long, env = "VIGIL_MEDIA_S3_PATH_STYLE")]
    media_s3_path_style: bool,
    /// Allow a plain-HTTP S3 endpoint (only inside a trusted network).
    #[arg(long, env = "VIGIL_MEDIA_S3_ALLOW_HTTP")]
    media_s3_allow_http: bool,
    /// Size of the parts edges upload (S3: at least 5 MiB).
    #[arg(long, env = "VIGIL_MEDIA_PART_SIZE", default_value_t = cloud_api::media::DEFAULT_PART_SIZE)]
    media_part_size: u64,
}

impl MediaArgs {
    fn store(&self) -> Result<cloud_api::media::MediaStore, ConfigError> {
        let store = match &self.media_s3_bucket {
            Some(bucket) => {
                let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                let settings = cloud_api::media::S3Settings {
                    bucket: bucket.clone(),
                    endpoint: self.media_s3_endpoint.clone(),
                    region: self.media_s3_region.clone(),
                    path_style: self.media_s3_path_style,
                    allow_http: self.media_s3_allow_http,
                    access_key_id: env("AWS_ACCESS_KEY_ID"),
                    secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
                };
                cloud_api::media::MediaStore::s3(&settings, self.media_part_size)
            }
            None => cloud_api::media::MediaStore::local(&self.media_dir, self.media_part_size),
        };
        store.map_err(|e| ConfigError(format!("{e:#}")))
    }
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
        Command::CreateUser(args) => run_create_user(&url, args).await,
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
    let auth = args.auth.config()?;
    let cors_origins = cors_origins(&args.cors_origins)?;
    if let Some(url) = &args.public_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(ConfigError("--public-url must start with https:// or http://".into()).into());
    }
    let media = args.media.store()?;
    let store = connect_and_migrate(url).await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("cannot read the listening address")?;

    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(maintain_events(store.clone(), PARTITION_INTERVAL, args.events_retention_days, cancel.child_token()));
    tracing::info!(retention_days = args.events_retention_days, "Event retention configured (0 keeps events forever).");
    tasks.spawn(cancel_on_signal(cancel.clone()));

    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "listening on {addr}");
    let state = AppState::build(store.clone(), auth)
        .await
        .context("cannot prepare authentication")?
        .with_cors_origins(cors_origins)
        .with_public_url(args.public_url.clone())
        .with_media(media);
    tracing::info!(store = state.media.as_ref().map(|m| m.describe()), "Media storage configured.");
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

/// Checks CORS origins: `http(s)://host[:port]`, no path, no wildcard.
fn cors_origins(origins: &[String]) -> Result<Vec<HeaderValue>, ConfigError> {
    origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '*', ' ']) => {
                    HeaderValue::from_str(origin).map_err(|_| ConfigError(format!("invalid CORS origin {origin:?}")))
                }
                _ => Err(ConfigError(format!("invalid CORS origin {origin:?}: expected http(s)://host[:port]"))),
            }
        })
        .collect()
}

async fn run_create_user(url: &str, args: CreateUserArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).ok_or_else(|| ConfigError(format!("unknown role {:?}", args.role)))?;
    let password = std::env::var("VIGIL_USER_PASSWORD")
        .map_err(|_| ConfigError("$VIGIL_USER_PASSWORD must hold the new user's password".into()))?;
    check_new_password(&password, &args.email).map_err(|m| ConfigError(format!("password {m}")))?;
    let username = args.username.clone().unwrap_or_else(|| args.email.split('@').next().unwrap_or_default().to_owned());
    let store = connect_and_migrate(url).await?;
    let hasher = PasswordHasher::new(HashCost::OWASP)?;
    let hash = hasher.hash(password).await?;
    let new = NewUser {
        email: &args.email,
        username: &username,
        password_hash: &hash,
        full_name: None,
        role,
        site_ids: None,
    };
    let user = store.create_user_in_tenant_named(&args.tenant, &new).await.context("cannot create the user")?;
    println!(
        "{}",
        serde_json::json!({ "tenant_id": user.tenant_id.as_uuid(), "user_id": user.id, "role": role.as_str() })
    );
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
                Some(StoreError::InvalidUrl { .. } | StoreError::Invalid { .. } | StoreError::Conflict { .. })
            )
    });
    ExitCode::from(if config { EXIT_CONFIG } else { 1 })
}
