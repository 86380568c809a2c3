//! Character classes and small scanners of the RFC 3261 §25.1 grammar, shared by the
//! parsers.

/// A 256-entry membership table for a byte class, built at compile time.
macro_rules! table {
    ($class:ident) => {{
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = $class(b as u8);
            b += 1;
        }
        t
    }};
}

static TOKEN: [bool; 256] = table!(token_class);
static WORD: [bool; 256] = table!(word_class);
static UNRESERVED: [bool; 256] = table!(unreserved_class);
/// URI `user` characters (RFC 3261 §25.1: `unreserved / escaped / user-unreserved`).
pub(crate) static USER: [bool; 256] = table!(user_class);
/// URI `password` characters.
pub(crate) static PASSWORD: [bool; 256] = table!(password_class);
/// URI parameter characters (`paramchar`).
pub(crate) static PARAMCHAR: [bool; 256] = table!(paramchar_class);
/// URI header characters (`hnv-unreserved / unreserved / escaped`).
pub(crate) static HCHAR: [bool; 256] = table!(hchar_class);

/// `token` characters: alphanum and `-.!%*_+`'~`.
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN[b as usize]
}

/// `word` characters (Call-ID): token characters and `()<>:\"/[]?{}`.
#[inline]
pub(crate) fn is_word_char(b: u8) -> bool {
    WORD[b as usize]
}

/// `unreserved` characters of RFC 3261 (RFC 2396 `alphanum / mark`).
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    UNRESERVED[b as usize]
}

const fn token_class(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

const fn word_class(b: u8) -> bool {
    token_class(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

const fn unreserved_class(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

const fn user_class(b: u8) -> bool {
    unreserved_class(b)
        || matches!(
            b,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
}

const fn password_class(b: u8) -> bool {
    unreserved_class(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
}

const fn paramchar_class(b: u8) -> bool {
    unreserved_class(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

const fn hchar_class(b: u8) -> bool {
    unreserved_class(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// Linear white space inside an unfolded value: SP or HTAB.
pub(crate) const fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether every `%` in `s` starts a `%HH` escape.
pub(crate) fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'%') {
        let at = i + off;
        if at + 2 >= b.len() {
            return false;
        }
        if !(b[at + 1].is_ascii_hexdigit() && b[at + 2].is_ascii_hexdigit()) {
            return false;
        }
        i = at + 3;
    }
    true
}

/// `s` with every `%HH` escape decoded (RFC 3261 §19.1.2). The result is bytes: an
/// escape may stand for any octet, NUL included (RFC 4475 §3.1.1.4).
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

const fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `s` without leading and trailing SP/HTAB.
#[inline]
pub(crate) fn trim_wsp(s: &str) -> &str {
    trim_end_wsp(trim_start_wsp(s))
}

/// `s` without leading SP/HTAB.
#[inline]
pub(crate) fn trim_start_wsp(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    while start < b.len() && is_wsp(b[start]) {
        start += 1;
    }
    &s[start..]
}

/// The offset of the first `c` (ASCII) in `s`: a plain loop, which beats a vectorized
/// search on the short strings of header fields.
#[inline]
pub(crate) fn find_byte(s: &str, c: u8) -> Option<usize> {
    s.bytes().position(|b| b == c)
}

/// `s` without trailing SP/HTAB.
#[inline]
pub(crate) fn trim_end_wsp(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 && is_wsp(b[end - 1]) {
        end -= 1;
    }
    &s[..end]
}
