//! Header slots for parsing a head in place. They live in a connection's future while a
//! request is judged and answered, and that future's size is what every idle connection costs
//! (see BENCHMARKS.md, idle connections): so `INLINE` slots are kept inline, and a head that
//! does not parse with them is parsed again with `MAX_HEADERS` slots on the heap. Browsers send
//! about 15 fields; a head with more than `INLINE` costs an allocation, and gets the very
//! answer it got before (the second parse decides, with the relay's full limit).

use super::head::{self, MAX_HEADERS, Parsed};
use super::response_head::{self, BadResponse, ResponseHead};

/// Slots kept inline.
pub const INLINE: usize = 32;

pub struct Slots<'b> {
    inline: [httparse::Header<'b>; INLINE],
    heap: Vec<httparse::Header<'b>>,
}

impl<'b> Slots<'b> {
    pub fn new() -> Slots<'b> {
        Slots {
            inline: [httparse::EMPTY_HEADER; INLINE],
            heap: Vec::new(),
        }
    }

    /// `head::parse_request`, as with `MAX_HEADERS` slots.
    pub fn request<'h>(&'h mut self, buf: &'b [u8], max_headers: usize) -> Parsed<'h, 'b> {
        match head::parse_request(buf, &mut self.inline, max_headers) {
            // Too many fields for the inline slots, or not the relay's: the full parse says.
            Parsed::Elsewhere => {}
            parsed => return parsed,
        }
        self.heap = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
        head::parse_request(buf, &mut self.heap, max_headers)
    }

    /// `response_head::parse_response`, as with `MAX_HEADERS` slots.
    pub fn response<'h>(
        &'h mut self,
        buf: &'b [u8],
        head_request: bool,
    ) -> Result<Option<ResponseHead<'h, 'b>>, BadResponse> {
        match response_head::parse_response(buf, &mut self.inline, head_request) {
            Err(BadResponse::Malformed) => {}
            parsed => return parsed,
        }
        self.heap = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
        response_head::parse_response(buf, &mut self.heap, head_request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(fields: usize) -> Vec<u8> {
        let mut head = b"GET /api/x HTTP/1.1\r\nhost: a\r\n".to_vec();
        for i in 1..fields {
            head.extend_from_slice(format!("x-f{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    #[test]
    fn a_head_parses_as_with_every_slot_whatever_its_fields() {
        for fields in [1, INLINE, INLINE + 1, MAX_HEADERS, MAX_HEADERS + 1] {
            let buf = request_with(fields);
            let mut full = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let want = format!("{:?}", head::parse_request(&buf, &mut full, MAX_HEADERS));
            let mut slots = Slots::new();
            let got = format!("{:?}", slots.request(&buf, MAX_HEADERS));
            assert_eq!(got, want, "{fields} fields");
        }
        let mut resp = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n".to_vec();
        for i in 0..INLINE + 5 {
            resp.extend_from_slice(format!("set-cookie: c{i}=1\r\n").as_bytes());
        }
        resp.extend_from_slice(b"\r\n");
        let mut slots = Slots::new();
        let parsed = slots.response(&resp, false).unwrap().unwrap();
        assert_eq!(parsed.status, 200);
        assert_eq!(parsed.len, resp.len());
    }
}
