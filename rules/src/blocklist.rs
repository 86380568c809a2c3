//! XEP-0191 block list matching, with the JID rules of XEP-0016 §2.1: an item blocks the
//! exact full JID, a bare JID blocks all its resources, a domain blocks everyone there,
//! and `domain/resource` blocks that resource of the domain itself.

use herald_translate::Jid;

/// Which block-list item covered the address, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMatch {
    pub item: String,
    pub rule: &'static str,
}

/// Whether `addr` is covered by any item of `list` (items are normalized JID strings;
/// malformed items never match).
pub fn blocks(list: &[String], addr: &Jid) -> Option<BlockMatch> {
    list.iter().find_map(|item| {
        let it = Jid::parse(item).ok()?;
        let rule = match (it.local(), it.resource()) {
            (Some(_), Some(_)) => (it == *addr).then_some("full JID"),
            (Some(_), None) => (it == addr.bare()).then_some("bare JID"),
            (None, Some(_)) => (addr.local().is_none()
                && it.domain() == addr.domain()
                && it.resource() == addr.resource())
            .then_some("domain/resource"),
            (None, None) => (it.domain() == addr.domain()).then_some("domain"),
        }?;
        Some(BlockMatch {
            item: item.clone(),
            rule,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    #[test]
    fn matching_rules() {
        let list = vec!["romeo@montague.example".to_string()];
        assert_eq!(
            blocks(&list, &j("romeo@montague.example/phone")).map(|m| m.rule),
            Some("bare JID")
        );
        assert!(blocks(&list, &j("juliet@capulet.example")).is_none());

        let list = vec!["romeo@montague.example/phone".to_string()];
        assert!(blocks(&list, &j("romeo@montague.example/phone")).is_some());
        assert!(blocks(&list, &j("romeo@montague.example/desk")).is_none());
        assert!(blocks(&list, &j("romeo@montague.example")).is_none());

        let list = vec!["spam.example".to_string()];
        assert_eq!(
            blocks(&list, &j("anyone@spam.example/x")).map(|m| m.rule),
            Some("domain")
        );
        assert!(blocks(&list, &j("anyone@ham.example")).is_none());

        let list = vec!["spam.example/bot".to_string()];
        assert!(blocks(&list, &j("spam.example/bot")).is_some());
        assert!(blocks(&list, &j("user@spam.example/bot")).is_none());
    }

    #[test]
    fn malformed_items_never_match() {
        let list = vec!["@@".to_string()];
        assert!(blocks(&list, &j("a@b")).is_none());
    }
}
