#![no_main]
//! A TLS session never panics and keeps its buffers bounded, whatever it is
//! fed and however the input is cut:
//! - mode 0: arbitrary bytes to a fresh server (ClientHello parsing, SNI);
//! - mode 1: arbitrary bytes to a client that sent its ClientHello;
//! - mode 2: after a real handshake with rustls' client (TLS 1.3 or 1.2),
//!   arbitrary records protected with the client's keys (post-handshake
//!   messages such as several KeyUpdates in one record), interleaved with
//!   seal, key update and close calls.

use std::sync::{Arc, OnceLock};

use herald_certs::tls::{TlsLimits, TlsSession};
use libfuzzer_sys::fuzz_target;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use rustls::crypto::ring::cipher_suite;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ConnectionTrafficSecrets, ServerConfig};

struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// TLS 1.3 and TLS 1.2 clients (AES-128-GCM) that hand out their keys.
    extract13: Arc<ClientConfig>,
    extract12: Arc<ClientConfig>,
}

fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("herald-fuzz-tls-{}", std::process::id()));
        let pki = herald_certs::ensure_dev_pki(&dir, &["localhost".to_owned()]).expect("pki");
        let identity = herald_certs::load_identity(&pki.cert, &pki.key).expect("identity");
        let server =
            herald_certs::server_config(Arc::new(herald_certs::SniStore::new(identity)), &[])
                .expect("server");
        let client = herald_certs::client_config(&[pki.ca_cert.clone()], None, &[]).expect("client");
        let mut roots = rustls::RootCertStore::empty();
        for cert in herald_certs::read_certs(&pki.ca_cert).expect("ca") {
            roots.add(cert).expect("root");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let extracting = |version: &'static rustls::SupportedProtocolVersion, suite| {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites = vec![suite];
            let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[version])
                .expect("versions")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.enable_secret_extraction = true;
            Arc::new(config)
        };
        let extract13 = extracting(&rustls::version::TLS13, cipher_suite::TLS13_AES_128_GCM_SHA256);
        let extract12 = extracting(
            &rustls::version::TLS12,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        );
        Configs {
            server,
            client,
            extract13,
            extract12,
        }
    })
}

/// Cuts input into pieces of pseudo-random sizes.
struct Cutter {
    state: u32,
    max: usize,
}

impl Cutter {
    fn new(seed: u8) -> Self {
        let max = [1, 7, 64, 700, 20_000, usize::MAX][usize::from(seed % 6)];
        Self {
            state: u32::from(seed).wrapping_mul(2_654_435_761) | 1,
            max,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        if self.max == usize::MAX {
            return usize::MAX;
        }
        1 + self.state as usize % self.max
    }
}

fn small_limits() -> TlsLimits {
    let mut limits = TlsLimits::default();
    limits.max_held_plaintext = 4096;
    limits.max_outgoing = 256 * 1024;
    limits
}

/// Feed `data` cut up; check the bounds after every call.
fn feed(session: &mut TlsSession, data: &[u8], cutter: &mut Cutter, hold: bool) {
    let mut rest = data;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(cutter.next().min(rest.len()));
        rest = tail;
        let mut scratch = piece.to_vec();
        let result = if hold {
            session.feed_hold(&mut scratch)
        } else {
            session.feed(&mut scratch, &mut |_| {})
        };
        check(session);
        if result.is_err() {
            // Failed for good: the same error, no panic, no input kept.
            let again = session.feed(&mut scratch, &mut |_| {});
            assert_eq!(again.err(), result.err());
            let _ = session.close();
            let _ = session.seal(b"x");
            check(session);
            return;
        }
        // The driver writes what was queued.
        let n = session.outgoing().len();
        session.consume_outgoing(n);
    }
}

fn check(session: &TlsSession) {
    let limits = session.limits();
    assert!(session.pending_len() <= limits.max_handshake_buffer.max(limits.max_pending));
    assert!(session.held_plaintext_len() <= limits.max_held_plaintext);
    assert!(session.outgoing().len() <= limits.max_outgoing);
    if session.error().is_some() {
        assert_eq!(session.pending_len(), 0);
        assert!(!session.is_handshaking());
    }
}

/// Protects records as the client would (AES-128-GCM, TLS 1.3 or 1.2).
struct Sealer {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls13: bool,
}

impl Sealer {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets), tls13: bool) -> Option<Self> {
        let ConnectionTrafficSecrets::Aes128Gcm { key, iv } = secrets else {
            return None;
        };
        let mut iv_bytes = [0; 12];
        iv_bytes.copy_from_slice(iv.as_ref());
        Some(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key.as_ref()).ok()?),
            iv: iv_bytes,
            seq,
            tls13,
        })
    }

    fn seal(&mut self, typ: u8, payload: &[u8]) -> Vec<u8> {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        let nonce = Nonce::assume_unique_for_key(nonce);
        if self.tls13 {
            let mut inner = payload.to_vec();
            inner.push(typ);
            let len = (inner.len() + 16) as u16;
            let header = [23, 3, 3, (len >> 8) as u8, len as u8];
            self.key
                .seal_in_place_append_tag(nonce, Aad::from(header), &mut inner)
                .expect("seal");
            [header.to_vec(), inner].concat()
        } else {
            let explicit = nonce.as_ref()[4..].to_vec();
            let mut aad = [0; 13];
            aad[..8].copy_from_slice(&(self.seq - 1).to_be_bytes());
            aad[8] = typ;
            aad[9] = 3;
            aad[10] = 3;
            aad[11..].copy_from_slice(&(payload.len() as u16).to_be_bytes());
            let mut body = payload.to_vec();
            self.key
                .seal_in_place_append_tag(nonce, Aad::from(aad), &mut body)
                .expect("seal");
            let body = [explicit, body].concat();
            let len = body.len() as u16;
            [vec![typ, 3, 3, (len >> 8) as u8, len as u8], body].concat()
        }
    }
}

/// Our server after a handshake with rustls' client, and the client's sealer.
fn established(tls13: bool) -> Option<(TlsSession, Sealer)> {
    let configs = configs();
    let config = if tls13 { &configs.extract13 } else { &configs.extract12 };
    let name = ServerName::try_from("localhost").ok()?;
    let mut client = rustls::ClientConnection::new(Arc::clone(config), name).ok()?;
    let mut server = TlsSession::server(Arc::clone(&configs.server))
        .ok()?
        .with_limits(small_limits());
    for _ in 0..8 {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).ok()?;
        }
        server.feed(&mut to_server, &mut |_| {}).ok()?;
        let to_client = server.outgoing().to_vec();
        server.consume_outgoing(to_client.len());
        let mut rest = to_client.as_slice();
        while !rest.is_empty() {
            client.read_tls(&mut rest).ok()?;
            client.process_new_packets().ok()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            let secrets = client.dangerous_extract_secrets().ok()?;
            return Some((server, Sealer::new(secrets.tx, tls13)?));
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let [mode, seed, rest @ ..] = data else {
        return;
    };
    let mut cutter = Cutter::new(*seed);
    let configs = configs();
    match mode % 3 {
        0 => {
            let mut server = TlsSession::server(Arc::clone(&configs.server))
                .expect("server")
                .with_limits(small_limits());
            feed(&mut server, rest, &mut cutter, seed & 0x80 != 0);
        }
        1 => {
            let name = ServerName::try_from("localhost").expect("name");
            let mut client = TlsSession::client(Arc::clone(&configs.client), name)
                .expect("client")
                .with_limits(small_limits());
            let n = client.outgoing().len();
            client.consume_outgoing(n);
            feed(&mut client, rest, &mut cutter, false);
        }
        _ => {
            let Some((mut server, mut sealer)) = established(mode & 4 == 0) else {
                return;
            };
            // Records: [op][len][payload]; op picks the content type or an action.
            let mut wire = Vec::new();
            let mut input = rest;
            while let [op, len, tail @ ..] = input {
                let len = usize::from(*len).min(tail.len());
                let (payload, tail) = tail.split_at(len);
                input = tail;
                match op % 8 {
                    0 => wire.extend_from_slice(payload),
                    1 | 2 => wire.extend_from_slice(&sealer.seal(22, payload)),
                    3 => wire.extend_from_slice(&sealer.seal(23, payload)),
                    4 => wire.extend_from_slice(&sealer.seal(21, payload)),
                    5 => wire.extend_from_slice(&sealer.seal(*op, payload)),
                    6 => {
                        feed(&mut server, &wire, &mut cutter, false);
                        wire.clear();
                        let _ = server.seal(payload);
                        let _ = server.refresh_traffic_keys();
                        check(&server);
                    }
                    _ => {
                        feed(&mut server, &wire, &mut cutter, false);
                        wire.clear();
                        let _ = server.close();
                        check(&server);
                    }
                }
            }
            feed(&mut server, &wire, &mut cutter, false);
        }
    }
});
