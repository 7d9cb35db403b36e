//! Property tests for the webhook / job-callback URL guard
//! (`herald_server::webhooks::ssrf`): `check_url` never panics; http(s) URLs whose host is
//! a literal loopback, private, link-local, unspecified, … address, in whatever textual
//! form the URL parser normalises (decimal, hex, octal, short IPv4; IPv4-mapped, NAT64,
//! 6to4 IPv6), are refused unless private networks are allowed; public literal addresses
//! pass; other schemes and credentials are always refused. `resolve` (the registration
//! check) agrees with `check_url` on literal addresses without any DNS lookup.

use futures_util::FutureExt;
use herald_server::webhooks::ssrf::{Refused, check_url, forbidden, resolve};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

fn config() -> ProptestConfig {
    ProptestConfig {
        // No regression files in the source tree; failures print the minimal input.
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    }
}

// ---------------------------------------------------------------------------------------
// Reference: the IPv4 ranges that are not public unicast (IANA special-purpose registry:
// this network, private, CGNAT, loopback, link-local and metadata, IETF assignments,
// documentation, benchmarking, multicast, reserved and broadcast).

const V4_FORBIDDEN: [(u32, u8); 14] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network", 0.0.0.0 unspecified
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local (169.254.169.254 metadata)
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, 255.255.255.255 broadcast
];

fn in_v4(ip: u32, (net, len): (u32, u8)) -> bool {
    let mask = u32::MAX << (32 - u32::from(len));
    ip & mask == net
}

fn reference_forbidden_v4(ip: Ipv4Addr) -> bool {
    V4_FORBIDDEN.iter().any(|r| in_v4(u32::from(ip), *r))
}

/// IPv6 ranges that must be refused by themselves (the IPv4-embedding ones are built
/// from IPv4 addresses below).
const V6_FORBIDDEN: [(u128, u8); 8] = [
    (0, 128),                          // :: unspecified
    (1, 128),                          // ::1 loopback
    (0xfc00 << 112, 7),                // fc00::/7 unique local (fd00:ec2::254)
    (0xfe80 << 112, 10),               // fe80::/10 link-local
    (0xfec0 << 112, 10),               // fec0::/10 site-local
    (0xff00 << 112, 8),                // ff00::/8 multicast
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32 documentation
    (0x0100_0000_0000_0000 << 64, 64), // 100::/64 discard-only
];

fn in_v6(ip: u128, (net, len): (u128, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    ip & mask == net
}

/// Whether `ip` is one of the addresses the guard must refuse: the ranges above, or an
/// IPv6 form that routes to a forbidden IPv4 address (mapped `::ffff:0:0/96`, compatible
/// `::/96` from `::0.1.0.0` on, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4 `2002::/16`).
fn reference_must_refuse(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => reference_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
            let embedded = if in_v6(bits, (0xffff << 32, 96))
                || (in_v6(bits, (0, 96)) && bits >= 0x0001_0000)
                || in_v6(bits, (0x0064_ff9b << 96, 96))
                || in_v6(bits, (0x0064_ff9b_0001 << 80, 48))
            {
                Some(low32)
            } else if in_v6(bits, (0x2002 << 112, 16)) {
                Some(Ipv4Addr::from((bits >> 80) as u32))
            } else {
                None
            };
            embedded.is_some_and(reference_forbidden_v4)
                || V6_FORBIDDEN.iter().any(|r| in_v6(bits, *r))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Addresses.

fn forbidden_v4() -> impl Strategy<Value = Ipv4Addr> {
    (prop::sample::select(V4_FORBIDDEN.to_vec()), any::<u32>()).prop_map(|((net, len), host)| {
        let mask = u32::MAX << (32 - u32::from(len));
        Ipv4Addr::from(net | (host & !mask))
    })
}

/// Addresses at and next to the edges of the special ranges (first, last, one before,
/// one after), so that a wrong prefix length shows at once.
fn v4_edge() -> impl Strategy<Value = Ipv4Addr> {
    (
        prop::sample::select(V4_FORBIDDEN.to_vec()),
        prop::sample::select(vec![-1i64, 0, 1]),
        any::<bool>(),
    )
        .prop_map(|((net, len), step, at_end)| {
            let size = 1i64 << (32 - u32::from(len));
            let base = i64::from(net) + if at_end { size - 1 } else { 0 };
            Ipv4Addr::from((base + step).rem_euclid(1 << 32) as u32)
        })
}

/// Public IPv4 addresses (192.88.99.0/24, the deprecated 6to4 relay anycast, left out as
/// neither clearly public nor promised to be refused).
fn public_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("public", |ip| {
            !reference_forbidden_v4(*ip) && !in_v4(u32::from(*ip), (0xc058_6300, 24))
        })
}

/// IPv6 forms of an IPv4 address: mapped, compatible, NAT64 (both prefixes), 6to4.
fn embed(v4: Ipv4Addr, form: u8, noise: u128) -> Ipv6Addr {
    let v4 = u128::from(u32::from(v4));
    Ipv6Addr::from(match form % 5 {
        0 => (0xffff << 32) | v4,
        1 => v4,
        2 => (0x0064_ff9b << 96) | v4,
        3 => (0x0064_ff9b_0001 << 80) | (noise & (u128::MAX >> 48) & !0xffff_ffff) | v4,
        _ => (0x2002 << 112) | (v4 << 80) | (noise & (u128::MAX >> 48)),
    })
}

fn forbidden_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        (prop::sample::select(V6_FORBIDDEN.to_vec()), any::<u128>()).prop_map(
            |((net, len), host)| {
                let mask = if len == 128 {
                    u128::MAX
                } else {
                    u128::MAX << (128 - len)
                };
                Ipv6Addr::from(net | (host & !mask))
            }
        ),
        (forbidden_v4(), any::<u8>(), any::<u128>())
            // The compatible form of 0.0.x.y is `::x:y`: the guard does not read `::/112`
            // as IPv4-compatible (so `[::2]` passes), and nothing here promises it does.
            .prop_filter("not ::/112", |(v4, form, _)| form % 5 != 1
                || u32::from(*v4) >= 0x0001_0000)
            .prop_map(|(v4, form, noise)| embed(v4, form, noise)),
    ]
}

/// Public IPv6: global unicast 2000::/3 outside 2001::/23 (IETF special purpose, e.g.
/// Teredo), 2001:db8::/32, 2002::/16 (6to4, embedded below) and 3fff::/20 (documentation
/// since RFC 9637); and the IPv6 forms of public IPv4 addresses.
fn public_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>()
            .prop_map(|bits| (bits & (u128::MAX >> 3)) | (1 << 125))
            .prop_filter("global unicast, not special", |bits| {
                !in_v6(*bits, (0x2001 << 112, 23))
                    && !in_v6(*bits, (0x2001_0db8 << 96, 32))
                    && !in_v6(*bits, (0x2002 << 112, 16))
                    && !in_v6(*bits, (0x3fff << 112, 20))
            })
            .prop_map(Ipv6Addr::from),
        (public_v4(), any::<u8>(), any::<u128>())
            .prop_filter("not ::/112", |(v4, form, _)| form % 5 != 1
                || u32::from(*v4) >= 0x0001_0000)
            .prop_map(|(v4, form, noise)| embed(v4, form, noise)),
    ]
}

// ---------------------------------------------------------------------------------------
// Textual forms of a host.

/// How to write one number of a dotted IPv4 host.
#[derive(Debug, Clone, Copy)]
enum Radix {
    Decimal,
    /// `0x` / `0X` and lower or upper case digits, with leading zeros.
    Hex {
        upper_x: bool,
        upper: bool,
        zeros: u8,
    },
    /// A leading `0` and more leading zeros.
    Octal {
        zeros: u8,
    },
}

fn radix() -> impl Strategy<Value = Radix> {
    prop_oneof![
        2 => Just(Radix::Decimal),
        1 => (any::<bool>(), any::<bool>(), 0u8..3)
            .prop_map(|(upper_x, upper, zeros)| Radix::Hex { upper_x, upper, zeros }),
        1 => (0u8..3).prop_map(|zeros| Radix::Octal { zeros }),
    ]
}

fn write_number(n: u32, radix: Radix) -> String {
    match radix {
        Radix::Decimal => n.to_string(),
        Radix::Hex {
            upper_x,
            upper,
            zeros,
        } => {
            let digits = if upper {
                format!("{n:X}")
            } else {
                format!("{n:x}")
            };
            let x = if upper_x { "0X" } else { "0x" };
            format!("{x}{}{digits}", "0".repeat(usize::from(zeros)))
        }
        Radix::Octal { zeros } => format!("0{}{n:o}", "0".repeat(usize::from(zeros))),
    }
}

/// A way of writing an IPv4 host the WHATWG URL parser reads as that address.
#[derive(Debug, Clone)]
struct V4Form {
    /// 1-4 numbers: `a.b.c.d`, `a.b.cd`, `a.bcd`, `abcd`.
    parts: usize,
    radixes: [Radix; 4],
    trailing_dot: bool,
    /// Per character: 0 as is, 1 percent-encoded, 2 full-width (digits and dots only).
    disguise: Vec<u8>,
}

fn v4_form() -> impl Strategy<Value = V4Form> {
    (
        prop_oneof![4 => Just(4usize), 1 => 1usize..4],
        [radix(), radix(), radix(), radix()],
        prop::bool::weighted(0.2),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)], 0..48),
        ],
    )
        .prop_map(|(parts, radixes, trailing_dot, disguise)| V4Form {
            parts,
            radixes,
            trailing_dot,
            disguise,
        })
}

fn write_v4(ip: Ipv4Addr, form: &V4Form) -> String {
    let n = u32::from(ip);
    let o = ip.octets();
    let numbers: Vec<u32> = match form.parts {
        1 => vec![n],
        2 => vec![u32::from(o[0]), n & 0x00ff_ffff],
        3 => vec![u32::from(o[0]), u32::from(o[1]), n & 0xffff],
        _ => o.iter().map(|&b| u32::from(b)).collect(),
    };
    let mut text = numbers
        .iter()
        .zip(form.radixes)
        .map(|(&n, r)| write_number(n, r))
        .collect::<Vec<_>>()
        .join(".");
    if form.trailing_dot {
        text.push('.');
    }
    text.chars()
        .enumerate()
        .map(
            |(i, c)| match (form.disguise.get(i).copied().unwrap_or(0), c) {
                (1, c) => format!("%{:02X}", c as u32),
                (2, '0'..='9') => char::from_u32(0xff10 + (c as u32 - '0' as u32))
                    .map(String::from)
                    .unwrap_or_default(),
                (2, '.') => "\u{3002}".to_owned(), // ideographic full stop
                (_, c) => c.to_string(),
            },
        )
        .collect()
}

/// A way of writing an IPv6 host (inside the brackets).
#[derive(Debug, Clone)]
enum V6Form {
    /// `Ipv6Addr`'s own (compressed, dotted for mapped and compatible addresses).
    Display,
    /// All eight groups, each padded to a width, in either case.
    Full { widths: [u8; 8], upper: bool },
    /// Six groups then the last 32 bits dotted.
    Dotted,
}

fn v6_form() -> impl Strategy<Value = V6Form> {
    prop_oneof![
        Just(V6Form::Display),
        (prop::array::uniform8(1u8..=4), any::<bool>())
            .prop_map(|(widths, upper)| V6Form::Full { widths, upper }),
        Just(V6Form::Dotted),
    ]
}

fn write_v6(ip: Ipv6Addr, form: &V6Form) -> String {
    let s = ip.segments();
    match form {
        V6Form::Display => ip.to_string(),
        V6Form::Full { widths, upper } => s
            .iter()
            .zip(widths)
            .map(|(g, w)| {
                let w = usize::from(*w);
                if *upper {
                    format!("{g:0w$X}")
                } else {
                    format!("{g:0w$x}")
                }
            })
            .collect::<Vec<_>>()
            .join(":"),
        V6Form::Dotted => {
            let o = ip.octets();
            let head: Vec<String> = s[..6].iter().map(|g| format!("{g:x}")).collect();
            format!("{}:{}.{}.{}.{}", head.join(":"), o[12], o[13], o[14], o[15])
        }
    }
}

/// `http` or `https` in any case.
fn web_scheme() -> impl Strategy<Value = String> {
    (prop::sample::select(vec!["http", "https"]), any::<u8>()).prop_map(|(s, case)| {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if case >> (i % 8) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    })
}

/// An optional port and a path, query and fragment.
fn tail() -> impl Strategy<Value = String> {
    (
        prop::option::of(any::<u16>()),
        "(/[a-zA-Z0-9._~%-]{0,8}){0,3}",
        prop::option::of("[a-z0-9=&]{0,10}"),
        prop::option::of("[a-z0-9]{0,6}"),
    )
        .prop_map(|(port, path, query, fragment)| {
            let mut out = port.map(|p| format!(":{p}")).unwrap_or_default();
            out.push_str(if path.is_empty() { "/" } else { &path });
            if let Some(q) = query {
                out.push('?');
                out.push_str(&q);
            }
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(&f);
            }
            out
        })
}

/// A literal address and a URL host spelling it.
fn v4_host(ips: impl Strategy<Value = Ipv4Addr>) -> impl Strategy<Value = (IpAddr, String)> {
    (ips, v4_form()).prop_map(|(ip, form)| (IpAddr::V4(ip), write_v4(ip, &form)))
}

fn v6_host(ips: impl Strategy<Value = Ipv6Addr>) -> impl Strategy<Value = (IpAddr, String)> {
    (ips, v6_form()).prop_map(|(ip, form)| (IpAddr::V6(ip), format!("[{}]", write_v6(ip, &form))))
}

fn private_host() -> impl Strategy<Value = (IpAddr, String)> {
    prop_oneof![v4_host(forbidden_v4()), v6_host(forbidden_v6())]
}

fn public_host() -> impl Strategy<Value = (IpAddr, String)> {
    prop_oneof![v4_host(public_v4()), v6_host(public_v6())]
}

/// Domain names (the last label not numeric, so not an IPv4 address).
fn domain() -> impl Strategy<Value = String> {
    "([a-z0-9][a-z0-9-]{0,8}\\.){0,3}[a-z][a-z0-9]{0,5}"
        .prop_filter("no punycode labels", |d| !d.contains("xn--"))
}

// ---------------------------------------------------------------------------------------
// Checks.

/// `check_url`, after confirming that `resolve` (the registration check) says the same
/// and, for literal addresses or with private networks allowed, without waiting on DNS.
fn check(raw: &str, allow_private: bool) -> Result<Result<Url, Refused>, TestCaseError> {
    let checked = check_url(raw, allow_private);
    let resolves_name =
        !allow_private && matches!(&checked, Ok(u) if matches!(u.host(), Some(Host::Domain(_))));
    if !resolves_name {
        let Some(resolved) = resolve(raw, allow_private).now_or_never() else {
            return Err(TestCaseError::fail(format!(
                "resolve({raw:?}) waited on a lookup"
            )));
        };
        prop_assert_eq!(&resolved, &checked, "resolve vs check_url for {:?}", raw);
    }
    Ok(checked)
}

fn host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// URL-like strings: the characters that matter to URL parsing, around a scheme.
fn url_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (
            prop_oneof![
                web_scheme(),
                Just("ftp".to_owned()),
                Just("file".to_owned()),
                "[a-z+.-]{0,6}"
            ],
            prop_oneof![
                Just("://"),
                Just(":"),
                Just(":/"),
                Just(":\\\\"),
                Just("://@"),
                Just(" ://")
            ],
            "[a-zA-Z0-9:/@\\[\\].%?#\\\\ \t\u{3002}\u{ff10}-\u{ff19}_~-]{0,30}",
        )
            .prop_map(|(scheme, sep, rest)| format!("{scheme}{sep}{rest}")),
        (
            web_scheme(),
            prop_oneof![private_host(), public_host()],
            tail()
        )
            .prop_map(|(scheme, (_, host), tail)| format!("{scheme}://{host}{tail}")),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics_and_only_private_addresses_depend_on_the_flag(raw in url_like()) {
        let open = check(&raw, true)?;
        let guarded = check(&raw, false)?;
        match (&open, &guarded) {
            // Without addresses in play, the flag changes nothing.
            (Err(a), Err(b)) if !matches!(b, Refused::Address(_)) => prop_assert_eq!(a, b),
            (Ok(u), Ok(v)) => {
                prop_assert_eq!(u, v);
                prop_assert!(matches!(u.scheme(), "http" | "https"), "{}", u);
                prop_assert!(u.username().is_empty() && u.password().is_none(), "{}", u);
                if let Some(ip) = host_ip(u) {
                    prop_assert!(!reference_must_refuse(ip), "{} accepted for {:?}", ip, raw);
                }
            }
            (Ok(u), Err(Refused::Address(ip))) => {
                prop_assert_eq!(host_ip(u), Some(*ip), "{:?}", raw);
                prop_assert!(forbidden(*ip));
            }
            _ => prop_assert!(false, "{:?}: allowed {:?}, guarded {:?}", raw, open, guarded),
        }
        // An accepted URL is stored and checked again at every delivery: the same answer.
        if let Ok(u) = &guarded {
            prop_assert_eq!(&check(u.as_str(), false)?, &guarded);
        }
        let parses = Url::parse(&raw).is_ok();
        prop_assert_eq!(matches!(open, Err(Refused::Invalid(_))), !parses, "{:?}", raw);
    }

    #[test]
    fn forbidden_agrees_with_the_ipv4_special_ranges(
        bits in any::<u32>(),
        edge in v4_edge(),
        ip in forbidden_v4(),
    ) {
        for any in [Ipv4Addr::from(bits), edge] {
            prop_assert_eq!(forbidden(IpAddr::V4(any)), reference_forbidden_v4(any), "{}", any);
        }
        prop_assert!(forbidden(IpAddr::V4(ip)), "{}", ip);
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_as_that_address(
        bits in any::<u32>(),
        form in any::<u8>(),
        noise in any::<u128>(),
    ) {
        let v4 = Ipv4Addr::from(bits);
        // The compatible form of 0.0.x.y is `::x:y`, not read as IPv4 (see forbidden_v6).
        prop_assume!(form % 5 != 1 || bits >= 0x0001_0000);
        let v6 = embed(v4, form, noise);
        prop_assert_eq!(forbidden(IpAddr::V6(v6)), forbidden(IpAddr::V4(v4)), "{} ({})", v6, v4);
    }

    #[test]
    fn private_literal_addresses_are_refused_in_any_spelling(
        scheme in web_scheme(),
        (ip, host) in private_host(),
        tail in tail(),
    ) {
        let raw = format!("{scheme}://{host}{tail}");
        // The parser reads the spelling as the address (else the case proves nothing).
        let parsed = Url::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!(host_ip(&parsed), Some(ip), "{}", raw);
        prop_assert_eq!(check(&raw, false)?, Err(Refused::Address(ip)), "{}", raw);
        // Allowed private networks open them (plain http(s) URLs, no credentials).
        prop_assert_eq!(check(&raw, true)?, Ok(parsed));
    }

    #[test]
    fn public_literal_addresses_are_accepted_in_any_spelling(
        scheme in web_scheme(),
        (ip, host) in public_host(),
        tail in tail(),
        allow_private in any::<bool>(),
    ) {
        let raw = format!("{scheme}://{host}{tail}");
        let url = check(&raw, allow_private)?
            .map_err(|e| TestCaseError::fail(format!("{raw} refused: {e}")))?;
        prop_assert_eq!(host_ip(&url), Some(ip), "{}", raw);
        prop_assert_eq!(url.scheme(), scheme.to_ascii_lowercase());
    }

    #[test]
    fn domain_names_pass_the_syntactic_check(
        scheme in web_scheme(),
        name in domain(),
        tail in tail(),
    ) {
        // Names are vetted when resolved (at registration and by the client's resolver).
        let raw = format!("{scheme}://{name}{tail}");
        let url = check_url(&raw, false).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!(url.host(), Some(Host::Domain(name.as_str())));
    }

    #[test]
    fn other_schemes_are_refused_even_when_private_networks_are_allowed(
        scheme in prop_oneof![
            prop::sample::select(vec![
                "ftp", "file", "gopher", "ws", "wss", "dict", "ldap", "data", "javascript",
                "jar", "netdoc", "httpx", "http+unix", "https2", "hxxp", "tftp", "smtp",
            ]).prop_map(str::to_owned),
            "[a-zA-Z][a-zA-Z0-9+.-]{0,8}",
        ],
        host in prop_oneof![
            public_host().prop_map(|(_, h)| h),
            private_host().prop_map(|(_, h)| h),
            domain(),
        ],
        tail in tail(),
        allow_private in any::<bool>(),
    ) {
        prop_assume!(!matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https"));
        let raw = format!("{scheme}://{host}{tail}");
        let expected = match Url::parse(&raw) {
            Ok(_) => Refused::Scheme,
            Err(e) => Refused::Invalid(e.to_string()),
        };
        prop_assert_eq!(check(&raw, allow_private)?, Err(expected), "{}", raw);
    }

    #[test]
    fn credentials_are_refused_even_when_private_networks_are_allowed(
        scheme in web_scheme(),
        user in "[a-zA-Z0-9._~%!$&'()*+,;=-]{0,8}",
        password in prop::option::of("[a-zA-Z0-9._~%!$&'()*+,;=:-]{0,8}"),
        host in prop_oneof![
            public_host().prop_map(|(_, h)| h),
            private_host().prop_map(|(_, h)| h),
            domain(),
        ],
        tail in tail(),
        allow_private in any::<bool>(),
    ) {
        let userinfo = match &password {
            Some(p) => format!("{user}:{p}"),
            None => user.clone(),
        };
        let raw = format!("{scheme}://{userinfo}@{host}{tail}");
        let parsed = Url::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        let has_credentials = !parsed.username().is_empty() || parsed.password().is_some();
        // The parser drops an empty user and password (`http://@host/`, `http://:@host/`).
        prop_assert_eq!(has_credentials, !user.is_empty() || password.as_deref().is_some_and(|p| !p.is_empty()));
        if has_credentials {
            prop_assert_eq!(check(&raw, allow_private)?, Err(Refused::Credentials), "{}", raw);
        }
    }
}
