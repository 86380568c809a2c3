//! A direct-TLS (XEP-0368) listener on loopback for conformance runs
//! (interop/tlsfuzzer/run.sh): it answers an XMPP stream header with a stream
//! header and features, and a closing tag with a closing tag. Requests the
//! XMPP wrapper of tlsfuzzer leaves untranslated (`GET / HTTP/1.0\n\n` and
//! the like) get a one-line HTTP answer, so that those probes see a reply too.
//!
//! By default connections go through Herald's record layer
//! (`herald_certs::tls::TlsStream`); with `--reference` through rustls' own
//! buffered `ServerConnection`, with the same certificate and configuration,
//! so that a failure of Herald's layer can be told from a choice of rustls.
//!
//!     cargo run -p herald-certs --example tls_xmpp_probe -- [--reference] [PORT]
//!
//! The certificate is a fresh development PKI (ECDSA P-256) for `localhost`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::time::Duration;

use herald_certs::tls::TlsStream;
use herald_certs::{ensure_dev_pki, load_identity, server_config, SniStore};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};

/// Handshake bound (Herald uses its negotiation timeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection idle this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Stream text kept while looking for the header.
const MAX_TEXT: usize = 64 * 1024;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='probe' from='localhost' \
    version='1.0'><stream:features><mechanisms \
    xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>\
    </stream:features>";
const CLOSE: &str = "</stream:stream>";
const HTTP_REPLY: &str = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reference = false;
    let mut port = 5223u16;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--reference" => reference = true,
            other => port = other.parse()?,
        }
    }
    let config = probe_config()?;
    let listener = StdListener::bind(("127.0.0.1", port))?;
    println!(
        "listening on {} ({})",
        listener.local_addr()?,
        if reference {
            "reference: rustls ServerConnection"
        } else {
            "herald TlsStream"
        }
    );
    if reference {
        for tcp in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || serve_reference(tcp, config));
        }
        return Ok(());
    }
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (tcp, _) = listener.accept().await?;
            tokio::spawn(serve_herald(tcp, Arc::clone(&config)));
        }
    })
}

/// Herald's direct-TLS configuration (`xmpp-client` ALPN) on a fresh dev PKI.
fn probe_config() -> Result<Arc<ServerConfig>, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("herald-tls-probe-{}", std::process::id()));
    let pki = ensure_dev_pki(&dir, &["localhost".to_owned()])?;
    let identity = load_identity(&pki.cert, &pki.key)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(server_config(
        Arc::new(SniStore::new(identity)),
        &[b"xmpp-client"],
    )?)
}

/// What the probe says back to the stream text received so far.
#[derive(Default)]
struct Responder {
    text: Vec<u8>,
    opened: bool,
    answered_http: bool,
}

impl Responder {
    /// Reply bytes, and whether the stream is over.
    fn on_data(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        if self.text.len() + data.len() > MAX_TEXT {
            return (Vec::new(), true);
        }
        self.text.extend_from_slice(data);
        let text = String::from_utf8_lossy(&self.text).into_owned();
        let mut reply = Vec::new();
        if !self.opened {
            if let Some(start) = text.find("<stream:stream") {
                if text[start..].contains('>') {
                    self.opened = true;
                    reply.extend_from_slice(HEADER.as_bytes());
                }
            }
        }
        let http_end = text.find("\r\n\r\n").or_else(|| text.find("\n\n"));
        if !self.answered_http && text.starts_with("GET ") && http_end.is_some() {
            self.answered_http = true;
            reply.extend_from_slice(HTTP_REPLY.as_bytes());
        }
        let done = text.contains(CLOSE);
        if done {
            reply.extend_from_slice(CLOSE.as_bytes());
        }
        (reply, done)
    }
}

async fn serve_herald(tcp: TcpStream, config: Arc<ServerConfig>) {
    let _ = tcp.set_nodelay(true);
    let mut tls =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsStream::accept(tcp, config)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return eprintln!("handshake failed: {e}"),
            Err(_) => return eprintln!("handshake timed out"),
        };
    let mut responder = Responder::default();
    let mut scratch = vec![0; 32 * 1024];
    loop {
        let mut received = Vec::new();
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            tls.read_with(&mut scratch, |data| received.extend_from_slice(data)),
        )
        .await;
        if let Ok(Err(e)) = &read {
            eprintln!("read failed: {e}");
        }
        let open = matches!(read, Ok(Ok(true)));
        let (reply, done) = responder.on_data(&received);
        if !reply.is_empty() && tls.seal(&reply).is_err() {
            break;
        }
        // Records the session queued (KeyUpdate replies, alerts) go out too.
        if tls.flush().await.is_err() || !open || done {
            break;
        }
    }
    let _ = tls.close().await;
}

fn serve_reference(mut tcp: StdStream, config: Arc<ServerConfig>) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(mut conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut responder = Responder::default();
    loop {
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                return;
            }
        }
        match conn.read_tls(&mut tcp) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let state = match conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                eprintln!("failed: {e}");
                // rustls queued its alert: send it, then close like Herald does.
                while conn.wants_write() && conn.write_tls(&mut tcp).is_ok() {}
                linger(tcp);
                return;
            }
        };
        let mut received = vec![0; state.plaintext_bytes_to_read()];
        if conn.reader().read_exact(&mut received).is_err() {
            break;
        }
        let (reply, done) = responder.on_data(&received);
        if !reply.is_empty() && conn.writer().write_all(&reply).is_err() {
            break;
        }
        if done || state.peer_has_closed() {
            break;
        }
    }
    conn.send_close_notify();
    while conn.wants_write() && conn.write_tls(&mut tcp).is_ok() {}
    let _ = tcp.shutdown(Shutdown::Write);
}

/// Shut down the write side and wait (bounded) for the peer to close.
fn linger(mut tcp: StdStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0; 1024];
    let mut seen = 0;
    while seen < 64 * 1024 {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen += n,
        }
    }
}
