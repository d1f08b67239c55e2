use super::*;

fn policy(origins: Origins, credentials: bool) -> Policy {
    Policy::new(
        origins,
        credentials,
        vec![Method::GET, Method::POST],
        vec!["Authorization".into(), "content-type".into()],
        &["www-authenticate".into(), "x-request-id".into()],
        600,
    )
}

fn listed() -> Policy {
    policy(Origins::Listed(vec!["https://shop.example".into()]), false)
}

fn fields<'a>(it: impl Iterator<Item = (HeaderName, &'a HeaderValue)>) -> Vec<(String, String)> {
    it.map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn asked(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn an_allowed_origin_is_echoed_with_the_exposed_headers_and_vary() {
    let p = listed();
    let a = p.answer(Some(b"https://shop.example"));
    assert_eq!(
        fields(a.fields()),
        [
            ("access-control-allow-origin", "https://shop.example"),
            (
                "access-control-expose-headers",
                "www-authenticate, x-request-id"
            ),
            ("vary", "Origin"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    for other in [
        &b"https://evil.example"[..],
        b"https://shop.example.evil",
        b"HTTPS://SHOP.EXAMPLE",
    ] {
        let a = p.answer(Some(other));
        assert_eq!(fields(a.fields()), [("vary".into(), "Origin".into())]);
    }
    assert_eq!(
        fields(p.answer(None).fields()),
        [("vary".into(), "Origin".into())]
    );
}

#[test]
fn any_origin_is_a_star_without_vary_and_credentials_echo_the_origin() {
    let any = policy(Origins::Any, false);
    let f = fields(any.answer(Some(b"https://x.example")).fields());
    assert_eq!(f[0], ("access-control-allow-origin".into(), "*".into()));
    assert!(f.iter().all(|(n, _)| n != "vary"));
    assert!(fields(any.answer(None).fields()).is_empty());
    let creds = policy(Origins::Listed(vec!["https://shop.example".into()]), true);
    let f = fields(creds.answer(Some(b"https://shop.example")).fields());
    assert!(f.contains(&("access-control-allow-credentials".into(), "true".into())));
}

#[test]
fn a_preflight_is_allowed_only_for_a_listed_origin_method_and_headers() {
    let p = listed();
    let ok = asked(&[
        ("origin", "https://shop.example"),
        ("access-control-request-method", "GET"),
        (
            "access-control-request-headers",
            "authorization,Content-Type",
        ),
    ]);
    let a = p.preflight(&ok).unwrap();
    let f = fields(a.preflight_fields());
    for want in [
        ("access-control-allow-origin", "https://shop.example"),
        ("access-control-allow-methods", "GET, POST"),
        (
            "access-control-allow-headers",
            "authorization, content-type",
        ),
        ("access-control-max-age", "600"),
    ] {
        assert!(
            f.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {f:?}"
        );
    }
    let refused =
        |pairs: &[(&'static str, &'static str)]| p.preflight(&asked(pairs)).unwrap_err().1;
    assert_eq!(
        refused(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET")
        ]),
        "origin_refused"
    );
    assert_eq!(
        refused(&[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "DELETE")
        ]),
        "method_refused"
    );
    assert_eq!(
        refused(&[
            ("origin", "https://shop.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization, x-secret"),
        ]),
        "headers_refused"
    );
}

#[test]
fn the_gateways_headers_replace_the_upstreams() {
    let p = listed();
    let mut h = asked(&[
        ("access-control-allow-origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("vary", "Accept-Encoding"),
        ("content-type", "application/json"),
    ]);
    p.answer(Some(b"https://shop.example")).apply(&mut h);
    assert_eq!(h["access-control-allow-origin"], "https://shop.example");
    assert!(!h.contains_key("access-control-allow-credentials"));
    let vary: Vec<_> = h.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    assert!(is_cors_header("Access-Control-Max-Age") && !is_cors_header("access-control-"));
    assert!(is_preflight(&Method::OPTIONS, true, true));
    assert!(
        !is_preflight(&Method::OPTIONS, true, false) && !is_preflight(&Method::GET, true, true)
    );
}
