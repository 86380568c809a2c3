//! `Via` (RFC 3261 §20.42, §25.1 `via-parm`).

use std::fmt;
use std::net::IpAddr;

use nom::Parser;

use super::super::error::SipError;
use super::super::uri::{find_param, host_port, write_params, Host, Param};
use super::{at_end, generic_params, lws1, sep, token};

/// One `via-parm`: sent-protocol, sent-by and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The protocol name (`SIP`).
    pub protocol: String,
    /// The protocol version (`2.0`).
    pub version: String,
    /// The transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`...).
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port.
    pub port: Option<u16>,
    /// The parameters in order.
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one `via-parm` (not a comma-separated list; see [`Via::parse_list`]).
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::bad("Malformed Via");
        let parsed = (
            token,
            sep('/'),
            token,
            sep('/'),
            token,
            lws1,
            host_port,
            generic_params,
        )
            .parse(value);
        let (rest, (protocol, _, version, _, transport, _, (host, port), params)) =
            parsed.map_err(|_| bad())?;
        if !at_end(rest) {
            return Err(bad());
        }
        let via = Self {
            protocol: protocol.to_owned(),
            version: version.to_owned(),
            transport: transport.to_owned(),
            host,
            port,
            params,
        };
        via.check_params()?;
        Ok(via)
    }

    /// Parses a Via value that may hold several comma-separated `via-parm`s.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, SipError> {
        super::split_list(value)
            .map_err(|_| SipError::bad("Malformed Via"))?
            .into_iter()
            .map(Self::parse)
            .collect()
    }

    fn check_params(&self) -> Result<(), SipError> {
        if let Some(received) = self.received() {
            // RFC 3261 allows an address; RFC 5118 §4.10 both IPv6 spellings.
            received.ok_or_else(|| SipError::bad("Malformed Via received"))?;
        }
        match find_param(&self.params, "rport") {
            None | Some(None) => {}
            Some(Some(p)) if p.len() <= 5 && p.parse::<u16>().is_ok() => {}
            Some(Some(_)) => return Err(SipError::bad("Malformed Via rport")),
        }
        if let Some(ttl) = find_param(&self.params, "ttl") {
            ttl.and_then(|t| t.parse::<u8>().ok())
                .ok_or_else(|| SipError::bad("Malformed Via ttl"))?;
        }
        if let Some(Some(b)) = find_param(&self.params, "branch") {
            if b.starts_with('"') {
                return Err(SipError::bad("Malformed Via branch"));
            }
        }
        Ok(())
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }

    /// The `received` parameter: `Some(None)` when present but not an IP address.
    pub fn received(&self) -> Option<Option<IpAddr>> {
        let value = find_param(&self.params, "received")?;
        Some(value.and_then(|v| {
            let v = v
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(v);
            v.parse().ok()
        }))
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when asked for without value.
    pub fn rport(&self) -> Option<Option<u16>> {
        find_param(&self.params, "rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&str> {
        find_param(&self.params, "maddr").flatten()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol, self.version, self.transport, self.host
        )?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write_params(f, &self.params)
    }
}
