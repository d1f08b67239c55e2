//! The relay's parsers and writers under arbitrary bytes: the input is read as a caller's
//! request head, as an upstream's response head (to a GET and to a HEAD) and as a chunked
//! body. What the relay writes must parse again as what it meant: the upstream's head with the
//! caller's method, target and length and none of the headers it must drop; the caller's
//! response head with the upstream's status and framing and the gateway's request id once.

use crate::relay::chunked::Chunked;
use crate::relay::head::{self, Edits, MAX_HEADERS, Parsed, Who, parse_request};
use crate::relay::response_head::{self, Framing, ResponseEdits, parse_response};

const EDITS: Edits<'static> = Edits {
    upstream: "127.0.0.1:9000",
    forward_authorization: false,
    forwarded_for: b"192.0.2.1",
    tls: true,
    who: Some(Who {
        client_id: b"fuzz-client",
        scope: b"read",
        grant: "client_credentials",
        token_type: "Bearer",
    }),
    request_id: b"fuzz-id",
};

const RESPONSE_EDITS: ResponseEdits<'static> = ResponseEdits {
    request_id: b"fuzz-id",
    close: false,
    date: b"Thu, 01 Jan 2026 00:00:00 GMT",
    cors: None,
};

pub fn relay(data: &[u8]) {
    request(data);
    for head_request in [false, true] {
        response(data, head_request);
    }
    chunked(data);
}

fn request(data: &[u8]) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Parsed::Head(h) = parse_request(data, &mut slots, MAX_HEADERS) else {
        return;
    };
    assert!(h.len <= data.len() && h.target.starts_with('/'));
    let mut out = Vec::new();
    head::write_upstream_head(&mut out, &h, &EDITS);
    let mut again = [httparse::EMPTY_HEADER; MAX_HEADERS + 16];
    let Parsed::Head(up) = parse_request(&out, &mut again, MAX_HEADERS + 16) else {
        panic!(
            "the upstream head does not parse: {:?}",
            String::from_utf8_lossy(&out)
        );
    };
    assert_eq!(up.len, out.len(), "one head, nothing after it");
    assert_eq!((up.method, up.target), (h.method, h.target));
    assert_eq!(up.content_length, h.content_length);
    assert_eq!(up.host, Some(EDITS.upstream.as_bytes()));
    assert_eq!(
        up.authorization, None,
        "Authorization is not forwarded here"
    );
    assert_eq!(up.request_id, Some(EDITS.request_id));
    for hh in up.headers {
        let name = hh.name.to_ascii_lowercase();
        assert!(
            !crate::headers::is_hop_by_hop_raw(&name),
            "{name} was forwarded"
        );
        assert!(
            !name.contains('_'),
            "{name}: a name with an underscore was forwarded"
        );
        if name.starts_with("x-storegate-")
            || name.starts_with("x-forwarded-")
            || name == "forwarded"
        {
            let who = EDITS.who.as_ref().expect("an identity");
            let ours = [
                who.client_id,
                who.scope,
                who.grant.as_bytes(),
                who.token_type.as_bytes(),
                EDITS.forwarded_for,
                b"https",
            ];
            assert!(
                ours.contains(&hh.value)
                    || (name == "x-forwarded-host" && Some(hh.value) == h.host),
                "a caller's {name} was forwarded"
            );
        }
    }
}

fn response(data: &[u8], head_request: bool) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(r)) = parse_response(data, &mut slots, head_request) else {
        return;
    };
    assert!(r.len <= data.len());
    assert!(r.framing != Framing::UntilClose || !r.reusable);
    let mut out = Vec::new();
    response_head::write_response_head(&mut out, &r, &RESPONSE_EDITS);
    let mut again = [httparse::EMPTY_HEADER; MAX_HEADERS + 8];
    let Ok(Some(down)) = parse_response(&out, &mut again, head_request) else {
        panic!(
            "the caller's head does not parse: {:?}",
            String::from_utf8_lossy(&out)
        );
    };
    assert_eq!(down.len, out.len());
    assert_eq!(down.status, r.status);
    assert_eq!(
        down.framing,
        r.framing,
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    let ids: Vec<&[u8]> = down
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-request-id"))
        .map(|h| h.value)
        .collect();
    assert_eq!(ids, [RESPONSE_EDITS.request_id]);
}

fn chunked(data: &[u8]) {
    let mut whole = Chunked::default();
    let all = whole.advance(data);
    if let Ok(n) = all {
        assert!(n <= data.len());
        assert!(
            n == data.len() || whole.is_done(),
            "stopped early without an end"
        );
    }
    // In pieces (split at every 7th byte), the same answer.
    let mut pieces = Chunked::default();
    let mut taken = 0;
    let mut failed = false;
    for piece in data.chunks(7) {
        if pieces.is_done() {
            break;
        }
        match pieces.advance(piece) {
            Ok(n) => taken += n,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    match all {
        Ok(n) => assert!(!failed && n == taken && whole.is_done() == pieces.is_done()),
        Err(_) => assert!(failed),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_pass() {
        for seed in [
            &b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-Storegate-Scope: all\r\nConnection: keep-alive\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: x-hop\r\nx-hop: 1\r\n\r\n",
            b"HTTP/1.0 204 No Content\r\n\r\n",
            b"GET / HTTP/1.1\r\nx_storegate_client_id: a\r\nX-Forwarded-Port: 1\r\nForwarded: for=x\r\n\r\n",
            b"4\r\nabcd\r\n0\r\n\r\n",
        ] {
            super::relay(seed);
        }
    }
}
