//! The admin HTTP listener: `GET /health` and `GET /metrics` (Prometheus text format).
//! A deliberately tiny HTTP/1.1 responder: one bounded request per connection, a read
//! timeout, no keep-alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_core::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::EdgeError;

/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;

/// Bind the admin listener; the task ends at shutdown.
pub async fn serve(
    server: Arc<Server>,
    addr: SocketAddr,
) -> Result<(SocketAddr, JoinHandle<()>), EdgeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeError::Admin { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| EdgeError::Admin { addr, source })?;
    let mut shutdown = server.shutdown_signal();
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = herald_core::server::stopping(&mut shutdown) => return,
            };
            if let Ok((stream, _)) = accepted {
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), respond(&server, stream))
                        .await;
                });
            }
        }
    });
    Ok((local, task))
}

async fn respond(server: &Server, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return write(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "too large\n",
            )
            .await;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    match (method, path) {
        ("GET", "/health") => {
            let body = format!(
                "{{\"status\":\"{}\",\"sessions\":{}}}\n",
                if server.is_shutting_down() {
                    "stopping"
                } else {
                    "ok"
                },
                server.router.session_count()
            );
            write(&mut stream, "200 OK", "application/json", &body).await
        }
        ("GET", "/metrics") => {
            write(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &server.metrics.render(),
            )
            .await
        }
        ("GET", _) => write(&mut stream, "404 Not Found", "text/plain", "not found\n").await,
        _ => {
            write(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    }
}

async fn write(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
