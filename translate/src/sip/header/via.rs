//! `Via` (RFC 3261 §20.42, §25.1 `via-parm`).

use std::fmt;
use std::net::IpAddr;

use super::super::error::SipError;
use super::super::uri::{find_param, host_port, write_params, Host, HostRef, Param};
use super::{at_end, generic_params, lws1, scan_generic_params, sep, token};

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
        let p = scan(value).ok_or_else(|| SipError::bad("Malformed Via"))?;
        let (_, params) = generic_params(p.params).ok_or_else(|| SipError::bad("Malformed Via"))?;
        Ok(Self {
            protocol: p.protocol.to_owned(),
            version: p.version.to_owned(),
            transport: p.transport.to_owned(),
            host: p.host.to_host(),
            port: p.port,
            params,
        })
    }

    /// Parses a Via value that may hold several comma-separated `via-parm`s.
    pub fn parse_list(value: &str) -> Result<Vec<Self>, SipError> {
        super::split_list(value)
            .map_err(|_| SipError::bad("Malformed Via"))?
            .into_iter()
            .map(Self::parse)
            .collect()
    }

    /// Checks a Via value (a comma-separated list) without building it.
    pub(crate) fn check_list(value: &str) -> Result<(), SipError> {
        super::lists::for_each_element(value, |v| scan(v).is_some())
            .map_err(|_| SipError::bad("Malformed Via"))
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        find_param(&self.params, "branch").flatten()
    }

    /// The `received` parameter: `Some(None)` when present but not an IP address.
    pub fn received(&self) -> Option<Option<IpAddr>> {
        let value = find_param(&self.params, "received")?;
        Some(value.and_then(ip_address))
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

/// The parts of a `via-parm`, borrowed and checked.
struct Parts<'a> {
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: HostRef<'a>,
    port: Option<u16>,
    params: &'a str,
}

/// `sent-protocol LWS sent-by *( SEMI via-params )`, with the values of `received`
/// (an address: RFC 3261 unbracketed, RFC 5118 §4.10 also bracketed), `rport`, `ttl`
/// and `branch` checked.
fn scan(value: &str) -> Option<Parts<'_>> {
    let (i, protocol) = token(value)?;
    let (i, version) = token(sep(i, b'/')?)?;
    let (i, transport) = token(sep(i, b'/')?)?;
    let i = lws1(i)?;
    let (i, (host, port)) = host_port(i)?;
    let rest = scan_generic_params(i, |name, v| {
        if name.eq_ignore_ascii_case("received") {
            v.and_then(ip_address).is_some()
        } else if name.eq_ignore_ascii_case("rport") {
            v.is_none_or(|p| p.len() <= 5 && p.parse::<u16>().is_ok())
        } else if name.eq_ignore_ascii_case("ttl") {
            v.is_some_and(|t| t.len() <= 3 && t.parse::<u8>().is_ok())
        } else if name.eq_ignore_ascii_case("branch") {
            v.is_some_and(|b| !b.starts_with('"'))
        } else {
            true
        }
    })?;
    at_end(rest).then(|| Parts {
        protocol,
        version,
        transport,
        host,
        port,
        params: &i[..i.len() - rest.len()],
    })
}

fn ip_address(v: &str) -> Option<IpAddr> {
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    v.parse().ok()
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
