//! `herald-loadgen`: an XMPP load generator for Herald, Prosody and ejabberd.
//!
//! It speaks raw XMPP over STARTTLS (the server certificate is verified against the CA
//! given with `--ca`), logs users in with SCRAM-SHA-1 or PLAIN, binds, fetches the
//! roster, sends initial presence, then holds the sessions and exchanges chat messages
//! and presence at fixed rates. Every loop is bounded in count and time, and only
//! loopback addresses are accepted. See `interop/bench/` for the comparison harness.

mod cli;
mod coord;
mod session;
mod stats;
mod util;
mod xmpp;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
