//! The client side of one XMPP login over STARTTLS: stream header, STARTTLS, TLS
//! (verified), SASL (SCRAM-SHA-1 or PLAIN), resource binding, optional legacy session,
//! roster get and initial presence.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use herald_translate::sasl::{plain_encode, ScramClient, ScramHash};
use herald_translate::{ns, Element, StreamEvent, StreamReader};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::cli::Mechanism;

/// Where a login failed, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Connect,
    Stream,
    StartTls,
    Tls,
    Sasl,
    Bind,
    Roster,
}

impl Stage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Stream => "stream",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::Sasl => "sasl",
            Self::Bind => "bind",
            Self::Roster => "roster",
        }
    }
}

/// A failed login: the stage and a short reason.
#[derive(Debug, Clone)]
pub(crate) struct LoginError {
    pub(crate) stage: Stage,
    pub(crate) reason: String,
}

impl LoginError {
    fn new(stage: Stage, reason: impl Into<String>) -> Self {
        Self {
            stage,
            reason: reason.into(),
        }
    }
}

/// What one login needs.
#[derive(Debug, Clone)]
pub(crate) struct LoginParams {
    pub(crate) server: SocketAddr,
    pub(crate) source: Option<SocketAddr>,
    pub(crate) domain: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) resource: String,
    pub(crate) mechanism: Mechanism,
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// A roster item: bare JID and subscription state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RosterItem {
    pub(crate) jid: String,
    pub(crate) subscription: String,
}

/// A bound session, after the roster get and initial presence.
pub(crate) struct Session {
    pub(crate) conn: Conn<TlsStream<TcpStream>>,
    pub(crate) jid: String,
    pub(crate) roster: Vec<RosterItem>,
}

/// A stream plus its XML reader.
pub(crate) struct Conn<S> {
    pub(crate) io: S,
    pub(crate) reader: StreamReader,
    buf: Vec<u8>,
}

/// Read buffer per connection.
const READ_BUF: usize = 4096;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(io: S) -> Self {
        Self {
            io,
            reader: StreamReader::default(),
            buf: vec![0; READ_BUF],
        }
    }

    pub(crate) async fn send(&mut self, data: &str) -> std::io::Result<()> {
        self.io.write_all(data.as_bytes()).await
    }

    /// The next stream event; an error on EOF, I/O error or XML error.
    pub(crate) async fn next(&mut self) -> Result<StreamEvent, String> {
        loop {
            match self.reader.next_event() {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => return Err(format!("xml: {e}")),
            }
            let n = self
                .io
                .read(&mut self.buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by server".into());
            }
            self.reader.feed(&self.buf[..n]);
        }
    }

    /// Reads bytes once into the reader (for the session loop); 0 means EOF.
    pub(crate) async fn read_some(&mut self) -> std::io::Result<usize> {
        let n = self.io.read(&mut self.buf).await?;
        self.reader.feed(&self.buf[..n]);
        Ok(n)
    }

    /// The next top-level stanza; a stream error or close becomes an error.
    async fn stanza(&mut self, stage: Stage) -> Result<Element, LoginError> {
        match self.next().await.map_err(|e| LoginError::new(stage, e))? {
            StreamEvent::Stanza(el) => {
                if el.is("error", ns::STREAM) {
                    return Err(LoginError::new(
                        stage,
                        format!("stream error: {}", stream_error_condition(&el)),
                    ));
                }
                Ok(el)
            }
            StreamEvent::Close => Err(LoginError::new(stage, "stream closed by server")),
            StreamEvent::Open(_) => Err(LoginError::new(stage, "unexpected stream header")),
        }
    }

    /// Sends our stream header and reads the server's header and features.
    async fn open(&mut self, domain: &str, stage: Stage) -> Result<Element, LoginError> {
        self.reader.reset();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{domain}' version='1.0' xml:lang='en'>",
            ns::CLIENT,
            ns::STREAM
        );
        self.send(&header)
            .await
            .map_err(|e| LoginError::new(stage, format!("write: {e}")))?;
        match self.next().await.map_err(|e| LoginError::new(stage, e))? {
            StreamEvent::Open(h) if h.ns == ns::STREAM && h.name == "stream" => {}
            StreamEvent::Open(_) => return Err(LoginError::new(stage, "bad stream header")),
            StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => {
                return Err(LoginError::new(
                    stage,
                    format!("stream error: {}", stream_error_condition(&el)),
                ))
            }
            _ => return Err(LoginError::new(stage, "expected a stream header")),
        }
        let features = self.stanza(stage).await?;
        if !features.is("features", ns::STREAM) {
            return Err(LoginError::new(
                stage,
                format!("expected stream features, got <{}/>", features.name),
            ));
        }
        Ok(features)
    }

    async fn send_or(&mut self, stage: Stage, data: &str) -> Result<(), LoginError> {
        self.send(data)
            .await
            .map_err(|e| LoginError::new(stage, format!("write: {e}")))
    }
}

/// The defined condition of a stream error element.
pub(crate) fn stream_error_condition(el: &Element) -> String {
    el.elements()
        .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
        .map_or_else(|| "undefined".to_string(), |c| c.name.clone())
}

/// The defined condition of a stanza error (`<error><condition/></error>`).
pub(crate) fn stanza_error_condition(el: &Element) -> String {
    el.child("error", &el.ns)
        .and_then(|e| {
            e.elements()
                .find(|c| c.ns == ns::STANZA_ERRORS && c.name != "text")
        })
        .map_or_else(|| "undefined".to_string(), |c| c.name.clone())
}

async fn tcp_connect(server: SocketAddr, source: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        socket.bind(src)?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn sasl_text(el: &Element) -> Result<Vec<u8>, LoginError> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text)
        .map_err(|_| LoginError::new(Stage::Sasl, "bad base64 from server"))
}

fn sasl_failure(el: &Element) -> LoginError {
    let cond = el
        .elements()
        .find(|c| c.name != "text")
        .map_or("unknown", |c| c.name.as_str());
    LoginError::new(Stage::Sasl, format!("failure: {cond}"))
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    features: &Element,
    p: &LoginParams,
) -> Result<(), LoginError> {
    let offered: Vec<String> = features
        .child("mechanisms", ns::SASL)
        .map(|m| m.elements().map(|e| e.text().trim().to_string()).collect())
        .unwrap_or_default();
    let name = match p.mechanism {
        Mechanism::ScramSha1 => "SCRAM-SHA-1",
        Mechanism::Plain => "PLAIN",
    };
    if !offered.iter().any(|m| m == name) {
        return Err(LoginError::new(
            Stage::Sasl,
            format!("{name} not offered (offered: {})", offered.join(" ")),
        ));
    }
    let auth = |mech: &str, data: &[u8]| {
        format!(
            "<auth xmlns='{}' mechanism='{mech}'>{}</auth>",
            ns::SASL,
            B64.encode(data)
        )
    };
    match p.mechanism {
        Mechanism::Plain => {
            let msg = plain_encode(None, &p.username, &p.password);
            conn.send_or(Stage::Sasl, &auth(name, &msg)).await?;
            let el = conn.stanza(Stage::Sasl).await?;
            if el.is("success", ns::SASL) {
                Ok(())
            } else if el.is("failure", ns::SASL) {
                Err(sasl_failure(&el))
            } else {
                Err(LoginError::new(
                    Stage::Sasl,
                    format!("unexpected <{}/>", el.name),
                ))
            }
        }
        Mechanism::ScramSha1 => {
            let mut client = ScramClient::new(ScramHash::Sha1, &p.username, &p.password);
            let first = client.client_first();
            conn.send_or(Stage::Sasl, &auth(name, &first)).await?;
            let el = conn.stanza(Stage::Sasl).await?;
            if el.is("failure", ns::SASL) {
                return Err(sasl_failure(&el));
            }
            if !el.is("challenge", ns::SASL) {
                return Err(LoginError::new(
                    Stage::Sasl,
                    format!("unexpected <{}/>", el.name),
                ));
            }
            let server_first = sasl_text(&el)?;
            let final_msg = client
                .handle_server_first(&server_first)
                .map_err(|e| LoginError::new(Stage::Sasl, format!("server-first: {e}")))?;
            conn.send_or(
                Stage::Sasl,
                &format!(
                    "<response xmlns='{}'>{}</response>",
                    ns::SASL,
                    B64.encode(final_msg)
                ),
            )
            .await?;
            let el = conn.stanza(Stage::Sasl).await?;
            if el.is("failure", ns::SASL) {
                return Err(sasl_failure(&el));
            }
            if el.is("challenge", ns::SASL) {
                // Older servers send the server-final-message as a challenge and an
                // empty success afterwards.
                client
                    .verify_server_final(&sasl_text(&el)?)
                    .map_err(|e| LoginError::new(Stage::Sasl, format!("server-final: {e}")))?;
                conn.send_or(Stage::Sasl, &format!("<response xmlns='{}'/>", ns::SASL))
                    .await?;
                let el = conn.stanza(Stage::Sasl).await?;
                return if el.is("success", ns::SASL) {
                    Ok(())
                } else {
                    Err(sasl_failure(&el))
                };
            }
            if !el.is("success", ns::SASL) {
                return Err(LoginError::new(
                    Stage::Sasl,
                    format!("unexpected <{}/>", el.name),
                ));
            }
            client
                .verify_server_final(&sasl_text(&el)?)
                .map_err(|e| LoginError::new(Stage::Sasl, format!("server-final: {e}")))
        }
    }
}

/// Reads stanzas until the iq result (or error) with this id, answering nothing else.
async fn await_iq<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    id: &str,
    stage: Stage,
) -> Result<Element, LoginError> {
    // Bounded: a server flooding other stanzas before answering is still cut by the
    // caller's login timeout; this bound guards against an endless stream.
    for _ in 0..10_000 {
        let el = conn.stanza(stage).await?;
        if el.name == "iq" && el.attr("id") == Some(id) {
            return match el.attr("type") {
                Some("result") => Ok(el),
                _ => Err(LoginError::new(
                    stage,
                    format!("iq error: {}", stanza_error_condition(&el)),
                )),
            };
        }
    }
    Err(LoginError::new(stage, "no answer to iq"))
}

/// Parses the items of a roster query.
pub(crate) fn roster_items(query: &Element) -> Vec<RosterItem> {
    query
        .elements()
        .filter(|e| e.name == "item")
        .filter_map(|e| {
            Some(RosterItem {
                jid: e.attr("jid")?.to_string(),
                subscription: e.attr("subscription").unwrap_or("none").to_string(),
            })
        })
        .collect()
}

/// Logs in: returns the bound session, its roster, with initial presence sent.
pub(crate) async fn login(p: &LoginParams) -> Result<Session, LoginError> {
    let tcp = tcp_connect(p.server, p.source)
        .await
        .map_err(|e| LoginError::new(Stage::Connect, e.to_string()))?;
    let mut conn = Conn::new(tcp);
    let features = conn.open(&p.domain, Stage::Stream).await?;
    if !features.has_child("starttls", ns::TLS) {
        return Err(LoginError::new(
            Stage::StartTls,
            "server does not offer STARTTLS",
        ));
    }
    conn.send_or(Stage::StartTls, &format!("<starttls xmlns='{}'/>", ns::TLS))
        .await?;
    let el = conn.stanza(Stage::StartTls).await?;
    if !el.is("proceed", ns::TLS) {
        return Err(LoginError::new(
            Stage::StartTls,
            format!("expected <proceed/>, got <{}/>", el.name),
        ));
    }
    if conn.reader.buffered_len() != 0 {
        return Err(LoginError::new(
            Stage::StartTls,
            "data pipelined after <proceed/>",
        ));
    }
    let name = ServerName::try_from(p.domain.clone())
        .map_err(|e| LoginError::new(Stage::Tls, format!("server name: {e}")))?;
    let tls = TlsConnector::from(Arc::clone(&p.tls))
        .connect(name, conn.io)
        .await
        .map_err(|e| LoginError::new(Stage::Tls, e.to_string()))?;
    let mut conn = Conn::new(tls);

    let features = conn.open(&p.domain, Stage::Sasl).await?;
    authenticate(&mut conn, &features, p).await?;

    let features = conn.open(&p.domain, Stage::Bind).await?;
    if !features.has_child("bind", ns::BIND) {
        return Err(LoginError::new(
            Stage::Bind,
            "server does not offer resource binding",
        ));
    }
    conn.send_or(
        Stage::Bind,
        &format!(
            "<iq type='set' id='b1'><bind xmlns='{}'><resource>{}</resource></bind></iq>",
            ns::BIND,
            p.resource
        ),
    )
    .await?;
    let res = await_iq(&mut conn, "b1", Stage::Bind).await?;
    let jid = res
        .child("bind", ns::BIND)
        .and_then(|b| b.child("jid", ns::BIND))
        .map(|j| j.text().trim().to_string())
        .ok_or_else(|| LoginError::new(Stage::Bind, "bind result without a JID"))?;
    if let Some(session) = features.child("session", ns::SESSION) {
        if !session.has_child("optional", ns::SESSION) {
            conn.send_or(
                Stage::Bind,
                &format!(
                    "<iq type='set' id='s1'><session xmlns='{}'/></iq>",
                    ns::SESSION
                ),
            )
            .await?;
            await_iq(&mut conn, "s1", Stage::Bind).await?;
        }
    }

    conn.send_or(
        Stage::Roster,
        &format!(
            "<iq type='get' id='r1'><query xmlns='{}'/></iq>",
            ns::ROSTER
        ),
    )
    .await?;
    let res = await_iq(&mut conn, "r1", Stage::Roster).await?;
    let roster = res
        .child("query", ns::ROSTER)
        .map(roster_items)
        .unwrap_or_default();
    conn.send_or(Stage::Roster, "<presence/>").await?;
    Ok(Session { conn, jid, roster })
}
