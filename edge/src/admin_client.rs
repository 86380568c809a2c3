//! A small blocking client of the admin API, for the `herald` command: it finds the
//! listener (`admin.listen`) and the bearer token (the admin token file) in the loaded
//! configuration, sends one request per connection and decodes the JSON answer.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::app::admin_token_path;
use crate::config::Config;
use crate::error::EdgeError;

/// How long connecting may take before the server counts as not running.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the answer may take.
const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// The admin API of the server a configuration describes.
#[derive(Debug, Clone)]
pub struct AdminClient {
    addr: SocketAddr,
    token_file: PathBuf,
}

impl AdminClient {
    /// The client for `config`; fails when the admin listener is disabled.
    pub fn from_config(config: &Config) -> Result<Self, EdgeError> {
        let listen = config.admin.listen.ok_or_else(|| {
            EdgeError::Command(
                "the admin listener is disabled (admin.listen): this command needs it".into(),
            )
        })?;
        Ok(Self {
            addr: connectable(listen),
            token_file: admin_token_path(config),
        })
    }

    /// The address the client connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET path`, the JSON answer.
    pub fn get(&self, path: &str) -> Result<Value, EdgeError> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body, the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, EdgeError> {
        self.request("POST", path, Some(&body.to_string()))
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<Value, EdgeError> {
        let not_running = || EdgeError::NotRunning { addr: self.addr };
        let mut stream =
            TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT).map_err(|_| not_running())?;
        let token = std::fs::read_to_string(&self.token_file)
            .map_err(|source| EdgeError::File {
                path: self.token_file.clone(),
                source,
            })?
            .trim()
            .to_string();
        let io = |source| EdgeError::Admin {
            addr: self.addr,
            source,
        };
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(req.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(io)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| EdgeError::Command(format!("no HTTP answer from {}", self.addr)))?;
        let json: Option<Value> = serde_json::from_str(payload).ok();
        match status {
            200..=299 => json.ok_or_else(|| {
                EdgeError::Command(format!("the admin API sent a non-JSON answer: {payload}"))
            }),
            401 => Err(EdgeError::Command(format!(
                "the admin API refused the token in {} (is it the server's token file?)",
                self.token_file.display()
            ))),
            _ => {
                let message = json
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .and_then(Value::as_str)
                    .map_or_else(|| payload.trim().to_string(), str::to_string);
                Err(EdgeError::Command(format!("{message} (HTTP {status})")))
            }
        }
    }
}

/// A wildcard listen address is reached on loopback.
fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}
