//! Records crafted by hand with a rustls peer's keys, to send what no
//! well-behaved implementation sends (two KeyUpdates in one record, a
//! renegotiation, a wrong Finished) and to read the alerts that come back.

use std::sync::{Arc, Mutex};

use ring::aead::{
    Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use rustls::{ConnectionTrafficSecrets, KeyLog};

pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;

/// One direction's record protection.
pub struct RecordKeys {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls13: bool,
    /// TLS 1.2 AES-GCM carries 8 bytes of the nonce in each record.
    explicit_nonce: bool,
}

impl RecordKeys {
    /// Keys as rustls extracts them (`dangerous_extract_secrets`).
    pub fn extracted((seq, secrets): (u64, ConnectionTrafficSecrets), tls13: bool) -> Self {
        let (alg, key, iv, gcm) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv, true),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&CHACHA20_POLY1305, key, iv, false)
            }
            _ => panic!("unsupported cipher"),
        };
        let mut iv_bytes = [0; 12];
        iv_bytes.copy_from_slice(iv.as_ref());
        Self {
            key: LessSafeKey::new(UnboundKey::new(alg, key.as_ref()).expect("key")),
            iv: iv_bytes,
            seq,
            tls13,
            explicit_nonce: gcm && !tls13,
        }
    }

    /// TLS 1.3 AES-128-GCM keys derived from a traffic secret (RFC 8446 §7.3).
    pub fn tls13_from_secret(secret: &[u8]) -> Self {
        let key = expand_label(secret, b"key", 16);
        let iv = expand_label(secret, b"iv", 12);
        let mut iv_bytes = [0; 12];
        iv_bytes.copy_from_slice(&iv);
        Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).expect("key")),
            iv: iv_bytes,
            seq: 0,
            tls13: true,
            explicit_nonce: false,
        }
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    /// One protected record of content type `typ`.
    pub fn seal(&mut self, typ: u8, payload: &[u8]) -> Vec<u8> {
        let nonce = self.nonce();
        let record = if self.tls13 {
            let mut inner = payload.to_vec();
            inner.push(typ);
            let len = (inner.len() + 16) as u16;
            let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(header),
                    &mut inner,
                )
                .expect("seal");
            [header.to_vec(), inner].concat()
        } else {
            let mut body = payload.to_vec();
            self.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(self.tls12_aad(typ, payload.len())),
                    &mut body,
                )
                .expect("seal");
            if self.explicit_nonce {
                body = [nonce[4..].to_vec(), body].concat();
            }
            let len = body.len() as u16;
            [vec![typ, 3, 3, (len >> 8) as u8, len as u8], body].concat()
        };
        self.seq += 1;
        record
    }

    fn tls12_aad(&self, typ: u8, len: usize) -> [u8; 13] {
        let mut aad = [0; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = typ;
        aad[9] = 3;
        aad[10] = 3;
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aad
    }

    /// Open every record of `wire`: (content type, plaintext).
    pub fn open_all(&mut self, mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while wire.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
            let (record, rest) = wire.split_at(5 + len);
            out.push(self.open(record));
            wire = rest;
        }
        out
    }

    fn open(&mut self, record: &[u8]) -> (u8, Vec<u8>) {
        let typ = record[0];
        let mut body = record[5..].to_vec();
        let opened = if self.tls13 {
            let nonce = self.nonce();
            let mut header = [0; 5];
            header.copy_from_slice(&record[..5]);
            let mut inner = self
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(header),
                    &mut body,
                )
                .expect("open")
                .to_vec();
            while inner.last() == Some(&0) {
                inner.pop();
            }
            let inner_type = inner.pop().expect("inner type");
            (inner_type, inner)
        } else {
            let nonce = if self.explicit_nonce {
                let mut nonce = self.iv;
                nonce[4..].copy_from_slice(&body[..8]);
                body.drain(..8);
                nonce
            } else {
                self.nonce()
            };
            let aad = self.tls12_aad(typ, body.len() - 16);
            let plain = self
                .key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut body,
                )
                .expect("open")
                .to_vec();
            (typ, plain)
        };
        self.seq += 1;
        opened
    }
}

/// HKDF-Expand-Label with SHA-256 and an empty context (RFC 8446 §7.1).
fn expand_label(secret: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    struct Len(usize);
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let full_label = [b"tls13 ".as_slice(), label].concat();
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(full_label.len() as u8);
    info.extend_from_slice(&full_label);
    info.push(0);
    let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, secret);
    let mut out = vec![0; len];
    prk.expand(&[&info], Len(len))
        .expect("expand")
        .fill(&mut out)
        .expect("fill");
    out
}

/// Captures the secrets rustls logs (SSLKEYLOGFILE labels).
#[derive(Debug, Default)]
pub struct SecretLog(Mutex<Vec<(String, Vec<u8>)>>);

impl SecretLog {
    pub fn get(&self, label: &str) -> Vec<u8> {
        let log = self.0.lock().expect("log");
        log.iter()
            .rev()
            .find(|(l, _)| l == label)
            .map(|(_, secret)| secret.clone())
            .unwrap_or_else(|| panic!("no {label} logged"))
    }
}

impl KeyLog for SecretLog {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .expect("log")
            .push((label.to_owned(), secret.to_vec()));
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// A client config with `log` as its key log.
pub fn with_key_log(
    config: Arc<rustls::ClientConfig>,
    log: Arc<SecretLog>,
) -> Arc<rustls::ClientConfig> {
    let mut config = (*config).clone();
    config.key_log = log;
    Arc::new(config)
}

/// A handshake message: type, 24-bit length, body.
pub fn handshake_message(typ: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    let mut message = vec![typ, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    message.extend_from_slice(body);
    message
}
