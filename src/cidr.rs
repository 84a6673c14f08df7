//! Address ranges (`10.0.0.0/8`, `2001:db8::/32`, a bare address) for `--trusted-proxy`: which
//! peers may send a PROXY protocol header. An IPv4 peer reached through an IPv6 socket
//! (`::ffff:a.b.c.d`) matches the IPv4 range it belongs to.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare `ADDR` (a single host). Bits set beyond the prefix are
    /// refused: `10.0.0.1/8` is more likely a typo than a range.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let err = |why: &str| {
            format!(
                "`{s}` is not a CIDR range ({why}; examples: 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)"
            )
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(err(&format!("the prefix must be 0 to {max}"))),
            },
        };
        let c = Cidr { net, prefix };
        if c.masked(net) != bits(net) {
            return Err(err("address bits are set beyond the prefix"));
        }
        Ok(c)
    }

    /// Whether `ip` lies in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.net.is_ipv4() && self.masked(ip) == bits(self.net)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let keep = if self.prefix == 0 {
            0
        } else {
            (u128::MAX << (width - self.prefix as u32)) & (u128::MAX >> (128 - width))
        };
        bits(ip) & keep
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_their_addresses_only() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")));
        assert!(c.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        assert!(!c.contains(ip("11.0.0.0")));
        assert!(
            !c.contains(ip("::a00:1")),
            "an IPv6 address is not in an IPv4 range"
        );
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_ranges_say_why() {
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "x/8",
            "",
            "::/129",
            "1.2.3.4/+8",
        ] {
            let e = Cidr::parse(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
