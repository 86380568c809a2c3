//! The element tree handed out by the reader, and its serializer.

use super::syntax::{is_ncname, is_xml_char};
use crate::ns;

/// An XML element with resolved namespace.
///
/// Attribute names: unprefixed names as written; `xml:*` attributes as `"xml:lang"` etc.;
/// attributes in any other namespace in Clark notation, `"{uri}local"`. Namespace
/// declarations are never stored: they are implied by `ns` and written by the serializer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Resolved namespace URI, "" if none.
    pub ns: String,
    /// Attributes in document order.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder form of [`set_attr`](Self::set_attr).
    pub fn with_attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.set_attr(k, v);
        self
    }

    pub fn with_child(mut self, child: Self) -> Self {
        self.push_child(child);
        self
    }

    /// Builder form of [`push_text`](Self::push_text).
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, replacing the value in place if it exists.
    pub fn set_attr(&mut self, k: impl Into<String>, v: impl Into<String>) {
        let (k, v) = (k.into(), v.into());
        match self.attrs.iter_mut().find(|(n, _)| *n == k) {
            Some((_, old)) => *old = v,
            None => self.attrs.push((k, v)),
        }
    }

    pub fn remove_attr(&mut self, k: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(n, _)| n == k)?;
        Some(self.attrs.remove(i).1)
    }

    pub fn push_child(&mut self, child: Self) {
        self.children.push(Node::Element(child));
    }

    /// Appends text. Empty text adds nothing, and text right after a text child is merged
    /// into it, so a tree built here equals the one parsed from its serialization.
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(last)) => last.push_str(&text),
            _ => self.children.push(Node::Text(text)),
        }
    }

    /// The first child element with this name and namespace.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Self> {
        self.elements().find(|e| e.is(name, ns))
    }

    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Self> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.child(name, ns).is_some()
    }

    /// Child elements only, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Self> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Removes every child element with this name and namespace.
    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
    }

    /// The direct text children, concatenated.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// Serializes into `out`. `parent_ns` is the default namespace in scope where the
    /// element is written (e.g. `jabber:client` inside a client stream): `xmlns='...'` is
    /// written only when `self.ns` differs from it, and children likewise relative to
    /// their parent. Element names are never prefixed. Attribute values use single quotes.
    ///
    /// Escaping: `& < > " '` everywhere; also `\r` in text and `\t \n \r` in attribute
    /// values (as character references, so they survive XML's whitespace normalization).
    /// Characters XML cannot carry at all (e.g. U+0000) are written as U+FFFD.
    /// Attributes named `xmlns` or `xmlns:*` are skipped (declarations are the
    /// serializer's job); `{uri}local` attributes get a generated prefix declared on the
    /// same element, and `{http://www.w3.org/XML/1998/namespace}local` is written as
    /// `xml:local`.
    ///
    /// Names are checked, so a tree built from untrusted strings cannot inject markup:
    /// element names must be NCNames (XML `Name` without colon); attribute names must be
    /// an NCName, `xml:` + NCName, or `{uri}` + NCName with a non-empty `uri` other than
    /// the `xmlns` namespace; no two attributes may have the same (namespace, name); an
    /// element cannot be in the XML or `xmlns` namespace. When any element of the tree
    /// fails a check, nothing is written: `out` is left exactly as it was.
    pub fn write_to(&self, out: &mut String, parent_ns: &str) -> Result<(), SerializeError> {
        let start = out.len();
        let result = self.write_checked(out, parent_ns);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// [`write_to`](Self::write_to) into a new string.
    pub fn to_xml(&self, parent_ns: &str) -> Result<String, SerializeError> {
        let mut out = String::new();
        self.write_to(&mut out, parent_ns)?;
        Ok(out)
    }

    /// Writes the element, checking names as it goes; on error `out` holds a prefix of
    /// the output, which [`write_to`](Self::write_to) removes.
    fn write_checked(&self, out: &mut String, parent_ns: &str) -> Result<(), SerializeError> {
        if !is_ncname(&self.name) {
            return Err(SerializeError::ElementName(self.name.clone()));
        }
        if self.ns == ns::XML || self.ns == ns::XMLNS {
            return Err(SerializeError::ReservedNamespace(self.ns.clone()));
        }
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            out.push_str(" xmlns='");
            escape(out, &self.ns, true);
            out.push('\'');
        }
        // Namespaces of Clark-notation attributes, in order of first use.
        let mut uris: Vec<&str> = Vec::new();
        for (i, (k, v)) in self.attrs.iter().enumerate() {
            let Some(name) = AttrName::parse(k)? else {
                continue;
            };
            if self.attrs[..i].iter().any(|(e, _)| name.is_spelled(e)) {
                return Err(SerializeError::DuplicateAttribute(k.clone()));
            }
            out.push(' ');
            match name {
                AttrName::Plain(local) => out.push_str(local),
                AttrName::Xml(local) => {
                    out.push_str("xml:");
                    out.push_str(local);
                }
                AttrName::Ns(uri, local) => {
                    let i = match uris.iter().position(|u| *u == uri) {
                        Some(i) => i,
                        None => {
                            uris.push(uri);
                            let i = uris.len() - 1;
                            out.push_str("xmlns:ns");
                            out.push_str(&i.to_string());
                            out.push_str("='");
                            escape(out, uri, true);
                            out.push_str("' ");
                            i
                        }
                    };
                    out.push_str("ns");
                    out.push_str(&i.to_string());
                    out.push(':');
                    out.push_str(local);
                }
            }
            out.push_str("='");
            escape(out, v, true);
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return Ok(());
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write_checked(out, &self.ns)?,
                Node::Text(t) => escape(out, t, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
        Ok(())
    }
}

/// Why an element tree cannot be serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SerializeError {
    /// An element name is not an NCName.
    #[error("invalid element name {0:?}")]
    ElementName(String),
    /// An attribute name is none of: NCName, `xml:` + NCName, `{uri}` + NCName (with a
    /// non-empty `uri` other than the `xmlns` namespace).
    #[error("invalid attribute name {0:?}")]
    AttributeName(String),
    /// Two attributes of one element would be written with the same name.
    #[error("duplicate attribute {0:?}")]
    DuplicateAttribute(String),
    /// An element in the XML or the `xmlns` namespace, which no default namespace
    /// declaration may name.
    #[error("reserved namespace {0:?} on an element")]
    ReservedNamespace(String),
}

/// An attribute name as it will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrName<'a> {
    /// No namespace.
    Plain(&'a str),
    /// In the XML namespace: `xml:local`.
    Xml(&'a str),
    /// In another namespace, written with a generated prefix.
    Ns(&'a str, &'a str),
}

impl<'a> AttrName<'a> {
    /// Whether the stored name `k` denotes this attribute. Only names in the XML
    /// namespace have two spellings (`xml:x` and `{http://www.w3.org/XML/1998/namespace}x`);
    /// any other name has one, so comparing strings suffices.
    fn is_spelled(self, k: &str) -> bool {
        match self {
            Self::Plain(local) => k == local,
            Self::Xml(local) => {
                k.strip_prefix("xml:") == Some(local) || clark(k) == Some((ns::XML, local))
            }
            Self::Ns(uri, local) => clark(k) == Some((uri, local)),
        }
    }

    /// Classifies and checks a stored attribute name; `None` for namespace declarations,
    /// which are never written from `attrs`.
    fn parse(k: &'a str) -> Result<Option<Self>, SerializeError> {
        let bad = || SerializeError::AttributeName(k.to_owned());
        if k == "xmlns" || k.starts_with("xmlns:") {
            return Ok(None);
        }
        let name = if let Some((uri, local)) = clark(k) {
            if uri.is_empty() || uri == ns::XMLNS || !is_ncname(local) {
                return Err(bad());
            }
            if uri == ns::XML {
                Self::Xml(local)
            } else {
                Self::Ns(uri, local)
            }
        } else if let Some(local) = k.strip_prefix("xml:") {
            if !is_ncname(local) {
                return Err(bad());
            }
            Self::Xml(local)
        } else if is_ncname(k) {
            Self::Plain(k)
        } else {
            return Err(bad());
        };
        Ok(Some(name))
    }
}

/// Splits a `{uri}local` attribute name.
fn clark(k: &str) -> Option<(&str, &str)> {
    // Local names cannot contain '}', namespace URIs can.
    k.strip_prefix('{')?.rsplit_once('}')
}

/// Appends `s` escaped for text (`attr` false) or a quoted attribute value.
pub fn escape(out: &mut String, s: &str, attr: bool) {
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\r' => "&#xD;",
            '\n' if attr => "&#xA;",
            '\t' if attr => "&#x9;",
            c if !is_xml_char(c) => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        out.push_str(rep);
        run = i + c.len_utf8();
    }
    out.push_str(&s[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Element {
        Element::new("message", "jabber:client")
            .with_attr("to", "a@b")
            .with_attr("type", "chat")
            .with_child(Element::new("body", "jabber:client").with_text("hi"))
            .with_child(Element::new("x", "urn:x").with_child(Element::new("y", "urn:x")))
    }

    #[test]
    fn builder_and_accessors() {
        let mut e = sample();
        assert_eq!(e.attr("to"), Some("a@b"));
        e.set_attr("to", "c@d");
        assert_eq!(e.attrs[0], ("to".into(), "c@d".into()));
        assert_eq!(e.remove_attr("type").as_deref(), Some("chat"));
        assert_eq!(e.remove_attr("type"), None);
        assert!(e.has_child("body", "jabber:client"));
        assert!(!e.has_child("body", "urn:x"));
        assert_eq!(
            e.child("body", "jabber:client")
                .map(Element::text)
                .as_deref(),
            Some("hi")
        );
        e.child_mut("x", "urn:x").unwrap().push_text("t");
        assert_eq!(e.elements().count(), 2);
        e.remove_children("body", "jabber:client");
        assert_eq!(e.elements().count(), 1);
        assert!(e.is("message", "jabber:client"));
    }

    #[test]
    fn text_merges_and_skips_empty() {
        let e = Element::new("a", "")
            .with_text("x")
            .with_text("")
            .with_text("y");
        assert_eq!(e.children, vec![Node::Text("xy".into())]);
        let e = Element::new("a", "").with_text("");
        assert!(e.children.is_empty());
        let e = Element::new("a", "")
            .with_text("1")
            .with_child(Element::new("b", ""))
            .with_text("2");
        assert_eq!(e.text(), "12");
    }

    #[test]
    fn serializes_relative_to_parent_namespace() {
        assert_eq!(
            sample().to_xml("jabber:client").unwrap(),
            "<message to='a@b' type='chat'><body>hi</body><x xmlns='urn:x'><y/></x></message>"
        );
        assert_eq!(
            Element::new("iq", "jabber:client").to_xml("").unwrap(),
            "<iq xmlns='jabber:client'/>"
        );
        let e = Element::new("a", "urn:a").with_child(Element::new("b", ""));
        assert_eq!(e.to_xml("urn:a").unwrap(), "<a><b xmlns=''/></a>");
    }

    #[test]
    fn escapes_text_and_attributes() {
        let e = Element::new("a", "")
            .with_attr("v", "<&>\"'\t\n\r")
            .with_text("<&>\"'\t\n\r\u{0}]]>");
        assert_eq!(
            e.to_xml("").unwrap(),
            "<a v='&lt;&amp;&gt;&quot;&apos;&#x9;&#xA;&#xD;'>\
             &lt;&amp;&gt;&quot;&apos;\t\n&#xD;\u{FFFD}]]&gt;</a>"
        );
    }

    #[test]
    fn xml_lang_and_namespaced_attributes() {
        let e = Element::new("a", "")
            .with_attr("xml:lang", "en")
            .with_attr("{urn:p}x", "1")
            .with_attr("{urn:q}y", "2")
            .with_attr("{urn:p}z", "3")
            .with_attr("xmlns", "ignored")
            .with_attr(format!("{{{}}}space", ns::XML), "preserve");
        assert_eq!(
            e.to_xml("").unwrap(),
            "<a xml:lang='en' xmlns:ns0='urn:p' ns0:x='1' xmlns:ns1='urn:q' ns1:y='2' \
             ns0:z='3' xml:space='preserve'/>"
        );
    }

    #[test]
    fn round_trips_through_the_reader() {
        use crate::xml::{StreamEvent, StreamReader};
        let stanza = sample()
            .with_attr("xml:lang", "de")
            .with_attr("{urn:p}x", "a'b\"c\t\r\n")
            .with_child(Element::new("t", "jabber:client").with_text(" é & <x> \r\n ]]> 😀"));
        let doc = format!(
            "<stream:stream xmlns='jabber:client' xmlns:stream='{}'>{}",
            ns::STREAM,
            stanza.to_xml("jabber:client").unwrap()
        );
        let mut r = StreamReader::default();
        r.feed(doc.as_bytes());
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert_eq!(r.next_event(), Ok(Some(StreamEvent::Stanza(stanza))));
    }

    #[test]
    fn element_names_that_would_inject_markup_are_refused() {
        for name in [
            "message to='x'><body",
            "a b",
            "a>",
            "a/",
            "",
            "1a",
            "-a",
            "p:a",
            "a\u{0}",
            "a\u{D7}",
        ] {
            let e = Element::new(name, "jabber:client");
            assert_eq!(
                e.to_xml("jabber:client"),
                Err(SerializeError::ElementName(name.into())),
                "{name:?}"
            );
        }
        // Valid names, ASCII and not.
        for name in [
            "a",
            "_a",
            "a-b.c9",
            "\u{e9}t\u{e9}",
            "\u{4e2d}\u{b7}x",
            "xmlns",
        ] {
            assert!(Element::new(name, "").to_xml("").is_ok(), "{name:?}");
        }
    }

    #[test]
    fn invalid_names_deep_in_the_tree_leave_the_output_untouched() {
        let bad = Element::new("a", "")
            .with_text("t")
            .with_child(Element::new("b", "urn:b").with_child(Element::new("c d", "")));
        let mut out = String::from("<stream>");
        assert_eq!(
            bad.write_to(&mut out, ""),
            Err(SerializeError::ElementName("c d".into()))
        );
        assert_eq!(out, "<stream>");
        let bad_attr =
            Element::new("a", "").with_child(Element::new("b", "").with_attr("x y", "1"));
        assert_eq!(
            bad_attr.write_to(&mut out, ""),
            Err(SerializeError::AttributeName("x y".into()))
        );
        assert_eq!(out, "<stream>");
        sample().write_to(&mut out, "jabber:client").unwrap();
        assert!(out.starts_with("<stream><message to='a@b'"));
    }

    #[test]
    fn attribute_names_are_checked() {
        let refused = [
            "to='x' onload",
            "a b",
            "p:a",
            "xml:",
            "xml:a b",
            "xml:p:a",
            "{urn:x}",
            "{urn:x}a b",
            "{urn:x}p:a",
            "{}a",
            "{http://www.w3.org/2000/xmlns/}a",
            "{urn:x",
            "",
            "9",
        ];
        for k in refused {
            let e = Element::new("a", "").with_attr(k, "v");
            assert_eq!(
                e.to_xml(""),
                Err(SerializeError::AttributeName(k.into())),
                "{k:?}"
            );
        }
        let accepted = [
            "a",
            "xml:lang",
            "{urn:x}a",
            "{urn:}x}a",
            "\u{e9}",
            "xmlns:a b",
        ];
        for k in accepted {
            assert!(
                Element::new("a", "").with_attr(k, "v").to_xml("").is_ok(),
                "{k:?}"
            );
        }
    }

    #[test]
    fn duplicate_attributes_are_refused() {
        let mut e = Element::new("a", "");
        e.attrs.push(("x".into(), "1".into()));
        e.attrs.push(("x".into(), "2".into()));
        assert_eq!(
            e.to_xml(""),
            Err(SerializeError::DuplicateAttribute("x".into()))
        );
        let e = Element::new("a", "")
            .with_attr("xml:lang", "en")
            .with_attr(format!("{{{}}}lang", ns::XML), "de");
        assert!(matches!(
            e.to_xml(""),
            Err(SerializeError::DuplicateAttribute(_))
        ));
        let e = Element::new("a", "")
            .with_attr("{urn:p}x", "1")
            .with_attr("{urn:q}x", "2")
            .with_attr("x", "3");
        assert!(
            e.to_xml("").is_ok(),
            "same local name, different namespaces"
        );
    }

    #[test]
    fn reserved_namespaces_are_refused_on_elements() {
        for uri in [ns::XML, ns::XMLNS] {
            assert_eq!(
                Element::new("a", uri).to_xml(""),
                Err(SerializeError::ReservedNamespace(uri.into()))
            );
        }
    }

    #[test]
    fn namespace_uris_cannot_break_out() {
        use crate::xml::{StreamEvent, StreamReader};
        let evil = "urn:x' onload='y'><script>&\"";
        let stanza = Element::new("m", evil)
            .with_attr(format!("{{{evil}}}a"), "1")
            .with_child(Element::new("c", "urn:ok"));
        let xml = stanza.to_xml("jabber:client").unwrap();
        assert_eq!(xml.matches('<').count(), 3, "{xml}");
        assert!(!xml.contains("'y'"), "{xml}");
        let doc = format!(
            "<stream:stream xmlns='jabber:client' xmlns:stream='{}'>{xml}",
            ns::STREAM
        );
        let mut r = StreamReader::default();
        r.feed(doc.as_bytes());
        assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert_eq!(r.next_event(), Ok(Some(StreamEvent::Stanza(stanza))));
    }
}
