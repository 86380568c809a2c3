//! The user agents' side of the generator: requests formatted by hand, digest
//! answers, transactions retransmitted on T1/T2, and the receive loop that matches
//! every response and NOTIFY.

use super::*;

impl Ctx {
    pub(super) fn aor(&self, u: u32) -> String {
        format!("sip:{}@{}", self.users[u as usize].name, self.args.domain)
    }

    pub(super) fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_insert(0) += 1;
    }

    /// Learns the challenge of a 401/407 for `user`'s slot; false if none is usable.
    pub(super) fn learn(&self, user: u32, slot: usize, resp: &Message) -> bool {
        let proxy = code_of(resp) == 407;
        let name = if proxy {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        let challenges: Vec<Challenge> = resp
            .header_values(&name)
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        let chosen = match self.algorithm {
            Some(a) => challenges.into_iter().find(|c| c.algorithm == a),
            None => challenges.into_iter().next(),
        };
        let Some(challenge) = chosen else {
            return false;
        };
        let u = &self.users[user as usize];
        let ha1 = digest::ha1(
            challenge.algorithm.base(),
            &u.name,
            &challenge.realm,
            &u.pass,
        );
        u.auth.lock().unwrap()[slot] = Some(AuthSlot {
            challenge,
            proxy,
            ha1,
            nc: 0,
        });
        true
    }

    /// The Authorization (or Proxy-Authorization) header line for a request, if a
    /// challenge is known.
    pub(super) fn authorization(&self, user: u32, slot: usize, method: &str, uri: &str) -> String {
        let u = &self.users[user as usize];
        let mut slots = u.auth.lock().unwrap();
        let Some(s) = slots[slot].as_mut() else {
            return String::new();
        };
        s.nc += 1;
        let qop = s.challenge.qop_auth.then_some(Qop::Auth);
        let mut c = Credentials {
            username: u.name.clone(),
            realm: s.challenge.realm.clone(),
            nonce: s.challenge.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: s.challenge.algorithm,
            cnonce: qop.map(|_| format!("{:x}{:08x}", self.run, self.id())),
            opaque: s.challenge.opaque.clone(),
            qop,
            nc: qop.map(|_| s.nc),
        };
        match digest::expected_response(&c, method, &s.ha1) {
            Ok(r) => c.response = r,
            Err(_) => return String::new(),
        }
        let name = if s.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        format!("{name}: {c}\r\n")
    }

    /// Sends one request and waits for its final response, retransmitting at T1,
    /// 2·T1... (at most T2 apart) until --transaction-timeout.
    pub(super) async fn transact(
        &self,
        sock: usize,
        branch: String,
        bytes: &[u8],
    ) -> Option<Message> {
        let (tx, mut rx) = oneshot::channel();
        self.pending[sock]
            .lock()
            .unwrap()
            .insert(branch.clone(), tx);
        let socket = &self.sockets[sock];
        let deadline = Instant::now() + Duration::from_secs_f64(self.args.transaction_timeout);
        let mut interval = T1;
        let _ = socket.send_to(bytes, self.args.server).await;
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.pending[sock].lock().unwrap().remove(&branch);
                inc(&self.counters.timeouts);
                return None;
            }
            match tokio::time::timeout(interval.min(deadline - now), &mut rx).await {
                Ok(Ok(m)) => return Some(m),
                Ok(Err(_)) => return None,
                Err(_) => {
                    if Instant::now() < deadline {
                        inc(&self.counters.retransmits);
                        let _ = socket.send_to(bytes, self.args.server).await;
                        interval = (interval * 2).min(T2);
                    }
                }
            }
        }
    }

    /// Sends `method` from `user`, answering 401/407 challenges (bounded); returns the
    /// final response that is not a challenge.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn request(
        &self,
        user: u32,
        method: &str,
        ruri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        cseq: &mut u32,
        extra: &str,
        body: &[u8],
    ) -> Result<Message, Fail> {
        let slot = usize::from(method != "REGISTER");
        let u = &self.users[user as usize];
        let local = self.locals[u.sock];
        let mut last = 0;
        for _ in 0..AUTH_ATTEMPTS {
            *cseq += 1;
            let branch = format!("z9hG4bK{:x}.{:x}", self.run, self.id());
            let auth = self.authorization(user, slot, method, ruri);
            let mut msg = String::with_capacity(600 + body.len());
            let _ = write!(
                msg,
                "{method} {ruri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:{name}@{domain}>;tag={from_tag}\r\n\
                 To: <{to}>\r\n\
                 Call-ID: {call_id}\r\n\
                 CSeq: {cseq} {method}\r\n\
                 Contact: <sip:{name}@{local}>\r\n\
                 User-Agent: herald-loadgen\r\n\
                 {extra}{auth}Content-Length: {len}\r\n\r\n",
                name = u.name,
                domain = self.args.domain,
                len = body.len(),
            );
            let mut bytes = msg.into_bytes();
            bytes.extend_from_slice(body);
            let Some(resp) = self.transact(u.sock, branch, &bytes).await else {
                return Err(Fail::Timeout);
            };
            last = code_of(&resp);
            if last == 401 || last == 407 {
                if !self.learn(user, slot, &resp) {
                    return Err(Fail::Status(last));
                }
                continue;
            }
            return Ok(resp);
        }
        Err(Fail::Status(last))
    }

    pub(super) fn fail(&self, method: &str, f: &Fail) {
        match f {
            Fail::Timeout => self.error(format!("{method} timeout")),
            Fail::Status(c) => self.error(format!("{method} {c}")),
        }
    }

    pub(super) async fn register(&self, u: u32) -> bool {
        let ruri = format!("sip:{}", self.args.domain);
        let aor = self.aor(u);
        let call_id = format!("r{u}.{:x}@herald-loadgen", self.run);
        let extra = format!("Expires: {}\r\n", self.args.expires);
        let mut cseq = 0;
        match self
            .request(
                u,
                "REGISTER",
                &ruri,
                &aor,
                &call_id,
                &format!("r{u}"),
                &mut cseq,
                &extra,
                b"",
            )
            .await
        {
            Ok(r) if (200..300).contains(&code_of(&r)) => true,
            Ok(r) => {
                self.fail("REGISTER", &Fail::Status(code_of(&r)));
                false
            }
            Err(f) => {
                self.fail("REGISTER", &f);
                false
            }
        }
    }

    /// Watcher `w`'s K SUBSCRIBEs, one after the other (one nonce count sequence).
    pub(super) async fn subscribe(&self, w: u32) -> u32 {
        let k = self.args.watch;
        let extra = format!(
            "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: {}\r\n",
            self.args.expires
        );
        let mut ok = 0;
        for j in 0..k {
            let idx = w * k + j;
            let sub = &self.subs[idx as usize];
            let target = self.aor(sub.presentity);
            let mut cseq = 0;
            let res = self
                .request(
                    w,
                    "SUBSCRIBE",
                    &target,
                    &target,
                    &sub.call_id,
                    &format!("s{idx}"),
                    &mut cseq,
                    &extra,
                    b"",
                )
                .await;
            match res {
                Ok(r) if (200..300).contains(&code_of(&r)) => {
                    self.sub_active[idx as usize].store(true, Ordering::Relaxed);
                    self.watchers_of[sub.presentity as usize].fetch_add(1, Ordering::Relaxed);
                    ok += 1;
                }
                Ok(r) => self.fail("SUBSCRIBE", &Fail::Status(code_of(&r))),
                Err(f) => self.fail("SUBSCRIBE", &f),
            }
        }
        ok
    }

    pub(super) fn pidf(&self, p: u32, seq: u64) -> Vec<u8> {
        let basic = if seq.is_multiple_of(2) {
            "open"
        } else {
            "closed"
        };
        let t = self.epoch.elapsed().as_micros();
        let note = format!("hb-seq={seq} t={t}");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\n\
             <tuple id=\"t{p}\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\n\
             <note>{note}</note>\n\
             </presence>\n",
            entity = self.aor(p),
        )
        .into_bytes()
    }

    /// One PUBLISH of presentity `p` carrying sequence number `seq`. Returns whether it
    /// was answered 2xx. Clears the presentity's busy flag.
    pub(super) async fn publish(&self, p: u32, seq: u64) -> bool {
        let u = &self.users[p as usize];
        let aor = self.aor(p);
        let call_id = format!("p{p}.{:x}@herald-loadgen", self.run);
        let body = self.pidf(p, seq);
        let mut ok = false;
        for _ in 0..2 {
            let etag = u.etag.lock().unwrap().clone();
            let mut extra = format!(
                "Event: presence\r\nExpires: {}\r\nContent-Type: application/pidf+xml\r\n",
                self.args.publish_expires
            );
            if let Some(e) = &etag {
                let _ = write!(extra, "SIP-If-Match: {e}\r\n");
            }
            let started = Instant::now();
            self.pubs.lock().unwrap().insert(
                seq,
                PubRec {
                    sent: started,
                    presentity: p,
                    done: false,
                    seen: Vec::new(),
                },
            );
            let mut cseq = u.pub_cseq.load(Ordering::Relaxed);
            let res = self
                .request(
                    p,
                    "PUBLISH",
                    &aor,
                    &aor,
                    &call_id,
                    &format!("p{p}"),
                    &mut cseq,
                    &extra,
                    &body,
                )
                .await;
            u.pub_cseq.store(cseq, Ordering::Relaxed);
            match res {
                Ok(r) if (200..300).contains(&code_of(&r)) => {
                    let elapsed = started.elapsed();
                    *u.etag.lock().unwrap() = r.header(&HeaderName::SipETag).map(str::to_owned);
                    if let Some(rec) = self.pubs.lock().unwrap().get_mut(&seq) {
                        rec.done = true;
                    }
                    self.publish_lat
                        .lock()
                        .unwrap()
                        .record(elapsed.as_micros() as u64);
                    ok = true;
                    break;
                }
                Ok(r) if code_of(&r) == 412 && etag.is_some() => {
                    self.error("PUBLISH 412".into());
                    *u.etag.lock().unwrap() = None;
                }
                Ok(r) => {
                    self.fail("PUBLISH", &Fail::Status(code_of(&r)));
                    break;
                }
                Err(f) => {
                    self.fail("PUBLISH", &f);
                    break;
                }
            }
        }
        u.busy.store(false, Ordering::Release);
        ok
    }

    /// Answers a request (NOTIFY: 200) and accounts for a NOTIFY's note.
    pub(super) async fn on_request(&self, sock: usize, msg: Message, from: SocketAddr) {
        let is_notify = msg
            .request_line()
            .is_some_and(|r| r.method.as_str() == "NOTIFY");
        let mut out = String::with_capacity(400);
        out.push_str(if is_notify {
            "SIP/2.0 200 OK\r\n"
        } else {
            "SIP/2.0 501 Not Implemented\r\n"
        });
        for v in msg.header_values(&HeaderName::Via) {
            let _ = write!(out, "Via: {v}\r\n");
        }
        for (name, label) in [
            (HeaderName::From, "From"),
            (HeaderName::To, "To"),
            (HeaderName::CallId, "Call-ID"),
            (HeaderName::CSeq, "CSeq"),
        ] {
            if let Some(v) = msg.header(&name) {
                let _ = write!(out, "{label}: {v}\r\n");
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        let _ = self.sockets[sock].send_to(out.as_bytes(), from).await;
        if !is_notify {
            inc(&self.counters.other_requests);
            return;
        }
        let now = Instant::now();
        let c = &self.counters;
        inc(&c.notify_rx);
        if msg.header(&HeaderName::SubscriptionState).is_some_and(|s| {
            s.trim_start()
                .to_ascii_lowercase()
                .starts_with("terminated")
        }) {
            inc(&c.notify_terminated);
        }
        let Some(&sub) = msg
            .header(&HeaderName::CallId)
            .and_then(|id| self.sub_by_call.get(id))
        else {
            inc(&c.notify_unknown_dialog);
            return;
        };
        let Some(seq) = seq_in(&msg.body) else {
            inc(&c.notify_no_seq);
            return;
        };
        let latency = {
            let mut pubs = self.pubs.lock().unwrap();
            match pubs.get_mut(&seq) {
                None => None,
                Some(rec) if rec.seen.contains(&sub) => Some(None),
                Some(rec) => {
                    rec.seen.push(sub);
                    Some(Some(now.saturating_duration_since(rec.sent)))
                }
            }
        };
        match latency {
            None => inc(&c.notify_unknown_seq),
            Some(None) => inc(&c.notify_dup),
            Some(Some(l)) => {
                inc(&c.notify_matched);
                self.notify_lat.lock().unwrap().record(l.as_micros() as u64);
            }
        }
    }

    pub(super) fn on_response(&self, sock: usize, msg: Message) {
        if code_of(&msg) < 200 {
            return;
        }
        let tx = branch_of(&msg).and_then(|b| self.pending[sock].lock().unwrap().remove(b));
        match tx {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => inc(&self.counters.stray_responses),
        }
    }
}

pub(super) async fn receiver(ctx: Arc<Ctx>, sock: usize) {
    let socket = ctx.sockets[sock].clone();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let data = &buf[..n];
        if data.iter().all(u8::is_ascii_whitespace) {
            continue; // keep-alive
        }
        match parse_datagram(data, &ctx.limits) {
            Ok(msg) if msg.is_request() => ctx.on_request(sock, msg, from).await,
            Ok(msg) => ctx.on_response(sock, msg),
            Err(e) => {
                if get(&ctx.counters.parse_errors) < 5 {
                    eprintln!("herald-loadgen sip-presence: unparsable datagram from {from}: {e}");
                }
                inc(&ctx.counters.parse_errors);
            }
        }
    }
}

/// Runs `n` tasks started at `rate` per second with at most --max-pending at once;
/// returns the sum of their results.
pub(super) async fn paced<F, Fut>(ctx: &Arc<Ctx>, n: u32, rate: f64, f: F) -> u64
where
    F: Fn(Arc<Ctx>, u32) -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(ctx.args.max_pending));
    let start = tokio::time::Instant::now();
    let mut handles: Vec<JoinHandle<u64>> = Vec::with_capacity(n as usize);
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(f64::from(i) / rate)).await;
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let fut = f(ctx.clone(), i);
        handles.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap_or(0);
    }
    total
}
