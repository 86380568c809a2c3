//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding, server
//! side and client side.
//!
//! Passwords are prepared with the PRECIS `OpaqueString` profile (RFC 8265), which
//! replaces SASLprep. Messages are raw bytes: base64 framing of the SASL elements is the
//! caller's business.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use rand::RngCore;

use super::{SaslError, ScramHash, ScramRecord, SALT_LEN};
/// Random bytes in a nonce (base64-encoded on the wire).
const NONCE_BYTES: usize = 24;

impl ScramHash {
    /// The SASL mechanism name for this hash.
    pub fn mechanism(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The hash for a SASL mechanism name; `None` for anything else (including the
    /// `-PLUS` variants, which are not offered).
    pub fn from_mechanism(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-1" => Some(Self::Sha1),
            "SCRAM-SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// Output length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    pub(super) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Self::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.output_len()];
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// Client-side keys derived from a password.
struct Keys {
    client_key: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

fn prepare_password(password: &str) -> Result<String, SaslError> {
    <OpaqueString as PrecisFastInvocation>::enforce(password)
        .map(|p| p.into_owned())
        .map_err(|_| SaslError::InvalidPassword)
}

fn derive_keys(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Keys, SaslError> {
    if iterations == 0 {
        return Err(SaslError::MalformedRequest(
            "iteration count must be positive",
        ));
    }
    let password = prepare_password(password)?;
    let salted = hash.salted_password(password.as_bytes(), salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let server_key = hash.hmac(&salted, b"Server Key");
    Ok(Keys {
        client_key,
        stored_key,
        server_key,
    })
}

impl ScramRecord {
    /// Derives the stored credentials for `password` (prepared with OpaqueString).
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        let keys = derive_keys(hash, password, salt, iterations)?;
        Ok(Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        })
    }

    /// Derives the stored credentials for `password` with a fresh random 16-byte salt.
    pub fn generate(hash: ScramHash, password: &str, iterations: u32) -> Result<Self, SaslError> {
        let mut salt = [0u8; SALT_LEN];
        rand::fill(&mut salt[..]);
        Self::derive(hash, password, &salt, iterations)
    }
}

/// Checks a plaintext password against a stored record (used for PLAIN): derives the
/// keys with the record's salt and iteration count and compares StoredKey in constant
/// time.
pub fn verify_password(record: &ScramRecord, password: &str) -> bool {
    match derive_keys(record.hash, password, &record.salt, record.iterations) {
        Ok(keys) => ct_eq(&keys.stored_key, &record.stored_key),
        Err(_) => false,
    }
}

/// Constant-time equality for equal-length inputs (the length itself is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn random_nonce(rng: &mut (impl RngCore + ?Sized)) -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// Encodes a saslname: `,` becomes `=2C` and `=` becomes `=3D`.
fn encode_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes a saslname; any other `=` escape, an empty name or a NUL is an error.
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    if s.is_empty() {
        return Err(SaslError::MalformedRequest("empty saslname"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let esc = rest.get(pos..pos + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::MalformedRequest("invalid escape in saslname")),
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A printable nonce: `%x21-2B / %x2D-7E`, at least one character.
fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Splits an `x=value` attribute, checking the attribute name.
fn attr<'a>(field: &'a str, name: char, what: &'static str) -> Result<&'a str, SaslError> {
    let mut chars = field.chars();
    if chars.next() == Some(name) && chars.next() == Some('=') {
        Ok(&field[2..])
    } else {
        Err(SaslError::MalformedRequest(what))
    }
}

/// Optional extensions after the mandatory attributes: each must look like `a=value`.
fn check_extensions<'a>(rest: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for ext in rest {
        let b = ext.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(SaslError::MalformedRequest("invalid attribute"));
        }
    }
    Ok(())
}

fn as_text(msg: &[u8]) -> Result<&str, SaslError> {
    let s = std::str::from_utf8(msg)
        .map_err(|_| SaslError::MalformedRequest("message is not UTF-8"))?;
    if s.contains('\0') {
        return Err(SaslError::MalformedRequest("message contains NUL"));
    }
    Ok(s)
}

fn decode_b64(s: &str) -> Result<Vec<u8>, SaslError> {
    B64.decode(s).map_err(|_| SaslError::IncorrectEncoding)
}

/// What the server learned from the client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The authentication identity, saslname-decoded but not normalized.
    pub username: String,
    /// The authorization identity, if the client sent one.
    pub authzid: Option<String>,
}

enum ServerState {
    Initial,
    GotClientFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    SentServerFirst {
        gs2_header: String,
        auth_prefix: String,
        nonce: String,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
        /// False when answering with a decoy record: the proof is checked all the same,
        /// and the exchange fails.
        known: bool,
    },
    Done,
}

/// The server side of one SCRAM exchange.
///
/// Steps: [`client_first`](Self::client_first), [`server_first`](Self::server_first),
/// [`client_final`](Self::client_final). Calls out of order fail with
/// `MalformedRequest`; after an error the exchange is over.
pub struct ScramServer {
    hash: ScramHash,
    server_nonce: String,
    state: ServerState,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Starts an exchange with a server nonce of 24 bytes from `rng`, base64-encoded.
    pub fn new(hash: ScramHash, rng: &mut (impl RngCore + ?Sized)) -> Self {
        Self::with_nonce(hash, &random_nonce(rng))
    }

    /// Starts an exchange with a fixed server nonce (for test vectors). The nonce must
    /// be printable ASCII without `,`.
    pub fn with_nonce(hash: ScramHash, server_nonce: &str) -> Self {
        Self {
            hash,
            server_nonce: server_nonce.to_owned(),
            state: ServerState::Initial,
        }
    }

    /// The hash of this exchange.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// Parses the client-first-message.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<ClientFirst, SaslError> {
        if !matches!(self.state, ServerState::Initial) {
            self.state = ServerState::Done;
            return Err(SaslError::MalformedRequest(
                "unexpected client-first-message",
            ));
        }
        self.state = ServerState::Done;
        let text = as_text(msg)?;
        let mut fields = text.splitn(3, ',');
        let cbind = fields.next().unwrap_or_default();
        let authzid = fields
            .next()
            .ok_or(SaslError::MalformedRequest("missing GS2 header"))?;
        let bare = fields
            .next()
            .ok_or(SaslError::MalformedRequest("missing GS2 header"))?;
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => {
                return Err(SaslError::MalformedRequest(
                    "channel binding is not supported",
                ))
            }
            _ => return Err(SaslError::MalformedRequest("invalid channel binding flag")),
        }
        let authzid = if authzid.is_empty() {
            None
        } else {
            Some(decode_saslname(attr(authzid, 'a', "invalid authzid")?)?)
        };
        let gs2_header = text[..text.len() - bare.len()].to_owned();

        let mut attrs = bare.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(SaslError::MalformedRequest(
                "mandatory extensions are not supported",
            ));
        }
        let username = decode_saslname(attr(first, 'n', "missing username")?)?;
        let nonce = attr(attrs.next().unwrap_or_default(), 'r', "missing nonce")?;
        if !valid_nonce(nonce) {
            return Err(SaslError::MalformedRequest("invalid nonce"));
        }
        check_extensions(attrs)?;

        self.state = ServerState::GotClientFirst {
            gs2_header,
            client_first_bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
        };
        Ok(ClientFirst { username, authzid })
    }

    /// Produces the server-first-message from the user's `record`. With `None` (unknown
    /// user, or a record for another hash or with no iterations) it answers with `decoy`
    /// instead, normally [`DecoySecret::record`](super::DecoySecret::record) for the same
    /// hash and username, so that the reply has the same shape as a real one and the same
    /// salt on every attempt: users cannot be enumerated. The exchange then fails in
    /// [`client_final`](Self::client_final) with `NotAuthorized`, after the same work.
    ///
    /// Called out of order it returns an empty message and ends the exchange.
    pub fn server_first(&mut self, record: Option<&ScramRecord>, decoy: &ScramRecord) -> Vec<u8> {
        let ServerState::GotClientFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Vec::new();
        };
        let record = record.filter(|r| r.hash == self.hash && r.iterations > 0);
        let known = record.is_some();
        let used = record.unwrap_or(decoy);
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&used.salt),
            used.iterations
        );
        let auth_prefix = format!("{client_first_bare},{server_first},");
        self.state = ServerState::SentServerFirst {
            gs2_header,
            auth_prefix,
            nonce,
            stored_key: used.stored_key.clone(),
            server_key: used.server_key.clone(),
            known,
        };
        server_first.into_bytes()
    }

    /// Verifies the client-final-message (channel-binding echo, nonce and proof) and on
    /// success returns the server-final-message `v=...`.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ServerState::SentServerFirst {
            gs2_header,
            auth_prefix,
            nonce,
            stored_key,
            server_key,
            known,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(SaslError::MalformedRequest(
                "unexpected client-final-message",
            ));
        };
        let text = as_text(msg)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(SaslError::MalformedRequest("missing proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attr(
            attrs.next().unwrap_or_default(),
            'c',
            "missing channel binding",
        )?;
        let client_nonce = attr(attrs.next().unwrap_or_default(), 'r', "missing nonce")?;
        check_extensions(attrs)?;
        if decode_b64(cbind)? != gs2_header.as_bytes() {
            return Err(SaslError::MalformedRequest("channel binding mismatch"));
        }
        if client_nonce != nonce {
            return Err(SaslError::MalformedRequest("nonce mismatch"));
        }
        let proof = decode_b64(proof)?;
        if proof.len() != self.hash.output_len() {
            return Err(SaslError::MalformedRequest("proof has the wrong length"));
        }

        let auth_message = format!("{auth_prefix}{without_proof}");
        // Unknown users go through the same computation with the decoy's keys.
        let client_signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let matches = ct_eq(&self.hash.hash(&client_key), &stored_key);
        if !(matches && known) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = self.hash.hmac(&server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

enum ClientState {
    Initial,
    SentFirst { client_first_bare: String },
    SentFinal { server_signature: Vec<u8> },
    Failed,
}

/// The client side of one SCRAM exchange (used by tests and the load generator).
pub struct ScramClient {
    hash: ScramHash,
    username: String,
    password: String,
    nonce: String,
    state: ClientState,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

const GS2_HEADER: &str = "n,,";

impl ScramClient {
    /// Starts an exchange with a fresh client nonce from the thread's random generator.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        Self::with_nonce(hash, username, password, &random_nonce(&mut rand::rng()))
    }

    /// Starts an exchange with a fixed client nonce (for test vectors). The nonce must
    /// be printable ASCII without `,`.
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        Self {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            state: ClientState::Initial,
        }
    }

    /// The client-first-message `n,,n=<user>,r=<nonce>` (no channel binding, no
    /// authzid).
    pub fn client_first(&mut self) -> Vec<u8> {
        let client_first_bare = format!("n={},r={}", encode_saslname(&self.username), self.nonce);
        let msg = format!("{GS2_HEADER}{client_first_bare}");
        self.state = ClientState::SentFirst { client_first_bare };
        msg.into_bytes()
    }

    /// Handles the server-first-message and produces the client-final-message.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ClientState::SentFirst { client_first_bare } =
            std::mem::replace(&mut self.state, ClientState::Failed)
        else {
            return Err(SaslError::MalformedRequest(
                "unexpected server-first-message",
            ));
        };
        let text = as_text(msg)?;
        let mut attrs = text.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(SaslError::MalformedRequest(
                "mandatory extensions are not supported",
            ));
        }
        let nonce = attr(first, 'r', "missing nonce")?;
        let salt = attr(attrs.next().unwrap_or_default(), 's', "missing salt")?;
        let iterations = attr(
            attrs.next().unwrap_or_default(),
            'i',
            "missing iteration count",
        )?;
        check_extensions(attrs)?;
        if !valid_nonce(nonce) || !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len()
        {
            return Err(SaslError::MalformedRequest("invalid server nonce"));
        }
        let salt = decode_b64(salt)?;
        if salt.is_empty() {
            return Err(SaslError::MalformedRequest("empty salt"));
        }
        let iterations: u32 = match iterations.parse() {
            Ok(i) if i > 0 && iterations.bytes().all(|b| b.is_ascii_digit()) => i,
            _ => return Err(SaslError::MalformedRequest("invalid iteration count")),
        };

        let keys = derive_keys(self.hash, &self.password, &salt, iterations)?;
        let without_proof = format!("c={},r={nonce}", B64.encode(GS2_HEADER));
        let auth_message = format!("{client_first_bare},{text},{without_proof}");
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        self.state = ClientState::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Verifies the server-final-message: `v=<signature>` must match; `e=<error>` is
    /// reported as [`SaslError::ServerError`].
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslError> {
        let ClientState::SentFinal { server_signature } = &self.state else {
            return Err(SaslError::MalformedRequest(
                "unexpected server-final-message",
            ));
        };
        let text = as_text(msg)?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(err) = first.strip_prefix("e=") {
            return Err(SaslError::ServerError(err.to_owned()));
        }
        let signature = decode_b64(attr(first, 'v', "missing verifier")?)?;
        if ct_eq(&signature, server_signature) {
            Ok(())
        } else {
            Err(SaslError::ServerSignatureMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_round_trip() {
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        assert!(decode_saslname("a=2").is_err());
        assert!(decode_saslname("a=41").is_err());
        assert!(decode_saslname("").is_err());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
