//! HTTP/2 streams' relayed exchanges (`relay::stream`) against the hyper path they replace.
//!
//! The input is read as a caller's request head, as hyper's HTTP/2 server would hand it over
//! (its `Host` moved into the URI's authority, as `:authority`, when the first byte is odd):
//! when the stream path forwards it itself (`caller_head`, then `upstream_head`), the head it
//! writes must parse, have no body, and carry the same method, target and header multiset as
//! the hyper path's request (`prepare_request`, then the `Host` hyper's client adds).
//!
//! The input is also read as an upstream's response head: the stream's header map
//! (`response_head`) must equal the hyper path's (`headers::strip_response`) but for the
//! fields each transport writes its own way; and what follows the head, read as a chunked
//! body, must decode to the same bytes in one piece as split at any point.

use http::{HeaderValue, header};

use super::two_paths::{
    OWN_WAY, edits, hyper_request, hyper_response, ids, map_fields, settings, shown,
    upstream_request,
};
use crate::proxy::prepare_request;
use crate::relay::chunked::Chunked;
use crate::relay::head::MAX_HEADERS;
use crate::relay::response_head::{Framing, parse_response};
use crate::relay::stream::{caller_head, response_head, upstream_head};
use crate::request_id::X_REQUEST_ID;

pub fn h2_stream(data: &[u8]) {
    request(data);
    response(data);
}

fn request(data: &[u8]) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return;
    };
    // `http` refuses it: hyper answers 400 itself.
    let Some(mut req) = hyper_request(method, target, parsed.headers) else {
        return;
    };
    if data[0] % 2 == 1
        && let Some(host) = req.headers_mut().remove(header::HOST)
        && let Ok(uri) = format!("https://{}{target}", host.to_str().unwrap_or("")).parse()
    {
        *req.uri_mut() = uri;
    }
    let id = ids().of(req.headers_mut());
    let mut caller = Vec::new();
    caller_head(&req, &mut caller);
    for s in settings() {
        let mut out = Vec::new();
        if upstream_head(&caller, &edits(s, id.as_bytes()), &mut out).is_none() {
            continue;
        }
        let stream = upstream_request(&out);
        let mut hyper = req.clone();
        let made = HeaderValue::from_bytes(id.as_bytes()).expect("an id is a header value");
        hyper.headers_mut().insert(X_REQUEST_ID, made);
        if let Err(e) = prepare_request(&mut hyper, &s.route, Some(&s.who), &s.conn) {
            panic!("the hyper path refuses what the stream path forwards: {e:?}");
        }
        let authority = hyper.uri().authority().map(|a| a.as_str().to_owned());
        if let Some(a) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
            hyper.headers_mut().entry(header::HOST).or_insert(a);
        }
        let target = hyper.uri().path_and_query().map_or("/", |p| p.as_str());
        assert_eq!(
            (stream.0.as_str(), stream.1.as_str()),
            (hyper.method().as_str(), target),
            "request lines differ (left: stream, right: hyper)"
        );
        assert_eq!(
            shown(&stream.2),
            shown(&map_fields(hyper.headers())),
            "upstream headers differ (left: stream, right: hyper)"
        );
        // A caller's `Content-Length: 0` (or `00`) goes on as it came, as on the other paths.
        let length = stream.2.iter().find(|(k, _)| k == "content-length");
        assert!(
            length.is_none_or(|(_, v)| !v.is_empty() && v.iter().all(|&b| b == b'0')),
            "a bodiless request went with a length"
        );
    }
}

fn response(data: &[u8]) {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(r)) = parse_response(data, &mut slots, false) else {
        return;
    };
    let (len, chunked) = (r.len, r.framing == Framing::Chunked);
    if r.status >= 200 {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let hyper = hyper_response(data, &mut slots);
        match (response_head(&r), hyper) {
            (Ok((status, stream)), Some((hyper_status, mut map))) => {
                assert_eq!(status, hyper_status, "statuses differ");
                crate::headers::strip_response(&mut map);
                let compared = |(k, _): &(String, Vec<u8>)| !OWN_WAY.contains(&k.as_str());
                let stream: Vec<_> = map_fields(&stream).into_iter().filter(compared).collect();
                let hyper: Vec<_> = map_fields(&map).into_iter().filter(compared).collect();
                let differ = "response headers differ (left: stream, right: hyper)";
                assert_eq!(shown(&stream), shown(&hyper), "{differ}");
            }
            (Ok(_), None) => panic!("the stream path takes a head hyper's client refuses"),
            (Err(_), _) => {}
        }
    }
    if chunked {
        decodes_alike(&data[len..]);
    }
}

/// A chunked body decodes to the same bytes, and ends at the same place, whole or split.
fn decodes_alike(body: &[u8]) {
    let decode = |parts: &[&[u8]]| {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        let mut used = 0;
        for part in parts {
            match c.advance_with(part, |r| out.extend_from_slice(&part[r])) {
                Ok(n) => used += n,
                Err(_) => return None,
            }
            if c.is_done() {
                break;
            }
        }
        Some((out, used, c.is_done()))
    };
    let whole = decode(&[body]);
    let plain = Chunked::default().advance(body).ok();
    assert_eq!(
        whole.as_ref().map(|w| w.1),
        plain,
        "decoding ends elsewhere"
    );
    for at in [1, body.len() / 2, body.len().saturating_sub(1)] {
        if at < body.len() {
            let split = decode(&[&body[..at], &body[at..]]);
            assert_eq!(split, whole, "split at {at}");
        }
    }
}
