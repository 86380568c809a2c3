//! The `herald` command: run the server, check a configuration, manage accounts and
//! contact lists.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use herald_core::store::Store;
use herald_core::{accounts, contacts};
use herald_edge::app::{admin_token_path, database_path, load_config, open_store};
use herald_edge::config::{Config, LogFormat};
use herald_edge::{ops, EdgeError};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald: XMPP/SIP presence and IM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (no config file: domain localhost on 127.0.0.1, data in ./data).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print every problem with file, line and key.
    CheckConfig { file: PathBuf },
    /// Manage accounts (works while the server runs).
    User {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage contact lists (rosters).
    Roster {
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: RosterAction,
    },
    /// Show the running server's version, uptime, listeners, sessions, connections and
    /// database size.
    Status {
        /// The configuration file (default: the embedded default).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List or end client sessions of the running server.
    Sessions {
        /// The configuration file (default: the embedded default).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: ops::sessions::SessionsAction,
    },
    /// Copy the database to FILE, consistently, while the server runs.
    Backup {
        /// The configuration file (default: the embedded default).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The backup file to write (replaced if it exists).
        file: PathBuf,
    },
    /// Replace the database with a backup; refused while the server runs.
    Restore {
        /// The configuration file (default: the embedded default).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The backup file (made by `herald backup`) to restore.
        file: PathBuf,
    },
    /// Export or import accounts, rosters and offline messages as XEP-0227 XML.
    Xep0227 {
        /// The configuration file (default: the embedded default).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: ops::xep0227::Xep0227Action,
    },
    /// Make a key and signing request, import or check TLS certificates.
    Cert {
        /// The configuration file (default: the embedded default).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: ops::cert::CertAction,
    },
}

#[derive(Subcommand)]
enum RosterAction {
    /// Add contacts from a CSV file of `owner,contact[,name[,groups[,subscription]]]`
    /// lines (groups separated by `;`; subscription none|to|from|both, default both).
    /// Online users see the new contacts at their next login.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account. The password is read from --password or standard input.
    Add {
        username: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Change an account's password.
    Passwd {
        username: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account with its roster, offline messages and block list.
    Remove { username: String },
    /// List accounts.
    List,
    /// Create accounts from a CSV file of `username,password` lines.
    Import { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config.as_deref()),
        Command::CheckConfig { file } => check_config(&file),
        Command::User { config, action } => user(config.as_deref(), action),
        Command::Roster {
            config,
            action: RosterAction::Import { file },
        } => roster_import(config.as_deref(), &file),
        Command::Status { config } => ops::status::run(config.as_deref()),
        Command::Sessions { config, action } => ops::sessions::run(config.as_deref(), action),
        Command::Backup { config, file } => ops::backup::run_backup(config.as_deref(), &file),
        Command::Restore { config, file } => ops::backup::run_restore(config.as_deref(), &file),
        Command::Xep0227 { config, action } => ops::xep0227::run(config.as_deref(), action),
        Command::Cert { config, action } => ops::cert::run(config.as_deref(), action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn serve(config_path: Option<&Path>) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    init_logging(&config);
    // Storage calls run on the blocking pool but serialize on one database connection:
    // a small pool is as fast and keeps thread stacks and allocator arenas few.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .map_err(|source| EdgeError::DataDir {
            path: PathBuf::from("tokio runtime"),
            source,
        })?;
    runtime.block_on(async {
        let running = herald_edge::start(&config).await?;
        print_banner(&config, &running, config_path);
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown(Duration::from_secs(5)).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_banner(config: &Config, running: &herald_edge::Running, config_path: Option<&Path>) {
    let cfg_arg = config_path
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!(
        "Herald {} serving {}\n",
        env!("CARGO_PKG_VERSION"),
        config.server.domains.join(", ")
    ));
    for a in &running.c2s.starttls {
        out.push_str(&format!("  XMPP clients (STARTTLS):   {a}\n"));
    }
    for a in &running.c2s.direct_tls {
        out.push_str(&format!("  XMPP clients (direct TLS): {a}\n"));
    }
    if let Some(a) = running.admin {
        out.push_str(&format!(
            "  admin: http://{a}/health  http://{a}/metrics (bearer token in {})\n",
            admin_token_path(config).display()
        ));
    }
    out.push_str(&format!(
        "  database: {}\n",
        database_path(config).display()
    ));
    if let Some(ca) = &running.dev_ca {
        out.push_str(&format!(
            "  development CA (trust it in your client): {}\n",
            ca.display()
        ));
    }
    out.push_str(&format!(
        "Add a user:  herald user add alice{cfg_arg}   (then log in as alice@{})\n",
        config
            .server
            .domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    ));
    print!("{out}");
    let _ = std::io::stdout().flush();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn check_config(file: &Path) -> Result<ExitCode, EdgeError> {
    match Config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for issue in &e.0 {
                eprintln!("{issue}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_password(given: Option<String>) -> std::io::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (echoed): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn user(config_path: Option<&Path>, action: UserAction) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let domain = default_domain(&config);
    let io_err = |source| EdgeError::DataDir {
        path: PathBuf::from("<stdin>"),
        source,
    };
    match action {
        UserAction::Add { username, password } => {
            let password = read_password(password).map_err(io_err)?;
            let user = accounts::add_user(&store, &username, &password)?;
            println!("created {user}@{domain}");
        }
        UserAction::Passwd { username, password } => {
            let password = read_password(password).map_err(io_err)?;
            let user = accounts::set_password(&store, &username, &password)?;
            println!("password changed for {user}@{domain}");
        }
        UserAction::Remove { username } => {
            let user = accounts::normalize_username(&username)?;
            store.remove_user(&user)?;
            println!("removed {user}@{domain}");
        }
        UserAction::List => {
            for u in store.list_users()? {
                println!("{u}@{domain}");
            }
        }
        UserAction::Import { file } => return import(&store, &file),
    }
    Ok(ExitCode::SUCCESS)
}

/// Bulk provisioning of accounts.
fn import(store: &dyn Store, file: &Path) -> Result<ExitCode, EdgeError> {
    run_import(
        file,
        accounts::parse_import_csv,
        200,
        |chunk| {
            let (prepared, mut errors) =
                accounts::prepare_rows(chunk, accounts::DEFAULT_ITERATIONS);
            let (created, failed) = accounts::store_rows(store, prepared)?;
            errors.extend(failed);
            Ok((created, errors))
        },
        |n| format!("imported {n} account(s)"),
    )
}

/// Bulk contact-list import.
fn roster_import(config_path: Option<&Path>, file: &Path) -> Result<ExitCode, EdgeError> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let domain = default_domain(&config);
    let max = config.c2s.max_roster_items;
    run_import(
        file,
        |text| contacts::parse_contacts_csv(text, &domain),
        1000,
        |chunk| Ok(contacts::store_contacts(&store, chunk, max)?),
        |n| format!("stored {n} contact(s)"),
    )
}

/// Read and parse an import file, store its rows in chunks with a progress bar, and
/// report every failed line as `file:line: message`. `summary` says what the stored
/// rows were. Fails when any line failed.
fn run_import<R>(
    file: &Path,
    parse: impl FnOnce(&str) -> (Vec<R>, Vec<accounts::ImportError>),
    chunk_size: usize,
    mut store: impl FnMut(&[R]) -> Result<(usize, Vec<accounts::ImportError>), EdgeError>,
    summary: impl FnOnce(usize) -> String,
) -> Result<ExitCode, EdgeError> {
    let text = std::fs::read_to_string(file).map_err(|source| EdgeError::DataDir {
        path: file.to_path_buf(),
        source,
    })?;
    let (rows, mut errors) = parse(&text);
    let mut stored = 0;
    let mut done = 0;
    for chunk in rows.chunks(chunk_size) {
        let (n, failed) = store(chunk)?;
        stored += n;
        errors.extend(failed);
        done += chunk.len();
        progress(done, rows.len());
    }
    if !rows.is_empty() {
        eprintln!();
    }
    errors.sort_by_key(|e| e.line);
    for e in &errors {
        eprintln!("{}:{}: {}", file.display(), e.line, e.message);
    }
    println!("{}; {} line(s) with errors", summary(stored), errors.len());
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The first hosted domain, which completes bare usernames.
fn default_domain(config: &Config) -> String {
    config
        .server
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into())
}

fn progress(done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    eprint!(
        "\r[{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled)
    );
    let _ = std::io::stderr().flush();
}
