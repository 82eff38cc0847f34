//! `vigil-edge`: the per-site edge daemon. Thin: flags, config, tracing, then [`edged::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edged::{Config, DEFAULT_CONFIG};
use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors (EX_CONFIG): systemd's RestartPreventExitStatus stops a loop.
const EX_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(name = "vigil-edge", version, about = "Vigil edge daemon")]
struct Args {
    /// Configuration file.
    #[arg(long, short, env = "VIGIL_EDGE_CONFIG", default_value = "/etc/vigil/edged.toml", global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate a configuration file (syntax, values, referenced files, token) and exit.
    CheckConfig {
        /// File to check (defaults to --config).
        path: Option<PathBuf>,
    },
    /// Print the default configuration.
    PrintDefaultConfig,
    /// Enrol this edge with a one-time claim code from the cloud: writes the token to
    /// `cloud.token_file` and the cloud URL, tenant and site to `cloud.enrolment`. A running
    /// daemon picks the enrolment up within seconds.
    Enrol {
        /// Base URL of the cloud, e.g. https://cloud.example.com.
        #[arg(long)]
        cloud: String,
        /// The claim code an admin created for the site (e.g. ABCD-EFGH-JKMN).
        #[arg(long, env = "VIGIL_CLAIM_CODE", hide_env_values = true)]
        code: String,
        /// The edge's name at the site (default: chosen by the cloud).
        #[arg(long)]
        name: Option<String>,
        /// CA certificate (PEM) to trust for a cloud with a private CA (kept for later requests).
        #[arg(long)]
        ca_cert: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,ort=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match args.command.unwrap_or(Command::Run) {
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Command::CheckConfig { path } => {
            let path = path.unwrap_or(args.config);
            match load(&path) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e:#}", path.display());
                    ExitCode::from(EX_CONFIG)
                }
            }
        }
        Command::Enrol { cloud, code, name, ca_cert } => enrol(&args.config, cloud, code, name, ca_cert),
        Command::Run => {
            let (config, token) = match load(&args.config) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("vigil-edge: {}: {e:#}", args.config.display());
                    return ExitCode::from(EX_CONFIG);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("vigil-edge: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let cancel = CancellationToken::new();
            runtime.spawn(shutdown_on_signal(cancel.clone()));
            match runtime.block_on(edged::run(config, token, cancel)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vigil-edge: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<(Config, Option<edged::config::Secret>)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
    let mut config = Config::from_toml(&text)?;
    config.apply_enrolment()?;
    let token = config.check_files()?;
    Ok((config, token))
}

/// `vigil-edge enrol`: one request to the cloud, then the token and enrolment files.
fn enrol(config: &std::path::Path, cloud: String, code: String, name: Option<String>, ca: Option<PathBuf>) -> ExitCode {
    let parsed = std::fs::read_to_string(config)
        .map_err(|e| anyhow::anyhow!("cannot read: {e}"))
        .and_then(|text| Ok(Config::from_toml(&text)?));
    let cfg = match parsed {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vigil-edge: {}: {e:#}", config.display());
            return ExitCode::from(EX_CONFIG);
        }
    };
    let Some(paths) = edged::enrol::EnrolPaths::of(&cfg) else {
        eprintln!("vigil-edge: {}: set cloud.enrolment and cloud.token_file to enrol", config.display());
        return ExitCode::from(EX_CONFIG);
    };
    let claim = edged::enrol::Claim { url: cloud, code, name, ca_cert: ca.or(cfg.cloud.ca_cert.clone()) };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vigil-edge: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(edged::enrol::enrol_and_save(&paths, &claim, cfg.cloud.timeout)) {
        Ok(state) => {
            println!(
                "Enrolled: edge {} ({}) of site {} (tenant {}) at {}.\nToken written to {}, enrolment to {}; a running daemon uses it within seconds.",
                state.name,
                state.edge_id,
                state.site,
                state.tenant,
                state.url,
                paths.token_file.display(),
                paths.enrolment.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil-edge: enrolment failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                cancel.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    cancel.cancel();
}
