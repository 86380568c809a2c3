//! Push-mode scanner: cuts a growing byte buffer into complete tokens.
//!
//! The lexer keeps the start of the token being read (`pos`), how far it has looked
//! (`scan`) and the little state needed to resume there (inside which quote of a start
//! tag it is), so every input byte is examined once however the input is chunked. A token
//! is handed out only when complete; tokens are always cut at ASCII delimiters, so a
//! multi-byte UTF-8 sequence or an entity reference is never split.
//!
//! Each token is read within a byte budget given by the caller: when the budget's worth
//! of bytes has been examined without finding the token's end, the lexer fails at once.
//! The outcome depends only on those bytes, never on how they arrived.

use std::ops::Range;

use super::reader::XmlError;
use super::syntax::is_ws;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where in the document the next token is read; decides what is legal there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    /// Before the stream header: XML declaration (only first), whitespace, the root tag.
    Prolog,
    /// Between stanzas: whitespace, a stanza's start tag, the stream's end tag.
    Stream,
    /// Inside a stanza: anything but comments, PIs and DTD.
    Stanza,
    /// After the stream's end tag: whitespace only.
    Epilog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Decl,
    Start,
    End,
    Text,
    Cdata,
}

/// A complete token; `range` indexes the lexer's buffer until the next `next_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: Kind,
    range: Range<usize>,
}

impl Token {
    /// Bytes of input the token spans.
    pub(super) fn len(&self) -> usize {
        self.range.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Between tokens.
    #[default]
    Idle,
    /// In a start tag; `quote` is the open quote byte of an attribute value, or 0.
    Start {
        quote: u8,
    },
    End,
    Text,
    Cdata,
    Decl,
}

#[derive(Debug, Default)]
pub(super) struct Lexer {
    buf: Vec<u8>,
    /// Start of the token being read; everything before it is consumed.
    pos: usize,
    /// Next byte to examine for the current token.
    scan: usize,
    state: State,
    /// Nothing but a byte order mark consumed yet: the XML declaration is allowed.
    started: bool,
    bom_checked: bool,
}

fn nwf(msg: &str) -> XmlError {
    XmlError::NotWellFormed(msg.to_owned())
}

impl Lexer {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet handed out as part of a token.
    pub(super) fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes [`pending`](Self::pending) counts.
    pub(super) fn pending_bytes(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The token's content without its delimiters.
    pub(super) fn inner(&self, tok: &Token) -> &[u8] {
        let Range { start, end } = tok.range;
        let (from, to) = match tok.kind {
            Kind::Decl => (start + 5, end - 2),
            Kind::Start => (start + 1, end - 1),
            Kind::End => (start + 2, end - 1),
            Kind::Text => (start, end),
            Kind::Cdata => (start + 9, end - 3),
        };
        &self.buf[from..to]
    }

    /// Drops consumed bytes when that is cheap relative to the bytes consumed since the
    /// last time (amortized O(1) per byte).
    fn compact(&mut self) {
        let p = self.pos;
        if p == 0 {
            return;
        }
        if p == self.buf.len() {
            self.buf.clear();
            if self.buf.capacity() > 1024 {
                // Everything was consumed: an idle stream keeps no buffer.
                self.buf = Vec::new();
            }
        } else if p >= 4096 && p * 2 >= self.buf.len() {
            self.buf.drain(..p);
        } else {
            return;
        }
        self.scan = self.scan.saturating_sub(p);
        self.pos = 0;
    }

    /// Whether the available bytes at `pos` match `lit`: `Some(true)` fully, `Some(false)`
    /// not, `None` so far (need more input).
    fn prefix(&self, lit: &[u8]) -> Option<bool> {
        let avail = &self.buf[self.pos..];
        let n = avail.len().min(lit.len());
        if avail[..n] != lit[..n] {
            Some(false)
        } else if n < lit.len() {
            None
        } else {
            Some(true)
        }
    }

    /// Reads the next token. `budget` is the most bytes it may span; `label` names the
    /// limit in the error when it would span more. `Ok(None)`: need more input.
    pub(super) fn next_token(
        &mut self,
        ctx: Ctx,
        budget: usize,
        label: &'static str,
    ) -> Result<Option<Token>, XmlError> {
        self.compact();
        while self.state == State::Idle {
            if !self.begin(ctx)? {
                return Ok(None);
            }
        }
        self.scan_token(budget, label)
    }

    /// Looks at the start of the next token and picks the state that reads it, or consumes
    /// whitespace where it is insignificant. Returns false when more input is needed.
    fn begin(&mut self, ctx: Ctx) -> Result<bool, XmlError> {
        if !self.bom_checked {
            match self.prefix(BOM) {
                None => return Ok(false),
                Some(true) => self.pos += BOM.len(),
                Some(false) => {}
            }
            self.bom_checked = true;
        }
        let Some(&b) = self.buf.get(self.pos) else {
            return Ok(false);
        };
        if b != b'<' {
            if ctx == Ctx::Stanza {
                self.state = State::Text;
                self.scan = self.pos;
                return Ok(true);
            }
            let n = self.buf[self.pos..]
                .iter()
                .take_while(|&&c| is_ws(c))
                .count();
            if n > 0 {
                self.pos += n;
                self.started = true;
                return Ok(true);
            }
            return Err(match ctx {
                Ctx::Prolog if !self.started && matches!(b, 0x00 | 0xFE | 0xFF) => {
                    XmlError::UnsupportedEncoding
                }
                Ctx::Prolog => nwf("text before the stream header"),
                Ctx::Stream => XmlError::BadFormat("non-whitespace text at stream level".into()),
                _ => nwf("data after the end of the stream"),
            });
        }
        if ctx == Ctx::Epilog {
            return Err(nwf("data after the end of the stream"));
        }
        let Some(&b1) = self.buf.get(self.pos + 1) else {
            return Ok(false);
        };
        match b1 {
            b'/' => {
                self.state = State::End;
                self.scan = self.pos + 2;
            }
            b'?' => {
                let pi = XmlError::RestrictedXml("processing instruction");
                if self.started || ctx != Ctx::Prolog {
                    return Err(pi);
                }
                match self.prefix(b"<?xml") {
                    None => return Ok(false),
                    Some(false) => return Err(pi),
                    Some(true) => {}
                }
                match self.buf.get(self.pos + 5) {
                    None => return Ok(false),
                    Some(&c) if is_ws(c) => {}
                    Some(_) => return Err(pi),
                }
                self.state = State::Decl;
                self.scan = self.pos + 6;
            }
            b'!' => {
                let Some(&b2) = self.buf.get(self.pos + 2) else {
                    return Ok(false);
                };
                match b2 {
                    b'-' => return Err(XmlError::RestrictedXml("comment")),
                    b'D' => return Err(XmlError::RestrictedXml("DOCTYPE")),
                    b'E' => return Err(XmlError::RestrictedXml("entity declaration")),
                    b'[' => {}
                    _ => return Err(XmlError::RestrictedXml("markup declaration")),
                }
                match ctx {
                    Ctx::Stanza => {}
                    Ctx::Stream => {
                        return Err(XmlError::BadFormat("CDATA section at stream level".into()))
                    }
                    _ => return Err(nwf("CDATA section outside the stream")),
                }
                match self.prefix(b"<![CDATA[") {
                    None => return Ok(false),
                    Some(false) => return Err(nwf("malformed CDATA section")),
                    Some(true) => {}
                }
                self.state = State::Cdata;
                self.scan = self.pos + 9;
            }
            _ => {
                self.state = State::Start { quote: 0 };
                self.scan = self.pos + 1;
            }
        }
        Ok(true)
    }

    /// Continues reading the current token from `scan`.
    fn scan_token(
        &mut self,
        budget: usize,
        label: &'static str,
    ) -> Result<Option<Token>, XmlError> {
        let limit = self.pos.saturating_add(budget).min(self.buf.len());
        let buf = &self.buf;
        let mut i = self.scan;
        // Exclusive end of the token, once found.
        let mut end = None;
        let kind = match self.state {
            State::Idle => unreachable!("scan_token without a token"),
            State::Text => {
                if let Some(k) = buf
                    .get(i..limit)
                    .and_then(|w| w.iter().position(|&c| c == b'<'))
                {
                    end = Some(i + k);
                }
                i = i.max(limit);
                Kind::Text
            }
            State::Start { mut quote } => {
                while i < limit {
                    let c = buf[i];
                    i += 1;
                    if quote != 0 {
                        if c == quote {
                            quote = 0;
                        } else if c == b'<' {
                            return Err(nwf("'<' in attribute value"));
                        }
                    } else {
                        match c {
                            b'"' | b'\'' => quote = c,
                            b'<' => return Err(nwf("'<' in tag")),
                            b'>' => {
                                end = Some(i);
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                self.state = State::Start { quote };
                Kind::Start
            }
            State::End => {
                while i < limit {
                    let c = buf[i];
                    i += 1;
                    match c {
                        b'>' => {
                            end = Some(i);
                            break;
                        }
                        b'<' => return Err(nwf("'<' in end tag")),
                        _ => {}
                    }
                }
                Kind::End
            }
            State::Cdata | State::Decl => {
                let (kind, close, min) = if self.state == State::Cdata {
                    (Kind::Cdata, &b"]]"[..], self.pos + 9)
                } else {
                    (Kind::Decl, &b"?"[..], self.pos + 6)
                };
                while i < limit {
                    let c = buf[i];
                    i += 1;
                    if c == b'>'
                        && i > min + close.len()
                        && buf[i - 1 - close.len()..i - 1] == *close
                    {
                        end = Some(i);
                        break;
                    }
                }
                kind
            }
        };
        if let Some(end) = end {
            let tok = Token {
                kind,
                range: self.pos..end,
            };
            self.pos = end;
            self.state = State::Idle;
            self.started = true;
            return Ok(Some(tok));
        }
        self.scan = i;
        if self.buf.len() >= self.pos.saturating_add(budget) {
            return Err(XmlError::LimitExceeded(label));
        }
        Ok(None)
    }
}
