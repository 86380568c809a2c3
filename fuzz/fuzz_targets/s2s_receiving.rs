//! Fuzzes the s2s receiving machine.
//!
//! The first input byte picks the chunk size and the policy, the second whether the
//! machine starts on direct TLS; the rest is peer input, fed in chunks. Every request
//! the machine makes is answered at once (dialback keys alternate between valid and
//! invalid, STARTTLS completes), and time jumps past every deadline at the end.
//! Checks: no panic; no stanza is handed over before some domain is authenticated;
//! after `Close` the machine stays closed and quiet.

#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_translate::s2s::{
    CertFacts, DialbackOutcome, Receiving, ReceivingAction, ReceivingConfig, S2sPolicy, TlsPolicy,
};
use herald_translate::XmlLimits;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn drive(m: &mut Receiving, policy: S2sPolicy, now: Instant, flip: &mut bool) -> bool {
    let mut closed = false;
    while let Some(action) = m.poll_action() {
        assert!(!closed, "action after Close: {action:?}");
        match action {
            ReceivingAction::CheckPeer { .. } => m.peer_checked(policy, CertFacts::VALID, now),
            ReceivingAction::StartTls => m.tls_established(),
            ReceivingAction::VerifyDialbackKey { remote, hosted, .. } => {
                *flip = !*flip;
                let outcome = if *flip {
                    DialbackOutcome::Valid
                } else {
                    DialbackOutcome::Invalid
                };
                m.dialback_verified(&remote, &hosted, outcome);
            }
            ReceivingAction::CheckDialbackKey {
                receiving,
                originating,
                stream_id,
                ..
            } => m.dialback_key_checked(&receiving, &originating, &stream_id, *flip),
            ReceivingAction::Stanza { .. } => {
                assert!(
                    !m.authenticated_domains().is_empty(),
                    "unauthenticated stanza"
                );
            }
            ReceivingAction::Close => closed = true,
            ReceivingAction::Send(_) | ReceivingAction::Authenticated { .. } => {}
        }
    }
    closed
}

fuzz_target!(|data: &[u8]| {
    let (Some(&first), Some(&second)) = (data.first(), data.get(1)) else {
        return;
    };
    let input = &data[2..];
    let chunk = usize::from(first % 32) + 1;
    let policy = S2sPolicy {
        tls: if first & 0x20 == 0 {
            TlsPolicy::Required
        } else {
            TlsPolicy::Optional
        },
        pkix: first & 0x40 == 0,
        dialback: true,
        dialback_requires_tls: first & 0x80 == 0,
    };
    let cfg = ReceivingConfig {
        hosted: vec!["b.example".into(), "chat.b.example".into()],
        limits_preauth: XmlLimits {
            max_stanza_bytes: 1024,
            ..XmlLimits::default()
        },
        limits: XmlLimits {
            max_stanza_bytes: 4096,
            ..XmlLimits::default()
        },
        ..ReceivingConfig::default()
    };
    let now = Instant::now();
    let mut m = Receiving::new(
        Arc::new(cfg),
        second & 1 == 1,
        now,
        StdRng::seed_from_u64(0),
    );
    let mut flip = false;
    let mut closed = false;
    for piece in input.chunks(chunk) {
        m.receive(piece, now);
        closed |= drive(&mut m, policy, now, &mut flip);
        if closed {
            assert!(m.is_closed());
        }
    }
    m.handle_timeout(now + Duration::from_secs(86_400));
    closed |= drive(&mut m, policy, now, &mut flip);
    if closed {
        m.receive(b"<message/>", now);
        assert!(m.poll_action().is_none(), "a closed machine spoke");
    }
});
