//! The dialback half of the receiving machine: `<db:result/>` requests from initiating
//! servers and `<db:verify/>` requests to us as authoritative server (XEP-0220 §2.2).

use std::time::Instant;

use super::{PendingResult, Receiving, ReceivingAction};
use crate::s2s::common::{self, DbBody};
use crate::s2s::DialbackOutcome;
use crate::stanza::StanzaErrorCondition as Sc;
use crate::stream_error::{StreamError, StreamErrorCondition as Cond};
use crate::xml::Element;

impl Receiving {
    /// `from` and `to` of a dialback request as domains; a stream error otherwise.
    fn db_addresses(&mut self, el: &Element) -> Option<(String, String)> {
        if el.attr("type").is_some() {
            // Answers never travel on an inbound stream (XEP-0220 §2.2): an unsolicited
            // one is an attack (§4.2).
            self.fail(StreamError::with_text(
                Cond::NotAuthorized,
                "unsolicited dialback answer",
            ));
            return None;
        }
        let from = el.attr("from").and_then(common::domain);
        let to = el.attr("to").and_then(common::domain);
        match (from, to) {
            (Some(from), Some(to)) => Some((from, to)),
            _ => {
                let text = "dialback needs domain from and to";
                self.fail(StreamError::with_text(Cond::ImproperAddressing, text));
                None
            }
        }
    }

    /// The dialback error a request for `hosted` gets before any key is checked.
    fn db_refusal(&self, hosted: &str) -> Option<Sc> {
        if !self.cfg.hosted.iter().any(|h| h == hosted) {
            Some(Sc::ItemNotFound)
        } else if self.tls_missing() || (self.policy.dialback && !self.dialback_offered()) {
            Some(Sc::PolicyViolation)
        } else if !self.policy.dialback {
            Some(Sc::NotAuthorized)
        } else if self.pending_results.len() + self.pending_checks.len()
            >= self.cfg.max_pending_dialback
        {
            Some(Sc::ResourceConstraint)
        } else {
            None
        }
    }

    pub(super) fn on_db_result(&mut self, el: &Element, now: Instant) {
        let Some((remote, hosted)) = self.db_addresses(el) else {
            return;
        };
        let refusal = if self.authenticated.contains(&remote) {
            // Already proven on this stream; a new target only needs to be hosted.
            let hosted_ok = self.cfg.hosted.contains(&hosted);
            let outcome = if hosted_ok {
                DialbackOutcome::Valid
            } else {
                DialbackOutcome::Error(Sc::ItemNotFound)
            };
            let xml =
                common::db_element("result", &hosted, &remote, None, DbBody::Outcome(outcome));
            return self.send(xml);
        } else if (self.pending_results.iter()).any(|p| p.remote == remote && p.hosted == hosted) {
            Some(Sc::UnexpectedRequest)
        } else {
            self.db_refusal(&hosted)
        };
        if let Some(condition) = refusal {
            let body = DbBody::Outcome(DialbackOutcome::Error(condition));
            let xml = common::db_element("result", &hosted, &remote, None, body);
            return self.send(xml);
        }
        let stream_id = self.stream_id.clone().unwrap_or_default();
        self.pending_results.push(PendingResult {
            remote: remote.clone(),
            hosted: hosted.clone(),
            deadline: now + self.cfg.dialback_timeout,
        });
        self.actions.push_back(ReceivingAction::VerifyDialbackKey {
            remote,
            hosted,
            stream_id,
            key: el.text().trim().to_string(),
        });
    }

    pub(super) fn on_db_verify(&mut self, el: &Element) {
        let Some((receiving, originating)) = self.db_addresses(el) else {
            return;
        };
        let Some(id) = el.attr("id").map(str::to_string) else {
            let text = "db:verify needs an id";
            return self.fail(StreamError::with_text(Cond::ImproperAddressing, text));
        };
        let duplicate = (self.pending_checks.iter())
            .any(|(r, o, i)| *r == receiving && *o == originating && *i == id);
        let refusal = if duplicate {
            Some(Sc::UnexpectedRequest)
        } else {
            // Answering needs no dialback permission of our own: the key is ours.
            self.db_refusal(&originating)
                .filter(|c| !matches!(c, Sc::NotAuthorized))
        };
        if let Some(condition) = refusal {
            let body = DbBody::Outcome(DialbackOutcome::Error(condition));
            let xml = common::db_element("verify", &originating, &receiving, Some(&id), body);
            return self.send(xml);
        }
        self.pending_checks
            .push((receiving.clone(), originating.clone(), id.clone()));
        self.actions.push_back(ReceivingAction::CheckDialbackKey {
            receiving,
            originating,
            stream_id: id,
            key: el.text().trim().to_string(),
        });
    }
}
