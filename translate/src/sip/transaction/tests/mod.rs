//! Transaction tests on virtual time.
