//! Monitor protocol.
