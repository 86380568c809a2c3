//! The edge's outbound federation driver with a stand-in connector (the real s2s
//! connector is tested against Prosody and ejabberd in `interop/`): stanzas for a
//! remote domain wait for its stream and go out in order, a failed attempt bounces them
//! to the local sender, a stream that vanishes takes a new attempt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_edge::s2s::outbound::{
    Connecting, Connector, LinkRefusal, Outbound, OutboundHandle, S2sLink,
};
use herald_edge::s2s::outbound_queue::{Failure, QueueLimits};
use herald_tests::{body_of, stanza_error, wait_until, TestServer};
use herald_translate::Envelope;
use tokio::sync::oneshot;

/// A link that records what it is given (up to `capacity`), until it is told it is
/// gone.
struct Recorder {
    sent: Mutex<Vec<Envelope>>,
    gone: Mutex<bool>,
    capacity: usize,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::with_capacity(usize::MAX)
    }
}

impl Recorder {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            sent: Mutex::new(Vec::new()),
            gone: Mutex::new(false),
            capacity,
        }
    }
}

impl S2sLink for Recorder {
    fn send(&self, env: Envelope) -> Result<(), LinkRefusal> {
        if *self.gone.lock().expect("lock") {
            return Err(LinkRefusal::Gone(Box::new(env)));
        }
        if self.sent.lock().expect("lock").len() >= self.capacity {
            return Err(LinkRefusal::Full(Box::new(env)));
        }
        self.sent.lock().expect("lock").push(env);
        Ok(())
    }

    fn close(&self) {
        *self.gone.lock().expect("lock") = true;
    }

    fn is_closed(&self) -> bool {
        *self.gone.lock().expect("lock")
    }
}

/// How an attempt ends.
type Outcome = Result<Arc<dyn S2sLink>, Failure>;

/// Each attempt waits for the test to say how it ends.
#[derive(Default)]
struct Scripted {
    pending: Mutex<Vec<(String, oneshot::Sender<Outcome>)>>,
    /// The handle the last attempt was given (links report their end through it).
    handle: Mutex<Option<OutboundHandle>>,
}

impl Connector for Scripted {
    fn connect(&self, domain: String, handle: OutboundHandle) -> Connecting {
        *self.handle.lock().expect("lock") = Some(handle);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").push((domain, tx));
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(Failure::Refused("test ended".into())))
        })
    }
}

impl Scripted {
    fn attempts(&self) -> usize {
        self.pending.lock().expect("lock").len()
    }

    /// End the oldest attempt; false when it had been cancelled (its future dropped).
    fn finish(&self, outcome: Outcome) -> (String, bool) {
        let (domain, tx) = self.pending.lock().expect("lock").remove(0);
        let delivered = tx.send(outcome).is_ok();
        (domain, delivered)
    }
}

fn setup(ts: &TestServer) -> (Arc<Scripted>, Arc<Outbound>) {
    let connector = Arc::new(Scripted::default());
    let outbound = Outbound::start(
        &ts.server,
        connector.clone(),
        QueueLimits {
            connect_timeout: Duration::from_secs(5),
            ..QueueLimits::default()
        },
    );
    ts.server.set_federation(outbound.clone());
    (connector, outbound)
}

#[tokio::test]
async fn remote_stanzas_wait_for_the_stream_and_go_out_in_order() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let (connector, outbound) = setup(&ts);
    let mut alice = ts.login("alice", "desk").await;
    for i in 0..3 {
        alice
            .send_message("bob@remote.example", &format!("m{i}"))
            .await;
    }
    alice.assert_alive().await;
    wait_until("three stanzas queued for remote.example", || {
        outbound.queued("remote.example") == 3
    })
    .await;
    assert_eq!(connector.attempts(), 1, "one attempt for the domain");
    let link = Arc::new(Recorder::default());
    assert_eq!(
        connector.finish(Ok(link.clone())),
        ("remote.example".to_string(), true)
    );
    wait_until("delivered on the link", || {
        link.sent.lock().expect("lock").len() == 3
    })
    .await;
    let bodies: Vec<_> = link
        .sent
        .lock()
        .expect("lock")
        .iter()
        .map(|e| body_of(e.stanza()).unwrap_or_default())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
    assert_eq!(
        link.sent.lock().expect("lock")[0].from().to_string(),
        "alice@localhost/desk"
    );

    // The stream vanishes: the next stanza takes a new attempt instead of vanishing.
    link.close();
    alice.send_message("bob@remote.example", "after").await;
    wait_until("a new attempt", || connector.attempts() == 1).await;
    let second = Arc::new(Recorder::default());
    connector.finish(Ok(second.clone()));
    wait_until("delivered on the new link", || {
        second.sent.lock().expect("lock").len() == 1
    })
    .await;
}

/// An old stream that reports its end after a new one took its place does not
/// unregister the new one: the next stanza goes out on it, with no new attempt.
#[tokio::test]
async fn a_late_end_of_an_old_stream_leaves_the_new_one() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let (connector, _outbound) = setup(&ts);
    let mut alice = ts.login("alice", "desk").await;
    alice.send_message("bob@remote.example", "one").await;
    wait_until("an attempt", || connector.attempts() == 1).await;
    let first = Arc::new(Recorder::default());
    connector.finish(Ok(first.clone()));
    wait_until("sent", || first.sent.lock().expect("lock").len() == 1).await;
    first.close();
    alice.send_message("bob@remote.example", "two").await;
    wait_until("a second attempt", || connector.attempts() == 1).await;
    let second = Arc::new(Recorder::default());
    connector.finish(Ok(second.clone()));
    wait_until("sent on the second", || {
        second.sent.lock().expect("lock").len() == 1
    })
    .await;
    // The first stream's task only now reports its end.
    let handle = connector
        .handle
        .lock()
        .expect("lock")
        .clone()
        .expect("handle");
    handle.link_closed("remote.example");
    alice.send_message("bob@remote.example", "three").await;
    wait_until("sent on the second again", || {
        second.sent.lock().expect("lock").len() == 2
    })
    .await;
    assert_eq!(connector.attempts(), 0, "no new attempt");
    // When the current stream itself ends, its report does unregister it.
    second.close();
    handle.link_closed("remote.example");
    alice.send_message("bob@remote.example", "four").await;
    wait_until("a third attempt", || connector.attempts() == 1).await;
}

#[tokio::test]
async fn a_failed_attempt_bounces_every_waiting_stanza_to_its_sender() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let (connector, _outbound) = setup(&ts);
    let mut alice = ts.login("alice", "desk").await;
    alice.send_message("bob@nowhere.example", "one").await;
    alice.send_message("carol@nowhere.example", "two").await;
    alice.assert_alive().await;
    wait_until("an attempt", || connector.attempts() == 1).await;
    connector.finish(Err(Failure::NotFound("no SRV or address record".into())));
    for from in ["bob@nowhere.example", "carol@nowhere.example"] {
        let bounce = alice
            .recv_where("a bounce", |e| e.attr("from") == Some(from))
            .await;
        assert_eq!(bounce.attr("type"), Some("error"));
        assert_eq!(
            stanza_error(&bounce).as_deref(),
            Some("remote-server-not-found")
        );
    }
    let text = ts.server.metrics.render();
    assert!(
        text.contains("herald_s2s_bounces_total{condition=\"remote-server-not-found\"} 2"),
        "{text}"
    );
    assert!(text.contains("herald_s2s_queue_depth 0"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_never_ends_times_out_and_bounces() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let (connector, outbound) = setup(&ts);
    let mut alice = ts.login("alice", "desk").await;
    alice.send_message("bob@slow.example", "waiting").await;
    alice.assert_alive().await;
    wait_until("queued", || outbound.queued("slow.example") == 1).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let bounce = alice
        .recv_where("a bounce", |e| e.attr("from") == Some("bob@slow.example"))
        .await;
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("remote-server-timeout")
    );
    // The attempt was cancelled (its connection dropped), so it cannot deliver late.
    let (_, delivered) = connector.finish(Ok(Arc::new(Recorder::default())));
    assert!(!delivered, "the timed-out attempt is still running");
}

#[tokio::test]
async fn a_congested_stream_bounces_resource_constraint_without_a_new_attempt() {
    let ts = TestServer::start().await;
    ts.add_user("alice");
    let (connector, _outbound) = setup(&ts);
    let mut alice = ts.login("alice", "desk").await;
    alice.send_message("bob@busy.example", "first").await;
    wait_until("an attempt", || connector.attempts() == 1).await;
    let link = Arc::new(Recorder::with_capacity(1));
    connector.finish(Ok(link.clone()));
    wait_until("the first on the link", || {
        link.sent.lock().expect("lock").len() == 1
    })
    .await;
    alice.send_message("bob@busy.example", "second").await;
    let bounce = alice
        .recv_where("a bounce", |e| e.attr("from") == Some("bob@busy.example"))
        .await;
    assert_eq!(
        stanza_error(&bounce).as_deref(),
        Some("resource-constraint")
    );
    alice.assert_alive().await;
    assert_eq!(
        connector.attempts(),
        0,
        "a full stream is not replaced by a new one"
    );
}
