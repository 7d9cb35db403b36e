//! The SSRF guard for webhook and job-callback URLs: only http(s) URLs whose host is, or
//! resolves to, a public address. Names are resolved once and the connection goes to the
//! vetted address (the resolver below is the HTTP client's only resolver), so a DNS answer
//! cannot change between the check and the connection. Checked at registration and at
//! every delivery; redirects are never followed.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Why a URL may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("only http and https URLs can be called")]
    Scheme,
    #[error("URLs with credentials are not accepted")]
    Credentials,
    #[error("{0} is a loopback, private, link-local, metadata, multicast or reserved address")]
    Address(IpAddr),
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// Whether `ip` is off limits: anything that is not a public unicast address, including
/// IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254 metadata too)
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
        || s[0] == 0x3fff && s[1] < 0x1000 // documentation 3fff::/20
        || s[0] == 0x2001 && s[1] < 0x0200 // IETF protocol assignments 2001::/23 (Teredo too)
        || s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 // discard-only
}

/// The IPv4 address inside an IPv6 one, for the forms that route to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible); `::` and `::1` land in
        // 0.0.0.0/8, which is refused like them.
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return Some(tail); // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4
    }
    None
}

/// Parses and checks a URL without resolving names (resolution is checked by
/// [`resolve`] and by [`Resolver`] at connection time).
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, Refused> {
    let url = Url::parse(raw).map_err(|e| Refused::Invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused::Credentials);
    }
    let ip = match url.host() {
        None => return Err(Refused::Invalid("the URL has no host".into())),
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allow_private
        && forbidden(ip)
    {
        return Err(Refused::Address(ip));
    }
    Ok(url)
}

/// Checks a URL and resolves its host now (at registration).
pub async fn resolve(raw: &str, allow_private: bool) -> Result<Url, Refused> {
    let url = check_url(raw, allow_private)?;
    if let Some(Host::Domain(name)) = url.host()
        && !allow_private
    {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refused::Unresolved(name.to_owned()))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused::Unresolved(name.to_owned()));
        }
        if let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
            return Err(Refused::Address(bad.ip()));
        }
    }
    Ok(url)
}

/// The HTTP client's resolver: answers only public addresses, and fails when a name
/// resolves to any forbidden one.
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    pub allow_private: bool,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow && let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
                return Err(Box::new(Refused::Address(bad.ip()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            if addrs.is_empty() {
                return Err(Box::new(Refused::Unresolved(name.as_str().to_owned()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_classic_bypasses_are_refused() {
        for raw in [
            "http://127.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::2]/",
            "http://[::ffff]/",
            "http://[3fff::1]/",
            "http://[2001::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://localhost./",
            "http://localhost/",
            "http://a@127.0.0.1/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "not a url",
        ] {
            assert!(resolve(raw, false).await.is_err(), "{raw} must be refused");
        }
    }

    #[tokio::test]
    async fn public_addresses_pass_and_the_allow_flag_opens_private_ones() {
        assert!(check_url("https://93.184.216.34/hook", false).is_ok());
        assert!(check_url("http://[2606:2800:220:1::]/", false).is_ok());
        assert!(resolve("http://127.0.0.1:9/", true).await.is_ok());
        assert!(resolve("http://localhost:9/", true).await.is_ok());
        assert_eq!(
            check_url("ftp://x/", true),
            Err(Refused::Scheme),
            "the flag never allows other schemes"
        );
    }
}
