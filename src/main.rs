//! The storegate command: run the gateway, check a config, or register a client.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use storegate::config::{Config, LogFormat};

mod client_cli;

use client_cli::{ClientCommand, client_command};

/// Exit code for a bad configuration (sysexits EX_USAGE).
const EXIT_CONFIG: u8 = 64;
/// A command line that asks for something that cannot be (as clap's own usage errors).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    version,
    about = "A reverse-proxy authentication gateway for store backend APIs"
)]
struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "STOREGATE_CONFIG",
        default_value = "gateway.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the config and exit.
    CheckConfig,
    /// Manage clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Revoke tokens on the running gateway (through its admin listener; from the same host).
    Revoke {
        #[command(subcommand)]
        command: RevokeCommand,
    },
    /// A DPoP client's key and proofs (RFC 9449), to get and use DPoP tokens with curl.
    Dpop {
        #[command(subcommand)]
        command: DpopCommand,
    },
}

#[derive(Subcommand)]
enum DpopCommand {
    /// Write a fresh P-256 key (ES256) to a file.
    Key { file: PathBuf },
    /// Print a proof for one request, signed with the key in `--key`.
    Proof {
        #[arg(long)]
        key: PathBuf,
        /// The request's method (`htm`).
        htm: String,
        /// The URL the request addresses, without its query (`htu`).
        htu: String,
        /// The access token it goes with (read from the environment, never the command line,
        /// which other users can see).
        #[arg(
            long = "with-token-from-env",
            env = "STOREGATE_DPOP_TOKEN",
            hide_env_values = true
        )]
        token: Option<String>,
        /// A nonce the gateway gave (`DPoP-Nonce`).
        #[arg(long)]
        nonce: Option<String>,
    },
}

#[derive(Subcommand)]
enum RevokeCommand {
    /// Every token a client holds: those issued before an instant (default: now).
    Client {
        /// The client id.
        id: String,
        /// RFC 3339, e.g. 2026-11-23T10:00:00Z; not in the future.
        #[arg(long)]
        issued_before: Option<String>,
    },
    /// One token, by its `jti` claim.
    Token {
        /// The token's jti (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        jti: String,
        /// The client it was issued to (kept with the revocation, for the record).
        #[arg(long)]
        client: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Client { command } => client_command(command, &cli.config),
        Command::Revoke { command } => revoke_command(command, &cli.config),
        Command::Dpop { command } => match dpop_command(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("storegate: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig => match Config::load(&cli.config) {
            Ok(cfg) => match check_files(&cfg) {
                Ok(notes) => {
                    println!(
                        "{}: ok ({} token endpoints, {} clients, {} routes)",
                        cli.config.display(),
                        cfg.token_endpoints.len(),
                        cfg.clients.len(),
                        cfg.routes.len()
                    );
                    notes.iter().for_each(|n| println!("note: {n}"));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("storegate: {}: {e:#}", cli.config.display());
                    ExitCode::FAILURE
                }
            },
            Err(e) => config_failure(&cli.config, &e),
        },
        Command::Run => {
            let config = match Config::load(&cli.config) {
                Ok(c) => c,
                Err(e) => return config_failure(&cli.config, &e),
            };
            init_tracing(&config.log, config.log_format);
            let runtime = runtime();
            let result = runtime
                .context("starting the runtime")
                .and_then(|rt| rt.block_on(run(config, cli.config)));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("storegate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn dpop_command(command: DpopCommand) -> anyhow::Result<()> {
    use storegate::dpop::client;
    match command {
        DpopCommand::Key { file } => client::new_key(&file),
        DpopCommand::Proof {
            key,
            htm,
            htu,
            token,
            nonce,
        } => {
            let pem = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
            let asked = client::ProofFor {
                htm: &htm,
                htu: &htu,
                token: token.as_deref(),
                nonce: nonce.as_deref(),
            };
            println!("{}", client::proof(&pem, &asked)?);
            Ok(())
        }
    }
}

/// One worker per core the process may run on. On a single core (a sidecar pinned to one
/// CPU) the current-thread scheduler does the same work without work-stealing's atomics.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .enable_all()
            .build()
    }
}

/// Loads the certificate and keys the config names, as start-up would, without generating
/// anything: development files that are missing are reported as notes.
fn check_files(cfg: &Config) -> anyhow::Result<Vec<String>> {
    let mut notes = Vec::new();
    if let Some(tls) = &cfg.tls {
        if storegate::devfiles::to_generate(tls.generate_dev_files, &[&tls.cert, &tls.key]) {
            notes.push(format!(
                "{} will be generated (development certificate)",
                tls.cert.display()
            ));
        } else {
            let expiry = storegate::tls::load(tls)?.expiry;
            if let Some(t) = expiry.filter(|t| *t <= storegate::token::now_unix() as i64) {
                notes.push(format!("{} expired at {t} (Unix time)", tls.cert.display()));
            }
        }
    }
    let signing = &cfg.signing;
    if storegate::devfiles::to_generate(signing.generate_dev_files, &[&signing.key]) {
        notes.push(format!(
            "{} will be generated (development signing key)",
            signing.key.display()
        ));
    } else {
        storegate::token::keys::KeySet::load(signing).context("loading the signing keys")?;
    }
    // The https:// upstreams' CAs, client certificates and keys.
    storegate::upstream_tls::build(&cfg.routes)?;
    Ok(notes)
}

fn config_failure(path: &std::path::Path, e: &storegate::config::ConfigError) -> ExitCode {
    eprintln!("storegate: {}: {e}", path.display());
    ExitCode::from(EXIT_CONFIG)
}

fn revoke_command(command: RevokeCommand, config: &std::path::Path) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return config_failure(config, &e),
    };
    let Some(admin) = &cfg.admin else {
        eprintln!(
            "storegate: {}: no [admin] listener to revoke through",
            config.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let body = match command {
        RevokeCommand::Client { id, issued_before } => {
            serde_json::json!({ "client": id, "issued_before": issued_before })
        }
        RevokeCommand::Token { jti, client } => serde_json::json!({ "jti": jti, "client": client }),
    };
    let sent = runtime()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(storegate::admin::client::revoke(admin, body)));
    match sent {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("storegate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // The file watcher's own lines (notify logs every event at trace) are never written,
        // whatever the filter asks: a log written into a watched folder would be an event,
        // and each event a line, without end.
        .add_directive("notify=warn".parse().expect("a valid directive"))
        // rustls warns of what a caller's handshake did wrong that it ignores (an IP address
        // sent as SNI, as wrk and some OpenSSL clients do): a line per connection, chosen by
        // the caller, flooding the log. Not written, whatever the filter asks.
        .add_directive(
            "rustls::msgs::handshake=error"
                .parse()
                .expect("a valid directive"),
        );
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // One JSON object per line, the event's fields at the top level.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        // Colour only on a terminal: log files and journald get plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
}

async fn run(config: Config, config_path: PathBuf) -> anyhow::Result<()> {
    // Installed first, so that a SIGTERM right after start-up drains rather than kills. A
    // second SIGTERM/SIGINT (a second Ctrl-C) skips the rest of the drain delay.
    let signals = shutdown_signals()?;
    if let Some(addr) = config.demo_upstream {
        let demo = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the demo upstream on {addr}"))?;
        tracing::info!(%addr, "demo store API listening");
        tokio::spawn(storegate::demo::serve(demo));
    }
    let listen = config.listen;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let state = Arc::new(storegate::state::State::new(config)?);
    let reloader = storegate::reload::spawn(state.clone(), config_path)?;
    storegate::cluster::spawn(&state)?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            reloader.request();
        }
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(
        "storegate listening on {scheme}://{}",
        listener.local_addr()?
    );
    if let Some(admin) = state.shared.fixed.admin.clone() {
        let token = match &admin.token_file {
            Some(f) => Some(storegate::admin::load_or_create_token(f)?.into()),
            None => None,
        };
        let bound = tokio::net::TcpListener::bind(admin.listen)
            .await
            .with_context(|| format!("binding the admin listener {}", admin.listen))?;
        tracing::info!("admin listening on http://{}", bound.local_addr()?);
        tokio::spawn(storegate::admin::serve(bound, state.clone(), token));
    }
    state.shared.health.set_ready();
    let drain = storegate::server::drain_after(state.clone(), signals);
    storegate::server::run(listener, state, drain).await
}

/// Every SIGTERM and SIGINT, as messages; the handlers are installed before this returns.
fn shutdown_signals() -> anyhow::Result<tokio::sync::mpsc::UnboundedReceiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
