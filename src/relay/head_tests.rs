use super::*;
use crate::relay::response_head::*;

fn classify(raw: &str) -> &'static str {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse_request(raw.as_bytes(), &mut slots, MAX_HEADERS) {
        Parsed::Partial => "partial",
        Parsed::Elsewhere => "hyper",
        Parsed::Head(_) => "relay",
    }
}

#[test]
fn only_plain_heads_are_relayed() {
    let get = "GET /a HTTP/1.1\r\nHost: x\r\n";
    assert_eq!(classify(&format!("{get}\r\n")), "relay");
    assert_eq!(classify(get), "partial");
    for (extra, why) in [
        ("Transfer-Encoding: chunked\r\n", "chunked body"),
        ("Expect: 100-continue\r\n", "expect"),
        ("Upgrade: h2c\r\n", "upgrade"),
        (
            "Connection: keep-alive, x-hop\r\n",
            "a header named in Connection",
        ),
        ("Content-Length: 1\r\nContent-Length: 1\r\n", "two lengths"),
        ("Content-Length: +1\r\n", "a signed length"),
        ("Host: y\r\n", "two hosts"),
    ] {
        assert_eq!(classify(&format!("{get}{extra}\r\n")), "hyper", "{why}");
    }
    assert_eq!(classify("GET /a HTTP/1.0\r\n\r\n"), "hyper", "HTTP/1.0");
    assert_eq!(
        classify("GET http://x/a HTTP/1.1\r\n\r\n"),
        "hyper",
        "absolute form"
    );
    assert_eq!(classify("GET /a#b HTTP/1.1\r\n\r\n"), "hyper", "a fragment");
    assert_eq!(
        classify("GET /\u{e9} HTTP/1.1\r\n\r\n"),
        "hyper",
        "not ASCII"
    );
    assert_eq!(
        classify("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        "hyper",
        "HTTP/2 preface"
    );
    assert_eq!(
        classify("GET /a HTTP/1.1\r\nBad Header\r\n\r\n"),
        "hyper",
        "malformed"
    );
    assert_eq!(
        classify(&format!(
            "{get}Connection: Keep-Alive, close\r\nContent-Length: 12\r\n\r\n"
        )),
        "relay"
    );
}

#[test]
fn the_upstream_head_carries_the_edits() {
    let raw = "PUT /a?b=1 HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer t\r\nX-Storegate-Grant: implicit\r\n\
               x-forwarded-proto: http\r\nContent-Length: 2\r\nConnection: close\r\nTE: trailers\r\nAccept: */*\r\n\r\nok";
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Parsed::Head(h) = parse_request(raw.as_bytes(), &mut slots, MAX_HEADERS) else {
        panic!("relayed")
    };
    assert!(h.close && h.content_length == 2 && h.path() == "/a");
    let mut out = Vec::new();
    let edits = Edits {
        upstream: "127.0.0.1:9",
        forward_authorization: true,
        forwarded_for: b"10.0.0.1",
        tls: true,
        who: Some(Who {
            client_id: b"c1",
            scope: b"read",
            grant: "client_credentials",
            token_type: "Bearer",
        }),
        request_id: b"id-1",
    };
    write_upstream_head(&mut out, &h, &edits);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "PUT /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\
         Accept: */*\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: https\r\nx-forwarded-host: shop\r\n\
         x-storegate-client-id: c1\r\nx-storegate-scope: read\r\nx-storegate-grant: client_credentials\r\nx-storegate-token-type: Bearer\r\n\
         x-request-id: id-1\r\n\r\n"
    );
}

fn framing(raw: &str, head_request: bool) -> Result<(Framing, bool), BadResponse> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_response(raw.as_bytes(), &mut slots, head_request)
        .map(|r| r.map(|r| (r.framing, r.reusable)).expect("whole"))
}

#[test]
fn response_framing_follows_rfc_9112() {
    let ok = "HTTP/1.1 200 OK\r\n";
    assert_eq!(
        framing(&format!("{ok}Content-Length: 5\r\n\r\n"), false),
        Ok((Framing::Length(5), true))
    );
    assert_eq!(
        framing(&format!("{ok}Content-Length: 5\r\n\r\n"), true),
        Ok((Framing::Empty, true))
    );
    assert_eq!(
        framing(
            &format!("{ok}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            false
        ),
        Ok((Framing::Chunked, true))
    );
    // Any coding but a lone `chunked` is refused (nginx: 502), whatever else it says.
    for coding in [
        "gzip, chunked",
        "gzip",
        "chunked, identity",
        "chunked\r\nTransfer-Encoding: chunked",
    ] {
        assert_eq!(
            framing(&format!("{ok}Transfer-Encoding: {coding}\r\n\r\n"), false),
            Err(BadResponse::Coding),
            "{coding}"
        );
    }
    assert_eq!(
        framing(&format!("{ok}\r\n"), false),
        Ok((Framing::UntilClose, false))
    );
    assert_eq!(
        framing("HTTP/1.1 204 No Content\r\n\r\n", false),
        Ok((Framing::Empty, true))
    );
    assert_eq!(
        framing("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false),
        Ok((Framing::Length(1), false))
    );
    assert_eq!(
        framing(
            &format!("{ok}Connection: close\r\nContent-Length: 1\r\n\r\n"),
            false
        ),
        Ok((Framing::Length(1), false))
    );
    assert_eq!(
        framing(
            &format!("{ok}Content-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            false
        ),
        Err(BadResponse::Malformed)
    );
    assert_eq!(
        framing("HTTP/1.1 099 Low\r\n\r\n", false),
        Err(BadResponse::Malformed)
    );
    assert_eq!(
        framing("HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
        Err(BadResponse::Upgrade)
    );
}

#[test]
fn the_callers_response_head_keeps_framing_and_drops_hop_by_hop() {
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nConnection: x-hop, content-length\r\n\
               x-hop: 1\r\nKeep-Alive: timeout=4\r\nX-Request-Id: theirs\r\nVary: accept\r\n\r\n";
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let r = parse_response(raw.as_bytes(), &mut slots, false)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    let edits = ResponseEdits {
        request_id: b"ours",
        close: true,
        date: b"D",
        cors: None,
    };
    write_response_head(&mut out, &r, &edits);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVary: accept\r\ndate: D\r\nx-request-id: ours\r\nconnection: close\r\n\r\n"
    );
}
