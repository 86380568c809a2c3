//! The binding logic of a SIP registrar (RFC 3261 §10.3 steps 6 to 8), sans IO.
//!
//! The caller has authenticated the REGISTER and checked its address-of-record
//! (steps 1 to 5). [`RegisterRequest::from_message`] reads what the steps need from the
//! message; [`apply_register`] takes the account's current bindings and computes the
//! new full set, or the refusal to answer with; the caller stores the set
//! ([`Store::sip_bindings_replace`](crate::store::Store::sip_bindings_replace)) when it
//! `changed`, and answers 200 with [`contact_header_values`].
//!
//! Decisions:
//! * Contacts are the same binding when their URIs are equal by RFC 3261 §19.1.4
//!   ([`uri_eq`]), or when both carry the same `+sip.instance` (compared ignoring ASCII
//!   case, as `urn:uuid` values are) and the same `reg-id` (both absent counts as the
//!   same): a UA whose address changed replaces its old binding (RFC 5626 §6, RFC 5627),
//!   while the flows of one outbound UA (distinct `reg-id`s) stay side by side.
//! * A Call-ID that matches a binding with a CSeq that is not higher aborts the whole
//!   request with 500, as RFC 3261 §10.3 step 7 says ("the update MUST be aborted and
//!   the request fails", and a failed update "MUST fail with a 500 (Server Error)");
//!   it is a stale or replayed request, not a malformed one, so 400 would be wrong.
//! * More bindings than [`RegisterLimits::max_bindings`] is refused with 403 "Too many
//!   registrations": it is a policy refusal the UA must not retry unchanged, whereas
//!   503 would send it to another server of the domain (RFC 3263) or make it retry.
//!   Only a request that grows the set is refused, so a UA can still refresh or remove
//!   bindings after the limit was lowered.
//! * Expiration intervals below the minimum are refused with 423 only when also below
//!   one hour (RFC 3261 §10.3 step 7); intervals above the maximum are shortened.

use herald_translate::sip::header::unquote;
use herald_translate::sip::{
    unescape, Contact, HeaderName, Host, Message, NameAddr, Param, SipError, SipUri, TelUri, Uri,
};

use crate::store::SipBinding;

#[cfg(test)]
mod tests;

/// The registrar's policy on expiration intervals and bindings per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterLimits {
    /// The shortest interval accepted, in seconds (shorter ones get 423).
    pub min_expires: u32,
    /// The longest interval granted, in seconds (longer ones are shortened).
    pub max_expires: u32,
    /// The interval when neither the contact nor the request gives one.
    pub default_expires: u32,
    /// The most bindings one address-of-record may hold.
    pub max_bindings: usize,
}

impl Default for RegisterLimits {
    /// 60 s minimum, one hour maximum and default, 10 bindings.
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_bindings: 10,
        }
    }
}

/// What the binding steps read from a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest<'a> {
    /// The Call-ID.
    pub call_id: &'a str,
    /// The CSeq number.
    pub cseq: u32,
    /// The Expires header, in seconds, if present.
    pub expires_header: Option<u32>,
    /// Whether a Contact value was `*` (remove every binding).
    pub wildcard: bool,
    /// Every other Contact address, in order; none and no wildcard is a query.
    pub contacts: Vec<NameAddr>,
    /// The flow the request came from (see [`SipBinding::source`]).
    pub source: &'a str,
    /// The User-Agent header, if present.
    pub user_agent: Option<&'a str>,
}

impl<'a> RegisterRequest<'a> {
    /// Reads a REGISTER: Call-ID, CSeq, Expires, every Contact field (a `*` among
    /// addresses is kept as both, for [`apply_register`] to refuse) and User-Agent.
    /// A malformed header is the codec's error, answered with its 400.
    pub fn from_message(msg: &'a Message, source: &'a str) -> Result<Self, SipError> {
        let mut wildcard = false;
        let mut contacts = Vec::new();
        for value in msg.header_values(&HeaderName::Contact) {
            if value.trim_matches([' ', '\t']) == "*" {
                wildcard = true;
            } else {
                match Contact::parse(value)? {
                    Contact::Star => wildcard = true,
                    Contact::Addresses(list) => contacts.extend(list),
                }
            }
        }
        Ok(Self {
            call_id: msg.call_id()?,
            cseq: msg.cseq()?.seq,
            expires_header: msg.expires()?,
            wildcard,
            contacts,
            source,
            user_agent: msg.header(&HeaderName::UserAgent),
        })
    }
}

/// The outcome of a REGISTER that [`apply_register`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The user's new full set, without expired bindings, sorted by contact (the
    /// store's order).
    pub bindings: Vec<SipBinding>,
    /// Whether the set differs from the `current` one given (an update, a removal, or
    /// expired bindings dropped; `current` compared in the store's order): the set must
    /// then be stored before answering 200.
    pub changed: bool,
}

/// Why a REGISTER is refused, and the response that says so. This is a protocol
/// answer, not a failure of the server: see [`Self::status`] and [`Self::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterRefusal {
    /// 423 Interval Too Brief, with a `Min-Expires: min_expires` header.
    IntervalTooBrief {
        /// The value of the Min-Expires header.
        min_expires: u32,
    },
    /// 400 with this reason phrase: `*` with other contacts or a nonzero expiration,
    /// a malformed `expires`, `q` or `reg-id`, or several contacts with a `reg-id`
    /// (RFC 5626 §6).
    BadRequest(&'static str),
    /// 403 "Too many registrations": the set would exceed
    /// [`RegisterLimits::max_bindings`].
    TooManyBindings,
    /// 500: a binding has the request's Call-ID and a CSeq not lower than the
    /// request's (an out-of-order or replayed REGISTER, RFC 3261 §10.3 step 7).
    OutOfOrder,
}

impl RegisterRefusal {
    /// The status code of the response.
    pub fn status(&self) -> u16 {
        match self {
            Self::IntervalTooBrief { .. } => 423,
            Self::BadRequest(_) => 400,
            Self::TooManyBindings => 403,
            Self::OutOfOrder => 500,
        }
    }

    /// The reason phrase of the response.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::IntervalTooBrief { .. } => "Interval Too Brief",
            Self::BadRequest(why) => why,
            Self::TooManyBindings => "Too many registrations",
            Self::OutOfOrder => "Out of order registration",
        }
    }
}

/// A binding being computed, and whether this request made it.
struct Working {
    binding: SipBinding,
    uri: Option<Uri>,
    from_request: bool,
}

/// RFC 3261 §10.3 steps 6 to 8 for `user`: the new binding set from the `current` one
/// (as stored, expired ones included) and the request, at `now_ms` (unix ms).
///
/// Per contact the interval is its `expires` parameter, else the Expires header, else
/// [`RegisterLimits::default_expires`]; 0 removes the binding, a nonzero interval below
/// the minimum (and below one hour) is refused with 423, one above the maximum is
/// shortened to it. A matching binding (see the module documentation) with another
/// Call-ID is replaced; with the same Call-ID only when the CSeq is higher. `*` with
/// `Expires: 0` removes every binding, under the same CSeq rule. No contact at all is
/// a query: the live set is returned. A refusal leaves the set as it was.
pub fn apply_register(
    current: &[SipBinding],
    user: &str,
    req: &RegisterRequest<'_>,
    now_ms: i64,
    limits: &RegisterLimits,
) -> Result<Applied, RegisterRefusal> {
    let live: Vec<&SipBinding> = current
        .iter()
        .filter(|b| b.expires_at_ms > now_ms)
        .collect();
    let mut bindings: Vec<SipBinding> = if req.wildcard {
        wildcard(&live, req)?;
        Vec::new()
    } else if req.contacts.is_empty() {
        live.iter().map(|b| (*b).clone()).collect()
    } else {
        let set = update(&live, user, req, now_ms, limits)?;
        if set.len() > limits.max_bindings && set.len() > live.len() {
            return Err(RegisterRefusal::TooManyBindings);
        }
        set
    };
    bindings.sort_by(|a, b| a.contact.cmp(&b.contact));
    let changed = bindings.as_slice() != current;
    Ok(Applied { bindings, changed })
}

/// Step 6 for `Contact: *`: it must stand alone with `Expires: 0`, and every binding
/// must be removable under the CSeq rule.
fn wildcard(live: &[&SipBinding], req: &RegisterRequest<'_>) -> Result<(), RegisterRefusal> {
    if !req.contacts.is_empty() {
        return Err(RegisterRefusal::BadRequest(
            "Wildcard Contact with other contacts",
        ));
    }
    if req.expires_header != Some(0) {
        return Err(RegisterRefusal::BadRequest(
            "Wildcard Contact without Expires: 0",
        ));
    }
    if live.iter().any(|b| out_of_order(b, req)) {
        return Err(RegisterRefusal::OutOfOrder);
    }
    Ok(())
}

/// Whether `req` may not touch `b`: same Call-ID and a CSeq that is not higher.
fn out_of_order(b: &SipBinding, req: &RegisterRequest<'_>) -> bool {
    b.call_id == req.call_id && req.cseq <= b.cseq
}

/// Step 7: every contact of the request in turn, on a working copy of the live set.
fn update(
    live: &[&SipBinding],
    user: &str,
    req: &RegisterRequest<'_>,
    now_ms: i64,
    limits: &RegisterLimits,
) -> Result<Vec<SipBinding>, RegisterRefusal> {
    let with_reg_id = req
        .contacts
        .iter()
        .filter(|c| c.param("reg-id").is_some())
        .count();
    if with_reg_id > 1 {
        return Err(RegisterRefusal::BadRequest(
            "More than one Contact with reg-id",
        ));
    }
    let mut set: Vec<Working> = live
        .iter()
        .map(|b| Working {
            binding: (*b).clone(),
            uri: Uri::parse(&b.contact),
            from_request: false,
        })
        .collect();
    for contact in &req.contacts {
        let expires = granted(contact, req.expires_header, limits)?;
        let new = binding_for(contact, user, req, now_ms, expires)?;
        let matches = |w: &Working| match &w.uri {
            Some(uri) => uri_eq(uri, &contact.uri),
            None => w.binding.contact == new.contact,
        } || same_instance(&w.binding, &new);
        if set
            .iter()
            .any(|w| matches(w) && !w.from_request && out_of_order(&w.binding, req))
        {
            return Err(RegisterRefusal::OutOfOrder);
        }
        set.retain(|w| !matches(w));
        if expires > 0 {
            set.push(Working {
                binding: new,
                uri: Some(contact.uri.clone()),
                from_request: true,
            });
        }
    }
    Ok(set.into_iter().map(|w| w.binding).collect())
}

/// Whether two bindings are the same UA flow: the same `+sip.instance` and `reg-id`.
fn same_instance(a: &SipBinding, b: &SipBinding) -> bool {
    match (&a.instance, &b.instance) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y) && a.reg_id == b.reg_id,
        _ => false,
    }
}

/// The interval granted to `contact`, in seconds (0 to remove).
fn granted(
    contact: &NameAddr,
    header: Option<u32>,
    limits: &RegisterLimits,
) -> Result<u32, RegisterRefusal> {
    let own = match contact.param("expires") {
        Some(_) => Some(
            contact
                .expires()
                .ok_or(RegisterRefusal::BadRequest("Malformed Contact expires"))?,
        ),
        None => None,
    };
    let requested = own.or(header).unwrap_or(limits.default_expires);
    if requested == 0 {
        return Ok(0);
    }
    if requested < limits.min_expires && requested < 3600 {
        return Err(RegisterRefusal::IntervalTooBrief {
            min_expires: limits.min_expires,
        });
    }
    Ok(requested.min(limits.max_expires))
}

/// The binding `contact` asks for, lasting `expires` seconds from `now_ms`.
fn binding_for(
    contact: &NameAddr,
    user: &str,
    req: &RegisterRequest<'_>,
    now_ms: i64,
    expires: u32,
) -> Result<SipBinding, RegisterRefusal> {
    let q = match contact.param("q") {
        Some(_) => Some(
            contact
                .q()
                .ok_or(RegisterRefusal::BadRequest("Malformed Contact q"))?,
        ),
        None => None,
    };
    let instance = contact
        .param("+sip.instance")
        .flatten()
        .map(unquote)
        .filter(|i| !i.is_empty());
    // A reg-id means nothing without an instance (RFC 5626 §6): ignored then.
    let reg_id = match (&instance, contact.param("reg-id")) {
        (Some(_), Some(value)) => Some(
            value
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or(RegisterRefusal::BadRequest("Malformed reg-id"))?,
        ),
        _ => None,
    };
    Ok(SipBinding {
        user: user.to_owned(),
        contact: contact.uri.to_string(),
        expires_at_ms: now_ms.saturating_add(i64::from(expires) * 1000),
        call_id: req.call_id.to_owned(),
        cseq: req.cseq,
        q,
        instance,
        reg_id,
        source: req.source.to_owned(),
        user_agent: req.user_agent.map(str::to_owned),
    })
}

/// The Contact values of a 200 answer to a REGISTER (RFC 3261 §10.3 step 8): every
/// binding live at `now_ms`, as `<uri>;expires=N` with the seconds left (rounded up),
/// then `;q=` when set, and the `+sip.instance` and `reg-id` when set (RFC 5626 §6).
pub fn contact_header_values(bindings: &[SipBinding], now_ms: i64) -> Vec<String> {
    bindings
        .iter()
        .filter(|b| b.expires_at_ms > now_ms)
        .map(|b| {
            let left_ms = b.expires_at_ms.saturating_sub(now_ms);
            let seconds = left_ms / 1000 + i64::from(left_ms % 1000 != 0);
            let mut value = format!("<{}>;expires={seconds}", b.contact);
            if let Some(q) = b.q {
                value.push_str(";q=");
                value.push_str(&format_q(q));
            }
            if let Some(instance) = &b.instance {
                value.push_str(";+sip.instance=\"");
                for c in instance.chars() {
                    if matches!(c, '"' | '\\') {
                        value.push('\\');
                    }
                    value.push(c);
                }
                value.push('"');
            }
            if let Some(reg_id) = b.reg_id {
                value.push_str(&format!(";reg-id={reg_id}"));
            }
            value
        })
        .collect()
}

/// A q-value from thousandths: `1`, `0`, `0.5`, `0.025`.
fn format_q(q: u16) -> String {
    match q {
        1000.. => "1".to_owned(),
        0 => "0".to_owned(),
        q => {
            let digits = format!("{q:03}");
            format!("0.{}", digits.trim_end_matches('0'))
        }
    }
}

/// URI equality by RFC 3261 §19.1.4 as far as the codec's [`Uri`] carries it: for SIP
/// URIs the same scheme, user and password (case-sensitive, escapes decoded), host
/// (ignoring case), port (an absent port differs from an explicit one), `user`,
/// `ttl`, `method` and `maddr` parameters present in both or neither, any parameter
/// present in both equal (ignoring case), and the same headers. `tel` URIs compare
/// their numbers without visual separators and their parameters; other URIs compare
/// as written, the scheme ignoring case.
pub fn uri_eq(a: &Uri, b: &Uri) -> bool {
    match (a, b) {
        (Uri::Sip(a), Uri::Sip(b)) => sip_uri_eq(a, b),
        (Uri::Tel(a), Uri::Tel(b)) => tel_uri_eq(a, b),
        (Uri::Other(a), Uri::Other(b)) => match (a.split_once(':'), b.split_once(':')) {
            (Some((sa, ra)), Some((sb, rb))) => sa.eq_ignore_ascii_case(sb) && ra == rb,
            _ => a == b,
        },
        _ => false,
    }
}

fn sip_uri_eq(a: &SipUri, b: &SipUri) -> bool {
    let escaped_eq = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => unescape(x) == unescape(y),
        (None, None) => true,
        _ => false,
    };
    a.secure == b.secure
        && escaped_eq(&a.user, &b.user)
        && escaped_eq(&a.password, &b.password)
        && host_eq(&a.host, &b.host)
        && a.port == b.port
        && params_eq(&a.params, &b.params, &["user", "ttl", "method", "maddr"])
        && headers_eq(&a.headers, &b.headers)
}

fn host_eq(a: &Host, b: &Host) -> bool {
    match (a, b) {
        (Host::Name(a), Host::Name(b)) => a
            .trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.')),
        _ => a == b,
    }
}

/// The value of parameter `name`, escapes decoded and lowercased.
fn param_value(params: &[Param], name: &str) -> Option<Option<Vec<u8>>> {
    herald_translate::sip::find_param(params, name)
        .map(|v| v.map(|v| unescape(v).to_ascii_lowercase()))
}

/// Parameters present in both must be equal; those in `required` must be present in
/// both or neither; the others present in one only are ignored.
fn params_eq(a: &[Param], b: &[Param], required: &[&str]) -> bool {
    let in_both_equal = a.iter().all(|p| match param_value(b, &p.name) {
        Some(theirs) => param_value(a, &p.name) == Some(theirs),
        None => !required.iter().any(|r| p.name.eq_ignore_ascii_case(r)),
    });
    let required_in_b = b.iter().all(|p| {
        param_value(a, &p.name).is_some()
            || !required.iter().any(|r| p.name.eq_ignore_ascii_case(r))
    });
    in_both_equal && required_in_b
}

fn headers_eq(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let contains = |list: &[(String, String)], (n, v): &(String, String)| {
        list.iter()
            .any(|(m, w)| m.eq_ignore_ascii_case(n) && unescape(w) == unescape(v))
    };
    a.len() == b.len() && a.iter().all(|h| contains(b, h)) && b.iter().all(|h| contains(a, h))
}

fn tel_uri_eq(a: &TelUri, b: &TelUri) -> bool {
    let digits = |n: &str| -> Vec<u8> {
        n.bytes()
            .filter(|c| !matches!(c, b'-' | b'.' | b'(' | b')'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    digits(&a.number) == digits(&b.number)
        && a.params.len() == b.params.len()
        && params_eq(&a.params, &b.params, &[])
        && params_eq(&b.params, &a.params, &[])
}
