//! Transaction matching (RFC 3261 §17.1.3 for responses, §17.2.3 for requests).
//!
//! A request whose top Via branch starts with the magic cookie `z9hG4bK` and has more
//! after it is matched by branch, sent-by and method, ACK counting as INVITE (so it
//! finds its INVITE) and CANCEL as itself (so it gets its own transaction). Any other
//! request is an RFC 2543 one: it is matched by Request-URI, Call-ID, From tag, CSeq
//! number, method and the whole top Via. The To tag, which §17.2.3 also names, is left
//! out so that the ACK of a final response (which carries our tag where the INVITE had
//! none) still finds its INVITE; the INVITE transaction checks the tag itself.
//!
//! A branch that is the bare cookie (RFC 4475 §3.1.2.17, `badbranch`) claims RFC 3261
//! but names nothing, so it falls back to the RFC 2543 key rather than make every such
//! request from one sender the same transaction.

use super::super::error::SipError;
use super::super::header::Via;
use super::super::message::Message;
use super::super::method::Method;
use super::super::uri::Host;
use super::BRANCH_COOKIE;

/// The sent-by of a Via: host (names in lowercase) and port as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentBy {
    /// The host, lowercase when it is a name.
    pub host: String,
    /// The port, if written.
    pub port: Option<u16>,
}

impl SentBy {
    /// The sent-by of `via`.
    pub fn of(via: &Via) -> Self {
        let host = match &via.host {
            Host::Name(n) => n.to_ascii_lowercase(),
            other => other.to_string(),
        };
        Self {
            host,
            port: via.port,
        }
    }
}

/// What identifies a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// A server transaction of an RFC 3261 request (§17.2.3, first rule).
    Server {
        /// The top Via's branch, cookie included.
        branch: String,
        /// The top Via's sent-by.
        sent_by: SentBy,
        /// The method, INVITE for an ACK.
        method: Method,
    },
    /// A server transaction of an RFC 2543 request (§17.2.3, the fallback).
    Legacy {
        /// The Request-URI as written.
        request_uri: String,
        /// The Call-ID.
        call_id: String,
        /// The From tag.
        from_tag: Option<String>,
        /// The CSeq number.
        cseq: u32,
        /// The method, INVITE for an ACK.
        method: Method,
        /// The top Via, normalized by the codec.
        via: String,
    },
    /// A client transaction (§17.1.3): the branch we put in the top Via, and the
    /// method.
    Client {
        /// The branch.
        branch: String,
        /// The CSeq method.
        method: Method,
    },
}

/// Whether `branch` is an RFC 3261 branch that identifies something.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > BRANCH_COOKIE.len() && branch.starts_with(BRANCH_COOKIE)
}

impl TransactionKey {
    /// The key of the server transaction a received request belongs to.
    pub fn server(request: &Message) -> Result<Self, SipError> {
        let line = request
            .request_line()
            .ok_or_else(|| SipError::bad("Not a request"))?;
        let method = match &line.method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Self::server_with(request, method)
    }

    /// The key `request` would have if its method were `method`: a CANCEL looks for its
    /// INVITE this way (§9.2).
    pub fn server_with(request: &Message, method: Method) -> Result<Self, SipError> {
        let line = request
            .request_line()
            .ok_or_else(|| SipError::bad("Not a request"))?;
        let via = request.top_via()?;
        if let Some(branch) = via.branch().filter(|b| is_rfc3261_branch(b)) {
            return Ok(Self::Server {
                branch: branch.to_owned(),
                sent_by: SentBy::of(&via),
                method,
            });
        }
        Ok(Self::Legacy {
            request_uri: line.uri.to_string(),
            call_id: request.call_id()?.to_owned(),
            from_tag: request.from()?.tag().map(str::to_owned),
            cseq: request.cseq()?.seq,
            method,
            via: via.to_string(),
        })
    }

    /// The key of the client transaction a request we send opens: its top Via must
    /// carry an RFC 3261 branch.
    pub fn client_request(request: &Message) -> Result<Self, SipError> {
        let line = request
            .request_line()
            .ok_or_else(|| SipError::bad("Not a request"))?;
        let via = request.top_via()?;
        let branch = via
            .branch()
            .filter(|b| is_rfc3261_branch(b))
            .ok_or_else(|| SipError::bad("Missing RFC 3261 branch"))?;
        Ok(Self::Client {
            branch: branch.to_owned(),
            method: line.method.clone(),
        })
    }

    /// The key of the client transaction a received response belongs to: the top Via's
    /// branch and the CSeq method.
    pub fn client_response(response: &Message) -> Result<Self, SipError> {
        let via = response.top_via()?;
        let branch = via
            .branch()
            .ok_or_else(|| SipError::bad("Missing branch"))?;
        Ok(Self::Client {
            branch: branch.to_owned(),
            method: response.cseq()?.method,
        })
    }
}
