//! Test PKI for the s2s verification tests: a CA, leaves with chosen identities,
//! and raw subjectAltName extensions rcgen does not write.

#![allow(dead_code, unused_imports)] // Each test binary uses part of it.

pub(crate) use std::sync::Arc;

pub(crate) use herald_certs::verify::{check_peer_at, presented_ids, MAX_PRESENTED_IDS};
pub(crate) use herald_certs::{
    check_identity, check_peer, crypto_provider, pin_sha256, s2s_client_config, s2s_server_config,
    CertPin, CertifiedIdentity, ChainError, IdentityKind, PeerRole, PresentedId, S2sTrust,
    S2sVerifyMode, SniStore,
};
pub(crate) use proptest::prelude::*;
pub(crate) use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, OtherNameValue, SanType,
};
pub(crate) use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
};
pub(crate) use rustls::server::{ClientHello, ResolvesServerCert};
pub(crate) use rustls::sign::CertifiedKey;
pub(crate) use rustls::{AlertDescription, CertificateError, ClientConnection, ServerConnection};

pub(crate) const XMPP_SERVER: &[u8] = b"xmpp-server";
pub(crate) const ID_ON_XMPP_ADDR: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 8, 5];

// ---------------------------------------------------------------- PKI ----

pub(crate) struct Ca {
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) cert: CertificateDer<'static>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca cert");
        Self {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
        }
    }

    pub(crate) fn trust(&self) -> S2sTrust {
        S2sTrust::from_certs(std::slice::from_ref(&self.cert)).expect("trust")
    }
}

/// A leaf certificate and its key.
pub(crate) struct Leaf {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: KeyPair,
}

impl Leaf {
    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let signing = crypto_provider()
            .key_provider
            .load_private_key(der)
            .expect("signing key");
        Arc::new(CertifiedKey::new(vec![self.cert.clone()], signing))
    }

    pub(crate) fn identity(&self) -> CertifiedIdentity {
        CertifiedIdentity::from_certified_key(self.certified_key()).expect("identity")
    }

    pub(crate) fn store(&self) -> Arc<SniStore> {
        Arc::new(SniStore::new(self.identity()))
    }
}

/// What goes into a leaf.
#[derive(Default)]
pub(crate) struct Spec {
    pub(crate) dns: Vec<&'static str>,
    pub(crate) xmpp_addrs: Vec<&'static str>,
    /// SRVName values, written as a raw subjectAltName (rcgen only writes
    /// UTF8String otherNames; SRVName is an IA5String).
    pub(crate) srv: Vec<&'static str>,
    pub(crate) common_name: Option<&'static str>,
    pub(crate) eku: Vec<ExtendedKeyUsagePurpose>,
    pub(crate) expired: bool,
}

pub(crate) fn leaf(spec: Spec, issuer: Option<&Ca>) -> Leaf {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = spec.common_name {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    if spec.srv.is_empty() {
        for name in spec.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.try_into().expect("dns")));
        }
        for jid in spec.xmpp_addrs {
            params.subject_alt_names.push(SanType::OtherName((
                ID_ON_XMPP_ADDR.to_vec(),
                OtherNameValue::Utf8String(jid.to_owned()),
            )));
        }
    } else {
        assert!(spec.dns.is_empty() && spec.xmpp_addrs.is_empty());
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                srv_san(&spec.srv),
            ));
    }
    params.extended_key_usages = spec.eku;
    if spec.expired {
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, &ca.issuer),
        None => params.self_signed(&key),
    }
    .expect("leaf cert");
    Leaf {
        cert: cert.der().clone(),
        key,
    }
}

pub(crate) fn dns(names: &[&'static str]) -> Spec {
    Spec {
        dns: names.to_vec(),
        ..Spec::default()
    }
}

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// `SubjectAltName` with one SRVName otherName per value.
pub(crate) fn srv_san(values: &[&str]) -> Vec<u8> {
    const ID_ON_DNS_SRV: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];
    let mut names = Vec::new();
    for value in values {
        let mut other = tlv(0x06, ID_ON_DNS_SRV);
        other.extend(tlv(0xa0, &tlv(0x16, value.as_bytes())));
        names.extend(tlv(0xa0, &other));
    }
    tlv(0x30, &names)
}
