use super::exchange::stream_header;
use super::*;
use herald_rules::federation::{AuthPolicy, TlsPolicy};

fn report() -> Report {
    let mut r = Report {
        domain: "remote.example".into(),
        steps: Vec::new(),
    };
    let mut policy = Step::new(STEPS[0]);
    policy.note("route: DNS");
    r.push(policy);
    let mut discovery = Step::new(STEPS[1]);
    discovery.note("candidate 1: remote.example:5269 (STARTTLS) at 127.0.0.1");
    r.push(discovery);
    r
}

#[test]
fn steps_are_numbered_with_their_details_and_a_result() {
    let mut r = report();
    let mut connect = Step::new(STEPS[2]);
    connect.fail("no address accepted a connection");
    r.push(connect);
    r.skip_rest();
    let text = r.to_string();
    assert!(!r.passed());
    assert!(
        text.starts_with("federation check of remote.example\n1. policy: ok\n   - route: DNS\n"),
        "{text}"
    );
    assert!(
        text.contains("3. connect: FAIL\n   - no address accepted"),
        "{text}"
    );
    assert!(text.contains("4. stream + TLS: skipped\n"), "{text}");
    assert!(text.contains("6. features after TLS: skipped\n"), "{text}");
    assert!(
        text.ends_with("result: FAIL at step 3 (connect)\n"),
        "{text}"
    );
}

#[test]
fn all_six_steps_ok_is_a_pass() {
    let mut r = report();
    for name in &STEPS[2..] {
        r.push(Step::new(name));
    }
    assert!(r.passed());
    assert!(r.to_string().ends_with("result: ok, all 6 steps passed\n"));
    let mut short = report();
    short.push(Step::new(STEPS[2]));
    assert!(!short.passed(), "steps that did not run are no pass");
}

#[test]
fn features_are_described_and_judged() {
    let features = Element::new("features", ns::STREAM)
        .with_child(
            Element::new("mechanisms", ns::SASL)
                .with_child(Element::new("mechanism", ns::SASL).with_text("EXTERNAL")),
        )
        .with_child(Element::new("dialback", ns::DIALBACK_FEATURE))
        .with_child(
            Element::new("starttls", ns::TLS).with_child(Element::new("required", ns::TLS)),
        );
    assert_eq!(
        describe_features(&features),
        ["SASL EXTERNAL", "dialback", "starttls (required)"]
    );
    let step = features_step(&features, "a.example");
    assert_eq!(step.status, Status::Ok);
    assert!(step.mentions("SASL EXTERNAL offered"), "{step:?}");
    let none = features_step(&Element::new("features", ns::STREAM), "a.example");
    assert_eq!(none.status, Status::Fail);
    assert!(none.mentions("offered: none"), "{none:?}");
}

#[test]
fn no_certificate_fails_and_a_self_signed_one_is_unknown() {
    let trust = S2sTrust::from_certs(&[]).expect("trust");
    let policy = DomainPolicy {
        tls: TlsPolicy::Required,
        auth: AuthPolicy::Any,
        tls_why: "test".into(),
        auth_why: "test".into(),
    };
    let step = certificate_step(&[], "b.example", &trust, None, &policy, 0);
    assert_eq!(step.status, Status::Fail);
    let dir = std::env::temp_dir().join(format!("herald-fcheck-{}", std::process::id()));
    let pki = herald_certs::ensure_dev_pki(&dir, &["b.example".to_owned()]).expect("pki");
    let chain = herald_certs::read_certs(&pki.cert).expect("chain");
    let _ = std::fs::remove_dir_all(&dir);
    let step = certificate_step(&chain, "b.example", &trust, None, &policy, unix_now());
    assert_eq!(step.status, Status::Fail);
    assert!(step.mentions("unknown certificate authority"), "{step:?}");
    assert!(step.mentions("presents DNS-ID b.example"), "{step:?}");
    assert!(step.mentions("matched by DNS-ID"), "{step:?}");
    assert!(step.mentions("day(s) left"), "{step:?}");
    assert!(step.mentions("dialback only"), "{step:?}");
    let pin = CertPin::of(chain[0].as_ref());
    let step = certificate_step(&chain, "b.example", &trust, Some(&pin), &policy, unix_now());
    assert_eq!(step.status, Status::Ok, "{step:?}");
    assert!(step.mentions("pin: matches"), "{step:?}");
}

#[test]
fn the_stream_header_is_escaped() {
    let h = stream_header("a.example", "b'.example");
    assert!(h.contains("from='a.example' to='b&apos;.example'"), "{h}");
    assert!(h.contains("xmlns='jabber:server'"), "{h}");
}
