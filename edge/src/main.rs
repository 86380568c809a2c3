//! The `herald` command: run the server, check a configuration, manage accounts and
//! contact lists.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use herald_core::store::Store;
use herald_core::{accounts, contacts};
use herald_edge::account_arg::username_of;
use herald_edge::app::{admin_token_path, database_path, load_config, open_existing_store};
use herald_edge::config::Config;
use herald_edge::config_source::{self, ConfigSource, Located};
use herald_edge::password::read_password;
use herald_edge::{logging, ops, EdgeError};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald: XMPP/SIP presence and IM gateway",
    after_help = "Every command finds its configuration the same way: --config FILE, \
                  then $HERALD_CONFIG, then ./herald.toml, then /etc/herald/herald.toml, \
                  then the embedded default. Commands that touch data print which one \
                  they use."
)]
struct Cli {
    /// Configuration file (default: $HERALD_CONFIG, ./herald.toml,
    /// /etc/herald/herald.toml, else the embedded default).
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (no config file: domain localhost on 127.0.0.1, data in ./data).
    /// SIGHUP reloads the configuration; SIGTERM and SIGINT shut down cleanly.
    Serve,
    /// Check a configuration file and print every problem with file, line and key.
    CheckConfig {
        /// The file to check (default: the one the search order finds).
        file: Option<PathBuf>,
    },
    /// Manage accounts (works while the server runs).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage contact lists (rosters).
    Roster {
        #[command(subcommand)]
        action: RosterAction,
    },
    /// Show the running server's version, uptime, listeners, sessions, connections and
    /// database size.
    Status,
    /// List or end client sessions of the running server.
    Sessions {
        #[command(subcommand)]
        action: ops::sessions::SessionsAction,
    },
    /// Copy the database to FILE, consistently, while the server runs.
    Backup {
        /// The backup file to write (replaced if it exists).
        file: PathBuf,
    },
    /// Replace the database with a backup; refused while the server runs.
    Restore {
        /// The backup file (made by `herald backup`) to restore.
        file: PathBuf,
    },
    /// Export or import accounts, rosters and offline messages as XEP-0227 XML.
    Xep0227 {
        #[command(subcommand)]
        action: ops::xep0227::Xep0227Action,
    },
    /// Make a key and signing request, import or check TLS certificates.
    Cert {
        #[command(subcommand)]
        action: ops::cert::CertAction,
    },
    /// Explain what federation does with a stanza from one address to another: the
    /// direction, route, ACL rule, TLS and authentication policy and limits, with why.
    Explain {
        /// The sender: a JID (`alice@remote.example`) or a domain.
        #[arg(long)]
        from: String,
        /// The recipient: a JID (`bob@herald.example`) or a domain.
        #[arg(long)]
        to: String,
    },
    /// Print the DNS SRV records (and address hints) to publish for the hosted domains,
    /// with the ports of the configured listeners.
    DnsRecords {
        /// The host name the SRV records point to (default: each domain itself).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Federation tools: `check DOMAIN` resolves, connects to and negotiates TLS with a
    /// remote server, reporting each step and its certificate.
    Federation {
        #[command(subcommand)]
        action: ops::federation_check::FederationAction,
    },
}

#[derive(Subcommand)]
enum RosterAction {
    /// Add contacts from a CSV file of `owner,contact[,name[,groups[,subscription]]]`
    /// lines (groups separated by `;`; subscription none|to|from|both, default both).
    /// Online users see the new contacts at their next login.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account. Without --password, the password is asked twice without
    /// echo on a terminal, or read as one line from standard input.
    Add {
        /// `alice`, or `alice@example.com` for a hosted domain.
        account: String,
        /// The password on the command line: other users can see it in the process
        /// list, so use it only in scripts for throwaway accounts.
        #[arg(long)]
        password: Option<String>,
    },
    /// Change an account's password; its sessions are ended.
    Passwd {
        /// `alice`, or `alice@example.com` for a hosted domain.
        account: String,
        /// The new password on the command line (visible in the process list: for
        /// scripts only).
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account with its roster, offline messages and block list; its
    /// sessions end and it leaves its contacts' rosters.
    Remove {
        /// `alice`, or `alice@example.com` for a hosted domain.
        account: String,
    },
    /// List accounts.
    List,
    /// Create accounts from a CSV file of `username,password` lines.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flag = cli.config.as_deref();
    let result = match cli.command {
        Command::Serve => serve(flag),
        Command::CheckConfig { file } => check_config_cmd(file.as_deref(), flag),
        Command::User { action } => user(flag, action),
        Command::Roster {
            action: RosterAction::Import { file },
        } => roster_import(flag, &file),
        Command::Status => ops::status::run(flag),
        Command::Sessions { action } => ops::sessions::run(flag, action),
        Command::Backup { file } => ops::backup::run_backup(flag, &file),
        Command::Restore { file } => ops::backup::run_restore(flag, &file),
        Command::Xep0227 { action } => ops::xep0227::run(flag, action),
        Command::Cert { action } => ops::cert::run(flag, action),
        Command::Explain { from, to } => ops::explain::run(flag, &from, &to),
        Command::DnsRecords { host } => ops::dns_records::run(flag, host.as_deref()),
        Command::Federation { action } => ops::federation_check::run(flag, action),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(flag: Option<&Path>) -> Result<ExitCode, EdgeError> {
    let Located { config, source } = config_source::locate(flag)?;
    let log = logging::init(&config);
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
        let mut running = herald_edge::start(&config).await?;
        print_banner(&config, &running, &source, flag);
        run_until_stopped(&mut running, &source, &log).await;
        tracing::info!("shutting down");
        running.shutdown(Duration::from_secs(5)).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn print_banner(
    config: &Config,
    running: &herald_edge::Running,
    source: &ConfigSource,
    flag: Option<&Path>,
) {
    let cfg_arg = flag
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!(
        "Herald {} serving {}\n",
        env!("CARGO_PKG_VERSION"),
        config.server.domains.join(", ")
    ));
    out.push_str(&format!("  configuration: {source}\n"));
    for a in &running.c2s.starttls {
        out.push_str(&format!("  XMPP clients (STARTTLS):   {a}\n"));
    }
    for a in &running.c2s.direct_tls {
        out.push_str(&format!("  XMPP clients (direct TLS): {a}\n"));
    }
    if let Some(sip) = &running.sip {
        for a in &sip.udp {
            out.push_str(&format!("  SIP (UDP):                 {a}\n"));
        }
        for a in &sip.tcp {
            out.push_str(&format!("  SIP (TCP):                 {a}\n"));
        }
        for a in &sip.tls {
            out.push_str(&format!("  SIP (TLS):                 {a}\n"));
        }
        out.push_str(&format!("  SIP digest realm:          {}\n", sip.realm));
    }
    if let Some(s2s) = &running.s2s {
        for a in &s2s.starttls {
            out.push_str(&format!("  XMPP servers (STARTTLS):   {a}\n"));
        }
        for a in &s2s.direct_tls {
            out.push_str(&format!("  XMPP servers (direct TLS): {a}\n"));
        }
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
        "Add a user:  herald{cfg_arg} user add alice   (then log in as alice@{})\n",
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

/// Serve until SIGTERM or SIGINT; SIGHUP reloads the configuration file in use.
async fn run_until_stopped(
    running: &mut herald_edge::Running,
    source: &ConfigSource,
    log: &logging::LogControl,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => reload(running, source, log),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (running, source, log);
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP: the same file again. A file that fails to load changes nothing.
fn reload(running: &mut herald_edge::Running, source: &ConfigSource, log: &logging::LogControl) {
    let Some(file) = source.file() else {
        tracing::info!("reload: no configuration file in use, nothing to reload");
        return;
    };
    let new = match config_source::locate(Some(file)) {
        Ok(l) => l.config,
        Err(e) => {
            for issue in &e.0 {
                tracing::error!(%issue, "reload refused: the running configuration stays");
            }
            return;
        }
    };
    match running.reload(&new, Some(log)) {
        Ok(restart) if restart.is_empty() => {
            tracing::info!(file = %file.display(), "configuration reloaded");
        }
        Ok(restart) => tracing::warn!(
            file = %file.display(),
            restart_needed = %restart.join(", "),
            "configuration reloaded; these changes take effect at the next restart"
        ),
        Err(e) => tracing::error!(error = %e, "reload refused: the running configuration stays"),
    }
}

/// `check-config [FILE]`: the file given, or the one the search order finds.
fn check_config_cmd(file: Option<&Path>, flag: Option<&Path>) -> Result<ExitCode, EdgeError> {
    let file = match file.or(flag) {
        Some(f) => f.to_path_buf(),
        None => {
            let l = config_source::locate(None)?;
            match l.source.file() {
                Some(f) => f.to_path_buf(),
                None => {
                    println!("no configuration file: {}; it is valid", l.source);
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    check_config(&file)
}

/// The same reading and checks as `serve` (both go through `Config::load`), with every
/// problem printed.
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
            let n = e.0.len();
            let plural = if n == 1 { "" } else { "s" };
            eprintln!("{n} problem{plural} in {}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn user(flag: Option<&Path>, action: UserAction) -> Result<ExitCode, EdgeError> {
    let config = load_config(flag)?;
    let store = open_existing_store(&config)?;
    eprintln!("database: {}", database_path(&config).display());
    let domains = &config.server.domains;
    let domain = default_domain(&config);
    let realm = config.sip_realm();
    // Accounts are per server: say the address the admin named, or the default domain's.
    let shown = |account: &str, user: &str| match herald_translate::Jid::parse(account) {
        Ok(j) if j.local().is_some() => format!("{user}@{}", j.domain()),
        _ => format!("{user}@{domain}"),
    };
    match action {
        UserAction::Add { account, password } => {
            let user = username_of(&account, domains)?;
            let password = read_password(password)?;
            let user = accounts::add_user(&store, &user, &password, &realm)?;
            println!("created {}", shown(&account, &user));
        }
        UserAction::Passwd { account, password } => {
            let user = username_of(&account, domains)?;
            let password = read_password(password)?;
            let user = accounts::set_password(&store, &user, &password, &realm)?;
            let jid = shown(&account, &user);
            println!("password changed for {jid}");
            match ops::accounts::end_sessions_after_password_change(&config, &user) {
                Ok(0) => {}
                Ok(n) => println!("{n} session(s) of {jid} ended"),
                Err(e) => {
                    eprintln!(
                        "herald: the password is changed, but its sessions were not ended: {e}"
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        UserAction::Remove { account } => {
            let user = username_of(&account, domains)?;
            let what = ops::accounts::remove(&config, &store, &user)?;
            println!("removed {}: {what}", shown(&account, &user));
        }
        UserAction::List => {
            // Whether each account can register over SIP in the configured realm.
            for u in store.list_users()? {
                if accounts::sip_ready(&store, &u, &realm)? {
                    println!("{u}@{domain}");
                } else {
                    println!(
                        "{u}@{domain}  ({} in realm {realm})",
                        accounts::NO_SIP_CREDENTIALS
                    );
                }
            }
        }
        UserAction::Import { file } => return import(&store, &file, &realm),
    }
    Ok(ExitCode::SUCCESS)
}

/// Bulk provisioning of accounts.
fn import(store: &dyn Store, file: &Path, realm: &str) -> Result<ExitCode, EdgeError> {
    run_import(
        file,
        accounts::parse_import_csv,
        200,
        |chunk| {
            let (prepared, mut errors) =
                accounts::prepare_rows(chunk, accounts::DEFAULT_ITERATIONS, realm);
            let (created, failed) = accounts::store_rows(store, prepared)?;
            errors.extend(failed);
            Ok((created, errors))
        },
        |n| format!("imported {n} account(s)"),
    )
}

/// Bulk contact-list import.
fn roster_import(flag: Option<&Path>, file: &Path) -> Result<ExitCode, EdgeError> {
    let config = load_config(flag)?;
    let store = open_existing_store(&config)?;
    eprintln!("database: {}", database_path(&config).display());
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option, argument and command of every subcommand, without a description.
    fn undescribed(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && sub.get_about().is_none() {
                out.push(sub_path.clone());
            }
            undescribed(sub, &sub_path, out);
        }
    }

    #[test]
    fn every_option_argument_and_command_has_a_description() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        undescribed(&cmd, "herald", &mut missing);
        assert!(missing.is_empty(), "no --help text for: {missing:?}");
    }
}
