//! Finding things in the parsed document: which key a byte offset belongs to, where a
//! key is written, and taking a key out so deserialization can go on past it.

use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A path as an admin writes it: `c2s.listen`, `tls.certificates[1].key`. An index is
/// only shown when a key follows it (`c2s.listen`, not `c2s.listen[2]`): the line
/// already says which element is meant.
pub(super) fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(n) if i + 1 < path.len() => out.push_str(&format!("[{n}]")),
            Seg::Index(_) => {}
        }
    }
    out
}

/// A path from a dotted key without indexes (`c2s.listen`).
pub(super) fn keys(dotted: &str) -> Vec<Seg> {
    dotted.split('.').map(|k| Seg::Key(k.to_string())).collect()
}

/// 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The path of the smallest (then deepest) key or value whose span holds `offset`, or
/// an empty path.
pub(super) fn path_at(root: &DeTable<'_>, offset: usize) -> Vec<Seg> {
    let mut best: Option<(usize, Vec<Seg>)> = None;
    search_table(root, &mut Vec::new(), offset, &mut best);
    best.map(|(_, p)| p).unwrap_or_default()
}

fn consider(span: Range<usize>, path: &[Seg], offset: usize, best: &mut Option<(usize, Vec<Seg>)>) {
    let holds = span.contains(&offset) || (span.is_empty() && span.start == offset);
    // On a tie the deeper path wins: an array of tables and its first element share
    // the span of the first `[[header]]`.
    if holds && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
        *best = Some((span.len(), path.to_vec()));
    }
}

fn search_table(
    table: &DeTable<'_>,
    path: &mut Vec<Seg>,
    offset: usize,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        consider(key.span(), path, offset, best);
        search_value(value, path, offset, best);
        path.pop();
    }
}

fn search_value(
    value: &Spanned<DeValue<'_>>,
    path: &mut Vec<Seg>,
    offset: usize,
    best: &mut Option<(usize, Vec<Seg>)>,
) {
    consider(value.span(), path, offset, best);
    match value.get_ref() {
        DeValue::Table(t) => search_table(t, path, offset, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                search_value(item, path, offset, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The value at `path`, if the document has it.
pub(super) fn get<'a, 'i>(root: &'a DeTable<'i>, path: &[Seg]) -> Option<&'a Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(k) = first else { return None };
    let mut value = root.get(k.as_str())?;
    for seg in rest {
        value = match (seg, value.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Where `path` is written: the key itself for a table entry, the element for an
/// array index. `None` when the document does not have it (a default is in force).
pub(super) fn offset_of(root: &DeTable<'_>, path: &[Seg]) -> Option<usize> {
    match path.split_last()? {
        (Seg::Index(_), _) => get(root, path).map(|v| v.span().start),
        (Seg::Key(k), parent) => {
            let table = if parent.is_empty() {
                root
            } else {
                match get(root, parent)?.get_ref() {
                    DeValue::Table(t) => t,
                    _ => return None,
                }
            };
            table
                .get_key_value(k.as_str())
                .map(|(key, _)| key.span().start)
        }
    }
}

/// Takes the key or array element at `path` out of the document. False when there
/// was nothing to take.
pub(super) fn remove(root: &mut DeTable<'_>, path: &[Seg]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    if parent.is_empty() {
        return match last {
            Seg::Key(k) => root.remove(k.as_str()).is_some(),
            Seg::Index(_) => false,
        };
    }
    let Some(container) = get_mut(root, parent) else {
        return false;
    };
    match (last, container.get_mut()) {
        (Seg::Key(k), DeValue::Table(t)) => t.remove(k.as_str()).is_some(),
        (Seg::Index(i), DeValue::Array(a)) if *i < a.len() => {
            let mut kept = DeArray::new();
            for (n, item) in a.iter().enumerate() {
                if n != *i {
                    kept.push(item.clone());
                }
            }
            *a = kept;
            true
        }
        _ => false,
    }
}

fn get_mut<'a, 'i>(
    root: &'a mut DeTable<'i>,
    path: &[Seg],
) -> Option<&'a mut Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(k) = first else { return None };
    let mut value = root.get_mut(k.as_str())?;
    for seg in rest {
        value = match (seg, value.get_mut()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get_mut(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> DeTable<'_> {
        DeTable::parse(text).expect("toml").into_inner()
    }

    #[test]
    fn paths_render_as_dotted_keys() {
        let p = vec![
            Seg::Key("tls".into()),
            Seg::Key("certificates".into()),
            Seg::Index(1),
            Seg::Key("key".into()),
        ];
        assert_eq!(dotted(&p), "tls.certificates[1].key");
        assert_eq!(
            dotted(&[
                Seg::Key("c2s".into()),
                Seg::Key("listen".into()),
                Seg::Index(2)
            ]),
            "c2s.listen"
        );
    }

    #[test]
    fn an_offset_finds_the_innermost_element() {
        let text = "[c2s]\nlisten = [\"127.0.0.1:1\", \"bad\"]\n";
        let d = doc(text);
        let at = text.find("bad").expect("in text");
        let p = path_at(&d, at);
        assert_eq!(dotted(&p), "c2s.listen");
        assert_eq!(p.last(), Some(&Seg::Index(1)));
        assert_eq!(line_of(text, offset_of(&d, &p).expect("offset")), 2);
    }

    #[test]
    fn removing_an_element_keeps_the_others() {
        let text = "[c2s]\nlisten = [\"a\", \"b\", \"c\"]\n";
        let mut d = doc(text);
        let p = vec![
            Seg::Key("c2s".into()),
            Seg::Key("listen".into()),
            Seg::Index(1),
        ];
        assert!(remove(&mut d, &p));
        let listen = get(&d, &keys("c2s.listen")).expect("listen");
        let DeValue::Array(a) = listen.get_ref() else {
            panic!("array")
        };
        let left: Vec<_> = a.iter().filter_map(|v| v.get_ref().as_str()).collect();
        assert_eq!(left, ["a", "c"]);
        assert!(remove(&mut d, &keys("c2s.listen")));
        assert!(!remove(&mut d, &keys("c2s.listen")));
    }

    #[test]
    fn keys_are_found_under_their_table() {
        let text = "[server]\ndomains = []\n\n[c2s]\nmax_depth = 1\n";
        let d = doc(text);
        let at = offset_of(&d, &keys("c2s.max_depth")).expect("written");
        assert_eq!(line_of(text, at), 5);
        assert_eq!(offset_of(&d, &keys("c2s.max_attributes")), None);
    }
}
