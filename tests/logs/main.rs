//! Log levels: an ordinary client mistake is logged at INFO or WARN; ERROR is kept for
//! faults of the server, so an admin can alert on it.
//!
//! A test binary of its own: the recording subscriber is the process's global one, so
//! no other test's threads can change which events reach it.

use std::sync::{Arc, Mutex};

use herald_tests::*;
use herald_translate::StreamError;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every event this test's tasks log, with its level and message.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(Level, String)>>>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Recorded {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((*event.metadata().level(), m.0));
    }
}

impl Recorded {
    fn at(&self, level: Level) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

#[tokio::test]
async fn client_mistakes_are_not_logged_as_errors() {
    let recorded = Recorded::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorded.clone()))
        .expect("the only subscriber of this test binary");
    let ts = TestServer::start().await;
    ts.add_user("alice");
    ts.add_user("bob");

    // Unknown users and wrong passwords, with SCRAM and PLAIN.
    for (mechanism, user, password) in [
        (Mechanism::ScramSha256, "nobody", "x"),
        (Mechanism::Plain, "nobody", "x"),
        (Mechanism::ScramSha1, "alice", "wrong"),
    ] {
        let (mut c, _) = ts.connect_tls().await;
        let outcome = c.authenticate(mechanism, user, password).await;
        assert_eq!(outcome, Err("not-authorized".to_string()));
    }
    // Malformed XML after login.
    let mut c = ts.login("alice", "bad-xml").await;
    c.send("<message><body>unclosed</message>").await;
    assert_eq!(c.expect_stream_error().await, "not-well-formed");
    // Stanzas to nobody, a roster set without an item, an unknown IQ.
    let mut c = ts.login("alice", "r").await;
    c.send_message("nobody@localhost", "hello").await;
    let reply = c
        .iq(
            "set",
            None,
            "<query xmlns='jabber:iq:roster'><item/></query>",
        )
        .await;
    assert_eq!(reply.attr("type"), Some("error"));
    let reply = c
        .iq("get", None, "<query xmlns='urn:example:nothing'/>")
        .await;
    assert_eq!(reply.attr("type"), Some("error"));
    // A session that drops without closing its stream.
    ts.login("bob", "gone").await.abort();
    // The account is removed while a session finishes its request.
    let mut bob = ts.login("bob", "desk").await;
    let removed = StreamError::new(herald_translate::StreamErrorCondition::NotAuthorized);
    ts.server.end_account_sessions("bob", &removed).await;
    assert_eq!(bob.expect_stream_error().await, "not-authorized");
    ts.server.remove_account("bob").await.expect("removed");
    c.assert_alive().await;

    assert_eq!(recorded.at(Level::ERROR), Vec::<String>::new());
    let info = recorded.at(Level::INFO);
    assert!(
        info.iter().any(|m| m.contains("authentication failed")),
        "failed logins are logged at INFO: {info:?}"
    );
}
