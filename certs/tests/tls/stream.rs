//! The async adapter over `tokio::io::duplex`, against rustls' buffered
//! client driven by hand and against itself. Time is virtual where it matters.

use std::future::poll_fn;
use std::io::{Read, Write};
use std::task::Poll;
use std::time::Duration;

use herald_certs::tls::{TlsError, TlsStream};
use rustls::crypto::ring::cipher_suite;
use rustls::{AlertDescription, ClientConnection};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::pattern;
use crate::pki::{localhost, Options, TLS12, TLS13};

/// rustls' buffered client over a duplex stream.
struct Client {
    io: DuplexStream,
    tls: ClientConnection,
}

impl Client {
    fn new(io: DuplexStream, options: &Options) -> Self {
        let mut tls = ClientConnection::new(options.client(), localhost()).expect("client");
        tls.set_buffer_limit(None);
        Self { io, tls }
    }

    async fn send_queued(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).expect("write_tls");
        }
        self.io.write_all(&out).await.expect("send");
    }

    /// Read once; Ok(plaintext), empty at end of stream.
    async fn receive(&mut self) -> Result<Vec<u8>, rustls::Error> {
        let mut buf = vec![0; 32 * 1024];
        let n = self.io.read(&mut buf).await.expect("read");
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut rest = &buf[..n];
        let mut plain = Vec::new();
        while !rest.is_empty() {
            self.tls.read_tls(&mut rest).expect("read_tls");
            let state = self.tls.process_new_packets()?;
            let mut chunk = vec![0; state.plaintext_bytes_to_read()];
            self.tls.reader().read_exact(&mut chunk).expect("plaintext");
            plain.extend_from_slice(&chunk);
        }
        Ok(plain)
    }

    /// Handshake; `pipelined` is sent in the same write as the Finished.
    async fn handshake(&mut self, pipelined: &[u8]) -> Result<(), rustls::Error> {
        while self.tls.is_handshaking() {
            self.send_queued().await;
            self.receive().await?;
        }
        self.tls.writer().write_all(pipelined).expect("queue");
        self.send_queued().await;
        Ok(())
    }

    async fn receive_exactly(&mut self, n: usize) -> Vec<u8> {
        let mut data = Vec::new();
        while data.len() < n {
            let more = self.receive().await.expect("client read");
            assert!(!more.is_empty() || self.tls.wants_read(), "ended early");
            data.extend_from_slice(&more);
        }
        data
    }
}

/// Read until `n` bytes arrived or the stream ended.
async fn server_read(stream: &mut TlsStream<DuplexStream>, n: usize) -> (Vec<u8>, bool) {
    let mut scratch = vec![0; 32 * 1024];
    let mut data = Vec::new();
    while data.len() < n {
        let more = stream
            .read_with(&mut scratch, |p| data.extend_from_slice(p))
            .await
            .expect("server read");
        stream.flush().await.expect("flush");
        if !more {
            return (data, false);
        }
    }
    (data, true)
}

fn tls_error(error: &std::io::Error) -> Option<&TlsError> {
    error.get_ref().and_then(|e| e.downcast_ref::<TlsError>())
}

#[tokio::test]
async fn a_session_end_to_end() {
    for versions in [TLS13, TLS12] {
        let options = Options::default().versions(versions);
        let (a, b) = duplex(4096);
        let config = options.server();
        let server = tokio::spawn(async move {
            let mut stream = TlsStream::accept(b, config).await.expect("accept");
            let (data, open) = server_read(&mut stream, 100_000).await;
            assert!(open);
            stream.seal(&data).expect("seal");
            stream.flush().await.expect("flush");
            let (rest, open) = server_read(&mut stream, usize::MAX).await;
            assert!(rest.is_empty() && !open, "close_notify ends the stream");
            assert!(stream.session().peer_closed());
            stream.close().await.expect("close");
        });
        let mut client = Client::new(a, &options);
        client.handshake(b"").await.expect("handshake");
        client
            .tls
            .writer()
            .write_all(&pattern(100_000, 1))
            .expect("queue");
        // 100 KB do not fit the duplex buffer: the server reads while we send.
        client.send_queued().await;
        let got = client.receive_exactly(100_000).await;
        assert_eq!(got, pattern(100_000, 1));
        client.tls.send_close_notify();
        client.send_queued().await;
        // Our close_notify, then the end of the transport.
        assert_eq!(client.receive().await, Ok(Vec::new()));
        assert_eq!(client.io.read(&mut [0; 16]).await.expect("eof"), 0);
        assert_eq!(client.tls.reader().read(&mut [0; 16]).expect("clean"), 0);
        server.await.expect("server task");
    }
}

#[tokio::test]
async fn data_behind_the_finished_comes_with_the_first_read() {
    let options = Options::default().versions(TLS13);
    let (a, b) = duplex(64 * 1024);
    let config = options.server();
    let server = tokio::spawn(async move {
        let mut stream = TlsStream::accept(b, config).await.expect("accept");
        assert_eq!(stream.session().held_plaintext_len(), 15);
        let mut scratch = [0; 1024];
        let mut got = Vec::new();
        let more = stream
            .read_with(&mut scratch, |p| got.extend_from_slice(p))
            .await
            .expect("read");
        assert!(more);
        got
    });
    let mut client = Client::new(a, &options);
    client
        .handshake(b"<stream:stream>")
        .await
        .expect("handshake");
    assert_eq!(server.await.expect("server"), b"<stream:stream>");
}

/// The alert of a failed handshake reaches the client before the close, and
/// the server's error says why.
#[tokio::test(start_paused = true)]
async fn a_failed_handshake_sends_its_alert() {
    let server_options = Options::default()
        .versions(TLS13)
        .suites(&[cipher_suite::TLS13_AES_256_GCM_SHA384]);
    let client_options = Options::default()
        .versions(TLS13)
        .suites(&[cipher_suite::TLS13_AES_128_GCM_SHA256]);
    let (a, b) = duplex(4096);
    let config = server_options.server();
    let started = tokio::time::Instant::now();
    let server = tokio::spawn(async move { TlsStream::accept(b, config).await });
    let mut client = Client::new(a, &client_options);
    assert_eq!(
        client.handshake(b"").await,
        Err(rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure
        ))
    );
    // The client neither reads nor closes: the server gives up on its own.
    let error = server.await.expect("task").expect_err("handshake failure");
    assert!(
        matches!(tls_error(&error), Some(TlsError::Protocol(_))),
        "{error:?}"
    );
    assert!(started.elapsed() <= Duration::from_millis(1100));
    drop(client);
}

/// A peer that never reads cannot hold a failed handshake for long.
#[tokio::test(start_paused = true)]
async fn a_peer_that_never_reads_does_not_stall_the_failure() {
    let options = Options::default();
    let (mut a, b) = duplex(4);
    let config = options.server();
    let started = tokio::time::Instant::now();
    let server = tokio::spawn(async move { TlsStream::accept(b, config).await });
    // Blocks (the pipe holds 4 bytes) until the server gives up and hangs up.
    let _ = a.write_all(b"GET / HTTP/1.1\r\n").await;
    let error = server.await.expect("task").expect_err("not TLS");
    assert!(tls_error(&error).is_some(), "{error:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1) && elapsed <= Duration::from_millis(1100));
}

#[tokio::test]
async fn a_peer_that_hangs_up_mid_handshake() {
    let options = Options::default();
    let (mut a, b) = duplex(4096);
    let config = options.server();
    let server = tokio::spawn(async move { TlsStream::accept(b, config).await });
    let mut hello = Vec::new();
    ClientConnection::new(options.client(), localhost())
        .expect("client")
        .write_tls(&mut hello)
        .expect("hello");
    a.write_all(&hello[..hello.len() / 2]).await.expect("half");
    drop(a);
    let error = server.await.expect("task").expect_err("eof");
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// A KeyUpdate request makes the read return with records to flush, and the
/// flush sends the reply without any application data.
#[tokio::test]
async fn key_update_replies_are_flushed_promptly() {
    let options = Options::default().versions(TLS13);
    let (a, b) = duplex(64 * 1024);
    let config = options.server();
    let server = tokio::spawn(async move {
        let mut stream = TlsStream::accept(b, config).await.expect("accept");
        let mut scratch = [0; 4096];
        let mut got = Vec::new();
        let more = stream
            .read_with(&mut scratch, |p| got.extend_from_slice(p))
            .await
            .expect("read");
        assert!(more && got.is_empty(), "no data, but something to send");
        assert!(stream.needs_flush());
        stream.flush().await.expect("flush");
        assert!(!stream.needs_flush());
        stream
    });
    let mut client = Client::new(a, &options);
    client.handshake(b"").await.expect("handshake");
    // Session tickets first.
    let _tickets = client.receive().await.expect("tickets");
    client.tls.refresh_traffic_keys().expect("key update");
    client.send_queued().await;
    let mut stream = server.await.expect("server");
    let mut reply = vec![0; 64];
    let n = client.io.read(&mut reply).await.expect("reply");
    assert_eq!(n, 5 + 5 + 1 + 16, "one KeyUpdate record");
    client.tls.read_tls(&mut &reply[..n]).expect("read_tls");
    client
        .tls
        .process_new_packets()
        .expect("the reply decrypts");
    stream.seal(b"after").expect("seal");
    stream.flush().await.expect("flush");
    assert_eq!(client.receive().await.expect("data"), b"after");
}

/// Dropping a read or a flush part way loses nothing.
#[tokio::test]
async fn reads_and_flushes_are_cancel_safe() {
    let options = Options::default().versions(TLS13);
    let (a, b) = duplex(1024);
    let config = options.server();
    let server = tokio::spawn(async move { TlsStream::accept(b, config).await });
    let mut client = Client::new(a, &options);
    client.handshake(b"").await.expect("handshake");
    let mut stream = server.await.expect("task").expect("accept");
    let _tickets = client.receive().await.expect("tickets");

    client
        .tls
        .writer()
        .write_all(&pattern(600, 1))
        .expect("queue");
    let mut record = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut record).expect("write_tls");
    }
    client
        .io
        .write_all(&record[..300])
        .await
        .expect("first half");
    let mut scratch = vec![0; 4096];
    let mut got = Vec::new();
    // One poll takes the first half and then has to wait: drop the read there.
    let first = poll_fn(|cx| {
        Poll::Ready(stream.poll_read_with(cx, &mut scratch, &mut |p| got.extend_from_slice(p)))
    })
    .await;
    assert!(first.is_pending());
    assert_eq!(stream.session().pending_len(), 300);
    client
        .io
        .write_all(&record[300..])
        .await
        .expect("second half");
    assert!(stream
        .read_with(&mut scratch, |p| got.extend_from_slice(p))
        .await
        .expect("read"));
    assert_eq!(got, pattern(600, 1));

    // 10 KB into a 1 KiB pipe: a flush polled once writes part and is dropped.
    stream.seal(&pattern(10_000, 2)).expect("seal");
    let partial = poll_fn(|cx| Poll::Ready(stream.poll_flush(cx))).await;
    assert!(partial.is_pending());
    assert!(stream.needs_flush());
    let reader = tokio::spawn(async move {
        let got = client.receive_exactly(10_000).await;
        (client, got)
    });
    stream.flush().await.expect("flush");
    let (_client, got) = reader.await.expect("reader");
    assert_eq!(got, pattern(10_000, 2));
}

/// A protocol error while reading: the read fails, close sends the alert.
#[tokio::test]
async fn close_after_a_protocol_error_sends_the_alert() {
    let options = Options::default().versions(TLS12);
    let (a, b) = duplex(64 * 1024);
    let config = options.server();
    let server = tokio::spawn(async move {
        let mut stream = TlsStream::accept(b, config).await.expect("accept");
        let mut scratch = [0; 4096];
        let error = stream
            .read_with(&mut scratch, |_| panic!("no data"))
            .await
            .expect_err("corrupted");
        assert_eq!(
            tls_error(&error),
            Some(&TlsError::Protocol(rustls::Error::DecryptError))
        );
        stream.close().await.expect("close");
    });
    let mut client = Client::new(a, &options);
    client.handshake(b"").await.expect("handshake");
    client.tls.writer().write_all(b"<iq/>").expect("queue");
    let mut record = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut record).expect("write_tls");
    }
    let last = record.len() - 1;
    record[last] ^= 1;
    client.io.write_all(&record).await.expect("send");
    client.io.shutdown().await.expect("done sending");
    assert_eq!(
        client.receive().await,
        Err(rustls::Error::AlertReceived(AlertDescription::BadRecordMac))
    );
    server.await.expect("server");
}

#[tokio::test]
async fn our_client_and_server_over_a_duplex() {
    let options = Options::default().versions(TLS13);
    let (a, b) = duplex(2048);
    let server_config = options.server();
    let server = tokio::spawn(async move {
        let mut stream = TlsStream::accept(b, server_config).await.expect("accept");
        let (data, _) = server_read(&mut stream, 50_000).await;
        stream.seal(&data).expect("seal");
        stream.flush().await.expect("flush");
        let (_, open) = server_read(&mut stream, usize::MAX).await;
        assert!(!open);
        stream.close().await.expect("close");
    });
    let mut client = TlsStream::connect(a, options.client(), localhost())
        .await
        .expect("connect");
    assert_eq!(
        client.session().peer_certificates().map(<[_]>::len),
        Some(1)
    );
    client.seal(&pattern(50_000, 7)).expect("seal");
    client.flush().await.expect("flush");
    let (echo, open) = server_read(&mut client, 50_000).await;
    assert!(open);
    assert_eq!(echo, pattern(50_000, 7));
    client.close().await.expect("close");
    let (_, open) = server_read(&mut client, usize::MAX).await;
    assert!(!open);
    server.await.expect("server");
}
