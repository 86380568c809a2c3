//! [`XmppClient`]: a small, deliberately plain XMPP client over TCP and TLS for the
//! integration tests (see the crate documentation).

use crate::*;

/// A SASL mechanism the client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::Plain => "PLAIN",
        }
    }
}

/// One thing read from the server.
#[derive(Debug)]
pub enum Event {
    /// A stream header (`<stream:stream ...>`).
    Header(StreamHeader),
    /// A top-level element: stanza, nonza, stream features or stream error.
    Element(Element),
    /// `</stream:stream>`.
    StreamClosed,
    /// The connection ended (end of file, reset, or TLS closed).
    Eof,
    /// The server sent something that is not XML the reader accepts.
    Malformed(String),
    /// Nothing arrived before the deadline.
    Timeout,
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Moved out during the STARTTLS upgrade.
    Gone,
}

impl Transport {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(s) => s.read(buf).await,
            Self::Gone => Ok(0),
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// A test XMPP client connection.
pub struct XmppClient {
    io: Transport,
    reader: StreamReader,
    ca: PathBuf,
    /// The domain the client opens streams to and expects in the TLS certificate.
    domain: String,
    /// Elements read while waiting for something else, oldest first.
    pending: VecDeque<Element>,
    /// The tail of everything the server sent, for failure messages.
    recent: Vec<u8>,
    bytes_in: usize,
    eof: bool,
    write_error: Option<String>,
    next_id: u64,
    alpn: Option<Vec<u8>>,
    /// How long any wait for the server may take ([`TIMEOUT`] unless changed).
    patience: Duration,
    /// The last stream header the server sent.
    pub header: Option<StreamHeader>,
    /// The last stream features the server offered.
    pub features: Option<Element>,
    /// The full JID once a resource is bound.
    pub jid: String,
}

impl std::fmt::Debug for XmppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppClient")
            .field("jid", &self.jid)
            .field("pending", &self.pending.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl XmppClient {
    // --- connecting ----------------------------------------------------------------

    /// A plain TCP connection; nothing is sent.
    pub async fn connect_plain(addr: SocketAddr, ca: &Path) -> Self {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        let _ = tcp.set_nodelay(true);
        Self::new(Transport::Plain(tcp), ca)
    }

    /// A XEP-0368 direct TLS connection offering ALPN `xmpp-client`; nothing is sent.
    pub async fn connect_direct_tls(addr: SocketAddr, ca: &Path) -> Self {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        let _ = tcp.set_nodelay(true);
        let tls = tls_handshake(tcp, ca, &[b"xmpp-client"], DOMAIN).await;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let mut c = Self::new(Transport::Tls(Box::new(tls)), ca);
        c.alpn = alpn;
        c
    }

    /// A plain TCP connection whose socket receive buffer is `bytes` (the kernel may
    /// round it): a client that stops reading then fills up quickly.
    pub async fn connect_plain_with_recv_buffer(addr: SocketAddr, ca: &Path, bytes: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .set_recv_buffer_size(bytes)
            .expect("set the receive buffer size");
        Self::connect_socket(socket, addr, ca).await
    }

    /// A plain TCP connection from the loopback address `source` (e.g. 127.0.0.2), to
    /// look like another client host.
    pub async fn connect_plain_from(addr: SocketAddr, ca: &Path, source: std::net::IpAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind the source address");
        Self::connect_socket(socket, addr, ca).await
    }

    async fn connect_socket(socket: tokio::net::TcpSocket, addr: SocketAddr, ca: &Path) -> Self {
        let tcp = tokio::time::timeout(TIMEOUT, socket.connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        let _ = tcp.set_nodelay(true);
        Self::new(Transport::Plain(tcp), ca)
    }

    /// The whole login: stream, STARTTLS, stream, SCRAM-SHA-256, stream, bind.
    pub async fn connect_starttls(
        addr: SocketAddr,
        ca: &Path,
        user: &str,
        password: &str,
        resource: Option<&str>,
    ) -> Self {
        Self::connect_plain(addr, ca)
            .await
            .login(user, password, resource)
            .await
    }

    /// On a fresh plain connection: stream, STARTTLS, stream, SCRAM-SHA-256, stream, bind.
    pub async fn login(mut self, user: &str, password: &str, resource: Option<&str>) -> Self {
        let features = self.open_stream().await;
        assert!(
            features.has_child("starttls", ns::TLS),
            "STARTTLS is offered: {}",
            xml(&features, ns::STREAM)
        );
        self.login_opened(user, password, resource).await
    }

    /// [`login`](Self::login) on a plain connection whose first stream is already open.
    pub async fn login_opened(
        mut self,
        user: &str,
        password: &str,
        resource: Option<&str>,
    ) -> Self {
        self.starttls().await;
        self.open_stream().await;
        if let Err(condition) = self
            .authenticate(Mechanism::ScramSha256, user, password)
            .await
        {
            panic!("{user} cannot authenticate: {condition}");
        }
        self.open_stream().await;
        if let Err(error) = self.bind(resource).await {
            panic!("{user} cannot bind: {}", xml(&error, ns::CLIENT));
        }
        self
    }

    fn new(io: Transport, ca: &Path) -> Self {
        Self {
            io,
            reader: StreamReader::default(),
            ca: ca.to_path_buf(),
            domain: DOMAIN.to_string(),
            pending: VecDeque::new(),
            recent: Vec::new(),
            bytes_in: 0,
            eof: false,
            write_error: None,
            next_id: 0,
            alpn: None,
            patience: TIMEOUT,
            header: None,
            features: None,
            jid: String::new(),
        }
    }

    /// Talk to a server hosting `domain` rather than [`DOMAIN`] (stream headers and the
    /// TLS server name). Before STARTTLS.
    pub fn for_domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_string();
        self
    }

    /// Wait up to `patience` for the server from now on: tests on virtual time wait out
    /// the server's own timeouts (minutes of virtual time cost nothing).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The ALPN protocol the server selected (direct TLS only).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The bare JID of the bound session.
    pub fn bare_jid(&self) -> &str {
        self.jid.split('/').next().unwrap_or_default()
    }

    /// Bytes received from the server so far.
    pub fn bytes_received(&self) -> usize {
        self.bytes_in
    }

    // --- negotiation steps -----------------------------------------------------------

    /// Send a stream header addressed to `to` (restarting the reader: every header
    /// starts a new stream from the server too).
    pub async fn send_header_to(&mut self, to: &str) {
        self.reader = StreamReader::default();
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{to}' \
             version='1.0' xml:lang='en'>",
            ns::CLIENT,
            ns::STREAM
        ))
        .await;
    }

    /// Wait for the server's stream header.
    pub async fn expect_header(&mut self) -> StreamHeader {
        match self.next_event(Instant::now() + self.patience).await {
            Event::Header(h) => h,
            other => self.fail(&format!("expected a stream header, got {other:?}")),
        }
    }

    /// Open a stream to the client's domain ([`DOMAIN`] unless
    /// [`for_domain`](Self::for_domain) said otherwise): header out, header and features in.
    pub async fn open_stream(&mut self) -> Element {
        let domain = self.domain.clone();
        self.send_header_to(&domain).await;
        self.expect_header().await;
        let features = self.recv().await;
        if !features.is("features", ns::STREAM) {
            self.fail(&format!(
                "expected stream features, got {}",
                xml(&features, ns::CLIENT)
            ));
        }
        self.features = Some(features.clone());
        features
    }

    /// `<starttls/>`, `<proceed/>`, then the TLS handshake (no ALPN).
    pub async fn starttls(&mut self) {
        self.starttls_raw(&format!("<starttls xmlns='{}'/>", ns::TLS), b"")
            .await;
    }

    /// [`starttls`](Self::starttls) sending `request` as written, and `after_proceed`
    /// in the clear once `<proceed/>` is in, before the handshake.
    pub async fn starttls_raw(&mut self, request: &str, after_proceed: &[u8]) {
        self.send(request).await;
        let answer = self.recv().await;
        if !answer.is("proceed", ns::TLS) {
            self.fail(&format!(
                "expected <proceed/>, got {}",
                xml(&answer, ns::CLIENT)
            ));
        }
        let Transport::Plain(tcp) = std::mem::replace(&mut self.io, Transport::Gone) else {
            panic!("STARTTLS on a stream that is already encrypted");
        };
        let mut tcp = tcp;
        if !after_proceed.is_empty() {
            tcp.write_all(after_proceed)
                .await
                .expect("write after <proceed/>");
        }
        let tls = tls_handshake(tcp, &self.ca, &[], &self.domain).await;
        self.io = Transport::Tls(Box::new(tls));
        self.reader = StreamReader::default();
    }

    /// Run a SASL exchange. `Err` carries the `<failure/>` condition.
    pub async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        let hash = match mechanism {
            Mechanism::Plain => {
                let msg = plain_encode(None, user, password);
                self.send_auth(mechanism, &msg).await;
                let answer = self.recv().await;
                return self.sasl_outcome(&answer).map(|_| ());
            }
            Mechanism::ScramSha256 => ScramHash::Sha256,
            Mechanism::ScramSha1 => ScramHash::Sha1,
        };
        let mut scram = ScramClient::new(hash, user, password);
        let first = scram.client_first();
        self.send_auth(mechanism, &first).await;
        let challenge = self.recv().await;
        if !challenge.is("challenge", ns::SASL) {
            return self.sasl_outcome(&challenge).map(|_| ());
        }
        let server_first = decode_b64(&challenge.text());
        let client_final = scram
            .handle_server_first(&server_first)
            .unwrap_or_else(|e| panic!("bad server-first-message: {e}"));
        self.send(&format!(
            "<response xmlns='{}'>{}</response>",
            ns::SASL,
            B64.encode(client_final)
        ))
        .await;
        let answer = self.recv().await;
        let server_final = self.sasl_outcome(&answer)?;
        scram
            .verify_server_final(&server_final)
            .unwrap_or_else(|e| panic!("the server's SCRAM signature does not verify: {e}"));
        Ok(())
    }

    async fn send_auth(&mut self, mechanism: Mechanism, initial: &[u8]) {
        self.send(&format!(
            "<auth xmlns='{}' mechanism='{}'>{}</auth>",
            ns::SASL,
            mechanism.name(),
            B64.encode(initial)
        ))
        .await;
    }

    /// `<success/>` gives its decoded data; `<failure/>` its condition.
    fn sasl_outcome(&self, el: &Element) -> Result<Vec<u8>, String> {
        if el.is("success", ns::SASL) {
            return Ok(decode_b64(&el.text()));
        }
        if el.is("failure", ns::SASL) {
            let condition = el
                .elements()
                .find(|c| c.name != "text")
                .map(|c| c.name.clone())
                .unwrap_or_default();
            return Err(condition);
        }
        self.fail(&format!(
            "expected a SASL outcome, got {}",
            xml(el, ns::CLIENT)
        ))
    }

    /// Bind a resource (or let the server pick one). `Ok` is the full JID; `Err` the
    /// error IQ.
    pub async fn bind(&mut self, resource: Option<&str>) -> Result<String, Element> {
        let inner = match resource {
            Some(r) => format!("<resource>{r}</resource>"),
            None => String::new(),
        };
        let reply = self
            .iq(
                "set",
                None,
                &format!("<bind xmlns='{}'>{inner}</bind>", ns::BIND),
            )
            .await;
        if reply.attr("type") != Some("result") {
            return Err(reply);
        }
        let jid = reply
            .child("bind", ns::BIND)
            .and_then(|b| b.child("jid", ns::BIND))
            .map(Element::text)
            .unwrap_or_else(|| self.fail("bind result without a JID"));
        self.jid.clone_from(&jid);
        Ok(jid)
    }

    // --- sending ---------------------------------------------------------------------

    /// Write raw bytes. A write error is remembered and reported by the next read that
    /// fails (the server may legitimately have closed the connection already).
    pub async fn send(&mut self, xml: &str) {
        self.send_bytes(xml.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        if let Err(e) = self.io.write(data).await {
            self.write_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// Serialize and send an element in the `jabber:client` namespace.
    pub async fn send_element(&mut self, el: &Element) {
        self.send(&xml(el, ns::CLIENT)).await;
    }

    /// A new stanza id, unique on this connection.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    /// Send an IQ and wait for its result or error (other stanzas are kept for later).
    pub async fn iq(&mut self, kind: &str, to: Option<&str>, payload: &str) -> Element {
        let id = self.new_id("iq");
        let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        self.send(&format!("<iq type='{kind}' id='{id}'{to}>{payload}</iq>"))
            .await;
        self.recv_iq_response(&id).await
    }

    /// Wait for the result or error answering the IQ with this id.
    pub async fn recv_iq_response(&mut self, id: &str) -> Element {
        self.recv_where(&format!("the answer to IQ {id}"), |e| {
            e.is("iq", ns::CLIENT)
                && e.attr("id") == Some(id)
                && matches!(e.attr("type"), Some("result" | "error"))
        })
        .await
    }

    /// Ping the server on this session and require the result: the session still works.
    pub async fn assert_alive(&mut self) {
        let reply = self
            .iq("get", None, &format!("<ping xmlns='{}'/>", ns::PING))
            .await;
        assert_eq!(
            reply.attr("type"),
            Some("result"),
            "{} answers a ping: {}",
            self.jid,
            xml(&reply, ns::CLIENT)
        );
    }

    /// Send a chat message.
    pub async fn send_message(&mut self, to: &str, body: &str) {
        let id = self.new_id("msg");
        let msg = Element::new("message", ns::CLIENT)
            .with_attr("to", to)
            .with_attr("type", "chat")
            .with_attr("id", id)
            .with_child(Element::new("body", ns::CLIENT).with_text(body));
        self.send_element(&msg).await;
    }

    /// Close the stream politely and wait for the server to close too.
    pub async fn close(mut self) {
        self.send("</stream:stream>").await;
        self.expect_closed().await;
    }

    /// Drop the connection without closing the stream (no `</stream:stream>`, no TLS
    /// close_notify): what a dead network or a killed client looks like to the server.
    pub fn abort(self) {
        drop(self);
    }

    // --- receiving -------------------------------------------------------------------

    /// The next raw event; `deadline` bounds the wait.
    pub async fn next_event(&mut self, deadline: Instant) -> Event {
        let mut buf = [0u8; 8192];
        loop {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Open(h))) => {
                    self.header = Some(h.clone());
                    return Event::Header(h);
                }
                Ok(Some(StreamEvent::Stanza(el))) => return Event::Element(el),
                Ok(Some(StreamEvent::Close)) => return Event::StreamClosed,
                Ok(None) => {}
                Err(e) => return Event::Malformed(e.to_string()),
            }
            if self.eof {
                return Event::Eof;
            }
            match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Err(_) => return Event::Timeout,
                Ok(Ok(0) | Err(_)) => {
                    self.eof = true;
                    return Event::Eof;
                }
                Ok(Ok(n)) => {
                    let data = &buf[..n];
                    self.bytes_in += n;
                    self.recent.extend_from_slice(data);
                    if self.recent.len() > RECENT_BYTES {
                        let cut = self.recent.len() - RECENT_BYTES;
                        self.recent.drain(..cut);
                    }
                    self.reader.feed(data);
                }
            }
        }
    }

    /// The next element (kept ones first). Panics on a stream error, a closed stream
    /// or a timeout.
    pub async fn recv(&mut self) -> Element {
        self.recv_where("any element", |_| true).await
    }

    /// The first element matching `pred`; the ones before it are kept for later calls.
    /// `what` describes the wanted element in the failure message.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        if let Some(i) = self.pending.iter().position(&pred) {
            if let Some(el) = self.pending.remove(i) {
                return el;
            }
        }
        let deadline = Instant::now() + self.patience;
        loop {
            match self.next_event(deadline).await {
                Event::Element(el) if pred(&el) => return el,
                Event::Element(el) if el.is("error", ns::STREAM) => self.fail(&format!(
                    "waiting for {what}: stream error {}",
                    xml(&el, ns::STREAM)
                )),
                Event::Element(el) => self.pending.push_back(el),
                Event::Header(_) => {}
                other => self.fail(&format!("waiting for {what}: {other:?}")),
            }
        }
    }

    /// The first message with a `<body/>`, its body text being `body`.
    pub async fn recv_message_with_body(&mut self, body: &str) -> Element {
        self.recv_where(&format!("a message with body {body:?}"), |e| {
            e.name == "message" && body_of(e).as_deref() == Some(body)
        })
        .await
    }

    /// The next message carrying a body (chat/normal/error alike).
    pub async fn recv_message(&mut self) -> Element {
        self.recv_where("a message with a body", |e| {
            e.name == "message" && body_of(e).is_some()
        })
        .await
    }

    /// Whatever arrives within `wait` (kept elements first); `None` if nothing does.
    /// Only for checks where no event can be awaited instead.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Element> {
        if let Some(el) = self.pending.pop_front() {
            return Some(el);
        }
        match self.next_event(Instant::now() + wait).await {
            Event::Element(el) => Some(el),
            Event::Timeout => None,
            other => self.fail(&format!("expected an element or nothing, got {other:?}")),
        }
    }

    /// Elements read earlier and not consumed yet.
    pub fn pending(&self) -> impl Iterator<Item = &Element> {
        self.pending.iter()
    }

    /// Wait for a stream error and return its condition (e.g. `policy-violation`); the
    /// server must then close the stream and the connection. Elements before the error
    /// are skipped.
    pub async fn expect_stream_error(&mut self) -> String {
        let deadline = Instant::now() + self.patience;
        let condition = loop {
            match self.next_event(deadline).await {
                Event::Element(el) if el.is("error", ns::STREAM) => {
                    break el
                        .elements()
                        .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| {
                            self.fail(&format!("stream error without a condition: {el:?}"))
                        });
                }
                Event::Element(_) | Event::Header(_) => {}
                other => self.fail(&format!("waiting for a stream error: {other:?}")),
            }
        };
        self.expect_closed().await;
        condition
    }

    /// Wait until the server ends the stream and the connection (elements before that
    /// are skipped).
    pub async fn expect_closed(&mut self) {
        let deadline = Instant::now() + self.patience;
        loop {
            match self.next_event(deadline).await {
                Event::Eof => return,
                Event::Timeout => self.fail("the server did not close the connection"),
                Event::Malformed(e) => self.fail(&format!("malformed server output: {e}")),
                Event::StreamClosed | Event::Element(_) | Event::Header(_) => {}
            }
        }
    }

    /// Panic with context: the JID, a write error, and the tail of the server output.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what}\n  write error: {:?}\n  recent server output: {}",
            if self.jid.is_empty() {
                "client"
            } else {
                &self.jid
            },
            self.write_error,
            String::from_utf8_lossy(&self.recent)
        )
    }
}

pub(crate) async fn tls_handshake(
    tcp: TcpStream,
    ca: &Path,
    alpn: &[&[u8]],
    domain: &str,
) -> TlsStream<TcpStream> {
    let config = herald_certs::client_config(&[ca.to_path_buf()], None, alpn)
        .expect("client TLS configuration");
    let name = ServerName::try_from(domain.to_string()).expect("server name");
    tokio::time::timeout(TIMEOUT, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
        .expect("TLS handshake")
}
