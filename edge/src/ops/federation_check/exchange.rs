//! Step 4's stream-level exchange: the s2s stream header, STARTTLS or direct TLS, and
//! the features after TLS; nothing is authenticated and no stanza is sent.

use std::time::{Duration, Instant};

use herald_certs::{s2s_client_config, CertifiedIdentity, S2sTrust, S2sVerifyMode};
use herald_translate::ns;
use herald_translate::xml::{escape, Element, StreamEvent, StreamHeader, StreamReader, XmlLimits};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;

use crate::s2s::context::ALPN_XMPP_SERVER;
use crate::s2s::dns::Candidate;
use crate::s2s::io::S2sIo;

use super::*;

/// An open stream over TLS, after the features were read.
pub(crate) struct Session {
    pub(crate) io: S2sIo,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) features: Element,
}

/// The stream-level exchange of step 4.
pub(crate) struct Exchange<'a> {
    pub(crate) local: &'a str,
    pub(crate) domain: &'a str,
    pub(crate) timeout: Duration,
}

impl Exchange<'_> {
    /// Step 4: open the stream, STARTTLS (or TLS first), open the stream again.
    pub(crate) async fn stream_and_tls(
        &self,
        tcp: TcpStream,
        candidate: &Candidate,
        trust: &S2sTrust,
        identity: Option<CertifiedIdentity>,
    ) -> (Step, Option<Session>) {
        let mut step = Step::new(STEPS[3]);
        match &identity {
            Some(_) => step.note(format!(
                "our certificate for {} is offered to the peer",
                self.local
            )),
            None => step.note(format!(
                "no certificate of ours for {} exists yet: none is offered",
                self.local
            )),
        }
        let mut io = S2sIo::Plain(tcp);
        let mut reader = StreamReader::new(XmlLimits::default());
        let result = self
            .negotiate(&mut step, &mut io, &mut reader, candidate, trust, identity)
            .await;
        match result {
            Ok(features) => {
                let chain = io.peer_chain();
                (
                    step,
                    Some(Session {
                        io,
                        chain,
                        features,
                    }),
                )
            }
            Err(why) => {
                step.fail(why);
                io.close().await;
                (step, None)
            }
        }
    }

    pub(crate) async fn negotiate(
        &self,
        step: &mut Step,
        io: &mut S2sIo,
        reader: &mut StreamReader,
        candidate: &Candidate,
        trust: &S2sTrust,
        identity: Option<CertifiedIdentity>,
    ) -> Result<Element, String> {
        let alpn: &[&[u8]] = if candidate.direct_tls {
            &[ALPN_XMPP_SERVER]
        } else {
            &[]
        };
        let config = s2s_client_config(trust, S2sVerifyMode::Record, identity.as_ref(), alpn)
            .map_err(|e| format!("TLS client configuration: {e}"))?;
        if !candidate.direct_tls {
            let features = self.open_stream(step, io, reader, false).await?;
            let offered = features.child("starttls", ns::TLS);
            let Some(starttls) = offered else {
                return Err(format!(
                    "the server does not offer STARTTLS (features: {})",
                    describe_features(&features).join(", ")
                ));
            };
            let required = if starttls.has_child("required", ns::TLS) {
                " (required)"
            } else {
                ""
            };
            step.note(format!(
                "<starttls/> offered{required}; sending <starttls/>"
            ));
            io.write(format!("<starttls xmlns='{}'/>", ns::TLS).as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            match self.next(io, reader).await? {
                StreamEvent::Stanza(el) if el.is("proceed", ns::TLS) => {
                    step.note("<proceed/>: starting TLS");
                }
                StreamEvent::Stanza(el) => {
                    return Err(format!(
                        "the server answered <{}/>, not <proceed/>",
                        el.name
                    ))
                }
                StreamEvent::Open(_) | StreamEvent::Close => {
                    return Err("the server closed the stream instead of <proceed/>".into())
                }
            }
        }
        let started = Instant::now();
        let handshake = tokio::time::timeout(self.timeout, io.connect_tls(config, self.domain));
        match handshake.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("TLS handshake: {e}")),
            Err(_) => return Err(format!("TLS handshake: timeout after {:?}", self.timeout)),
        }
        if let S2sIo::Tls(tls) = &*io {
            let s = tls.session();
            let version = match s.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(v) => format!("{v:?}"),
                None => "unknown version".to_string(),
            };
            let suite = s
                .negotiated_cipher_suite()
                .map_or("unknown".to_string(), |c| format!("{:?}", c.suite()));
            let alpn = s.alpn_protocol().map_or("none".to_string(), |p| {
                String::from_utf8_lossy(p).into_owned()
            });
            step.note(format!(
                "TLS handshake done in {} ms: {version}, cipher suite {suite}, ALPN {alpn}",
                started.elapsed().as_millis()
            ));
        }
        reader.reset();
        self.open_stream(step, io, reader, true).await
    }

    /// Send our stream header, read the server's and its features.
    pub(crate) async fn open_stream(
        &self,
        step: &mut Step,
        io: &mut S2sIo,
        reader: &mut StreamReader,
        tls: bool,
    ) -> Result<Element, String> {
        let over = if tls { " over TLS" } else { "" };
        io.write(stream_header(self.local, self.domain).as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let StreamEvent::Open(header) = self.next(io, reader).await? else {
            return Err("the server did not open a stream".into());
        };
        header_ok(&header)?;
        step.note(format!(
            "stream{over} opened by the server: from {}, id {}, version {}",
            header.attr("from").unwrap_or("(none)"),
            header.attr("id").unwrap_or("(none)"),
            header.attr("version").unwrap_or("(none)")
        ));
        match self.next(io, reader).await? {
            StreamEvent::Stanza(el) if el.is("features", ns::STREAM) => {
                // The features after TLS are step 6's.
                if !tls {
                    step.note(format!("features: {}", describe_features(&el).join(", ")));
                }
                Ok(el)
            }
            StreamEvent::Stanza(el) if el.is("error", ns::STREAM) => Err(format!(
                "stream error from the server: {}",
                stream_error(&el)
            )),
            StreamEvent::Stanza(el) => Err(format!(
                "the server sent <{}/> instead of <stream:features/>",
                el.name
            )),
            _ => Err("the server closed the stream before its features".into()),
        }
    }

    /// The next event of the stream, within the timeout.
    pub(crate) async fn next(
        &self,
        io: &mut S2sIo,
        reader: &mut StreamReader,
    ) -> Result<StreamEvent, String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(event) = reader
                .next_event()
                .map_err(|e| format!("XML from the server: {e}"))?
            {
                return Ok(event);
            }
            let mut got = Vec::new();
            let read = io.read(|b: &[u8]| got.extend_from_slice(b));
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(true)) => reader.feed(&got),
                Ok(Ok(false)) => return Err("the server closed the connection".into()),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
            }
        }
    }
}

/// The s2s stream header from `local` to `remote`, announcing dialback support.
pub(crate) fn stream_header(local: &str, remote: &str) -> String {
    let (mut from, mut to) = (String::new(), String::new());
    escape(&mut from, local, true);
    escape(&mut to, remote, true);
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' xmlns:db='{}' \
         from='{from}' to='{to}' version='1.0'>",
        ns::SERVER,
        ns::STREAM,
        ns::DIALBACK
    )
}

/// An XMPP server-to-server stream header, version 1.0 (features follow).
pub(crate) fn header_ok(h: &StreamHeader) -> Result<(), String> {
    if h.name != "stream" || h.ns != ns::STREAM {
        return Err(format!("not an XMPP stream: <{}> in {}", h.name, h.ns));
    }
    if h.default_ns.as_deref() != Some(ns::SERVER) {
        return Err(format!(
            "the stream's namespace is {}, not jabber:server",
            h.default_ns.as_deref().unwrap_or("(none)")
        ));
    }
    if h.attr("version") != Some("1.0") {
        return Err("the server's stream has no version='1.0': no TLS or features".into());
    }
    Ok(())
}

/// `<stream:error>` as `condition (text)`.
pub(crate) fn stream_error(el: &Element) -> String {
    let condition = el
        .elements()
        .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
        .map_or("unknown condition".to_string(), |c| c.name.clone());
    match el.child("text", ns::STREAM_ERRORS) {
        Some(t) => format!("{condition} ({})", t.text()),
        None => condition,
    }
}
