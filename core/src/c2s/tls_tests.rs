//! The unbuffered TLS stream against rustls' own client on loopback: records cut at
//! any point, application data pipelined behind the handshake, key updates, clean
//! close, TLS 1.2, and garbage.

use std::io::Write as _;
use std::sync::Arc;

use herald_certs::{
    client_config, ensure_dev_pki, load_identity, read_certs, server_config, SniStore,
};
use rustls::{ClientConfig, ClientConnection, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::TlsStream;

struct Pki {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    roots: rustls::RootCertStore,
}

fn pki() -> Pki {
    let dir = std::env::temp_dir().join(format!(
        "herald-tls-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let files = ensure_dev_pki(&dir, &["localhost".to_string()]).expect("dev pki");
    let identity = load_identity(&files.cert, &files.key).expect("identity");
    let server = server_config(Arc::new(SniStore::new(identity)), &[]).expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(&files.ca_cert).expect("CA file") {
        roots.add(cert).expect("CA certificate");
    }
    let client = client_config(&[files.ca_cert], None, &[]).expect("client config");
    let _ = std::fs::remove_dir_all(&dir);
    Pki {
        server,
        client,
        roots,
    }
}

/// rustls' buffered client driven by hand, so a test decides how bytes are cut.
struct Client {
    tcp: TcpStream,
    tls: ClientConnection,
}

impl Client {
    /// Connect and run the handshake up to (not including) sending the client's
    /// Finished, which stays queued.
    async fn connect(addr: std::net::SocketAddr, config: Arc<ClientConfig>) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let tls =
            ClientConnection::new(config, "localhost".try_into().expect("name")).expect("client");
        let mut c = Self { tcp, tls };
        while c.tls.is_handshaking() {
            c.send_queued().await;
            c.receive(&mut Vec::new()).await;
        }
        c
    }

    /// Write everything rustls has queued, in one write.
    async fn send_queued(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).expect("write_tls");
        }
        self.tcp.write_all(&out).await.expect("send");
    }

    /// Read one segment, keeping the application data it carried.
    async fn receive(&mut self, data: &mut Vec<u8>) {
        let mut buf = vec![0; 32 * 1024];
        let n = self.tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "server closed the connection");
        // read_tls takes a few KiB per call, and its plaintext buffer must be drained.
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            self.tls.read_tls(&mut rest).expect("read_tls");
            self.tls
                .process_new_packets()
                .expect("client-side TLS error");
            let mut chunk = vec![0; 64 * 1024];
            while let Ok(k) = std::io::Read::read(&mut self.tls.reader(), &mut chunk) {
                if k == 0 {
                    break;
                }
                data.extend_from_slice(&chunk[..k]);
            }
        }
    }

    /// Read until `n` bytes of application data arrived.
    async fn receive_data(&mut self, n: usize) -> Vec<u8> {
        let mut data = Vec::new();
        while data.len() < n {
            self.receive(&mut data).await;
        }
        data
    }
}

/// Read application data on the server side until `n` bytes arrived or the stream ended.
async fn server_read(tls: &mut TlsStream, n: usize) -> (Vec<u8>, bool) {
    let mut scratch = vec![0; 32 * 1024];
    let mut data = Vec::new();
    let mut wire = Vec::new();
    while data.len() < n {
        let more = std::future::poll_fn(|cx| {
            tls.poll_read_with(cx, &mut scratch, &mut wire, &mut |b| {
                data.extend_from_slice(b)
            })
        })
        .await
        .expect("server read");
        if !wire.is_empty() {
            server_write_raw(tls, &wire).await;
            wire.clear();
        }
        if !more {
            return (data, false);
        }
    }
    (data, true)
}

async fn server_write_raw(tls: &mut TlsStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = tls.write(bytes).await.expect("server write");
        bytes = &bytes[n..];
    }
}

async fn server_send(tls: &mut TlsStream, data: &[u8]) {
    let mut wire = Vec::new();
    tls.seal(data, &mut wire).expect("seal");
    server_write_raw(tls, &wire).await;
}

async fn listen(
    config: Arc<ServerConfig>,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<TlsStream>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        TlsStream::accept(tcp, config).await
    });
    (addr, task)
}

#[tokio::test]
async fn data_pipelined_behind_finished_is_delivered() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let mut client = Client::connect(addr, pki.client).await;
    // Finished and the first application bytes leave in one segment.
    client
        .tls
        .writer()
        .write_all(b"<stream:stream>")
        .expect("queue");
    client.send_queued().await;
    let mut tls = server.await.expect("join").expect("handshake");
    let (data, open) = server_read(&mut tls, 15).await;
    assert_eq!(data, b"<stream:stream>");
    assert!(open);
    assert!(tls.early.is_empty());
}

#[tokio::test]
async fn records_cut_into_single_bytes_are_reassembled() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let mut client = Client::connect(addr, pki.client).await;
    client.send_queued().await;
    let mut tls = server.await.expect("join").expect("handshake");

    let message: Vec<u8> = (0..400u32).map(|i| b'a' + (i % 26) as u8).collect();
    client.tls.writer().write_all(&message).expect("queue");
    let mut wire = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut wire).expect("write_tls");
    }
    let writer = tokio::spawn(async move {
        for byte in wire {
            client.tcp.write_all(&[byte]).await.expect("send");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        client
    });
    let (data, _) = server_read(&mut tls, message.len()).await;
    assert_eq!(data, message);
    // Once the last record is complete the connection holds no ciphertext buffer.
    assert_eq!(tls.pending.capacity(), 0);
    drop(writer.await.expect("writer"));
}

#[tokio::test]
async fn full_size_records_and_a_key_update_both_ways() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let mut client = Client::connect(addr, pki.client).await;
    client.send_queued().await;
    let mut tls = server.await.expect("join").expect("handshake");

    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in big.chunks(16 * 1024) {
        client.tls.writer().write_all(chunk).expect("queue");
        client.send_queued().await;
    }
    let (data, _) = server_read(&mut tls, big.len()).await;
    assert_eq!(data, big);

    // The client rotates its keys and asks the server to rotate too.
    client.tls.refresh_traffic_keys().expect("key update");
    client.tls.writer().write_all(b"after").expect("queue");
    client.send_queued().await;
    let (data, _) = server_read(&mut tls, 5).await;
    assert_eq!(data, b"after");

    // The client reads while the server writes: 100 KB need not fit in socket buffers.
    let want = big.len() + 7;
    let reader = tokio::spawn(async move { client.receive_data(want).await });
    server_send(&mut tls, &big).await;
    server_send(&mut tls, b"<done/>").await;
    let got = reader.await.expect("client reader");
    assert_eq!(&got[..big.len()], &big[..]);
    assert_eq!(&got[big.len()..], b"<done/>");
}

#[tokio::test]
async fn close_notify_ends_the_stream() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let mut client = Client::connect(addr, pki.client).await;
    client.tls.writer().write_all(b"bye").expect("queue");
    client.tls.send_close_notify();
    client.send_queued().await;
    let mut tls = server.await.expect("join").expect("handshake");
    let (data, open) = server_read(&mut tls, usize::MAX).await;
    assert_eq!(data, b"bye");
    assert!(!open, "close_notify must read as end of stream");
    // The server answers with its own close_notify.
    let mut wire = Vec::new();
    tls.close_notify(&mut wire).expect("close_notify");
    assert!(!wire.is_empty());
}

#[tokio::test]
async fn tls12_clients_are_served() {
    let pki = pki();
    let tls12 = ClientConfig::builder_with_provider(herald_certs::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("versions")
        .with_root_certificates(pki.roots)
        .with_no_client_auth();
    let (addr, server) = listen(pki.server).await;
    let mut client = Client::connect(addr, Arc::new(tls12)).await;
    client.tls.writer().write_all(b"ping").expect("queue");
    client.send_queued().await;
    let mut tls = server.await.expect("join").expect("handshake");
    let (data, _) = server_read(&mut tls, 4).await;
    assert_eq!(data, b"ping");
    server_send(&mut tls, b"pong").await;
    assert_eq!(client.receive_data(4).await, b"pong");
    assert_eq!(
        client.tls.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[tokio::test]
async fn a_peer_that_does_not_speak_tls_fails_the_handshake() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"<?xml version='1.0'?><stream:stream to='localhost'>")
        .await
        .expect("send");
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("the handshake must fail, not wait")
        .expect("join");
    assert!(result.is_err());
}

#[tokio::test]
async fn a_peer_that_hangs_up_mid_handshake_is_an_error() {
    let pki = pki();
    let (addr, server) = listen(pki.server).await;
    let tcp = TcpStream::connect(addr).await.expect("connect");
    drop(tcp);
    let result = server.await.expect("join");
    assert_eq!(
        result.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::UnexpectedEof)
    );
}
