//! The registrar (RFC 3261 §10.3): REGISTER with digest (401), the address-of-record
//! checks, and the bindings, stored before the 200 OK is sent so that they survive a
//! restart or a kill. The bindings of every user are also kept in memory (the location
//! service the pager and the presence agent read), loaded from the store at start;
//! expired ones are swept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use herald_translate::sip::transaction::{Remote, Transport};
use herald_translate::sip::{HeaderName, Message, Uri};

use super::bindings::{
    apply_register, contact_header_values, RegisterLimits, RegisterRefusal, RegisterRequest,
};
use super::service::{reply, SipService};
use super::settings::SipSettings;
use crate::db::Db;
use crate::store::SipBinding;
use crate::time::now_unix_ms;

/// Where a request to a user's device goes: the Request-URI, and the flow.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) contact: String,
    pub(crate) remote: Remote,
}

/// Registrar state: the bindings of every user, written through to the store.
#[derive(Debug)]
pub(crate) struct Registrar {
    bindings: Mutex<HashMap<String, Vec<SipBinding>>>,
    /// One registration is computed and stored at a time (read, apply, write must not
    /// interleave for one user; the store serializes writes anyway).
    write: tokio::sync::Mutex<()>,
    limits: RegisterLimits,
    db: Db,
}

impl Registrar {
    /// The registrar, with the unexpired bindings found in the store.
    pub(crate) fn load(db: Db, settings: &SipSettings) -> Self {
        let now = now_unix_ms();
        let mut map: HashMap<String, Vec<SipBinding>> = HashMap::new();
        match db.store().sip_bindings_all() {
            Ok(all) => {
                for b in all.into_iter().filter(|b| b.expires_at_ms > now) {
                    map.entry(b.user.clone()).or_default().push(b);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load SIP registrations"),
        }
        Self {
            bindings: Mutex::new(map),
            write: tokio::sync::Mutex::new(()),
            limits: RegisterLimits {
                min_expires: settings.register_min_expires,
                max_expires: settings.register_max_expires,
                default_expires: settings.register_default_expires,
                max_bindings: settings.max_bindings_per_user,
            },
            db,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SipBinding>>> {
        self.bindings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live bindings of `user`.
    pub(crate) fn bindings(&self, user: &str) -> Vec<SipBinding> {
        let now = now_unix_ms();
        self.map()
            .get(user)
            .map(|v| {
                v.iter()
                    .filter(|b| b.expires_at_ms > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many users have bindings.
    pub(crate) fn user_count(&self) -> usize {
        self.map().len()
    }

    /// Users with bindings.
    pub(crate) fn registered_users(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    /// Whether `user` has a live binding.
    pub(crate) fn is_registered(&self, user: &str) -> bool {
        !self.bindings(user).is_empty()
    }

    /// Where requests to `user`'s devices go, best first (q-value order).
    pub(crate) fn targets(&self, user: &str) -> Vec<Target> {
        let mut list = self.bindings(user);
        list.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
        list.iter()
            .filter_map(|b| {
                Some(Target {
                    contact: b.contact.clone(),
                    remote: parse_source(&b.source)?,
                })
            })
            .collect()
    }

    /// Users whose bindings all expired since the last sweep (their stored rows go too).
    pub(crate) async fn sweep(&self) -> Vec<String> {
        let now = now_unix_ms();
        let mut gone = Vec::new();
        {
            let mut map = self.map();
            map.retain(|user, list| {
                list.retain(|b| b.expires_at_ms > now);
                if list.is_empty() {
                    gone.push(user.clone());
                    false
                } else {
                    true
                }
            });
        }
        if let Err(e) = self
            .db
            .run(move |s| s.sip_bindings_purge_expired(now))
            .await
        {
            tracing::warn!(error = %e, "cannot purge expired SIP registrations");
        }
        gone
    }

    /// A REGISTER: authenticate, check the address of record, apply and store.
    pub(crate) async fn register(
        &self,
        svc: &Arc<SipService>,
        request: &Message,
        from: Remote,
    ) -> Message {
        let Some(line) = request.request_line() else {
            return reply(request, 400, "Bad Request");
        };
        if !svc.is_local_uri(&line.uri) {
            return reply(request, 404, "Not Found: not a registrar for this domain");
        }
        let principal = match svc.authenticate(request, false, from).await {
            Ok(p) => p,
            Err(answer) => return answer,
        };
        let to_uri: Option<Uri> = request.to().ok().map(|t| t.uri);
        let Some(aor) = to_uri.as_ref().and_then(|u| svc.local_user(u)) else {
            return reply(request, 404, "Not Found: no such address of record here");
        };
        if aor.local() != Some(principal.user.as_str()) {
            return reply(
                request,
                403,
                "Forbidden: these credentials may not register this address",
            );
        }
        let user = principal.user.clone();
        let source = source_string(from);
        let _writing = self.write.lock().await;
        let current = self.map().get(&user).cloned().unwrap_or_default();
        let now = now_unix_ms();
        let parsed = match RegisterRequest::from_message(request, &source) {
            Ok(r) => r,
            Err(e) => {
                return herald_translate::sip::error_response(
                    &herald_translate::sip::RequestEssentials::from_message(request),
                    &e.kind,
                    "",
                )
            }
        };
        let applied = match apply_register(&current, &user, &parsed, now, &self.limits) {
            Ok(applied) => applied,
            Err(refusal) => return refusal_response(request, &refusal),
        };
        if applied.changed {
            let (u, list) = (user.clone(), applied.bindings.clone());
            if let Err(e) = self
                .db
                .run(move |s| s.sip_bindings_replace(&u, &list))
                .await
            {
                tracing::error!(error = %e, user = %user, "cannot store SIP registration");
                let mut r = reply(request, 500, "Server Internal Error");
                r.push_header(HeaderName::Other("Retry-After".into()), "5");
                return r;
            }
        }
        let was_registered = !current.iter().all(|b| b.expires_at_ms <= now);
        let now_registered = !applied.bindings.is_empty();
        {
            let mut map = self.map();
            if now_registered {
                map.insert(user.clone(), applied.bindings.clone());
            } else {
                map.remove(&user);
            }
        }
        drop(_writing);
        let had_session = svc
            .gateways
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&principal.jid.bare());
        if was_registered != now_registered {
            svc.registration_changed(&principal.jid, now_registered)
                .await;
        }
        if now_registered && !was_registered && had_session {
            // A session that starts sends the stored messages itself; one that ran
            // already (started by a PUBLISH) had no device to send them to.
            let (svc, jid) = (Arc::clone(svc), principal.jid.clone());
            tokio::spawn(async move { super::gateway::registration_started(&svc, &jid).await });
        }
        let mut ok = reply(request, 200, "OK");
        for value in contact_header_values(&applied.bindings, now) {
            ok.push_header(HeaderName::Contact, value);
        }
        ok.push_header(HeaderName::Date, crate::time::rfc1123(now));
        ok
    }
}

/// The response to a refused REGISTER.
fn refusal_response(request: &Message, refusal: &RegisterRefusal) -> Message {
    match refusal {
        RegisterRefusal::IntervalTooBrief { min_expires } => {
            let mut r = reply(request, 423, "Interval Too Brief");
            r.push_header(HeaderName::MinExpires, min_expires.to_string());
            r
        }
        other => reply(request, other.status(), other.reason()),
    }
}

/// `udp:127.0.0.1:5062`: the flow a binding was registered over.
pub(crate) fn source_string(from: Remote) -> String {
    let t = match from.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
        Transport::Ws => "ws",
    };
    format!("{t}:{}", from.addr)
}

/// The inverse of [`source_string`].
pub(crate) fn parse_source(s: &str) -> Option<Remote> {
    let (t, addr) = s.split_once(':')?;
    let transport = match t {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        "ws" => Transport::Ws,
        _ => return None,
    };
    let addr: SocketAddr = addr.parse().ok()?;
    Some(Remote { addr, transport })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip() {
        for s in ["udp:127.0.0.1:5062", "tcp:[::1]:5070", "tls:10.0.0.1:5061"] {
            let r = parse_source(s).expect(s);
            assert_eq!(source_string(r), s);
        }
        assert!(parse_source("sctp:1.2.3.4:5").is_none());
        assert!(parse_source("udp:nonsense").is_none());
    }
}
