//! Herald's cross-crate integration tests: real TCP and TLS on loopback against a server
//! started in this process (or, in `durability`, the `herald` binary as a child process).
//! Every test starts its own server on ephemeral ports with its own data directory.
//!
//! One test binary with a module per area keeps link time down.

mod accounts;
mod admin;
mod admin_ops;
mod attacks;
mod durability;
mod federation;
mod federation_outbound;
mod im;
mod limits;
mod negotiation;
mod sip_auth_limits;
mod sip_delivery;
mod sip_presence;
mod sip_register;
mod sip_rejections;
mod stream_management;
