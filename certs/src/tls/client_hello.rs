//! Reads the server name (SNI) out of the ClientHello as it arrives.
//!
//! rustls 0.23's unbuffered server connection does not expose the name the
//! client asked for, so the server side of a session watches the plaintext
//! records that open the connection, reassembles the first handshake message
//! (bounded), and extracts the `host_name` of its `server_name` extension.
//! rustls parses the same bytes; the session reports the name only once rustls
//! has accepted the handshake.

use std::net::IpAddr;

use rustls_pki_types::DnsName;

/// Record header: type, version, length.
const RECORD_HEADER: usize = 5;
/// Handshake message header: type, 24-bit length.
const HANDSHAKE_HEADER: usize = 4;
const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;
/// ClientHellos larger than this are not inspected (no name is reported).
/// Real ones are well below 4 KiB, even with post-quantum key shares.
const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Follows the first bytes of a connection until the ClientHello is complete.
#[derive(Debug, Default)]
pub(crate) struct SniSniffer {
    state: Sniff,
}

#[derive(Debug, Default)]
enum Sniff {
    /// Reading records.
    #[default]
    Start,
    /// Reading records (boxed: most of a connection's life is `Done`).
    Reading(Box<Reading>),
    /// Finished: the name found, if any.
    Done(Option<String>),
}

#[derive(Debug, Default)]
struct Reading {
    /// The current record header, while incomplete.
    header: Vec<u8>,
    /// Bytes left in the current record's body.
    body_left: usize,
    /// The handshake bytes collected so far.
    hello: Vec<u8>,
}

impl SniSniffer {
    /// A sniffer that never looks (client sessions).
    pub(crate) fn disabled() -> Self {
        Self {
            state: Sniff::Done(None),
        }
    }

    /// Is it still looking at input?
    pub(crate) fn is_active(&self) -> bool {
        !matches!(self.state, Sniff::Done(_))
    }

    /// The name once the ClientHello was read.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.state {
            Sniff::Done(name) => name.as_deref(),
            _ => None,
        }
    }

    /// Stop looking (the handshake failed or finished).
    pub(crate) fn finish(&mut self) {
        if self.is_active() {
            self.state = Sniff::Done(None);
        }
    }

    /// Look at the next received bytes, in order.
    pub(crate) fn observe(&mut self, mut input: &[u8]) {
        if matches!(self.state, Sniff::Start) {
            self.state = Sniff::Reading(Box::default());
        }
        while !input.is_empty() {
            let Sniff::Reading(reading) = &mut self.state else {
                return;
            };
            let Reading {
                header,
                body_left,
                hello,
            } = &mut **reading;
            if *body_left == 0 {
                let take = (RECORD_HEADER - header.len()).min(input.len());
                let (head, rest) = input.split_at(take);
                header.extend_from_slice(head);
                input = rest;
                if header.len() < RECORD_HEADER {
                    return;
                }
                let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
                if header[0] != CONTENT_HANDSHAKE || length == 0 {
                    self.state = Sniff::Done(None);
                    return;
                }
                header.clear();
                *body_left = length;
                continue;
            }
            let take = (*body_left).min(input.len());
            let (body, rest) = input.split_at(take);
            input = rest;
            *body_left -= take;
            hello.extend_from_slice(body);
            if let Some(done) = examine(hello) {
                self.state = Sniff::Done(done);
                return;
            }
        }
    }
}

/// Some(result) once the collected handshake bytes decide the outcome.
fn examine(hello: &[u8]) -> Option<Option<String>> {
    let (header, body) = hello.split_at_checked(HANDSHAKE_HEADER)?;
    let length =
        usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if header[0] != CLIENT_HELLO || length > MAX_CLIENT_HELLO {
        return Some(None);
    }
    if hello.len() > HANDSHAKE_HEADER + MAX_CLIENT_HELLO {
        return Some(None);
    }
    let body = body.get(..length)?;
    Some(server_name(body))
}

/// The host name of a ClientHello body's server_name extension.
fn server_name(body: &[u8]) -> Option<String> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    let mut extensions = Reader(r.vec16()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        let mut list = Reader(Reader(data).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == NAME_TYPE_HOST {
                return host_name(name);
            }
        }
        return None;
    }
    None
}

/// A DNS name as rustls reports it (lower case); IP literals are not names.
fn host_name(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.parse::<IpAddr>().is_ok() {
        return None;
    }
    let name = DnsName::try_from(text).ok()?;
    Some(name.as_ref().to_ascii_lowercase())
}

/// A cursor over TLS wire encoding; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.take(2)?;
        Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello body with the given extensions (type, data).
    fn hello_body(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        let mut ext = Vec::new();
        for (kind, data) in extensions {
            ext.extend_from_slice(&kind.to_be_bytes());
            ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
            ext.extend_from_slice(data);
        }
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        body
    }

    fn sni_ext(name: &[u8]) -> (u16, Vec<u8>) {
        let mut entry = vec![NAME_TYPE_HOST];
        entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
        entry.extend_from_slice(name);
        let mut data = (entry.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&entry);
        (EXT_SERVER_NAME, data)
    }

    /// Wrap a ClientHello body in a handshake header and records of `fragment` bytes.
    fn records(body: &[u8], fragment: usize) -> Vec<u8> {
        let mut message = vec![CLIENT_HELLO, 0];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(body);
        let mut wire = Vec::new();
        for chunk in message.chunks(fragment) {
            wire.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
            wire.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            wire.extend_from_slice(chunk);
        }
        wire
    }

    fn sniff(wire: &[u8], cut: usize) -> SniSniffer {
        let mut sniffer = SniSniffer::default();
        for piece in wire.chunks(cut) {
            sniffer.observe(piece);
        }
        sniffer
    }

    #[test]
    fn finds_the_name_across_records_and_reads() {
        let body = hello_body(&[(10, vec![0, 2, 0, 29]), sni_ext(b"Chat.Example.ORG")]);
        let wire = records(&body, 7);
        for cut in [1, 3, 5, 64, wire.len()] {
            let sniffer = sniff(&wire, cut);
            assert!(!sniffer.is_active(), "cut {cut}");
            assert_eq!(sniffer.server_name(), Some("chat.example.org"), "cut {cut}");
        }
    }

    #[test]
    fn no_extension_ip_literal_or_garbage_give_no_name() {
        for body in [hello_body(&[]), hello_body(&[sni_ext(b"127.0.0.1")])] {
            let sniffer = sniff(&records(&body, 100), 9);
            assert!(!sniffer.is_active());
            assert_eq!(sniffer.server_name(), None);
        }
        let sniffer = sniff(b"<?xml version='1.0'?>", 4);
        assert!(!sniffer.is_active());
        assert_eq!(sniffer.server_name(), None);
    }

    #[test]
    fn truncated_or_oversized_hellos_do_not_panic() {
        let body = hello_body(&[sni_ext(b"localhost")]);
        let wire = records(&body, 1000);
        for end in 0..wire.len() {
            let sniffer = sniff(&wire[..end], 3);
            assert_eq!(sniffer.server_name(), None);
        }
        // A declared length beyond the bound stops the sniffer at once.
        let sniffer = sniff(&[CONTENT_HANDSHAKE, 3, 1, 0, 4, CLIENT_HELLO, 1, 0, 0], 9);
        assert!(!sniffer.is_active());
        // Lengths that lie about their contents.
        let mut bad = body.clone();
        let last = bad.len() - 1;
        bad[last - 12] = 0xff;
        let _ = sniff(&records(&bad, 50), 2);
    }
}
