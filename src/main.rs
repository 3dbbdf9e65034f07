//! The `switchboard` binary: `serve` runs the engine, `token` mints a development token.
//!
//! This file stays thin: parse the command line, load the configuration, set up logging, start
//! the server from the library, and wait for SIGINT/SIGTERM (or a fatal failure) to shut down.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::config::{CliOverrides, Config, LogFormat, development_secret};
use switchboard::logging::{log_filter, use_colour};
use switchboard_actors::clock::SystemClock;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::Clock;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the server allocates many small, short-lived
/// buffers per message (frames, ids, batch entries), which glibc's malloc served at about 13% of
/// server CPU under load (see docs/PERFORMANCE.md, optimisation log).
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A multi-tenant realtime chat engine.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine.
    Serve {
        /// A TOML configuration file (see config.example.toml).
        #[arg(long, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log format: human or json (server.log_format).
        #[arg(long, value_parser = parse_log_format)]
        log_format: Option<LogFormat>,
    },
    /// Print a token signed with the development secret (the same one `serve` uses).
    Token {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The user id.
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// A role to grant (`admin`, `recorder`); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A TOML configuration file.
        #[arg(long, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of human, json")),
    }
}

/// Installs the log subscriber. The filter is `RUST_LOG` (else `server.log_level`) with the
/// embedded relay's TURN library's per-datagram lines turned off unless it names that library:
/// anyone who can send UDP to the relay could otherwise flood the log
/// (see [`switchboard::logging`]).
fn init_logging(config: &Config) {
    let filter = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .and_then(|configured| EnvFilter::try_new(log_filter(&configured)).ok())
        .unwrap_or_else(|| EnvFilter::new(log_filter(&config.server.log_level)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.server.log_format {
        LogFormat::Human => {
            // The log goes to standard output; colour it only when that is a terminal.
            let colour = use_colour(
                std::io::IsTerminal::is_terminal(&std::io::stdout()),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(terminate) => terminate,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let server = switchboard::start(config).await?;
    let failed = tokio::select! {
        () = shutdown_signal() => false,
        () = server.failed() => true,
    };
    if failed {
        tracing::error!("the actor system failed; shutting down");
    } else {
        tracing::info!("shutting down");
    }
    server.shutdown().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[allow(clippy::print_stdout)] // Printing the token is the command's whole job.
fn print_token(
    config: &Config,
    tenant: &str,
    user: &str,
    ttl: u64,
    roles: &[String],
) -> anyhow::Result<()> {
    let tenant_id = TenantId::parse(tenant).context("--tenant")?;
    let user_id = UserId::parse(user).context("--user")?;
    let secret = development_secret(&config.auth, &config.server.data_dir)?;
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let token = switchboard_transport::auth::mint_hs256_with_roles(
        &secret,
        &tenant_id,
        &user_id,
        SystemClock.now(),
        ttl,
        &roles,
    )?;
    println!("{token}");
    Ok(())
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            log_format,
        } => {
            let overrides = CliOverrides {
                listen,
                data_dir,
                log_format,
            };
            let config = Config::load(config.as_deref(), &overrides)?;
            init_logging(&config);
            if let Err(error) = switchboard::process::apply_transparent_huge_pages(
                config.server.transparent_huge_pages,
            ) {
                tracing::warn!(%error, "could not apply server.transparent_huge_pages");
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Token {
            tenant,
            user,
            ttl,
            roles,
            config,
            data_dir,
        } => {
            let overrides = CliOverrides {
                data_dir,
                ..CliOverrides::default()
            };
            let config = Config::load(config.as_deref(), &overrides)?;
            print_token(&config, &tenant, &user, ttl, &roles)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
