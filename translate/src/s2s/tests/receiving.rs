//! The receiving machine against hand-written peer input.
