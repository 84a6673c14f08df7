pub mod tickets;
pub mod x509;
