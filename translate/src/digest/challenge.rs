//! The `WWW-Authenticate` / `Proxy-Authenticate` value (RFC 3261 §25.1 `challenge`,
//! RFC 7616 §3.3).

use std::fmt;

use super::compute::Algorithm;
use super::params::{find_param, parse_digest_params, push_quoted};
use super::DigestError;

/// A Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// Written always (RFC 8760 asks for it when it is not MD5; writing it for
    /// MD5 too costs nothing).
    pub algorithm: Algorithm,
    /// Whether `qop="auth"` is offered. Without it, clients answer in the RFC 2069
    /// form.
    pub qop_auth: bool,
    /// `stale=true`: the credentials were right but the nonce expired; the client
    /// retries with the new nonce without asking the user.
    pub stale: bool,
    /// `domain`, the protection space (rarely used in SIP).
    pub domain: Option<String>,
}

impl Challenge {
    /// A challenge offering `qop="auth"`, not stale, without opaque.
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>, algorithm: Algorithm) -> Self {
        Self {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm,
            qop_auth: true,
            stale: false,
            domain: None,
        }
    }

    pub fn with_opaque(mut self, opaque: impl Into<String>) -> Self {
        self.opaque = Some(opaque.into());
        self
    }

    pub fn with_stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    /// Parses a `Digest ...` challenge (as a SIP client or a test reads one). A `qop`
    /// list must name `auth` for `qop_auth`; other options are ignored.
    pub fn parse(value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(value)?;
        let get = |name: &str| find_param(&params, name);
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop_auth =
            get("qop").is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")));
        let stale = match get("stale") {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("true") => true,
            Some(s) if s.eq_ignore_ascii_case("false") => false,
            Some(s) => {
                return Err(DigestError::Invalid {
                    name: "stale",
                    value: s,
                })
            }
        };
        Ok(Self {
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale,
            domain: get("domain"),
        })
    }
}

impl fmt::Display for Challenge {
    /// `Digest realm="...", nonce="...", ...`: the header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("Digest realm=");
        push_quoted(&mut out, &self.realm);
        if let Some(domain) = &self.domain {
            out.push_str(", domain=");
            push_quoted(&mut out, domain);
        }
        out.push_str(", nonce=");
        push_quoted(&mut out, &self.nonce);
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            push_quoted(&mut out, opaque);
        }
        out.push_str(", algorithm=");
        out.push_str(self.algorithm.as_str());
        if self.qop_auth {
            out.push_str(", qop=\"auth\"");
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        f.write_str(&out)
    }
}
