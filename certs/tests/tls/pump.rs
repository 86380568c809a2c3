//! Two TLS endpoints pumped against each other in memory, each transmission
//! cut into reads wherever a test says.

use std::io::{Read, Write};

use herald_certs::tls::{TlsError, TlsSession};
use rustls::{ClientConnection, ServerConnection};

/// The endpoint under test or a buffered rustls peer.
pub enum Peer {
    Ours(TlsSession),
    Client(ClientConnection),
    Server(ServerConnection),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PeerError {
    Ours(TlsError),
    Rustls(rustls::Error),
}

/// How transmissions are cut into reads: chunk sizes, used in turn.
#[derive(Debug, Clone)]
pub struct Cuts {
    sizes: Vec<usize>,
    next: usize,
    /// Start the pattern again with each transmission.
    per_transmission: bool,
}

impl Cuts {
    pub fn whole() -> Self {
        Self::sizes(vec![usize::MAX])
    }

    pub fn bytes() -> Self {
        Self::sizes(vec![1])
    }

    pub fn sizes(sizes: Vec<usize>) -> Self {
        let sizes = if sizes.is_empty() {
            vec![usize::MAX]
        } else {
            sizes
        };
        Self {
            sizes,
            next: 0,
            per_transmission: false,
        }
    }

    /// Cut every transmission once, `at` bytes in (or not at all if shorter).
    pub fn once_at(at: usize) -> Self {
        let mut cuts = Self::sizes(vec![at.max(1), usize::MAX]);
        cuts.per_transmission = true;
        cuts
    }

    pub fn split_pub<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        self.split(data)
    }

    fn split<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        if self.per_transmission {
            self.next = 0;
        }
        while !data.is_empty() {
            let size = self.sizes[self.next % self.sizes.len()].max(1);
            self.next += 1;
            let (piece, rest) = data.split_at(size.min(data.len()));
            pieces.push(piece);
            data = rest;
        }
        pieces
    }
}

pub struct Endpoint {
    pub peer: Peer,
    pub cuts: Cuts,
    /// Application data received.
    pub received: Vec<u8>,
    /// The first error this endpoint reported.
    pub error: Option<PeerError>,
    /// End of stream seen (close_notify).
    pub eof: bool,
    /// Every transmission this endpoint made, in order.
    pub sent: Vec<Vec<u8>>,
    /// The largest `pending` our session held between reads.
    pub max_pending: usize,
}

impl Endpoint {
    pub fn new(peer: Peer) -> Self {
        Self {
            peer,
            cuts: Cuts::whole(),
            received: Vec::new(),
            error: None,
            eof: false,
            sent: Vec::new(),
            max_pending: 0,
        }
    }

    pub fn ours(&self) -> &TlsSession {
        match &self.peer {
            Peer::Ours(session) => session,
            _ => panic!("not our session"),
        }
    }

    pub fn ours_mut(&mut self) -> &mut TlsSession {
        match &mut self.peer {
            Peer::Ours(session) => session,
            _ => panic!("not our session"),
        }
    }

    pub fn client(&mut self) -> &mut ClientConnection {
        match &mut self.peer {
            Peer::Client(conn) => conn,
            _ => panic!("not a rustls client"),
        }
    }

    pub fn is_handshaking(&self) -> bool {
        match &self.peer {
            Peer::Ours(session) => session.is_handshaking(),
            Peer::Client(conn) => conn.is_handshaking(),
            Peer::Server(conn) => conn.is_handshaking(),
        }
    }

    /// Queue application data.
    pub fn send(&mut self, data: &[u8]) {
        match &mut self.peer {
            Peer::Ours(session) => session.seal(data).expect("seal"),
            Peer::Client(conn) => conn.writer().write_all(data).expect("buffer"),
            Peer::Server(conn) => conn.writer().write_all(data).expect("buffer"),
        }
    }

    /// Queue close_notify.
    pub fn close(&mut self) {
        match &mut self.peer {
            Peer::Ours(session) => session.close().expect("close"),
            Peer::Client(conn) => conn.send_close_notify(),
            Peer::Server(conn) => conn.send_close_notify(),
        }
    }

    /// Everything this endpoint has queued for the wire.
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = match &mut self.peer {
            Peer::Ours(session) => {
                let out = session.outgoing().to_vec();
                session.consume_outgoing(out.len());
                out
            }
            Peer::Client(conn) => drain(|buf| conn.write_tls(buf)),
            Peer::Server(conn) => drain(|buf| conn.write_tls(buf)),
        };
        if !out.is_empty() {
            self.sent.push(out.clone());
        }
        out
    }

    /// Hand `data` to this endpoint, cut as configured.
    pub fn receive(&mut self, data: &[u8]) {
        for piece in self.cuts.split(data) {
            let result = match &mut self.peer {
                Peer::Ours(session) => {
                    // The caller's buffer is reused between reads, as a shared one is.
                    let mut scratch = piece.to_vec();
                    let received = &mut self.received;
                    let fed = session
                        .feed(&mut scratch, &mut |plain| received.extend_from_slice(plain))
                        .map_err(PeerError::Ours);
                    check_bounds(session);
                    self.max_pending = self.max_pending.max(session.pending_len());
                    if fed.as_ref().is_ok_and(|r| r.peer_closed) {
                        self.eof = true;
                    }
                    fed.map(drop)
                }
                Peer::Client(conn) => feed_buffered(conn, piece, &mut self.received, &mut self.eof),
                Peer::Server(conn) => feed_buffered(conn, piece, &mut self.received, &mut self.eof),
            };
            if let Err(e) = result {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// The bounds every session must keep after every call.
pub fn check_bounds(session: &TlsSession) {
    let limits = session.limits();
    assert!(session.pending_len() <= limits.max_handshake_buffer.max(limits.max_pending));
    assert!(session.held_plaintext_len() <= limits.max_held_plaintext);
    assert!(session.outgoing().len() <= limits.max_outgoing);
    if session.error().is_some() {
        assert_eq!(session.pending_len(), 0, "a failed session keeps no input");
    }
}

fn drain(mut write_tls: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    while write_tls(&mut out).expect("write_tls") > 0 {}
    out
}

fn feed_buffered<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    mut data: &[u8],
    received: &mut Vec<u8>,
    eof: &mut bool,
) -> Result<(), PeerError> {
    while !data.is_empty() {
        conn.read_tls(&mut data).expect("read_tls");
        let state = conn.process_new_packets().map_err(PeerError::Rustls)?;
        let mut buf = vec![0; state.plaintext_bytes_to_read()];
        conn.reader().read_exact(&mut buf).expect("plaintext");
        received.extend_from_slice(&buf);
        if state.peer_has_closed() {
            *eof = true;
        }
    }
    Ok(())
}

pub struct Pair {
    pub client: Endpoint,
    pub server: Endpoint,
}

impl Pair {
    pub fn new(client: Peer, server: Peer) -> Self {
        Self {
            client: Endpoint::new(client),
            server: Endpoint::new(server),
        }
    }

    pub fn with_cuts(mut self, to_server: Cuts, to_client: Cuts) -> Self {
        self.server.cuts = to_server;
        self.client.cuts = to_client;
        self
    }

    /// Move bytes both ways until neither side has anything to send.
    pub fn pump(&mut self) {
        for _ in 0..64 {
            let to_server = self.client.take_output();
            self.server.receive(&to_server);
            let to_client = self.server.take_output();
            self.client.receive(&to_client);
            if to_server.is_empty() && to_client.is_empty() {
                return;
            }
        }
        panic!("the endpoints kept talking");
    }

    /// Pump and require a completed handshake without errors.
    pub fn handshake(&mut self) {
        self.pump();
        assert_eq!(self.client.error, None, "client failed");
        assert_eq!(self.server.error, None, "server failed");
        assert!(!self.client.is_handshaking(), "client still handshaking");
        assert!(!self.server.is_handshaking(), "server still handshaking");
    }
}

/// A plaintext TLS record's content type and payload, for each record in `wire`.
pub fn records(mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while wire.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
        let end = (5 + len).min(wire.len());
        out.push((wire[0], wire[5..end].to_vec()));
        wire = &wire[end..];
    }
    out
}

/// The (level, description) of a plaintext alert record, if `wire` is one.
pub fn plaintext_alert(wire: &[u8]) -> Option<(u8, u8)> {
    match records(wire).as_slice() {
        [(21, payload)] if payload.len() == 2 => Some((payload[0], payload[1])),
        _ => None,
    }
}
