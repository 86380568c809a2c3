//! `herald-loadgen`: an XMPP load generator for Herald, Prosody and ejabberd.
//!
//! It speaks raw XMPP over STARTTLS (the server certificate is verified against the CA
//! given with `--ca`), logs users in with SCRAM-SHA-1 or PLAIN, binds, fetches the
//! roster, sends initial presence, then holds the sessions and exchanges chat messages
//! and presence at fixed rates. Every loop is bounded in count and time, and only
//! loopback addresses are accepted. See `interop/bench/` for the comparison harness.
//!
//! `herald-loadgen sip-presence ...` is the SIP presence generator instead (REGISTER,
//! SUBSCRIBE, PUBLISH over UDP; see `sip_presence.rs` and `interop/bench/sip_presence.py`).

mod cli;
mod coord;
mod session;
mod sip_cli;
mod sip_presence;
mod stats;
mod util;
mod xmpp;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("sip-presence") {
        return sip_main();
    }
    let args = cli::Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("herald-loadgen: {e}");
        return ExitCode::from(2);
    }
    let tls = match herald_certs::client_config(std::slice::from_ref(&args.ca), None, &[]) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald-loadgen: CA {}: {e}", args.ca.display());
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald-loadgen: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = args.json;
    let report = runtime.block_on(coord::run(args, tls));
    // Sessions still finishing their TLS shutdown are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if report.established == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `herald-loadgen sip-presence`: the SIP presence generator (one JSON line).
fn sip_main() -> ExitCode {
    let args = sip_cli::SipArgs::parse_from(std::env::args().skip(1));
    if let Err(e) = args.validate() {
        eprintln!("herald-loadgen sip-presence: {e}");
        return ExitCode::from(2);
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald-loadgen sip-presence: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(sip_presence::run(args));
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald-loadgen sip-presence: {e}");
            ExitCode::FAILURE
        }
    }
}
