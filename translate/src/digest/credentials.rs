//! The `Authorization` / `Proxy-Authorization` value (RFC 3261 §25.1 `credentials`,
//! RFC 7616 §3.4).

use std::fmt;

use super::compute::Algorithm;
use super::params::{find_param, parse_digest_params, parse_scheme_params, push_quoted, Param};
use super::DigestError;

/// Quality of protection. Only `auth` is implemented (`auth-int` would hash the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    Auth,
}

/// Digest credentials as a client sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The `uri` the response covers (the Request-URI).
    pub uri: String,
    /// The response hash as sent (hex).
    pub response: String,
    /// `MD5` when absent (RFC 3261 §22.4 via RFC 2617).
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    /// `None`: the RFC 2069 form without `qop`, `nc` and `cnonce`.
    pub qop: Option<Qop>,
    /// The nonce count, sent as 8 hex digits.
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parses a `Digest ...` credentials value. `username`, `realm`, `nonce`, `uri` and
    /// `response` are required; with `qop`, so are `nc` and `cnonce`. Unknown
    /// parameters are ignored.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(value)?;
        let get = |name: &str| find_param(&params, name);
        let need = |name: &'static str| get(name).ok_or(DigestError::Missing(name));
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) => {
                return Err(DigestError::Invalid {
                    name: "qop",
                    value: q,
                })
            }
        };
        let nc = match get("nc") {
            None => None,
            Some(nc) => Some(parse_nc(&nc)?),
        };
        let response = need("response")?;
        if response.is_empty() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::Invalid {
                name: "response",
                value: response,
            });
        }
        let creds = Self {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response,
            algorithm,
            cnonce: get("cnonce"),
            opaque: get("opaque"),
            qop,
            nc,
        };
        if creds.qop.is_some() {
            if creds.nc.is_none() {
                return Err(DigestError::Missing("nc"));
            }
            if creds.cnonce.is_none() {
                return Err(DigestError::Missing("cnonce"));
            }
        }
        Ok(creds)
    }

    /// The parameters by name, for callers that need one this type does not model.
    pub fn raw_params(value: &str) -> Result<Vec<Param>, DigestError> {
        Ok(parse_scheme_params(value)?.1)
    }
}

impl fmt::Display for Credentials {
    /// The header value a client would send (used by tests and by a future client).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest ");
        let quoted = |out: &mut String, name: &str, value: &str| {
            if !out.ends_with(' ') {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push('=');
            push_quoted(out, value);
        };
        quoted(&mut out, "username", &self.username);
        quoted(&mut out, "realm", &self.realm);
        quoted(&mut out, "nonce", &self.nonce);
        quoted(&mut out, "uri", &self.uri);
        quoted(&mut out, "response", &self.response);
        if let Some(cnonce) = &self.cnonce {
            quoted(&mut out, "cnonce", cnonce);
        }
        if let Some(opaque) = &self.opaque {
            quoted(&mut out, "opaque", opaque);
        }
        out.push_str(", algorithm=");
        out.push_str(self.algorithm.as_str());
        if self.qop.is_some() {
            out.push_str(", qop=auth");
        }
        if let Some(nc) = self.nc {
            out.push_str(&format!(", nc={nc:08x}"));
        }
        f.write_str(&out)
    }
}

/// `nc-value = 8LHEX`.
fn parse_nc(s: &str) -> Result<u32, DigestError> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::Invalid {
            name: "nc",
            value: s.to_owned(),
        });
    }
    u32::from_str_radix(s, 16).map_err(|_| DigestError::Invalid {
        name: "nc",
        value: s.to_owned(),
    })
}
