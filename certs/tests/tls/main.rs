//! The TLS record layer (`herald_certs::tls`) in memory, without sockets:
//! our sessions against each other and against rustls' buffered connections,
//! records cut at every byte, crafted attacks, alerts on the wire, key
//! updates, close, limits, and the async adapter over `tokio::io::duplex`.

#![allow(unreachable_pub)]

mod alerts;
mod attacks;
mod close;
mod handshake;
mod keyupdate;
mod limits;
mod pki;
mod pump;
mod raw;
mod splits;
mod stream;

use herald_certs::tls::TlsSession;
use rustls::{ClientConnection, ServerConnection};

use pki::{localhost, Options};
use pump::Peer;

pub fn ours_server(options: &Options) -> Peer {
    Peer::Ours(TlsSession::server(options.server()).expect("server session"))
}

pub fn ours_client(options: &Options) -> Peer {
    Peer::Ours(TlsSession::client(options.client(), localhost()).expect("client session"))
}

pub fn rustls_client(options: &Options) -> Peer {
    let mut conn = ClientConnection::new(options.client(), localhost()).expect("rustls client");
    conn.set_buffer_limit(None);
    Peer::Client(conn)
}

pub fn rustls_server(options: &Options) -> Peer {
    let mut conn = ServerConnection::new(options.server()).expect("rustls server");
    conn.set_buffer_limit(None);
    Peer::Server(conn)
}

/// `n` bytes that are easy to check.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
}
