//! A small SIP user agent for the integration tests: UDP, TCP or TLS to a Herald on
//! loopback, requests written as text (so tests can also send broken ones), messages
//! read with `herald_translate::sip`, digest answers computed with
//! `herald_translate::digest`.
//!
//! Every wait has a bounded deadline ([`SIP_PATIENCE`]) and panics with what was seen.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_translate::digest::{expected_response, ha1, Algorithm, Challenge, Credentials, Qop};
use herald_translate::sip::{parse_datagram, Frame, HeaderName, Limits, Message, StreamFramer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::{DOMAIN, PASSWORD};

/// How long any wait for the SIP service may take (generous: the tests run on a loaded
/// two-core machine).
pub const SIP_PATIENCE: Duration = Duration::from_secs(15);

/// `[sip]` on ephemeral loopback ports (UDP, TCP and TLS), for
/// [`TestServer::start_with`](crate::TestServer::start_with).
pub fn sip_on_loopback(config: &mut herald_edge::Config) {
    let any = crate::loopback_any_port();
    config.sip.listen_udp = vec![any];
    config.sip.listen_tcp = vec![any];
    config.sip.listen_tls = vec![any];
}

/// A test server with SIP on loopback and the accounts alice, bob and carol
/// (password [`PASSWORD`]); `tune` changes the configuration before it starts.
pub async fn sip_server(tune: impl FnOnce(&mut herald_edge::Config)) -> crate::TestServer {
    let ts = crate::TestServer::start_with(|c| {
        sip_on_loopback(c);
        tune(c);
    })
    .await;
    for user in ["alice", "bob", "carol"] {
        ts.add_user(user);
    }
    ts
}

impl crate::TestServer {
    /// The SIP listeners (panics when SIP is off).
    pub fn sip(&self) -> &herald_core::sip::SipListeners {
        self.sip.as_ref().expect("SIP is on")
    }

    /// A SIP client for `user` over `transport`.
    pub async fn sip_client(&self, user: &str, transport: SipTransport) -> SipClient {
        SipClient::connect(self.sip(), transport, user, &self.ca).await
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh token (tags, branches, Call-IDs), unique in this process.
pub fn token(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    pub fn via(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What [`SipClient::next`] found.
#[derive(Debug)]
pub enum SipEvent {
    Message(Message),
    /// The stream ended (TCP, TLS).
    Closed,
    Timeout,
}

/// A SIP test client for one account.
pub struct SipClient {
    conn: Conn,
    framer: StreamFramer,
    pub transport: SipTransport,
    /// The server's address.
    pub server: SocketAddr,
    /// Our local address.
    pub local: SocketAddr,
    pub user: String,
    pub password: String,
    pub domain: String,
    cseq: u32,
    /// The Call-ID of this client's REGISTERs (one registration dialog).
    pub register_call_id: String,
    /// Messages read while waiting for something else: requests, and final
    /// responses nobody waited for yet.
    pending: VecDeque<Message>,
    /// Everything received, as text, for failure messages.
    seen: Vec<String>,
    /// The nonce count of the last digest answer.
    nc: u32,
    /// Appended to our Contact header field (e.g. `;q=0.5`).
    pub contact_params: String,
}

impl std::fmt::Debug for SipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipClient")
            .field("user", &self.user)
            .field("transport", &self.transport)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The value of the first `name` header of `m`.
pub fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.header(&HeaderName::from_wire(name))
}

/// Every value of the `name` headers of `m`.
pub fn headers<'a>(m: &'a Message, name: &str) -> Vec<&'a str> {
    m.header_values(&HeaderName::from_wire(name)).collect()
}

/// The status code of a response (0 for a request).
pub fn code(m: &Message) -> u16 {
    m.status_line().map_or(0, |s| s.code)
}

/// The reason phrase of a response ("" for a request).
pub fn reason(m: &Message) -> String {
    m.status_line()
        .map(|s| s.reason.clone())
        .unwrap_or_default()
}

/// The method of a request ("" for a response).
pub fn method(m: &Message) -> String {
    m.request_line()
        .map(|l| l.method.to_string())
        .unwrap_or_default()
}

/// A message as text, for assertion messages.
pub fn text(m: &Message) -> String {
    String::from_utf8_lossy(&m.to_bytes()).into_owned()
}

/// The body as text.
pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

impl SipClient {
    /// A client for `user` (password [`PASSWORD`]) over `transport` to the server's
    /// listener for it; `ca` is needed for TLS.
    pub async fn connect(
        listeners: &herald_core::sip::SipListeners,
        transport: SipTransport,
        user: &str,
        ca: &Path,
    ) -> Self {
        let server = match transport {
            SipTransport::Udp => listeners.udp[0],
            SipTransport::Tcp => listeners.tcp[0],
            SipTransport::Tls => listeners.tls[0],
        };
        Self::connect_to(server, transport, user, ca).await
    }

    /// A UDP client bound to `ip` (another loopback address: `127.0.0.2`), to look
    /// like a different source to per-IP limits.
    pub async fn udp_from(server: SocketAddr, user: &str, ip: std::net::IpAddr) -> Self {
        let mut c = Self::connect_to(server, SipTransport::Udp, user, Path::new("")).await;
        let s = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .expect("UDP bind");
        c.local = s.local_addr().expect("local address");
        c.conn = Conn::Udp(s);
        c
    }

    /// A client to `server` over `transport`.
    pub async fn connect_to(
        server: SocketAddr,
        transport: SipTransport,
        user: &str,
        ca: &Path,
    ) -> Self {
        let (conn, local) = match transport {
            SipTransport::Udp => {
                let s = UdpSocket::bind(crate::loopback_any_port())
                    .await
                    .expect("UDP bind");
                let local = s.local_addr().expect("local address");
                (Conn::Udp(s), local)
            }
            SipTransport::Tcp | SipTransport::Tls => {
                let tcp = tokio::time::timeout(SIP_PATIENCE, TcpStream::connect(server))
                    .await
                    .expect("TCP connect timed out")
                    .expect("TCP connect");
                let _ = tcp.set_nodelay(true);
                let local = tcp.local_addr().expect("local address");
                if transport == SipTransport::Tls {
                    let tls = crate::tls_handshake(tcp, ca, &[], DOMAIN).await;
                    (Conn::Tls(Box::new(tls)), local)
                } else {
                    (Conn::Tcp(tcp), local)
                }
            }
        };
        Self {
            conn,
            framer: StreamFramer::new(Limits::DEFAULT),
            transport,
            server,
            local,
            user: user.to_owned(),
            password: PASSWORD.to_owned(),
            domain: DOMAIN.to_owned(),
            cseq: 0,
            register_call_id: token("reg"),
            pending: VecDeque::new(),
            seen: Vec::new(),
            nc: 0,
            contact_params: String::new(),
        }
    }

    /// Our address of record, `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// Our Contact URI: where this client receives requests.
    pub fn contact(&self) -> String {
        match self.transport {
            SipTransport::Udp => format!("sip:{}@{}", self.user, self.local),
            SipTransport::Tcp => format!("sip:{}@{};transport=tcp", self.user, self.local),
            SipTransport::Tls => format!("sips:{}@{}", self.user, self.local),
        }
    }

    /// The next CSeq number.
    pub fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// A Via header value with a fresh branch.
    pub fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK{};rport",
            self.transport.via(),
            self.local,
            token("b")
        )
    }

    // --- raw I/O --------------------------------------------------------------------

    /// Send bytes as they are (one datagram over UDP).
    pub async fn send_raw(&mut self, data: &[u8]) {
        let result = match &mut self.conn {
            Conn::Udp(s) => s.send_to(data, self.server).await.map(|_| ()),
            Conn::Tcp(s) => match s.write_all(data).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
            Conn::Tls(s) => match s.write_all(data).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
        };
        result.expect("send to the SIP service");
    }

    /// The next message (request or response) received, taking what was set aside
    /// first; at most until `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> SipEvent {
        if let Some(m) = self.pending.pop_front() {
            return SipEvent::Message(m);
        }
        self.read(deadline).await
    }

    async fn read(&mut self, deadline: Instant) -> SipEvent {
        let mut buf = vec![0u8; 65_536];
        loop {
            if !matches!(self.conn, Conn::Udp(_)) {
                match self.framer.next_frame() {
                    Ok(Some(Frame::Message(m))) => {
                        self.seen.push(text(&m));
                        return SipEvent::Message(m);
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => panic!("the SIP service sent a broken stream: {e}"),
                }
            }
            let read = match &mut self.conn {
                Conn::Udp(s) => tokio::time::timeout_at(deadline, s.recv_from(&mut buf))
                    .await
                    .map(|r| r.map(|(n, _)| n)),
                Conn::Tcp(s) => tokio::time::timeout_at(deadline, s.read(&mut buf)).await,
                Conn::Tls(s) => tokio::time::timeout_at(deadline, s.read(&mut buf)).await,
            };
            let n = match read {
                Err(_) => return SipEvent::Timeout,
                Ok(Err(_)) | Ok(Ok(0)) if !matches!(self.conn, Conn::Udp(_)) => {
                    return SipEvent::Closed
                }
                Ok(Err(e)) => panic!("UDP receive: {e}"),
                Ok(Ok(n)) => n,
            };
            match &self.conn {
                Conn::Udp(_) => {
                    let m = parse_datagram(&buf[..n], &Limits::DEFAULT).unwrap_or_else(|e| {
                        panic!(
                            "the SIP service sent a datagram that does not parse ({e}): {}",
                            String::from_utf8_lossy(&buf[..n])
                        )
                    });
                    self.seen.push(text(&m));
                    return SipEvent::Message(m);
                }
                _ => self.framer.push(&buf[..n]).expect("framer accepts"),
            }
        }
    }

    /// Panic with what was received so far.
    pub fn fail(&self, what: &str) -> ! {
        let tail: Vec<&String> = self.seen.iter().rev().take(6).collect();
        panic!("{what}; {self:?} last received (newest first):\n{tail:#?}")
    }

    /// Wait until the stream is closed by the server (TCP, TLS); messages before the
    /// end are skipped.
    pub async fn expect_closed(&mut self) {
        let deadline = Instant::now() + SIP_PATIENCE;
        loop {
            match self.read(deadline).await {
                SipEvent::Closed => return,
                SipEvent::Timeout => self.fail("the connection was not closed"),
                SipEvent::Message(_) => {}
            }
        }
    }

    /// The final response to the request with this Call-ID and CSeq number; requests
    /// arriving meanwhile are set aside for [`recv_request`](Self::recv_request).
    pub async fn response_to(&mut self, call_id: &str, cseq: u32) -> Message {
        let deadline = Instant::now() + SIP_PATIENCE;
        let answers = |m: &Message| {
            !m.is_request()
                && code(m) >= 200
                && m.call_id().ok() == Some(call_id)
                && m.cseq().ok().map(|c| c.seq) == Some(cseq)
        };
        if let Some(i) = self.pending.iter().position(answers) {
            return self.pending.remove(i).expect("index is valid");
        }
        let mut aside = Vec::new();
        let found = loop {
            match self.read(deadline).await {
                SipEvent::Message(m) if answers(&m) => break Some(m),
                // Requests, and final responses to other requests (answers may come
                // in another order than the requests went), are kept.
                SipEvent::Message(m) if m.is_request() || code(&m) >= 200 => aside.push(m),
                SipEvent::Message(_) => {}
                SipEvent::Closed | SipEvent::Timeout => break None,
            }
        };
        self.pending.extend(aside);
        found.unwrap_or_else(|| {
            self.fail(&format!(
                "no final response to Call-ID {call_id} CSeq {cseq}"
            ))
        })
    }

    /// The next response, whatever it answers (for requests too broken to match).
    pub async fn any_response(&mut self) -> Message {
        let deadline = Instant::now() + SIP_PATIENCE;
        if let Some(i) = self.pending.iter().position(|m| code(m) >= 200) {
            return self.pending.remove(i).expect("index is valid");
        }
        loop {
            match self.read(deadline).await {
                SipEvent::Message(m) if m.is_request() => self.pending.push_back(m),
                SipEvent::Message(m) if code(&m) >= 200 => return m,
                SipEvent::Message(_) => {}
                _ => self.fail("no response"),
            }
        }
    }

    /// The next request with this method (others received meanwhile are kept).
    pub async fn recv_request(&mut self, method_name: &str) -> Message {
        self.recv_request_where(method_name, |_| true).await
    }

    /// The next request with this method that `pred` accepts; the others stay queued.
    pub async fn recv_request_where(
        &mut self,
        method_name: &str,
        pred: impl Fn(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + SIP_PATIENCE;
        if let Some(i) = self
            .pending
            .iter()
            .position(|m| method(m) == method_name && pred(m))
        {
            return self.pending.remove(i).expect("index is valid");
        }
        loop {
            match self.read(deadline).await {
                SipEvent::Message(m) if method(&m) == method_name && pred(&m) => return m,
                SipEvent::Message(m) if m.is_request() || code(&m) >= 200 => {
                    self.pending.push_back(m)
                }
                SipEvent::Message(_) => {}
                SipEvent::Closed | SipEvent::Timeout => {
                    self.fail(&format!("no matching {method_name} request arrived"))
                }
            }
        }
    }

    /// A request with this method arriving within `wait`, if any (for asserting that
    /// something is not sent).
    pub async fn request_within(&mut self, method_name: &str, wait: Duration) -> Option<Message> {
        let deadline = Instant::now() + wait;
        if let Some(i) = self.pending.iter().position(|m| method(m) == method_name) {
            return self.pending.remove(i);
        }
        loop {
            match self.read(deadline).await {
                SipEvent::Message(m) if method(&m) == method_name => return Some(m),
                SipEvent::Message(m) if m.is_request() || code(&m) >= 200 => {
                    self.pending.push_back(m)
                }
                SipEvent::Message(_) => {}
                SipEvent::Closed | SipEvent::Timeout => return None,
            }
        }
    }

    /// Answer a request the server sent with `status`: over UDP to its top Via's
    /// sent-by (the server may have restarted on another port), else on the stream.
    pub async fn respond(&mut self, request: &Message, status: u16, reason: &str) {
        let mut out = format!("SIP/2.0 {status} {reason}\r\n");
        for name in ["Via", "From", "Call-ID", "CSeq"] {
            for v in headers(request, name) {
                out.push_str(&format!("{name}: {v}\r\n"));
            }
        }
        let to = header(request, "To").unwrap_or_default();
        if to.contains(";tag=") {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={}\r\n", token("t")));
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        if let Conn::Udp(s) = &self.conn {
            let via = request
                .vias()
                .ok()
                .and_then(|v| v.into_iter().next())
                .unwrap_or_else(|| self.fail("a request without Via"));
            let host = via.host.to_string();
            let ip: std::net::IpAddr = host
                .trim_matches(|c| c == '[' || c == ']')
                .parse()
                .unwrap_or_else(|_| self.fail("a Via sent-by that is not an address"));
            let to = SocketAddr::new(ip, via.port.unwrap_or(5060));
            s.send_to(out.as_bytes(), to).await.expect("UDP send");
            return;
        }
        self.send_raw(out.as_bytes()).await;
    }

    // --- requests -------------------------------------------------------------------

    /// The text of a request from this client: Via, Max-Forwards, From (with a tag),
    /// To, Call-ID, CSeq, Contact, then `extra` (each a full `Name: value` line without
    /// CRLF), Content-Length and the body.
    #[allow(clippy::too_many_arguments)]
    pub fn request_text(
        &self,
        method_name: &str,
        uri: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
        from_tag: &str,
        extra: &[String],
        body: &str,
    ) -> String {
        let mut out = format!("{method_name} {uri} SIP/2.0\r\n");
        out.push_str(&format!("Via: {}\r\n", self.via()));
        out.push_str("Max-Forwards: 70\r\n");
        out.push_str(&format!("From: <{}>;tag={from_tag}\r\n", self.aor()));
        out.push_str(&format!("To: {to}\r\n"));
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
        out.push_str(&format!("CSeq: {cseq} {method_name}\r\n"));
        out.push_str(&format!(
            "Contact: <{}>{}\r\n",
            self.contact(),
            self.contact_params
        ));
        for line in extra {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        out
    }

    /// Send one request and wait for its final response (no authentication).
    #[allow(clippy::too_many_arguments)]
    pub async fn transact(
        &mut self,
        method_name: &str,
        uri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        extra: &[String],
        body: &str,
    ) -> Message {
        let cseq = self.next_cseq();
        let req = self.request_text(method_name, uri, to, call_id, cseq, from_tag, extra, body);
        self.send_raw(req.as_bytes()).await;
        self.response_to(call_id, cseq).await
    }

    /// The digest answer to `challenge` for `method_name` on `uri`, with the next nonce
    /// count (or `nc` when given: a replay).
    pub fn credentials(
        &mut self,
        challenge: &Challenge,
        method_name: &str,
        uri: &str,
        password: &str,
        nc: Option<u32>,
    ) -> String {
        let nc = nc.unwrap_or_else(|| {
            self.nc += 1;
            self.nc
        });
        let mut creds = Credentials {
            username: self.user.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: challenge.algorithm,
            cnonce: Some(token("cn")),
            opaque: challenge.opaque.clone(),
            qop: Some(Qop::Auth),
            nc: Some(nc),
        };
        let h = ha1(challenge.algorithm, &self.user, &challenge.realm, password);
        creds.response = expected_response(&creds, method_name, &h).expect("digest response");
        creds.to_string()
    }

    /// Send a request; when challenged (401/407), answer the challenge for
    /// `algorithm` with our password and send it again. Returns the final response.
    #[allow(clippy::too_many_arguments)]
    pub async fn authed(
        &mut self,
        method_name: &str,
        uri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        extra: &[String],
        body: &str,
    ) -> Message {
        let first = self
            .transact(method_name, uri, to, call_id, from_tag, extra, body)
            .await;
        let Some((challenge, header_name)) = challenge_of(&first, Algorithm::Md5) else {
            return first;
        };
        let password = self.password.clone();
        let creds = self.credentials(&challenge, method_name, uri, &password, None);
        let mut extra = extra.to_vec();
        extra.push(format!("{header_name}: {creds}"));
        self.transact(method_name, uri, to, call_id, from_tag, &extra, body)
            .await
    }

    /// REGISTER our Contact for `expires` seconds, authenticating; the final response.
    pub async fn register(&mut self, expires: u32) -> Message {
        let (aor, call_id) = (self.aor(), self.register_call_id.clone());
        let uri = format!("sip:{}", self.domain);
        self.authed(
            "REGISTER",
            &uri,
            &format!("<{aor}>"),
            &call_id,
            &token("f"),
            &[format!("Expires: {expires}")],
            "",
        )
        .await
    }

    /// REGISTER, expecting 200.
    pub async fn register_ok(&mut self, expires: u32) -> Message {
        let r = self.register(expires).await;
        if code(&r) != 200 {
            self.fail(&format!("REGISTER was answered {}", text(&r)));
        }
        r
    }

    /// An authenticated MESSAGE to `to_user` with `content_type` and `body`.
    pub async fn message(&mut self, to_user: &str, content_type: &str, body: &str) -> Message {
        let uri = format!("sip:{to_user}@{}", self.domain);
        self.authed(
            "MESSAGE",
            &uri,
            &format!("<{uri}>"),
            &token("msg"),
            &token("f"),
            &[format!("Content-Type: {content_type}")],
            body,
        )
        .await
    }

    /// An OPTIONS to the server (no authentication needed).
    pub async fn options(&mut self) -> Message {
        let uri = format!("sip:{}", self.domain);
        self.transact(
            "OPTIONS",
            &uri,
            &format!("<{uri}>"),
            &token("opt"),
            &token("f"),
            &[],
            "",
        )
        .await
    }

    /// An OPTIONS answered 200 (the service still works).
    pub async fn assert_alive(&mut self) {
        let r = self.options().await;
        if code(&r) != 200 {
            self.fail(&format!("OPTIONS was answered {}", text(&r)));
        }
    }
}

/// The digest challenge of a 401 or 407 for `algorithm` (the first one when none is
/// for it), with the header name the answer goes in.
pub fn challenge_of(response: &Message, algorithm: Algorithm) -> Option<(Challenge, &'static str)> {
    let (name, answer) = match code(response) {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    let all = challenges(response, name);
    let pick = all
        .iter()
        .find(|c| c.algorithm == algorithm)
        .or_else(|| all.first())?
        .clone();
    Some((pick, answer))
}

/// Every parsed challenge in the `name` headers of `response`.
pub fn challenges(response: &Message, name: &str) -> Vec<Challenge> {
    headers(response, name)
        .into_iter()
        .filter_map(|v| Challenge::parse(v).ok())
        .collect()
}
