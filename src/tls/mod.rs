//! HTTPS: TLS on a listener's connections.

pub mod ktls;
