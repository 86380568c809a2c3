//! Stream framing (TCP, TLS, RFC 3261 §18.3): an incremental framer fed bytes in any
//! chunking that yields whole messages by Content-Length, and the CRLF keep-alives of
//! RFC 5626 §4.4.1.

use super::error::{SipError, SipErrorKind};
use super::essentials::RequestEssentials;
use super::limits::Limits;
use super::message::Message;
use super::parse::{find_head_end, finish, parse_head, with_request, Head};

/// What the framer yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message.
    Message(Message),
    /// A keep-alive ping (`CRLF CRLF`): answer with [`PONG`].
    Ping,
    /// A keep-alive pong (a lone `CRLF`), the answer to a ping we sent.
    Pong,
}

/// The answer to a [`Frame::Ping`] (RFC 5626 §4.4.1).
pub const PONG: &[u8] = b"\r\n";

/// The incremental stream framer.
///
/// Feed bytes with [`push`](Self::push) and take frames with
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)`. A message that is
/// refused but whose extent is known (its Content-Length could be read) is skipped and
/// reported as an error; the stream goes on. When the extent is unknown (no or bad
/// Content-Length, a head over the limit) the framer is broken: every later call
/// returns the same error, and the connection should be closed after answering.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    limits: Limits,
    pending: Option<Pending>,
    broken: Option<SipError>,
}

#[derive(Debug)]
struct Pending {
    head_len: usize,
    body_len: usize,
    head: Result<Head, SipError>,
}

impl StreamFramer {
    /// A framer with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            limits,
            pending: None,
            broken: None,
        }
    }

    /// Bytes received and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the stream can no longer be framed.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Adds received bytes. Refused (513) when more than two maximum-size messages
    /// would wait unframed: call [`next_frame`](Self::next_frame) between pushes.
    pub fn push(&mut self, data: &[u8]) -> Result<(), SipError> {
        if self.buffered() + data.len() > 2 * self.limits.max_message_size + 4 {
            return Err(self.fail(SipErrorKind::TooLarge("unframed bytes").into()));
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start.min(self.scanned);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn fail(&mut self, e: SipError) -> SipError {
        self.broken = Some(e.clone());
        e
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SipError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if self.pending.is_none() {
            let avail = &self.buf[self.start..];
            if avail.starts_with(b"\r\n") {
                if avail.len() < 4 && b"\r\n\r\n".starts_with(avail) {
                    return Ok(None);
                }
                let ping = avail.starts_with(b"\r\n\r\n");
                self.consume(if ping { 4 } else { 2 });
                return Ok(Some(if ping { Frame::Ping } else { Frame::Pong }));
            }
            if !self.read_head() {
                return match &self.broken {
                    Some(e) => Err(e.clone()),
                    None => Ok(None),
                };
            }
        }
        let Some(p) = &self.pending else {
            return Ok(None);
        };
        if self.buffered() < p.head_len + p.body_len {
            return Ok(None);
        }
        let p = self.pending.take().expect("checked above");
        let body_at = self.start + p.head_len;
        let body = self.buf[body_at..body_at + p.body_len].to_vec();
        let head_bytes_end = body_at - 2;
        let result = p.head.and_then(|h| finish(h, body));
        let result = result.map_err(|e| {
            let head = &self.buf[self.start..head_bytes_end];
            with_request(e, head, &self.limits)
        });
        self.consume(p.head_len + p.body_len);
        result.map(|m| Some(Frame::Message(m)))
    }

    /// Looks for the end of the head; when found, parses it and sets `pending`.
    /// Returns whether `pending` was set.
    fn read_head(&mut self) -> bool {
        let from = self.scanned.saturating_sub(3).max(self.start);
        let Some(end) = find_head_end(&self.buf, from) else {
            self.scanned = self.buf.len();
            if self.buffered() > self.limits.max_head_size {
                let e = SipErrorKind::TooLarge("head size").into();
                let e = self.with_context(e, self.buf.len());
                self.fail(e);
            }
            return false;
        };
        let head_end = end + 2;
        let head = &self.buf[self.start..head_end];
        let parsed = parse_head(head, &self.limits);
        let length = match &parsed {
            Ok(h) => h
                .content_length
                .ok_or_else(|| SipError::bad("Missing Content-Length")),
            Err(e) => RequestEssentials::scan_content_length(head).ok_or_else(|| e.clone()),
        };
        let body_len = match length {
            Ok(n) if n <= self.limits.max_message_size.saturating_sub(head.len()) => n,
            Ok(_) => {
                let e = SipErrorKind::TooLarge("message size").into();
                let e = self.with_context(e, head_end);
                self.fail(e);
                return false;
            }
            Err(e) => {
                let e = self.with_context(e, head_end);
                self.fail(e);
                return false;
            }
        };
        self.pending = Some(Pending {
            head_len: head_end + 2 - self.start,
            body_len,
            head: parsed,
        });
        true
    }

    fn with_context(&self, e: SipError, end: usize) -> SipError {
        with_request(e, &self.buf[self.start..end], &self.limits)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.scanned = self.start;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        }
    }
}
