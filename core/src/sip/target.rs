//! Where a request to a user agent goes (RFC 3261 §8.1.2, §18.1.1, RFC 3263 without
//! DNS): the address in its Contact URI, unless the user agent asked to be reached
//! over the flow it registered or subscribed on (RFC 5626 `ob`, or a connection that
//! is still open: a UA behind a NAT keeps it for this), or the Contact names a host
//! Herald would have to look up.

use std::net::{IpAddr, SocketAddr};

use herald_translate::sip::transaction::{Remote, Transport};
use herald_translate::sip::{Host, Uri};

/// The destination of a request to `contact`, which the UA gave over `source`.
/// `connected` says whether a connection to an address is open.
pub(crate) fn route_to(
    contact: &Uri,
    source: Remote,
    connected: impl Fn(&Remote) -> bool,
) -> Remote {
    let Some(sip) = contact.as_sip() else {
        return source;
    };
    if source.transport.is_reliable() && connected(&source) {
        return source;
    }
    if sip.param("ob").is_some() {
        return source;
    }
    let ip: IpAddr = match &sip.host {
        Host::V4(a) => IpAddr::V4(*a),
        Host::V6(a) => IpAddr::V6(*a),
        Host::Name(_) => return source,
    };
    let transport = match sip
        .param("transport")
        .flatten()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("tcp") => Transport::Tcp,
        Some("tls") => Transport::Tls,
        Some("udp") => Transport::Udp,
        _ if sip.secure => Transport::Tls,
        _ => Transport::Udp,
    };
    let default_port = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    Remote {
        addr: SocketAddr::new(ip, sip.port.unwrap_or(default_port)),
        transport,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(s: &str, transport: Transport) -> Remote {
        Remote {
            addr: s.parse().unwrap(),
            transport,
        }
    }

    fn uri(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn a_udp_contact_is_reached_at_its_address() {
        let src = remote("127.0.0.1:40000", Transport::Udp);
        let to = route_to(&uri("sip:bob@127.0.0.1:44667;transport=UDP"), src, |_| {
            false
        });
        assert_eq!(to, remote("127.0.0.1:44667", Transport::Udp));
        let to = route_to(&uri("sip:bob@127.0.0.1"), src, |_| false);
        assert_eq!(to, remote("127.0.0.1:5060", Transport::Udp));
    }

    #[test]
    fn an_open_connection_or_ob_keeps_the_flow() {
        let src = remote("127.0.0.1:40000", Transport::Tcp);
        let c = uri("sip:bob@127.0.0.1:5070;transport=tcp");
        assert_eq!(route_to(&c, src, |_| true), src);
        assert_eq!(
            route_to(&c, src, |_| false),
            remote("127.0.0.1:5070", Transport::Tcp)
        );
        let udp = remote("127.0.0.1:40000", Transport::Udp);
        assert_eq!(
            route_to(&uri("sip:bob@10.0.0.1:5060;ob"), udp, |_| false),
            udp
        );
    }

    #[test]
    fn names_and_other_schemes_use_the_flow() {
        let src = remote("127.0.0.1:40000", Transport::Udp);
        assert_eq!(route_to(&uri("sip:bob@phone.example"), src, |_| false), src);
        assert_eq!(route_to(&uri("tel:+15551234"), src, |_| false), src);
        assert_eq!(
            route_to(&uri("sips:bob@[::1]"), src, |_| false),
            remote("[::1]:5061", Transport::Tls)
        );
    }
}
