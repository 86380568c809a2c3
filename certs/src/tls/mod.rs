//! TLS record layer on rustls' unbuffered API.
//!
//! [`TlsSession`] is sans-IO: bytes in, bytes out, for the server and the
//! client side. It decrypts from the caller's (shared) read buffer and keeps
//! its own copy only of an incomplete record, so an idle connection holds no
//! receive buffer; outgoing ciphertext is freed once written. It never panics
//! on input, bounds every buffer ([`TlsLimits`]), sends the alert rustls
//! produces on any failure, and never calls rustls again after one.
//!
//! [`TlsStream`] drives a session over a tokio `AsyncRead + AsyncWrite`.
//! See `docs/TLS.md` for the design and the conformance runs.

mod client_hello;
mod error;
mod limits;
mod outgoing;
mod session;
mod stream;

pub use error::{Limit, TlsError};
pub use limits::TlsLimits;
pub use session::{Received, TlsSession};
pub use stream::TlsStream;
