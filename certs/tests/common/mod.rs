//! Helpers shared by the integration tests: temporary directories and
//! in-memory TLS handshakes.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};

/// A fresh directory under the system temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "herald-certs-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn domains(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Which side of the handshake failed, and why.
#[derive(Debug)]
pub enum Failure {
    Client(rustls::Error),
    Server(rustls::Error),
}

/// The two ends of a completed handshake.
pub struct Established {
    pub client: ClientConnection,
    pub server: ServerConnection,
}

/// Runs a full handshake between a client (asking for `server_name`) and a
/// server, shuttling TLS records between them in memory, then exchanges one
/// application message each way.
pub fn handshake(
    client_config: Arc<ClientConfig>,
    server_config: Arc<ServerConfig>,
    server_name: &str,
) -> Result<Established, Failure> {
    let name = ServerName::try_from(server_name.to_owned()).expect("valid server name");
    let mut client = ClientConnection::new(client_config, name).map_err(Failure::Client)?;
    let mut server = ServerConnection::new(server_config).map_err(Failure::Server)?;
    for _ in 0..32 {
        let to_server = drain(|buf| client.write_tls(buf));
        feed(&to_server, &mut *server).map_err(Failure::Server)?;
        let to_client = drain(|buf| server.write_tls(buf));
        feed(&to_client, &mut *client).map_err(Failure::Client)?;
        let idle = to_server.is_empty() && to_client.is_empty();
        if idle && !client.is_handshaking() && !server.is_handshaking() {
            exchange(&mut client, &mut server)?;
            return Ok(Established { client, server });
        }
    }
    panic!("handshake did not converge");
}

/// Sends application data both ways, which also surfaces a late rejection
/// (a TLS 1.3 server checks the client certificate after the client is done).
fn exchange(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Failure> {
    use std::io::{Read, Write};
    client.writer().write_all(b"ping").expect("buffer");
    let to_server = drain(|buf| client.write_tls(buf));
    feed(&to_server, &mut *server).map_err(Failure::Server)?;
    let mut got = [0u8; 4];
    server
        .reader()
        .read_exact(&mut got)
        .expect("server reads ping");
    assert_eq!(&got, b"ping");
    server.writer().write_all(b"pong").expect("buffer");
    let to_client = drain(|buf| server.write_tls(buf));
    feed(&to_client, &mut *client).map_err(Failure::Client)?;
    client
        .reader()
        .read_exact(&mut got)
        .expect("client reads pong");
    assert_eq!(&got, b"pong");
    Ok(())
}

fn drain(mut write_tls: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut buf = Vec::new();
    while write_tls(&mut buf).expect("write_tls") > 0 {}
    buf
}

fn feed<D>(data: &[u8], conn: &mut ConnectionCommon<D>) -> Result<(), rustls::Error> {
    let mut rest = data;
    while !rest.is_empty() {
        conn.read_tls(&mut rest).expect("read_tls");
        conn.process_new_packets()?;
    }
    Ok(())
}
