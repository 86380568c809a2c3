//! XEP-0280 §6: which one-to-one messages are copied to the user's other
//! carbon-enabled resources.

use crate::message::{MessageFacts, MessageType};

/// Whether a message gets carbon copies, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarbonCopy {
    pub copy: bool,
    pub reason: &'static str,
}

impl CarbonCopy {
    fn new(copy: bool, reason: &'static str) -> Self {
        Self { copy, reason }
    }
}

/// Chat messages, and normal messages with a body, are copied unless marked
/// `<private/>` or `<no-copy/>`; a carbon copy is never copied again.
pub fn carbon_eligible(m: &MessageFacts) -> CarbonCopy {
    if m.private {
        return CarbonCopy::new(false, "marked private by the sender (XEP-0280 §7)");
    }
    if m.hint_no_copy {
        return CarbonCopy::new(
            false,
            "the sender asked for no copies: no-copy hint (XEP-0334 §4)",
        );
    }
    if m.is_carbon {
        return CarbonCopy::new(false, "already a carbon copy (XEP-0280 §6)");
    }
    match m.kind {
        MessageType::Chat => CarbonCopy::new(true, "type chat (XEP-0280 §6)"),
        MessageType::Normal if m.has_body => {
            CarbonCopy::new(true, "type normal with a body (XEP-0280 §6)")
        }
        MessageType::Normal => CarbonCopy::new(false, "type normal without a body (XEP-0280 §6)"),
        MessageType::Groupchat => {
            CarbonCopy::new(false, "type groupchat is not copied (XEP-0280 §6)")
        }
        MessageType::Headline => {
            CarbonCopy::new(false, "type headline is not copied (XEP-0280 §6)")
        }
        MessageType::Error => CarbonCopy::new(false, "type error is not copied (XEP-0280 §6)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_translate::{ns, Element};

    fn el(t: Option<&str>, children: &[(&str, &str)]) -> MessageFacts {
        let mut m = Element::new("message", ns::CLIENT);
        if let Some(t) = t {
            m.set_attr("type", t);
        }
        for (name, ns) in children {
            m.push_child(Element::new(*name, *ns));
        }
        MessageFacts::of(&m)
    }

    #[test]
    fn eligibility() {
        let body = ("body", ns::CLIENT);
        assert!(carbon_eligible(&el(Some("chat"), &[])).copy);
        let private = carbon_eligible(&el(Some("chat"), &[("private", ns::CARBONS)]));
        assert!(!private.copy && private.reason.contains("private"));
        assert!(!carbon_eligible(&el(Some("chat"), &[("no-copy", ns::HINTS)])).copy);
        assert!(!carbon_eligible(&el(Some("chat"), &[("received", ns::CARBONS)])).copy);
        assert!(!carbon_eligible(&el(Some("chat"), &[("sent", ns::CARBONS)])).copy);
        assert!(!carbon_eligible(&el(None, &[])).copy);
        assert!(carbon_eligible(&el(None, &[body])).copy);
        assert!(carbon_eligible(&el(Some("normal"), &[body])).copy);
        for t in ["headline", "groupchat", "error"] {
            let d = carbon_eligible(&el(Some(t), &[body]));
            assert!(!d.copy, "{t}");
            assert!(d.reason.contains(t), "{}", d.reason);
        }
        // A private marker in another namespace is not the carbons marker.
        assert!(carbon_eligible(&el(Some("chat"), &[("private", "urn:example")])).copy);
    }
}
