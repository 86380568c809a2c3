//! The serializer: full header names, CRLF line ends, and a Content-Length that is
//! always the body's length.

use std::io::Write;

use super::message::{Message, StartLine};

impl Message {
    /// The message on the wire.
    ///
    /// Values are written as they are, except that a CR or LF in a value or reason
    /// phrase is written as a space, so no value can inject a header line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.headers.len() * 48 + self.body.len());
        self.write_to(&mut out);
        out
    }

    /// Appends the message to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request(r) => {
                out.extend_from_slice(r.method.as_str().as_bytes());
                out.push(b' ');
                // Infallible: writing to a Vec.
                let _ = write!(out, "{}", r.uri);
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response(s) => {
                let _ = write!(out, "SIP/2.0 {:03} ", s.code);
                push_clean(out, &s.reason);
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            out.extend_from_slice(h.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            push_clean(out, &h.value);
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        out.extend_from_slice(&self.body);
    }
}

fn push_clean(out: &mut Vec<u8>, s: &str) {
    let from = out.len();
    out.extend_from_slice(s.as_bytes());
    for b in &mut out[from..] {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}
