//! Pager-mode instant messages (RFC 3428) from SIP users. A MESSAGE becomes an XMPP
//! `<message type='chat'/>` (RFC 7572) from the sender's bare JID and is routed like
//! any other: to the recipient's XMPP clients and SIP devices (its `sip` session), or
//! stored offline. The 200 OK is sent only after that: a message that was stored is
//! acknowledged, one that could not be is answered with an error.

use std::sync::Arc;

use herald_translate::interwork::{ImMessage, InterworkError, MessageType, XmppChat};
use herald_translate::sip::transaction::Remote;
use herald_translate::sip::{HeaderName, Message};
use herald_translate::{ns, Envelope};

use super::service::{reply, SipService, ACCEPT};

/// The pager.
#[derive(Debug, Default)]
pub(crate) struct Pager;

impl Pager {
    pub(crate) async fn receive(
        &self,
        svc: &Arc<SipService>,
        request: &Message,
        from: Remote,
    ) -> Message {
        let Some(line) = request.request_line() else {
            return reply(request, 400, "Bad Request");
        };
        if !svc.is_local_uri(&line.uri) {
            return reply(request, 403, "Forbidden: not relaying to other domains");
        }
        let principal = match svc.authenticate(request, true, from).await {
            Ok(p) => p,
            Err(answer) => return answer,
        };
        let from_user = request.from().ok().and_then(|f| svc.local_user(&f.uri));
        if from_user.as_ref().and_then(|j| j.local()) != Some(principal.user.as_str()) {
            return reply(
                request,
                403,
                "Forbidden: From is not the authenticated user",
            );
        }
        let Some(to) = svc.local_user(&line.uri) else {
            return reply(request, 404, "Not Found");
        };
        if !svc.server.user_exists(&to).await {
            return reply(request, 404, "Not Found");
        }
        let content_type = request
            .header(&HeaderName::ContentType)
            .unwrap_or("text/plain")
            .to_owned();
        let im = ImMessage {
            from: format!("sip:{}", principal.jid),
            to: format!("sip:{to}"),
            call_id: request.call_id().ok().map(str::to_owned),
            subject: request.header(&HeaderName::Subject).map(str::to_owned),
            content_language: request
                .header(&HeaderName::Other("Content-Language".into()))
                .map(str::to_owned),
            content_type,
            body: request.body.clone(),
        };
        let mut chat = match XmppChat::from_sip(&im) {
            Ok(chat) => chat,
            Err(InterworkError::UnsupportedContentType(_)) => {
                let mut r = reply(request, 415, "Unsupported Media Type");
                r.push_header(HeaderName::Accept, ACCEPT);
                return r;
            }
            Err(e) => return reply(request, 400, &format!("Bad Request: {e}")),
        };
        // The sender is who authenticated, whatever the body claims.
        chat.from = principal.jid.clone();
        chat.to = to.clone();
        chat.message_type = MessageType::Chat;
        chat.id = Some(super::new_tag());
        let Ok(env) = Envelope::new(principal.jid.clone(), to, chat.to_element(ns::CLIENT)) else {
            return reply(request, 500, "Server Internal Error");
        };
        svc.server.route(env).await;
        reply(request, 200, "OK")
    }
}
