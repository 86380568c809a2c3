//! `message/cpim` (RFC 3862): message headers (`From`, `To`, `cc`, `DateTime`,
//! `Subject`, `NS`, `Require`, extension headers), a blank line, then one MIME part
//! (its headers, a blank line, its content).
//!
//! Lines end with CRLF when written; a bare LF is accepted when read. Header names are
//! matched without case. Reading is bounded: [`MAX_HEADERS`] headers of
//! [`MAX_HEADER_BYTES`] in all, before the content.

use super::InterworkError;
use crate::pidf::Note;

/// Headers in one part (message headers or content headers).
pub const MAX_HEADERS: usize = 64;
/// Bytes of all header lines of one part.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// `[Formal-name] <URI>` in `From`, `To` and `cc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpimAddress {
    pub display: Option<String>,
    pub uri: String,
}

impl CpimAddress {
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            display: None,
            uri: uri.into(),
        }
    }

    fn parse(value: &str) -> Result<Self, InterworkError> {
        let value = value.trim();
        let bad = InterworkError::Cpim("address is not [name] <URI>");
        let open = value.rfind('<').ok_or(bad.clone())?;
        let uri = value[open + 1..].strip_suffix('>').ok_or(bad)?;
        let name = value[..open].trim();
        let display = if name.is_empty() {
            None
        } else if let Some(quoted) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(unescape(quoted))
        } else {
            Some(name.to_owned())
        };
        Ok(Self {
            display,
            uri: uri.to_owned(),
        })
    }

    fn write(&self, out: &mut String) {
        if let Some(name) = &self.display {
            out.push('"');
            for c in name.chars().filter(|c| !c.is_control()) {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push_str("\" ");
        }
        out.push('<');
        out.push_str(&self.uri);
        out.push('>');
    }
}

/// A CPIM message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpim {
    pub from: Option<CpimAddress>,
    pub to: Vec<CpimAddress>,
    pub cc: Vec<CpimAddress>,
    /// `DateTime`, RFC 3339, as written.
    pub date_time: Option<String>,
    /// `Subject` headers with their `lang` parameter.
    pub subjects: Vec<Note>,
    /// `NS: prefix <uri>` declarations.
    pub namespaces: Vec<(String, String)>,
    /// `Require` values.
    pub require: Vec<String>,
    /// Other message headers (extension headers such as `MyFeatures.Option`), as
    /// written.
    pub extra_headers: Vec<(String, String)>,
    /// The inner part's `Content-Type`.
    pub content_type: String,
    /// The inner part's other headers (`Content-ID`, ...).
    pub content_headers: Vec<(String, String)>,
    pub content: Vec<u8>,
}

impl Cpim {
    /// A CPIM message wrapping `content` of `content_type`.
    pub fn new(content_type: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type: content_type.into(),
            content: content.into(),
            ..Self::default()
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, InterworkError> {
        let (message_headers, rest) = split_headers(bytes)?;
        let (content_headers, content) = split_headers(rest)?;
        let mut cpim = Self::default();
        for line in message_headers {
            let (name, params, value) = header_parts(&line)?;
            match name.to_ascii_lowercase().as_str() {
                "from" => cpim.from = Some(CpimAddress::parse(value)?),
                "to" => cpim.to.push(CpimAddress::parse(value)?),
                "cc" => cpim.cc.push(CpimAddress::parse(value)?),
                "datetime" => cpim.date_time = Some(value.trim().to_owned()),
                "subject" => cpim.subjects.push(Note {
                    text: value.to_owned(),
                    lang: params
                        .split(';')
                        .find_map(|p| p.trim().strip_prefix("lang="))
                        .map(str::to_owned),
                }),
                "ns" => {
                    let value = value.trim();
                    let (prefix, uri) = match value.find('<') {
                        Some(i) => (value[..i].trim(), value[i..].trim()),
                        None => return Err(InterworkError::Cpim("NS without <URI>")),
                    };
                    let uri = uri
                        .strip_prefix('<')
                        .and_then(|u| u.strip_suffix('>'))
                        .ok_or(InterworkError::Cpim("NS without <URI>"))?;
                    cpim.namespaces.push((prefix.to_owned(), uri.to_owned()));
                }
                "require" => cpim
                    .require
                    .extend(value.split(',').map(|r| r.trim().to_owned())),
                _ => cpim.extra_headers.push((name.to_owned(), value.to_owned())),
            }
        }
        for line in content_headers {
            let (name, _, value) = header_parts(&line)?;
            if name.eq_ignore_ascii_case("content-type") {
                cpim.content_type = value.trim().to_owned();
            } else {
                cpim.content_headers
                    .push((name.to_owned(), value.trim().to_owned()));
            }
        }
        if cpim.content_type.is_empty() {
            return Err(InterworkError::Cpim("the inner part has no Content-Type"));
        }
        cpim.content = content.to_vec();
        Ok(cpim)
    }

    /// The body bytes, with CRLF line ends. Header values are written as given,
    /// without CR or LF.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        let line = |out: &mut String, name: &str, value: &str| {
            out.push_str(name);
            out.push_str(": ");
            out.extend(value.chars().filter(|c| *c != '\r' && *c != '\n'));
            out.push_str("\r\n");
        };
        if let Some(from) = &self.from {
            let mut v = String::new();
            from.write(&mut v);
            line(&mut out, "From", &v);
        }
        for (name, list) in [("To", &self.to), ("cc", &self.cc)] {
            for addr in list {
                let mut v = String::new();
                addr.write(&mut v);
                line(&mut out, name, &v);
            }
        }
        if let Some(dt) = &self.date_time {
            line(&mut out, "DateTime", dt);
        }
        for subject in &self.subjects {
            match &subject.lang {
                Some(lang) => {
                    out.push_str("Subject:;lang=");
                    out.push_str(lang);
                    out.push(' ');
                    out.extend(subject.text.chars().filter(|c| *c != '\r' && *c != '\n'));
                    out.push_str("\r\n");
                }
                None => line(&mut out, "Subject", &subject.text),
            }
        }
        for (prefix, uri) in &self.namespaces {
            line(&mut out, "NS", &format!("{prefix} <{uri}>"));
        }
        if !self.require.is_empty() {
            line(&mut out, "Require", &self.require.join(","));
        }
        for (name, value) in &self.extra_headers {
            line(&mut out, name, value);
        }
        out.push_str("\r\n");
        line(&mut out, "Content-Type", &self.content_type);
        for (name, value) in &self.content_headers {
            line(&mut out, name, value);
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.content);
        bytes
    }

    /// The subject for `lang`: in that language, else without one, else the first.
    pub fn subject(&self, lang: Option<&str>) -> Option<&str> {
        Note::pick(&self.subjects, lang).map(|n| n.text.as_str())
    }
}

/// The header lines before the first empty line, and the bytes after it.
fn split_headers(bytes: &[u8]) -> Result<(Vec<String>, &[u8]), InterworkError> {
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        if pos > MAX_HEADER_BYTES {
            return Err(InterworkError::TooLong("CPIM headers"));
        }
        let rest = &bytes[pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(InterworkError::Cpim(
                "headers do not end with an empty line",
            ));
        };
        let raw = &rest[..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += end + 1;
        if raw.is_empty() {
            return Ok((lines, &bytes[pos..]));
        }
        if lines.len() >= MAX_HEADERS {
            return Err(InterworkError::TooLong("CPIM header count"));
        }
        let line = std::str::from_utf8(raw).map_err(|_| InterworkError::NotUtf8)?;
        lines.push(line.to_owned());
    }
}

/// `Name:;params value` -> (name, params, value). The value loses one leading space.
fn header_parts(line: &str) -> Result<(&str, &str, &str), InterworkError> {
    let (name, rest) = line
        .split_once(':')
        .ok_or(InterworkError::Cpim("header line without ':'"))?;
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b));
    if !valid_name {
        return Err(InterworkError::Cpim("bad header name"));
    }
    let (params, value) = match rest.strip_prefix(';') {
        Some(p) => p.split_once(' ').unwrap_or((p, "")),
        None => ("", rest.strip_prefix(' ').unwrap_or(rest)),
    };
    Ok((name, params, value))
}

/// Undoes `\"` and `\\` in a quoted formal name.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The example of RFC 3862 §6.1, with CRLF line ends.
    const RFC3862: &str = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n\
        To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n\
        DateTime: 2000-12-13T13:40:00-08:00\r\n\
        Subject: the weather will be fine today\r\n\
        Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n\
        NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n\
        Require: MyFeatures.VitalMessageOption\r\n\
        MyFeatures.VitalMessageOption: Confirmation-requested\r\n\
        MyFeatures.WackyMessageOption: Use-silly-font\r\n\
        \r\n\
        Content-type: text/xml; charset=utf-8\r\n\
        Content-ID: <1234567890@foo.com>\r\n\
        \r\n\
        <body>\r\n\
        Here is the text of my message.\r\n\
        </body>\r\n";

    #[test]
    fn rfc3862_example() {
        let m = Cpim::parse(RFC3862.as_bytes()).unwrap();
        let from = m.from.as_ref().unwrap();
        assert_eq!(from.display.as_deref(), Some("MR SANDERS"));
        assert_eq!(from.uri, "im:piglet@100akerwood.com");
        assert_eq!(m.to[0].uri, "im:eeyore@100akerwood.com");
        assert_eq!(m.date_time.as_deref(), Some("2000-12-13T13:40:00-08:00"));
        assert_eq!(m.subject(None), Some("the weather will be fine today"));
        assert_eq!(
            m.subject(Some("fr")),
            Some("beau temps prevu pour aujourd'hui")
        );
        assert_eq!(
            m.namespaces,
            vec![("MyFeatures".into(), "mid:MessageFeatures@id.foo.com".into())]
        );
        assert_eq!(m.require, vec!["MyFeatures.VitalMessageOption".to_string()]);
        assert_eq!(m.extra_headers.len(), 2);
        assert_eq!(m.content_type, "text/xml; charset=utf-8");
        assert_eq!(m.content_headers[0].0, "Content-ID");
        assert!(m.content.starts_with(b"<body>\r\nHere"));
        assert_eq!(Cpim::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn built_message_is_read_back() {
        let mut m = Cpim::new("text/plain; charset=UTF-8", "hi \"there\"\r\n");
        m.from = Some(CpimAddress {
            display: Some("Juliet \"J\" C".into()),
            uri: "sip:juliet@example.com".into(),
        });
        m.to.push(CpimAddress::new("sip:romeo@example.net"));
        m.subjects.push(Note::new("hello").with_lang("en"));
        let bytes = m.to_bytes();
        assert!(bytes.starts_with(b"From: \"Juliet \\\"J\\\" C\" <sip:juliet@example.com>\r\n"));
        assert_eq!(Cpim::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn refusals() {
        for (bad, why) in [
            (
                &b"From: x\r\n\r\nContent-Type: text/plain\r\n\r\n"[..],
                "address",
            ),
            (b"To: <a>\r\n", "empty line"),
            (b"\r\n\r\nhello", "Content-Type"),
            (b"\r\nX-A: 1\r\n\r\n", "Content-Type"),
            (
                b"Bad Name: 1\r\n\r\nContent-Type: text/plain\r\n\r\n",
                "header name",
            ),
            (b"\xff: 1\r\n\r\n", "UTF-8"),
        ] {
            let err = Cpim::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            Cpim::parse(format!("{many}\r\n").as_bytes()),
            Err(InterworkError::TooLong("CPIM header count"))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Cpim::parse(&bytes);
        }

        #[test]
        fn subjects_and_content_round_trip(
            subject in "[ -~\u{e9}]{0,20}",
            lang in proptest::option::of("[a-z]{2}"),
            content in proptest::collection::vec(any::<u8>(), 0..50),
        ) {
            let mut m = Cpim::new("text/plain", content);
            m.subjects.push(Note { text: subject, lang });
            prop_assert_eq!(Cpim::parse(&m.to_bytes()).unwrap(), m);
        }
    }
}
