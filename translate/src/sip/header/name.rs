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

            /// The known header whose full name or compact form is `name`, ignoring case.
            fn known(name: &str) -> Option<Self> {
                /// The known headers, in the order of `FULL_NAMES`.
                const KNOWN: &[HeaderName] = &[ $( HeaderName::$variant, )* ];
                let b = name.as_bytes();
                if b.len() == 1 {
                    let c = b[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Some(Self::$variant); } )? )*
                    return None;
                }
                // One table probe, then one comparison with the only candidate.
                let i = *KNOWN_SLOTS.get(name_slot(b)?)?;
                let i = usize::from(i);
                (i < FULL_NAMES.len() && name.eq_ignore_ascii_case(FULL_NAMES[i]))
                    .then(|| KNOWN[i].clone())
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
