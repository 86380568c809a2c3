//! Bounds on what the parser and the stream framer accept.

/// Limits checked while a SIP message is read. Every limit refuses the message with a
/// [`SipError`](super::SipError) instead of allocating more; the defaults fit every
/// message Herald expects (presence documents included) with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (start line, headers and body), in bytes.
    pub max_message_size: usize,
    /// Largest head (start line and headers up to the empty line), in bytes.
    pub max_head_size: usize,
    /// Most header fields in one message (a folded field counts once).
    pub max_headers: usize,
    /// Longest header field, folded lines included, in bytes.
    pub max_header_line: usize,
    /// Longest Request-URI, in bytes.
    pub max_uri_len: usize,
}

impl Limits {
    /// The defaults: 64 KiB messages, 16 KiB heads, 128 header fields, 8 KiB per field,
    /// 4 KiB Request-URIs.
    pub const DEFAULT: Self = Self {
        max_message_size: 64 * 1024,
        max_head_size: 16 * 1024,
        max_headers: 128,
        max_header_line: 8 * 1024,
        max_uri_len: 4 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
