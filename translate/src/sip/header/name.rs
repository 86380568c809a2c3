//! Header field names: case-insensitive (RFC 3261 §7.3.1), with the compact forms of
//! RFC 3261 §7.3.3 and of the extensions that registered one.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Declares [`HeaderName`] with the canonical spelling and compact form of each known
/// header, and the lookup from wire names.
macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal $(, $compact:literal)?; )*) => {
        /// A header field name. Known names are variants whatever their case or compact
        /// form on the wire; any other name is kept as written (`Other`), and compares
        /// and hashes ignoring ASCII case.
        #[derive(Debug, Clone, Eq)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any other header, spelled as received (a `token`).
            Other(String),
        }

        impl HeaderName {
            /// The full, canonical name (what the serializer writes).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Other(name) => name,
                }
            }

            /// The known header at `i` in `FULL_NAMES`. (A chain of comparisons with
            /// constants, which the compiler turns into a table: no clone through a
            /// jump, no enum returned through memory.)
            #[inline(always)]
            fn by_index(i: usize) -> Option<Self> {
                /// The position of each known header in `FULL_NAMES`.
                #[allow(dead_code, clippy::enum_variant_names)]
                #[repr(u8)]
                enum Index { $( $variant, )* }
                $( if i == Index::$variant as usize { return Some(Self::$variant); } )*
                None
            }

            /// The known header whose full name or compact form is `name`, ignoring case.
            #[inline(always)]
            fn known(name: &str) -> Option<Self> {
                let b = name.as_bytes();
                if b.len() == 1 {
                    let c = b[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(Self::$variant); } )? )*
                    return None;
                }
                // One table probe, then one comparison with the only candidate.
                let i = usize::from(*KNOWN_SLOTS.get(name_slot(b)?)?);
                let (len, key, mask) = KEYS.get(i)?;
                if b.len() != usize::from(*len) {
                    return None;
                }
                let matches = (0..KEY_WORDS).all(|w| word_at(b, 8 * w) | mask[w] == key[w]);
                if matches {
                    Self::by_index(i)
                } else {
                    None
                }
            }
        }

        /// The full names of the known headers, in declaration order.
        const FULL_NAMES: &[&str] = &[ $( $name, )* ];
    };
}

/// The slot of a full header name (two bytes or more) in [`KNOWN_SLOTS`]: a hash of
/// its length and its first, second and last bytes with ASCII case folded (`| 0x20`
/// folds letters; other bytes may collide, which the comparison that follows
/// catches). `None` below two bytes.
const fn name_slot(b: &[u8]) -> Option<usize> {
    if b.len() < 2 {
        return None;
    }
    let first = (b[0] | 0x20) as usize;
    let second = (b[1] | 0x20) as usize;
    let last = (b[b.len() - 1] | 0x20) as usize;
    Some(b.len().wrapping_add(first * 6 + last * 25 + second) & (SLOTS - 1))
}

const SLOTS: usize = 128;

/// The bytes `b[start..start + 8]` as a little-endian word, zero past the end of `b`
/// (`start` is a multiple of 8). Read straight from `b`: no copy to a buffer.
#[inline]
fn word_at(b: &[u8], start: usize) -> u64 {
    let n = b.len();
    if let Some(chunk) = b.get(start..start + 8) {
        u64::from_le_bytes(chunk.try_into().expect("eight bytes"))
    } else if start >= n {
        0
    } else if n >= 8 {
        // The last eight bytes, shifted so that `b[start]` comes first.
        let last = u64::from_le_bytes(b[n - 8..].try_into().expect("eight bytes"));
        last >> (8 * (8 - (n - start)))
    } else {
        b.iter()
            .enumerate()
            .fold(0, |w, (i, &c)| w | u64::from(c) << (8 * i))
    }
}

/// Known full names fit in this many 8-byte words.
const KEY_WORDS: usize = 3;

/// For each known full name: its length, its bytes with letters in lowercase (little
/// endian words, zero-padded), and a mask with 0x20 at each letter. A wire name of the
/// same length matches when `word | mask == key` in every word: `| 0x20` lowercases a
/// letter, and the other bytes (`-`) must be equal. This is `eq_ignore_ascii_case`,
/// eight bytes at a time.
static KEYS: [(u8, [u64; KEY_WORDS], [u64; KEY_WORDS]); FULL_NAMES.len()] = {
    let mut out = [(0u8, [0u64; KEY_WORDS], [0u64; KEY_WORDS]); FULL_NAMES.len()];
    let mut i = 0;
    while i < FULL_NAMES.len() {
        let b = FULL_NAMES[i].as_bytes();
        assert!(b.len() <= 8 * KEY_WORDS, "a known header name is too long");
        out[i].0 = b.len() as u8;
        let mut n = 0;
        while n < b.len() {
            let (k, m) = if b[n].is_ascii_alphabetic() {
                (b[n] | 0x20, 0x20u8)
            } else {
                (b[n], 0)
            };
            out[i].1[n / 8] |= (k as u64) << (8 * (n % 8));
            out[i].2[n / 8] |= (m as u64) << (8 * (n % 8));
            n += 1;
        }
        i += 1;
    }
    out
};

/// For each slot, the index in `FULL_NAMES` of the one known name hashing there, or
/// `u8::MAX`. Built at compile time; two known names in one slot fail the build.
static KNOWN_SLOTS: [u8; SLOTS] = {
    let mut t = [u8::MAX; SLOTS];
    let mut i = 0;
    while i < FULL_NAMES.len() {
        let Some(s) = name_slot(FULL_NAMES[i].as_bytes()) else {
            panic!("a known header name is one byte long");
        };
        assert!(t[s] == u8::MAX, "two known header names share a slot");
        t[s] = i as u8;
        i += 1;
    }
    t
};

header_names! {
    /// `Via` (`v`).
    Via = "Via", b'v';
    /// `From` (`f`).
    From = "From", b'f';
    /// `To` (`t`).
    To = "To", b't';
    /// `Call-ID` (`i`).
    CallId = "Call-ID", b'i';
    /// `CSeq`.
    CSeq = "CSeq";
    /// `Max-Forwards`.
    MaxForwards = "Max-Forwards";
    /// `Contact` (`m`).
    Contact = "Contact", b'm';
    /// `Expires`.
    Expires = "Expires";
    /// `Min-Expires`.
    MinExpires = "Min-Expires";
    /// `Content-Length` (`l`).
    ContentLength = "Content-Length", b'l';
    /// `Content-Type` (`c`).
    ContentType = "Content-Type", b'c';
    /// `Content-Encoding` (`e`).
    ContentEncoding = "Content-Encoding", b'e';
    /// `Subject` (`s`).
    Subject = "Subject", b's';
    /// `Supported` (`k`).
    Supported = "Supported", b'k';
    /// `Require`.
    Require = "Require";
    /// `Proxy-Require`.
    ProxyRequire = "Proxy-Require";
    /// `Unsupported`.
    Unsupported = "Unsupported";
    /// `Allow`.
    Allow = "Allow";
    /// `Allow-Events` (`u`, RFC 6665).
    AllowEvents = "Allow-Events", b'u';
    /// `Event` (`o`, RFC 6665).
    Event = "Event", b'o';
    /// `Subscription-State` (RFC 6665).
    SubscriptionState = "Subscription-State";
    /// `SIP-ETag` (RFC 3903).
    SipETag = "SIP-ETag";
    /// `SIP-If-Match` (RFC 3903).
    SipIfMatch = "SIP-If-Match";
    /// `Authorization`.
    Authorization = "Authorization";
    /// `WWW-Authenticate`.
    WwwAuthenticate = "WWW-Authenticate";
    /// `Proxy-Authenticate`.
    ProxyAuthenticate = "Proxy-Authenticate";
    /// `Proxy-Authorization`.
    ProxyAuthorization = "Proxy-Authorization";
    /// `Authentication-Info`.
    AuthenticationInfo = "Authentication-Info";
    /// `Route`.
    Route = "Route";
    /// `Record-Route`.
    RecordRoute = "Record-Route";
    /// `Refer-To` (`r`, RFC 3515).
    ReferTo = "Refer-To", b'r';
    /// `Referred-By` (`b`, RFC 3892).
    ReferredBy = "Referred-By", b'b';
    /// `Session-Expires` (`x`, RFC 4028).
    SessionExpires = "Session-Expires", b'x';
    /// `Identity` (`y`, RFC 8224).
    Identity = "Identity", b'y';
    /// `Accept-Contact` (`a`, RFC 3841).
    AcceptContact = "Accept-Contact", b'a';
    /// `Reject-Contact` (`j`, RFC 3841).
    RejectContact = "Reject-Contact", b'j';
    /// `Request-Disposition` (`d`, RFC 3841).
    RequestDisposition = "Request-Disposition", b'd';
    /// `Accept`.
    Accept = "Accept";
    /// `Date`.
    Date = "Date";
    /// `User-Agent`.
    UserAgent = "User-Agent";
    /// `Server`.
    Server = "Server";
}

impl HeaderName {
    /// The name for a wire spelling, which must be a `token` (checked by the parser).
    #[inline]
    pub fn from_wire(name: &str) -> Self {
        Self::known(name).unwrap_or_else(|| Self::Other(name.to_owned()))
    }

    /// Whether this is `name` (full or compact form, any case).
    pub fn is(&self, name: &str) -> bool {
        match self {
            Self::Other(own) => own.eq_ignore_ascii_case(name),
            known => Self::known(name).as_ref() == Some(known),
        }
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Other(a), Self::Other(b)) => a.eq_ignore_ascii_case(b),
            (Self::Other(_), _) | (_, Self::Other(_)) => false,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Hash for HeaderName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let Self::Other(name) = self {
            for b in name.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{HeaderName, FULL_NAMES};

    /// The lookup of a full name (two bytes or more) as a plain scan: the reference
    /// the hashed lookup must agree with.
    fn reference(name: &str) -> Option<&'static str> {
        FULL_NAMES
            .iter()
            .copied()
            .find(|n| n.eq_ignore_ascii_case(name))
    }

    #[test]
    fn every_known_name_in_any_case() {
        for n in FULL_NAMES {
            let want = HeaderName::from_wire(n);
            assert!(!matches!(want, HeaderName::Other(_)), "{n}");
            assert_eq!(want.as_str(), *n);
            for spelled in [n.to_ascii_lowercase(), n.to_ascii_uppercase()] {
                let got = HeaderName::from_wire(&spelled);
                assert_eq!(got.as_str(), *n, "{spelled}");
                assert!(!matches!(got, HeaderName::Other(_)), "{spelled}");
            }
            // One byte more, less or changed is another name.
            for other in [
                format!("{n}x"),
                n[..n.len() - 1].to_owned(),
                n.replace('-', "_"),
            ] {
                if other.len() > 1 && !FULL_NAMES.iter().any(|k| k.eq_ignore_ascii_case(&other)) {
                    assert!(
                        matches!(HeaderName::from_wire(&other), HeaderName::Other(_)),
                        "{other}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn hashed_lookup_agrees_with_a_scan(
            n in proptest::sample::select(FULL_NAMES.to_vec()),
            flips in proptest::collection::vec(any::<bool>(), 24),
            edit in 0usize..6,
            at in any::<prop::sample::Index>(),
            c in proptest::sample::select(b"-._!%*+`'~aAzZ09@[\x7f".to_vec()),
        ) {
            let mut b: Vec<u8> = n
                .bytes()
                .zip(&flips)
                .map(|(x, &f)| if f { x.to_ascii_uppercase() } else { x })
                .collect();
            let i = at.index(b.len());
            match edit {
                0 => b[i] = c,
                1 => b.insert(i, c),
                2 => { b.remove(i); }
                3 => b[i] ^= 0x20,
                _ => {}
            }
            let s = String::from_utf8(b).unwrap();
            prop_assume!(s.len() > 1);
            let got = HeaderName::from_wire(&s);
            match reference(&s) {
                Some(full) => prop_assert_eq!(got.as_str(), full),
                None => prop_assert!(matches!(&got, HeaderName::Other(o) if *o == s)),
            }
            prop_assert!(got.is(&s));
        }
    }
}
