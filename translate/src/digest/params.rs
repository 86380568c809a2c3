//! `auth-param` lists (RFC 3261 §25.1 `digest-cln`, RFC 7235 §2.1): `name=token` or
//! `name="quoted string"`, separated by commas, after the scheme name.
//!
//! Names are compared without case and stored in lowercase. Quoted strings may hold
//! backslash escapes (`\"`, `\\`); they are returned unescaped. Whitespace includes CR
//! and LF so that a folded header line (already joined by the SIP reader or not) parses
//! the same.

use super::DigestError;

/// Bytes of one header value.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Parameters in one header value.
pub const MAX_PARAMS: usize = 24;
/// Bytes of one parameter value.
pub const MAX_PARAM_BYTES: usize = 1024;

/// One parameter; `quoted` tells whether the value was a quoted string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: String,
    pub quoted: bool,
}

/// Splits `Scheme param, param, ...` into the scheme and its parameters. Duplicate
/// names are refused.
pub fn parse_scheme_params(input: &str) -> Result<(&str, Vec<Param>), DigestError> {
    if input.len() > MAX_VALUE_BYTES {
        return Err(DigestError::TooLong("header value"));
    }
    let input = input.trim_start_matches(is_ws);
    let scheme_len = input.bytes().take_while(|&b| is_tchar(b)).count();
    if scheme_len == 0 {
        return Err(DigestError::Syntax("no scheme"));
    }
    let (scheme, rest) = input.split_at(scheme_len);
    if !rest.is_empty() && !rest.starts_with(is_ws) {
        return Err(DigestError::Syntax("no space after the scheme"));
    }
    Ok((scheme, parse_params(rest)?))
}

/// The value of the parameter `name` (names are lowercase once parsed), if present.
pub fn find_param(params: &[Param], name: &str) -> Option<String> {
    params
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.clone())
}

/// The parameters of a `Digest` value; any other scheme is [`DigestError::NotDigest`]
/// whatever follows it (e.g. a `Basic` token68).
pub fn parse_digest_params(input: &str) -> Result<Vec<Param>, DigestError> {
    let trimmed = input.trim_start_matches(is_ws);
    let scheme = trimmed.split(is_ws).next().unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    Ok(parse_scheme_params(input)?.1)
}

/// Parses a comma-separated `auth-param` list. Empty list elements (`a=1,,b=2`) are
/// allowed, as RFC 7230's list rule does.
pub fn parse_params(s: &str) -> Result<Vec<Param>, DigestError> {
    let mut params: Vec<Param> = Vec::new();
    let mut cur = Cursor { s, pos: 0 };
    loop {
        cur.skip(|c| is_ws(c) || c == ',');
        if cur.at_end() {
            return Ok(params);
        }
        let name = cur.token().ok_or(DigestError::Syntax("expected a name"))?;
        cur.skip(is_ws);
        if !cur.eat('=') {
            return Err(DigestError::Syntax("expected '='"));
        }
        cur.skip(is_ws);
        let (value, quoted) = if cur.peek() == Some('"') {
            (cur.quoted()?, true)
        } else {
            let token = cur.token().ok_or(DigestError::Syntax("expected a value"))?;
            (token.to_owned(), false)
        };
        if value.len() > MAX_PARAM_BYTES {
            return Err(DigestError::TooLong("parameter value"));
        }
        let name = name.to_ascii_lowercase();
        if params.iter().any(|p| p.name == name) {
            return Err(DigestError::Duplicate(name));
        }
        if params.len() >= MAX_PARAMS {
            return Err(DigestError::TooLong("parameter count"));
        }
        params.push(Param {
            name,
            value,
            quoted,
        });
        cur.skip(is_ws);
        if !cur.at_end() && !cur.eat(',') {
            return Err(DigestError::Syntax("expected ',' between parameters"));
        }
    }
}

/// Appends `"value"` with `"` and `\` escaped. Control characters other than tab
/// cannot be carried in a quoted string and are dropped.
pub fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` can be written as a bare token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|&c| f(c)) {
            self.pos += c.len_utf8();
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let len = self.s.as_bytes()[self.pos..]
            .iter()
            .take_while(|&&b| is_tchar(b))
            .count();
        if len == 0 {
            return None;
        }
        let token = &self.s[self.pos..self.pos + len];
        self.pos += len;
        Some(token)
    }

    /// A quoted string at the cursor (which is on the opening quote), unescaped.
    fn quoted(&mut self) -> Result<String, DigestError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self
                .peek()
                .ok_or(DigestError::Syntax("unterminated quoted string"))?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escaped = self
                        .peek()
                        .ok_or(DigestError::Syntax("unterminated quoted string"))?;
                    self.pos += escaped.len_utf8();
                    out.push(escaped);
                }
                c if c.is_control() && !is_ws(c) => {
                    return Err(DigestError::Syntax("control character in a quoted string"))
                }
                c => out.push(c),
            }
            if out.len() > MAX_PARAM_BYTES {
                return Err(DigestError::TooLong("parameter value"));
            }
        }
    }
}
