//! The admin HTTP listener: `GET /health`, `GET /metrics` (Prometheus text format) and
//! the JSON API the `herald` command uses (`GET /api/status`, `GET /api/sessions`,
//! `POST /api/sessions/kick`, see [`crate::admin_api`]). A deliberately tiny HTTP/1.1
//! responder: one bounded request per connection ([`crate::admin_http`]), a timeout for
//! the whole exchange, no keep-alive.
//!
//! Everything but `/health` needs `Authorization: Bearer <token>`, the token being the
//! content of the admin token file (generated on first start, mode 0600; Prometheus
//! reads it with `authorization.credentials_file`). `/health` answers without it and
//! says only whether the server is up, for load balancers and service managers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::admin_http::{parse, HttpError, Parsed, Request, MAX_BODY, MAX_HEAD};
use crate::error::EdgeError;

/// Pause after a failed accept (out of descriptors): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long one connection may take, from accept to the last byte of the answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A token file shorter than this is refused (a generated token has 64 characters).
const MIN_TOKEN_LEN: usize = 16;

/// What the status endpoint reports besides the core's own state.
#[derive(Debug, Clone, Default)]
pub struct AdminInfo {
    /// Listening sockets by kind (`c2s-starttls`, `c2s-direct-tls`, `admin`).
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// The database file.
    pub database: PathBuf,
}

/// The state every admin request sees.
pub(crate) struct AdminCtx {
    pub(crate) server: Arc<Server>,
    pub(crate) info: AdminInfo,
    pub(crate) started: Instant,
    token: Arc<str>,
}

/// The admin token from `path`, created with a random value when the file is missing.
pub fn load_or_create_token(path: &Path) -> Result<String, EdgeError> {
    let token = crate::secrets::load_or_create(path)?;
    if token.len() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
        return Err(EdgeError::DataDir {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the admin token must be at least {MIN_TOKEN_LEN} characters without spaces"
                ),
            ),
        });
    }
    Ok(token)
}

/// Bind the admin listener; the task ends at shutdown. `info.listeners` gets the admin
/// listener's own address added.
pub async fn serve(
    server: Arc<Server>,
    addr: SocketAddr,
    token: String,
    mut info: AdminInfo,
) -> Result<(SocketAddr, JoinHandle<()>), EdgeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| EdgeError::Admin { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| EdgeError::Admin { addr, source })?;
    info.listeners.push(("admin", local));
    let mut shutdown = server.shutdown_signal();
    let ctx = Arc::new(AdminCtx {
        server,
        info,
        started: Instant::now(),
        token: token.into(),
    });
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = herald_core::server::stopping(&mut shutdown) => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, respond(&ctx, stream)).await;
            });
        }
    });
    Ok((local, task))
}

/// Whether the request head carries `Authorization: Bearer <token>`.
fn authorized(head: &str, token: &str) -> bool {
    head.lines().skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return false;
        }
        let mut parts = value.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(scheme), Some(given), None) if scheme.eq_ignore_ascii_case("bearer") => {
                constant_time_eq(given.as_bytes(), token.as_bytes())
            }
            _ => false,
        }
    })
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Read one request, within the limits.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Result<Request, HttpError>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf) {
            Parsed::Done(req) => return Ok(Ok(req)),
            Parsed::Refused(e) => return Ok(Err(e)),
            // parse() refuses a head over MAX_HEAD and a body over MAX_BODY: the buffer
            // stays below their sum plus one read.
            Parsed::Incomplete => debug_assert!(buf.len() <= MAX_HEAD + MAX_BODY + chunk.len()),
        }
    }
}

async fn respond(ctx: &AdminCtx, mut stream: TcpStream) -> std::io::Result<()> {
    let req = match read_request(&mut stream).await? {
        Ok(req) => req,
        Err(e) => {
            return write(
                &mut stream,
                e.status(),
                "text/plain",
                &format!("{}\n", e.message()),
            )
            .await
        }
    };
    let (method, path) = (req.method.as_str(), req.path.as_str());
    if (method, path) == ("GET", "/health") {
        let body = if ctx.server.is_shutting_down() {
            "{\"status\":\"stopping\"}\n"
        } else {
            "{\"status\":\"ok\"}\n"
        };
        return write(&mut stream, "200 OK", "application/json", body).await;
    }
    let Some(allow) = method_of(path) else {
        return write(&mut stream, "404 Not Found", "text/plain", "not found\n").await;
    };
    if !authorized(&req.head, &ctx.token) {
        return write_with(
            &mut stream,
            "401 Unauthorized",
            "WWW-Authenticate: Bearer realm=\"herald admin\"\r\n",
            "text/plain",
            "a bearer token is required (see the admin token file)\n",
        )
        .await;
    }
    match (method, path) {
        ("GET", "/metrics") => {
            write(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &ctx.server.metrics.render(),
            )
            .await
        }
        ("GET", "/api/status") => {
            let (status, body) = crate::admin_api::status(ctx);
            write(&mut stream, status, "application/json", &body).await
        }
        ("GET", "/api/sessions") => {
            let (status, body) = crate::admin_api::sessions(ctx, &req);
            write(&mut stream, status, "application/json", &body).await
        }
        ("POST", "/api/sessions/kick") => {
            let (status, body) = crate::admin_api::kick(ctx, &req).await;
            write(&mut stream, status, "application/json", &body).await
        }
        ("POST", "/api/users/remove") => {
            let (status, body) = crate::admin_api::remove_user(ctx, &req).await;
            write(&mut stream, status, "application/json", &body).await
        }
        ("POST", "/api/users/end-sessions") => {
            let (status, body) = crate::admin_api::end_sessions(ctx, &req).await;
            write(&mut stream, status, "application/json", &body).await
        }
        _ => {
            write_with(
                &mut stream,
                "405 Method Not Allowed",
                &format!("Allow: {allow}\r\n"),
                "text/plain",
                &format!("{allow} only\n"),
            )
            .await
        }
    }
}

/// The method a known path takes; `None` for an unknown path.
fn method_of(path: &str) -> Option<&'static str> {
    match path {
        "/metrics" | "/api/status" | "/api/sessions" => Some("GET"),
        "/api/sessions/kick" | "/api/users/remove" | "/api/users/end-sessions" => Some("POST"),
        _ => None,
    }
}

async fn write(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    write_with(stream, status, "", ctype, body).await
}

/// `extra` is zero or more complete header lines.
async fn write_with(
    stream: &mut TcpStream,
    status: &str,
    extra: &str,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    let resp = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_found_and_compared_exactly() {
        let t = "0123456789abcdef0123";
        assert!(authorized(
            &format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer {t}\r\n"),
            t
        ));
        assert!(authorized(
            &format!("GET /metrics HTTP/1.1\r\nhost: x\r\nauthorization:  bearer {t} \r\n"),
            t
        ));
        assert!(!authorized("GET /metrics HTTP/1.1\r\nHost: x\r\n", t));
        assert!(!authorized(
            &format!("GET /metrics HTTP/1.1\r\nAuthorization: Basic {t}\r\n"),
            t
        ));
        assert!(!authorized(
            &format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer {t}0\r\n"),
            t
        ));
        assert!(!authorized(
            "GET /metrics HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef0124\r\n",
            t
        ));
        // The request line itself is not a header.
        assert!(!authorized(&format!("Authorization: Bearer {t}\r\n"), t));
    }

    #[test]
    fn token_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("herald-admin-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("admin.token");
        let first = load_or_create_token(&path).expect("create");
        assert_eq!(first.len(), 64);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_token(&path).expect("reuse"), first);
        std::fs::write(&path, "short\n").expect("write");
        let err = load_or_create_token(&path)
            .expect_err("too short")
            .to_string();
        assert!(
            err.contains("admin.token") && err.contains("at least 16"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
