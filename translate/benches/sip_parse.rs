//! Parse throughput of the SIP codec on four realistic messages: REGISTER, SUBSCRIBE,
//! NOTIFY with a PIDF body, INVITE with SDP. One group reports bytes per second per
//! message; the other messages per second over the four; the last, for reference, what
//! cloning (and dropping) each parsed message costs: the allocations of the model.
//!
//!   cargo bench -p herald-translate --bench sip_parse -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use herald_translate::sip::{parse_datagram, Frame, Limits, StreamFramer};

const REGISTER: &str = "REGISTER sip:registrar.example.com SIP/2.0\r
Via: SIP/2.0/TLS 192.0.2.4:5061;branch=z9hG4bKnashds7;rport\r
Max-Forwards: 70\r
To: Bob <sip:bob@example.com>\r
From: Bob <sip:bob@example.com>;tag=456248\r
Call-ID: 843817637684230@998sdasdh09\r
CSeq: 1826 REGISTER\r
Contact: <sip:bob@192.0.2.4:5061;transport=tls;ob>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"\r
Expires: 7200\r
Supported: path, outbound, gruu\r
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, SUBSCRIBE, NOTIFY, MESSAGE, REFER\r
User-Agent: Herald-bench/1.0\r
Content-Length: 0\r
\r
";

const SUBSCRIBE: &str = "SUBSCRIBE sip:alice@example.com SIP/2.0\r
Via: SIP/2.0/TCP watcherhost.example.com:5060;branch=z9hG4bKnashds8\r
Max-Forwards: 70\r
To: <sip:alice@example.com>\r
From: \"Bob Watcher\" <sip:bob@example.com>;tag=xfg9\r
Call-ID: 2010@watcherhost.example.com\r
CSeq: 17766 SUBSCRIBE\r
Event: presence\r
Accept: application/pidf+xml, application/rlmi+xml, multipart/related\r
Supported: eventlist\r
Contact: <sip:bob@watcherhost.example.com;transport=tcp>\r
Expires: 600\r
Content-Length: 0\r
\r
";

const PIDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t8f3a">
    <status><basic>open</basic></status>
    <contact priority="0.8">sip:alice@pc33.example.com</contact>
    <note xml:lang="en">In the office</note>
    <timestamp>2026-11-30T02:38:00Z</timestamp>
  </tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>
</presence>
"#;

const SDP: &str = "v=0\r
o=alice 2890844526 2890844526 IN IP4 pc33.example.com\r
s=Session SDP\r
c=IN IP4 192.0.2.101\r
t=0 0\r
m=audio 49172 RTP/AVP 0 8 97\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:97 iLBC/8000\r
m=video 51372 RTP/AVP 31 32\r
a=rtpmap:31 H261/90000\r
a=rtpmap:32 MPV/90000\r
";

fn notify() -> String {
    format!(
        "NOTIFY sip:bob@watcherhost.example.com;transport=tcp SIP/2.0\r
Via: SIP/2.0/TCP server.example.com:5060;branch=z9hG4bKna998sk\r
Via: SIP/2.0/TCP proxy.example.com:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r
Max-Forwards: 69\r
To: \"Bob Watcher\" <sip:bob@example.com>;tag=xfg9\r
From: <sip:alice@example.com>;tag=ffd2\r
Call-ID: 2010@watcherhost.example.com\r
CSeq: 8775 NOTIFY\r
Event: presence\r
Subscription-State: active;expires=599\r
Contact: <sip:server.example.com;transport=tcp>\r
Content-Type: application/pidf+xml\r
Content-Length: {}\r
\r
{PIDF}",
        PIDF.len()
    )
}

fn invite() -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r
Max-Forwards: 70\r
Route: <sip:ss1.atlanta.example.com;lr>, <sip:ss2.biloxi.example.com;lr>\r
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r
To: Bob <sip:bob@biloxi.example.com>\r
Call-ID: 3848276298220188511@atlanta.example.com\r
CSeq: 1 INVITE\r
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK\r
Supported: 100rel, timer\r
Session-Expires: 1800;refresher=uac\r
Content-Type: application/sdp\r
Content-Length: {}\r
\r
{SDP}",
        SDP.len()
    )
}

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("register", REGISTER.as_bytes().to_vec()),
        ("subscribe", SUBSCRIBE.as_bytes().to_vec()),
        ("notify_pidf", notify().into_bytes()),
        ("invite_sdp", invite().into_bytes()),
    ]
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let limits = Limits::DEFAULT;
    for (_, m) in &msgs {
        parse_datagram(m, &limits).expect("bench messages parse");
    }

    let mut bytes = c.benchmark_group("sip_parse_bytes");
    for (name, m) in &msgs {
        bytes.throughput(Throughput::Bytes(m.len() as u64));
        bytes.bench_function(*name, |b| {
            b.iter(|| parse_datagram(black_box(m), &limits).unwrap())
        });
    }
    bytes.finish();

    let mut all = c.benchmark_group("sip_parse_messages");
    all.throughput(Throughput::Elements(msgs.len() as u64));
    all.bench_function("datagram_mix_of_4", |b| {
        b.iter(|| {
            for (_, m) in &msgs {
                black_box(parse_datagram(black_box(m), &limits).unwrap());
            }
        })
    });
    let stream: Vec<u8> = msgs.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    all.bench_function("stream_mix_of_4_in_1500_byte_reads", |b| {
        b.iter(|| {
            let mut framer = StreamFramer::new(limits);
            for chunk in stream.chunks(1500) {
                framer.push(black_box(chunk)).unwrap();
                while let Some(Frame::Message(m)) = framer.next_frame().unwrap() {
                    black_box(m);
                }
            }
        })
    });
    all.finish();

    // What the model costs by itself: a clone of a parsed message makes the allocations
    // a parse must make (one String per header value, the URI's parts, the header
    // vector, the body) and the drop frees them. No parser can go below this with this
    // model.
    let mut floor = c.benchmark_group("sip_model_floor");
    for (name, m) in &msgs {
        let parsed = parse_datagram(m, &limits).unwrap();
        floor.throughput(Throughput::Bytes(m.len() as u64));
        floor.bench_function(format!("{name}_clone"), |b| {
            b.iter(|| black_box(&parsed).clone())
        });
    }
    floor.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
