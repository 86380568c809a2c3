//! Harness for Herald's cross-crate integration tests.
//!
//! - [`TestServer`]: an in-process Herald on loopback (ephemeral ports, its own data
//!   directory, fast authentication failures), removed again when dropped.
//! - [`XmppClient`]: a small, deliberately plain XMPP client over TCP and TLS. It can
//!   log in with one call ([`XmppClient::connect_starttls`]) or stop at any negotiation
//!   step, send raw bytes, and wait for what the server sends, always with a timeout.
//!
//! The helpers panic on anything unexpected, with the tail of the server's output in
//! the message: that is what a failing test should print.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use herald_translate::sasl::{plain_encode, ScramClient, ScramHash};
use herald_translate::{ns, Element, StreamEvent, StreamHeader, StreamReader};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

mod server;
pub mod sip_client;
mod xmpp_client;
pub use server::TestServer;
pub(crate) use xmpp_client::tls_handshake;
pub use xmpp_client::{Event, Mechanism, XmppClient};

/// How long any single wait for the server may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The domain every test server hosts.
pub const DOMAIN: &str = "localhost";
/// The password of the accounts [`TestServer::add_user`] creates.
pub const PASSWORD: &str = "secret";

/// How much of the server's recent output a failure message shows.
const RECENT_BYTES: usize = 3000;

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh, not yet existing directory under the system temp dir, unique in this process.
pub fn unique_temp_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("herald-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `127.0.0.1:0`: a listener on an ephemeral loopback port.
pub fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Ports [`free_loopback_port`] hands out: below Linux's ephemeral range (32768 and
/// up), so no outgoing connection of a concurrent test can take one between the
/// choice and the bind, as it can with a port the kernel chose for `:0`.
const FIXED_PORTS: std::ops::Range<u32> = 20_000..32_000;
static NEXT_PORT: AtomicU64 = AtomicU64::new(0);

/// A loopback address for a test to listen on later (a configuration that needs the
/// port before the server starts): free when chosen, never handed out twice in this
/// process, and outside the ephemeral range.
pub fn free_loopback_port() -> SocketAddr {
    let span = u64::from(FIXED_PORTS.end - FIXED_PORTS.start);
    // Processes started one after another begin at different places.
    let start = u64::from(std::process::id()) * 7919 % span;
    for _ in 0..span {
        let n = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(u64::from(FIXED_PORTS.start) + (start + n) % span)
            .expect("the range is below 65536");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port in {FIXED_PORTS:?}");
}

fn decode_b64(text: &str) -> Vec<u8> {
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Vec::new();
    }
    B64.decode(text).expect("the server sent valid base64")
}

// ---------------------------------------------------------------------------------------
// Stanza inspection
// ---------------------------------------------------------------------------------------

/// The `<body/>` text of a message.
/// Base64 (standard alphabet, padded).
pub fn base64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

/// Decode base64 (standard alphabet); panics on bad input.
pub fn base64_decode(text: &str) -> Vec<u8> {
    B64.decode(text.trim()).expect("valid base64")
}

/// An element as XML, for messages (or why it cannot be written).
pub fn xml(el: &Element, parent_ns: &str) -> String {
    el.to_xml(parent_ns)
        .unwrap_or_else(|e| format!("<not serializable: {e}>"))
}

pub fn body_of(el: &Element) -> Option<String> {
    el.child("body", &el.ns).map(Element::text)
}

/// The defined condition of a stanza error (`<error><service-unavailable/>...`).
pub fn stanza_error(el: &Element) -> Option<String> {
    el.child("error", &el.ns)?
        .elements()
        .find(|c| c.ns == ns::STANZA_ERRORS && c.name != "text")
        .map(|c| c.name.clone())
}

/// The `type` of a stanza's `<error/>`.
pub fn stanza_error_type(el: &Element) -> Option<String> {
    el.child("error", &el.ns)?.attr("type").map(str::to_string)
}

/// Whether `el` is a presence stanza from `from` of the given type (`None`: available).
pub fn is_presence(el: &Element, from: &str, kind: Option<&str>) -> bool {
    el.is("presence", ns::CLIENT) && el.attr("from") == Some(from) && el.attr("type") == kind
}

/// Poll `check` every 10 ms until it holds; panics after [`TIMEOUT`]. For server state
/// no stanza reports (e.g. a connection the server noticed is gone).
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
