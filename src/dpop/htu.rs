//! The `htu` a DPoP proof must carry (RFC 9449 §4.3): the URL the caller addressed, without
//! query and fragment, compared after RFC 3986 §6.2.2 and §6.2.3 normalization — scheme and
//! host lowercase, the default port dropped, percent-encodings' hex uppercase, unreserved
//! characters decoded, dot-segments removed. The gateway's side is built from its configured
//! public origin and the request's path, never from `Host`: a proof made for another host
//! must not pass because the caller named that host in its request (auth0
//! node-oauth2-jwt-bearer 1.9.1's bug).

/// The normalized form of an absolute http(s) URL without its query and fragment; `None`
/// when it is not one.
pub fn normalize(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // The port follows the last ':' outside an IPv6 literal's brackets.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) || !is_host(host) {
        return None;
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    match port {
        Some(p) if !p.is_empty() && p != default_port => {
            out.push(':');
            out.push_str(p);
        }
        _ => {}
    }
    out.push_str(&normalize_path(path)?);
    Some(out)
}

/// RFC 3986 §3.2.2: an IP literal in brackets, or a name of unreserved characters,
/// sub-delims and percent-encodings (an IPv4 address is one). Nothing else: a control
/// character, a space or a stray bracket makes no URL, and would not read back the same.
fn is_host(host: &str) -> bool {
    let name = |b: u8| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b);
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(literal) => {
            !literal.is_empty()
                && (literal.bytes()).all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        }
        None => !host.is_empty() && host.bytes().all(name),
    }
}

/// A path with its percent-encodings normalized and its dot-segments removed ("/" when empty);
/// `None` when it holds a control character, a space or a byte outside ASCII (visible ASCII a
/// client should have encoded, such as `|`, is compared as it is).
fn normalize_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if value.is_ascii_alphanumeric() || b"-._~".contains(&value) {
                decoded.push(value as char);
            } else {
                decoded.push('%');
                decoded.push_str(&std::str::from_utf8(hex).ok()?.to_ascii_uppercase());
            }
            i += 3;
        } else {
            decoded.push(b as char);
            i += 1;
        }
    }
    if !decoded.is_ascii() {
        return None;
    }
    Some(remove_dot_segments(&decoded))
}

/// RFC 3986 §5.2.4, over '/'-separated segments.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (n, segment) in segments.iter().enumerate() {
        let last = n + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    kept.push("");
                }
            }
            ".." => {
                kept.pop();
                if last {
                    kept.push("");
                }
            }
            s => kept.push(s),
        }
    }
    format!("/{}", kept.join("/"))
}

/// The `htu` the gateway expects for a request to `path` (origin form, the query dropped):
/// `origin` (the configured public origin, e.g. `https://api.shop.example`) and `prefix` (the
/// path an ingress in front strips before the request reaches the gateway, "" for none).
pub fn expected(origin: &str, prefix: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    normalize(&format!("{origin}{prefix}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_compared_after_rfc3986_normalization() {
        let n = |u: &str| normalize(u).unwrap();
        for (given, read) in [
            (
                "HTTPS://API.Shop.Example/api/x",
                "https://api.shop.example/api/x",
            ),
            (
                "https://api.shop.example:443/api/x",
                "https://api.shop.example/api/x",
            ),
            ("http://api.shop.example:80", "http://api.shop.example/"),
            ("https://h:8443/a/./b/../c", "https://h:8443/a/c"),
            ("https://h/a/%7euser/%2f%2Fx", "https://h/a/~user/%2F%2Fx"),
            ("https://h/api/x?q=1#frag", "https://h/api/x"),
            ("https://[::1]:8443/x", "https://[::1]:8443/x"),
            ("https://h/a/..", "https://h/"),
        ] {
            assert_eq!(n(given), read, "{given}");
        }
        for bad in [
            "ftp://h/x",
            "https:///x",
            "https://u@h/x",
            "https://h:x/",
            "/x",
            "https://h/%zz",
            // Found by the dpop fuzz target: a host no URL has read back as another one.
            "http://[:\u{2}http://[::1]zz:1]zz",
            "https://h x/",
            "https://[::1/x",
            "https://h/a b",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
        // A normalized URL reads back as itself.
        for u in ["https://[::1]:8443/x", "http://h:80/%7e/%2f/a|b"] {
            let once = n(u);
            assert_eq!(n(&once), once, "{u}");
        }
        assert_eq!(
            expected("https://api.shop.example", "/store", "/api/x?page=2").unwrap(),
            "https://api.shop.example/store/api/x"
        );
    }
}
