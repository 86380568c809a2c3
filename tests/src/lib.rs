//! integration helpers
