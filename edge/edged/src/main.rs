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

fn load(path: &std::path::Path) -> anyhow::Result<(Config, edged::config::Secret)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
    let config = Config::from_toml(&text)?;
    let token = config.check_files()?;
    Ok((config, token))
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
