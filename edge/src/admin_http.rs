//! HTTP/1.1 request parsing for the admin listener, bounded: a request head of at most
//! [`MAX_HEAD`] bytes, a body of at most [`MAX_BODY`] bytes given by `Content-Length`
//! (no chunked bodies), one request per connection.

/// Largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD: usize = 8192;
/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// A complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path without the query string.
    pub(crate) path: String,
    /// Query parameters, percent-decoded, in order.
    pub(crate) query: Vec<(String, String)>,
    /// The request line and the headers, as received.
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request is refused before it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpError {
    HeadTooLarge,
    BodyTooLarge,
    BadRequest(&'static str),
}

impl HttpError {
    pub(crate) fn status(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "431 Request Header Fields Too Large",
            Self::BodyTooLarge => "413 Content Too Large",
            Self::BadRequest(_) => "400 Bad Request",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "request head too large",
            Self::BodyTooLarge => "request body too large",
            Self::BadRequest(why) => why,
        }
    }
}

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed (and allowed).
    Incomplete,
    Done(Request),
    Refused(HttpError),
}

/// Parse what was received on a connection so far.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Parsed::Refused(HttpError::HeadTooLarge)
        } else {
            Parsed::Incomplete
        };
    };
    if end + 4 > MAX_HEAD {
        return Parsed::Refused(HttpError::HeadTooLarge);
    }
    match parse_head(&buf[..end], &buf[end + 4..]) {
        Ok(Some(req)) => Parsed::Done(req),
        Ok(None) => Parsed::Incomplete,
        Err(e) => Parsed::Refused(e),
    }
}

fn parse_head(head: &[u8], rest: &[u8]) -> Result<Option<Request>, HttpError> {
    let head = std::str::from_utf8(head).map_err(|_| HttpError::BadRequest("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequest("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(HttpError::BadRequest("malformed request line"));
    }
    let mut length: Option<usize> = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::BadRequest("malformed header"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::BadRequest("chunked bodies are not supported"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| HttpError::BadRequest("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadRequest("conflicting Content-Length"));
            }
            length = Some(n);
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    if rest.len() < length {
        return Ok(None);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect::<Result<_, HttpError>>()?;
    Ok(Some(Request {
        method: method.to_string(),
        path: percent_decode(path)?,
        query,
        head: head.to_string(),
        body: rest[..length].to_vec(),
    }))
}

/// `%XX` escapes and `+` for a space (form encoding); the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, HttpError> {
    let bad = HttpError::BadRequest("bad percent-encoding");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(|c| char::from(c).to_digit(16));
                let lo = bytes.next().and_then(|c| char::from(c).to_digit(16));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(bad);
                };
                out.push(u8::try_from(hi * 16 + lo).map_err(|_| bad)?);
            }
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad)
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(bytes: &[u8]) -> Request {
        match parse(bytes) {
            Parsed::Done(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_get_with_query_is_parsed() {
        let r =
            done(b"GET /api/sessions?user=alice%40localhost%2Fphone&x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/api/sessions");
        assert_eq!(r.param("user"), Some("alice@localhost/phone"));
        assert_eq!(r.param("x"), Some(""));
        assert!(r.body.is_empty());
        assert_eq!(
            percent_encode("alice@localhost/ph one"),
            "alice%40localhost%2Fph%20one"
        );
    }

    #[test]
    fn a_body_is_awaited_up_to_its_length() {
        let head = b"POST /api/sessions/kick HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(parse(head), Parsed::Incomplete);
        let mut full = head.to_vec();
        full.extend_from_slice(b"{\"a\":1}");
        assert_eq!(parse(&full), Parsed::Incomplete);
        full.extend_from_slice(b"   trailing");
        assert_eq!(done(&full).body, b"{\"a\":1}   ");
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(parse(&vec![b'a'; MAX_HEAD]), Parsed::Incomplete);
        assert_eq!(
            parse(&vec![b'a'; MAX_HEAD + 1]),
            Parsed::Refused(HttpError::HeadTooLarge)
        );
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD]);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&long), Parsed::Refused(HttpError::HeadTooLarge));
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(
            parse(big.as_bytes()),
            Parsed::Refused(HttpError::BodyTooLarge)
        );
        let huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(matches!(
            parse(huge.as_bytes()),
            Parsed::Refused(HttpError::BadRequest(_))
        ));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"GET /?q=%zz HTTP/1.1\r\n\r\n",
            b"GET /?q=%ff HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Refused(HttpError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
