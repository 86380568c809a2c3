//! The transaction user of the SIP service: what each request method means to Herald.
//! Every request is handled in a task of its own and answered through the endpoint.
//!
//! - OPTIONS: 200 with what Herald supports.
//! - REGISTER: the registrar (`registrar.rs`), digest with 401.
//! - PUBLISH, SUBSCRIBE: SIMPLE presence (`presence.rs`), digest with 407.
//! - MESSAGE: pager-mode IM (`message.rs`), digest with 407.
//! - NOTIFY: Herald subscribes to nothing, so there is no dialog: 481.
//! - INVITE: Herald places and takes no calls: 488 with Allow.
//! - BYE, INFO, UPDATE, PRACK, REFER: 405 with Allow; other methods: 501.

use std::sync::Arc;

use herald_translate::sip::transaction::{Remote, TransactionId};
use herald_translate::sip::{response_for, HeaderName, Message, Method, RequestEssentials, Uri};

use super::auth::Auth;
use super::endpoint::{EndpointTx, Input, Tu};
use super::message::Pager;
use super::presence::PresenceAgent;
use super::registrar::Registrar;
use crate::server::Server;

/// Methods Herald answers.
pub(crate) const ALLOW: &str =
    "REGISTER, OPTIONS, PUBLISH, SUBSCRIBE, NOTIFY, MESSAGE, ACK, CANCEL";
/// Event packages Herald serves.
pub(crate) const ALLOW_EVENTS: &str = "presence, presence.winfo, dialog";
/// Bodies Herald reads.
pub(crate) const ACCEPT: &str =
    "application/pidf+xml, application/dialog-info+xml, text/plain, message/cpim";
/// The Server and User-Agent header value.
pub(crate) const PRODUCT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// The SIP service's shared state.
pub(crate) struct SipService {
    pub(crate) server: Arc<Server>,
    pub(crate) endpoint: EndpointTx,
    pub(crate) auth: Auth,
    pub(crate) registrar: Registrar,
    pub(crate) presence: PresenceAgent,
    pub(crate) pager: Pager,
    pub(crate) transports: Arc<super::transport::Transports>,
    /// The running `sip` session of each user with registrations or publications.
    /// Serializes the gateway sync of one user (striped).
    pub(crate) sync_locks: [tokio::sync::Mutex<()>; super::SYNC_STRIPES],
    pub(crate) gateways:
        std::sync::Mutex<std::collections::HashMap<herald_translate::Jid, super::gateway::Gateway>>,
}

/// The TU the endpoint calls: a weak handle, so the service can hold the endpoint's
/// sender without a cycle keeping everything alive.
pub(crate) struct TuHandle(pub(crate) std::sync::Weak<SipService>);

impl Tu for TuHandle {
    fn request(&self, id: TransactionId, from: Remote, request: Message) {
        let Some(service) = self.0.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let mut response = service.handle(&request, from).await;
            if let (Some(line), Some(status)) = (request.request_line(), response.status_line()) {
                service
                    .server
                    .metrics
                    .sip
                    .answered(line.method.as_str(), status.code);
            }
            service.update_gauges();
            if !response
                .headers
                .iter()
                .any(|h| h.name == HeaderName::Server)
            {
                response.push_header(HeaderName::Server, PRODUCT);
            }
            let _ = service.endpoint.send(Input::Respond { id, response }).await;
        });
    }
}

impl SipService {
    async fn handle(self: &Arc<Self>, request: &Message, from: Remote) -> Message {
        let Some(line) = request.request_line() else {
            return reply(request, 400, "Bad Request");
        };
        match &line.method {
            Method::Options => {
                let mut r = reply(request, 200, "OK");
                r.push_header(HeaderName::Allow, ALLOW);
                r.push_header(HeaderName::AllowEvents, ALLOW_EVENTS);
                r.push_header(HeaderName::Accept, ACCEPT);
                r
            }
            Method::Register => self.registrar.register(self, request, from).await,
            Method::Publish => self.presence.publish(self, request, from).await,
            Method::Subscribe => self.presence.subscribe(self, request, from).await,
            Method::Message => self.pager.receive(self, request, from).await,
            Method::Notify => reply(request, 481, "Subscription Does Not Exist"),
            Method::Invite => {
                let mut r = reply(request, 488, "Not Acceptable Here");
                r.push_header(HeaderName::Allow, ALLOW);
                r.push_header(
                    HeaderName::Other("Warning".into()),
                    "399 herald \"Herald carries presence and instant messages, not calls\"",
                );
                r
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Refer => {
                let mut r = reply(request, 405, "Method Not Allowed");
                r.push_header(HeaderName::Allow, ALLOW);
                r
            }
            _ => {
                let mut r = reply(request, 501, "Not Implemented");
                r.push_header(HeaderName::Allow, ALLOW);
                r
            }
        }
    }

    /// The local account a Request-URI or To URI names (`sip:alice@domain`), if any.
    pub(crate) fn local_user(&self, uri: &Uri) -> Option<herald_translate::Jid> {
        let sip = uri.as_sip()?;
        let user = sip.user.as_deref()?;
        let host = sip.host.to_string().to_ascii_lowercase();
        if !self.server.is_local_domain(&host) {
            return None;
        }
        let user = String::from_utf8(herald_translate::sip::unescape(user)).ok()?;
        let local = self.auth.normalize(&user)?;
        herald_translate::Jid::parse(&format!("{local}@{host}")).ok()
    }

    /// Whether `uri`'s host is one of ours (a hosted domain).
    pub(crate) fn is_local_uri(&self, uri: &Uri) -> bool {
        uri.as_sip().is_some_and(|s| {
            self.server
                .is_local_domain(&s.host.to_string().to_ascii_lowercase())
        })
    }
}

/// A response to `request` without a body.
pub(crate) fn reply(request: &Message, code: u16, reason: &str) -> Message {
    // RFC 3261 §8.2.6.2: a To without a tag gets one (the helper adds it only then).
    response_for(
        &RequestEssentials::from_message(request),
        code,
        reason,
        &super::new_tag(),
    )
}
