//! Lexical rules of XML 1.0 + Namespaces used by the stream reader: character classes,
//! names, entity and character references, start/end tags and the XML declaration.
//!
//! Every function here works on one complete token that the lexer has already cut out
//! of the input, so none of them has to care about chunk boundaries.

use super::reader::{XmlError, XmlLimits};

/// The XML `Char` production (XML 1.0 §2.2). Rust's `char` already excludes surrogates.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// The `S` production: the four XML whitespace bytes.
pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `NameStartChar` without the colon (Namespaces in XML: NCName).
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}'
        | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}'
        | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar` without the colon.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether `s` is a non-empty NCName (a name without colon).
pub(super) fn is_ncname(s: &str) -> bool {
    // Fast path: nearly every name on the wire is ASCII, decided by one table lookup per
    // byte; the first non-ASCII byte sends the name to the full check.
    let bytes = s.as_bytes();
    match bytes.first() {
        None => return false,
        Some(&b) if b >= 0x80 => return is_ncname_unicode(s),
        Some(&b) if ASCII_NAME[usize::from(b)] != NAME_START => return false,
        Some(_) => {}
    }
    for &b in &bytes[1..] {
        if b >= 0x80 {
            return is_ncname_unicode(s);
        }
        if ASCII_NAME[usize::from(b)] == 0 {
            return false;
        }
    }
    true
}

/// [`ASCII_NAME`] entry of a byte that may start a name.
const NAME_START: u8 = 2;

/// For each ASCII byte: [`NAME_START`], 1 (may continue a name) or 0.
const ASCII_NAME: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = match c {
            b'A'..=b'Z' | b'_' | b'a'..=b'z' => NAME_START,
            b'-' | b'.' | b'0'..=b'9' => 1,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// [`is_ncname`] for names with non-ASCII characters.
fn is_ncname_unicode(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        _ => false,
    }
}

/// Whether `s` is an XML `Name` (colons allowed anywhere).
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == ':' || is_name_start(c) => chars.all(|c| c == ':' || is_name_char(c)),
        _ => false,
    }
}

/// Whether `s` is a QName: `NCName` or `NCName:NCName`.
fn is_qname(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}

fn nwf(msg: &str) -> XmlError {
    XmlError::NotWellFormed(msg.to_owned())
}

/// Decodes a complete token's bytes. Tokens are cut only at ASCII delimiters, so a valid
/// multi-byte sequence is never split; anything that fails here is not UTF-8.
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|_| XmlError::UnsupportedEncoding)
}

/// How literal whitespace is normalized while decoding (XML 1.0 §2.11 and §3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Character data: `\r\n` and lone `\r` become `\n`; references are decoded.
    Text,
    /// Attribute value: line ends, then `\t`, `\n` become a space; references are decoded
    /// and are not normalized.
    Attr,
    /// CDATA section content: line ends normalized, no references.
    Cdata,
}

/// Appends the decoded form of `raw` to `out`, validating every character.
pub(super) fn decode(raw: &str, out: &mut String, mode: Mode) -> Result<(), XmlError> {
    out.reserve(raw.len());
    let mut i = 0;
    // Start of the run of characters that are copied unchanged.
    let mut run = 0;
    while let Some(c) = raw[i..].chars().next() {
        let len = c.len_utf8();
        let plain = match c {
            '&' | '\r' | '<' => false,
            '\n' | '\t' => mode != Mode::Attr,
            ']' => !(mode == Mode::Text && raw[i..].starts_with("]]>")),
            c => is_xml_char(c),
        };
        if plain {
            i += len;
            continue;
        }
        out.push_str(&raw[run..i]);
        match c {
            '&' if mode != Mode::Cdata => {
                let rest = &raw[i + 1..];
                let end = rest
                    .find(';')
                    .ok_or_else(|| nwf("unterminated reference"))?;
                out.push(resolve_reference(&rest[..end])?);
                i += end + 2;
            }
            '&' => {
                out.push('&');
                i += 1;
            }
            '\r' => {
                out.push(if mode == Mode::Attr { ' ' } else { '\n' });
                i += if raw[i + 1..].starts_with('\n') { 2 } else { 1 };
            }
            '\n' | '\t' => {
                out.push(' ');
                i += 1;
            }
            '<' if mode == Mode::Cdata => {
                out.push('<');
                i += 1;
            }
            '<' => return Err(nwf("'<' not allowed here")),
            ']' => return Err(nwf("']]>' in character data")),
            _ => return Err(nwf("character not allowed in XML")),
        }
        run = i;
    }
    out.push_str(&raw[run..]);
    Ok(())
}

/// Resolves the text between `&` and `;`.
fn resolve_reference(name: &str) -> Result<char, XmlError> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                parse_code(hex, 16)?
            } else if let Some(dec) = name.strip_prefix('#') {
                parse_code(dec, 10)?
            } else if is_name(name) {
                // A syntactically valid reference to an entity we never declare: no DTD is
                // allowed in XMPP, so this is a use of restricted XML.
                return Err(XmlError::RestrictedXml("entity reference"));
            } else {
                return Err(nwf("malformed reference"));
            };
            return char::from_u32(code)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| nwf("character reference to a character not allowed in XML"));
        }
    };
    Ok(c)
}

fn parse_code(digits: &str, radix: u32) -> Result<u32, XmlError> {
    // from_str_radix accepts a leading '+', XML does not.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(nwf("malformed character reference"));
    }
    u32::from_str_radix(digits, radix).map_err(|_| nwf("character reference out of range"))
}

/// A start tag as written: qualified names, decoded values, no namespace processing yet.
#[derive(Debug)]
pub(super) struct RawTag {
    pub(super) qname: String,
    pub(super) attrs: Vec<(String, String)>,
    /// `<x/>`.
    pub(super) empty: bool,
}

/// A cursor over one tag's text.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) -> bool {
        let n = self.s.as_bytes()[self.i..]
            .iter()
            .take_while(|&&b| is_ws(b))
            .count();
        self.i += n;
        n > 0
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.as_bytes().get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Reads a QName and checks its length and syntax.
    fn qname(&mut self, limits: &XmlLimits) -> Result<&'a str, XmlError> {
        let rest = &self.s[self.i..];
        let len = rest
            .char_indices()
            .find(|&(_, c)| !(c == ':' || is_name_char(c)))
            .map_or(rest.len(), |(k, _)| k);
        let name = &rest[..len];
        if name.is_empty() {
            return Err(nwf("expected a name"));
        }
        if name.len() > limits.max_name_len {
            return Err(XmlError::LimitExceeded("name length"));
        }
        if !is_qname(name) {
            return Err(nwf("invalid name"));
        }
        self.i += len;
        Ok(name)
    }

    /// Reads `S? = S? 'value'` after an attribute name; returns the raw value.
    fn attr_value(&mut self) -> Result<&'a str, XmlError> {
        self.skip_ws();
        if !self.eat(b'=') {
            return Err(nwf("expected '=' after attribute name"));
        }
        self.skip_ws();
        let quote = match self.s.as_bytes().get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q as char,
            _ => return Err(nwf("attribute value without quotes")),
        };
        let rest = &self.s[self.i + 1..];
        let end = rest
            .find(quote)
            .ok_or_else(|| nwf("unterminated attribute value"))?;
        self.i += end + 2;
        Ok(&rest[..end])
    }
}

/// Parses `S Attribute`* `S?` starting at `cur`.
fn attr_list(cur: &mut Cursor<'_>, limits: &XmlLimits) -> Result<Vec<(String, String)>, XmlError> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    loop {
        let had_ws = cur.skip_ws();
        if cur.at_end() {
            return Ok(attrs);
        }
        if !had_ws {
            return Err(nwf("expected whitespace before attribute"));
        }
        if attrs.len() >= limits.max_attrs {
            return Err(XmlError::LimitExceeded("attributes"));
        }
        let name = cur.qname(limits)?;
        let raw = cur.attr_value()?;
        if attrs.iter().any(|(n, _)| n == name) {
            return Err(nwf("duplicate attribute"));
        }
        let mut value = String::new();
        decode(raw, &mut value, Mode::Attr)?;
        attrs.push((name.to_owned(), value));
    }
}

/// Parses the inside of a start tag (between `<` and `>`).
pub(super) fn parse_start_tag(inner: &str, limits: &XmlLimits) -> Result<RawTag, XmlError> {
    let (body, empty) = match inner.strip_suffix('/') {
        Some(body) => (body, true),
        None => (inner, false),
    };
    let mut cur = Cursor { s: body, i: 0 };
    let qname = cur.qname(limits)?.to_owned();
    let attrs = attr_list(&mut cur, limits)?;
    Ok(RawTag {
        qname,
        attrs,
        empty,
    })
}

/// Parses the inside of an end tag (between `</` and `>`); returns the qualified name.
pub(super) fn parse_end_tag<'a>(inner: &'a str, limits: &XmlLimits) -> Result<&'a str, XmlError> {
    let mut cur = Cursor { s: inner, i: 0 };
    let name = cur.qname(limits)?;
    cur.skip_ws();
    if !cur.at_end() {
        return Err(nwf("junk in end tag"));
    }
    Ok(name)
}

/// Checks the inside of the XML declaration (between `<?xml` and `?>`).
pub(super) fn parse_decl(inner: &str, limits: &XmlLimits) -> Result<(), XmlError> {
    let mut cur = Cursor { s: inner, i: 0 };
    let attrs = attr_list(&mut cur, limits)?;
    let mut it = attrs.iter().peekable();
    match it.next() {
        Some((k, v)) if k == "version" => {
            let minor = v.strip_prefix("1.").unwrap_or("");
            if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
                return Err(nwf("unsupported XML version"));
            }
        }
        _ => return Err(nwf("XML declaration without version")),
    }
    if let Some((_, v)) = it.next_if(|(k, _)| k == "encoding") {
        if !v.eq_ignore_ascii_case("UTF-8") {
            return Err(XmlError::UnsupportedEncoding);
        }
    }
    if let Some((_, v)) = it.next_if(|(k, _)| k == "standalone") {
        if v != "yes" && v != "no" {
            return Err(nwf("malformed XML declaration"));
        }
    }
    if it.next().is_some() {
        return Err(nwf("malformed XML declaration"));
    }
    Ok(())
}
