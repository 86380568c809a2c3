//! Options of `herald-loadgen sip-presence`: every loop is bounded in count and time,
//! and the server must be on the loopback network.

use std::net::SocketAddr;

use clap::Parser;

use crate::cli::{MAX_PHASE_SECS, MAX_USERS};

/// Most publication steps one run may take.
const MAX_STEPS: usize = 16;
/// Highest PUBLISH rate accepted, per second.
const MAX_RATE: f64 = 100_000.0;

/// SIP presence load generator (plain RFC 3261 over UDP): REGISTERs N users with digest
/// authentication, has every watcher SUBSCRIBE to K presentities (Event: presence),
/// then PUBLISHes PIDF documents at stepped rates and measures the NOTIFYs they cause.
/// Prints one JSON line.
#[derive(Debug, Clone, Parser)]
#[command(name = "herald-loadgen sip-presence", version)]
pub(crate) struct SipArgs {
    /// Server address (UDP); must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub(crate) server: SocketAddr,
    /// SIP domain of the accounts (sip:userN@DOMAIN).
    #[arg(long, default_value = "localhost")]
    pub(crate) domain: String,
    /// Number of users: accounts user{offset}..user{offset+users-1}; each one is both
    /// a watcher and a presentity.
    #[arg(long, default_value_t = 100)]
    pub(crate) users: u32,
    /// First account number.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u32,
    /// Account name prefix (account i is <prefix><i>).
    #[arg(long, default_value = "user")]
    pub(crate) user_prefix: String,
    /// Password prefix (account i's password is <prefix><i>).
    #[arg(long, default_value = "pass")]
    pub(crate) pass_prefix: String,
    /// Users sharing one UDP socket (one socket per this many users).
    #[arg(long, default_value_t = 100)]
    pub(crate) users_per_socket: u32,
    /// Presentities each watcher subscribes to (K < users): watcher w watches
    /// w+1..w+K (mod users), so every presentity has K watchers.
    #[arg(long, default_value_t = 5)]
    pub(crate) watch: u32,
    /// REGISTERs started per second.
    #[arg(long, default_value_t = 200.0)]
    pub(crate) register_rate: f64,
    /// SUBSCRIBEs started per second.
    #[arg(long, default_value_t = 500.0)]
    pub(crate) subscribe_rate: f64,
    /// PUBLISH rates to step through (per second, comma separated); each step lasts
    /// --duration seconds and is followed by --drain seconds.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub(crate) rates: Vec<f64>,
    /// Length of each PUBLISH step in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Seconds to wait after each step for responses and NOTIFYs still in flight.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) drain: f64,
    /// Seconds to wait after the SUBSCRIBE phase for the initial NOTIFYs.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) settle: f64,
    /// Stop stepping once a step's NOTIFY p99 exceeds this many milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) stop_p99_ms: f64,
    /// Stop stepping once a step loses more than this share of NOTIFYs or PUBLISHes.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) stop_loss: f64,
    /// Expires of REGISTER and SUBSCRIBE.
    #[arg(long, default_value_t = 3600)]
    pub(crate) expires: u32,
    /// Expires of PUBLISH.
    #[arg(long, default_value_t = 3600)]
    pub(crate) publish_expires: u32,
    /// Seconds a transaction may take (retransmitted at 0.5, 1, 2, 4 s) before it
    /// counts as timed out.
    #[arg(long, default_value_t = 8.0)]
    pub(crate) transaction_timeout: f64,
    /// Transactions in progress at once, at most (more offered PUBLISHes are skipped
    /// and counted).
    #[arg(long, default_value_t = 1024)]
    pub(crate) max_pending: usize,
    /// Digest algorithm to answer with when the server offers several (e.g. MD5,
    /// SHA-256); default: the first challenge the server sent.
    #[arg(long)]
    pub(crate) algorithm: Option<String>,
    /// PIDs of the server processes: their RSS (and PSS) and CPU time are summed and
    /// reported per phase (Kamailio: every process of its group).
    #[arg(long = "server-pid", value_delimiter = ',')]
    pub(crate) server_pids: Vec<u32>,
    /// Tokio worker threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
}

fn check_secs(name: &str, v: f64, min: f64) -> Result<(), String> {
    if v.is_finite() && v >= min && v <= MAX_PHASE_SECS {
        Ok(())
    } else {
        Err(format!(
            "--{name} must be between {min} and {MAX_PHASE_SECS} seconds"
        ))
    }
}

impl SipArgs {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.server.ip().is_loopback() {
            return Err(format!(
                "--server {} is not a loopback address",
                self.server
            ));
        }
        if self.users < 2 || self.users > MAX_USERS {
            return Err(format!("--users must be between 2 and {MAX_USERS}"));
        }
        if self.offset.checked_add(self.users).is_none() {
            return Err("--offset + --users overflows".into());
        }
        if self.users_per_socket == 0 || self.users_per_socket > 1000 {
            return Err("--users-per-socket must be between 1 and 1000".into());
        }
        if self.watch >= self.users {
            return Err("--watch must be below --users".into());
        }
        for (name, v) in [
            ("register-rate", self.register_rate),
            ("subscribe-rate", self.subscribe_rate),
        ] {
            if !(v.is_finite() && (1.0..=MAX_RATE).contains(&v)) {
                return Err(format!("--{name} must be between 1 and {MAX_RATE}"));
            }
        }
        if self.rates.is_empty() || self.rates.len() > MAX_STEPS {
            return Err(format!("--rates takes 1 to {MAX_STEPS} rates"));
        }
        if self
            .rates
            .iter()
            .any(|r| !(r.is_finite() && (1.0..=MAX_RATE).contains(r)))
        {
            return Err(format!(
                "every --rates value must be between 1 and {MAX_RATE}"
            ));
        }
        check_secs("duration", self.duration, 0.5)?;
        check_secs("drain", self.drain, 0.0)?;
        check_secs("settle", self.settle, 0.0)?;
        check_secs("transaction-timeout", self.transaction_timeout, 0.5)?;
        if self.max_pending == 0 || self.max_pending > 20_000 {
            return Err("--max-pending must be between 1 and 20000".into());
        }
        if self.threads == 0 || self.threads > 64 {
            return Err("--threads must be between 1 and 64".into());
        }
        if self.expires == 0 || self.publish_expires == 0 {
            return Err("--expires and --publish-expires must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn username(&self, u: u32) -> String {
        format!("{}{}", self.user_prefix, self.offset + u)
    }

    pub(crate) fn password(&self, u: u32) -> String {
        format!("{}{}", self.pass_prefix, self.offset + u)
    }

    pub(crate) fn sockets(&self) -> u32 {
        self.users.div_ceil(self.users_per_socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> SipArgs {
        let mut argv = vec!["herald-loadgen sip-presence"];
        argv.extend_from_slice(extra);
        SipArgs::parse_from(argv)
    }

    #[test]
    fn bounds() {
        assert!(args(&[]).validate().is_ok());
        assert!(args(&["--server", "192.0.2.1:5060"]).validate().is_err());
        assert!(args(&["--users", "10", "--watch", "10"])
            .validate()
            .is_err());
        assert!(args(&["--rates", "100,0"]).validate().is_err());
        let a = args(&["--users", "250", "--rates", "200,500"]);
        assert_eq!(a.sockets(), 3);
        assert_eq!(a.rates, vec![200.0, 500.0]);
        assert_eq!(a.username(7), "user7");
    }
}
