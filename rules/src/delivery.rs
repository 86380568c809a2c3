//! Which of a user's sessions receive a message addressed to the bare JID.
//!
//! RFC 6121 §8.5.2.1.1 lets a server deliver to the highest-priority resource or to all
//! non-negative ones; the product model (the seed's multi-device rule) routes to every
//! available device with non-negative priority, so `All` is the default.

use serde::Deserialize;

/// How a message to a bare JID is fanned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryPolicy {
    /// Every available session with priority >= 0.
    #[default]
    All,
    /// Only the session(s) sharing the highest non-negative priority.
    Highest,
}

/// What the policy needs to know about one session of the addressee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Has sent available presence (RFC 6121 "available resource").
    pub available: bool,
    pub priority: i8,
}

/// The outcome: indexes into the candidate slice, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub targets: Vec<usize>,
    pub reason: &'static str,
}

impl Delivery {
    /// Nobody can take the message now: the caller stores it offline (or bounces it).
    pub fn is_offline(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Pick the sessions that receive a `chat` or `normal` message sent to the bare JID.
pub fn select_recipients(policy: DeliveryPolicy, sessions: &[Candidate]) -> Delivery {
    let eligible: Vec<usize> = sessions
        .iter()
        .enumerate()
        .filter(|(_, c)| c.available && c.priority >= 0)
        .map(|(i, _)| i)
        .collect();
    if eligible.is_empty() {
        let reason = if sessions.iter().any(|c| c.available) {
            "every available session has a negative priority"
        } else {
            "no available session"
        };
        return Delivery {
            targets: Vec::new(),
            reason,
        };
    }
    match policy {
        DeliveryPolicy::All => Delivery {
            targets: eligible,
            reason: "policy all: every available session with non-negative priority",
        },
        DeliveryPolicy::Highest => {
            let top = eligible
                .iter()
                .map(|&i| sessions[i].priority)
                .max()
                .unwrap_or(0);
            Delivery {
                targets: eligible
                    .into_iter()
                    .filter(|&i| sessions[i].priority == top)
                    .collect(),
                reason: "policy highest: the sessions with the highest priority",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(available: bool, priority: i8) -> Candidate {
        Candidate {
            available,
            priority,
        }
    }

    #[test]
    fn all_skips_negative_and_unavailable() {
        let s = [c(true, 5), c(true, -1), c(false, 10), c(true, 0)];
        assert_eq!(
            select_recipients(DeliveryPolicy::All, &s).targets,
            vec![0, 3]
        );
    }

    #[test]
    fn highest_keeps_ties() {
        let s = [c(true, 5), c(true, 7), c(true, 7), c(false, 9)];
        assert_eq!(
            select_recipients(DeliveryPolicy::Highest, &s).targets,
            vec![1, 2]
        );
    }

    #[test]
    fn only_negative_means_offline() {
        let d = select_recipients(DeliveryPolicy::All, &[c(true, -5)]);
        assert!(d.is_offline());
        assert!(d.reason.contains("negative"));
    }

    proptest! {
        #[test]
        fn targets_are_always_available_and_non_negative(
            s in proptest::collection::vec((any::<bool>(), any::<i8>()), 0..8),
            highest in any::<bool>(),
        ) {
            let sessions: Vec<Candidate> = s.iter().map(|&(a, p)| c(a, p)).collect();
            let policy = if highest { DeliveryPolicy::Highest } else { DeliveryPolicy::All };
            let d = select_recipients(policy, &sessions);
            for &i in &d.targets {
                prop_assert!(sessions[i].available && sessions[i].priority >= 0);
            }
            let any_eligible = sessions.iter().any(|c| c.available && c.priority >= 0);
            prop_assert_eq!(d.is_offline(), !any_eligible);
        }
    }
}
