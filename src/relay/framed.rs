//! A response body on its way through the relay: its framing (`response_head::Framing`) and what is
//! left of it, read along as its bytes pass so that the relay knows where it ends; passed on
//! as it came (an HTTP/1.1 caller's) or decoded (an HTTP/2 stream's, `stream`).

use bytes::{Bytes, BytesMut};

use super::chunked::Chunked;
use super::response_head::Framing;

/// A response body on its way: what is left of it.
pub(super) struct Body {
    pub framing: Framing,
    left: u64,
    chunked: Chunked,
}

impl Body {
    pub fn new(framing: Framing) -> Body {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Body {
            framing,
            left,
            chunked: Chunked::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunked.is_done(),
            Framing::UntilClose => false,
        }
    }

    /// Moves the body's bytes from `buf` to `out` (what lies beyond the body stays in `buf`);
    /// returns whether the body is complete.
    pub fn take(&mut self, buf: &mut BytesMut, out: &mut Vec<u8>) -> Result<bool, ()> {
        let n = match self.framing {
            Framing::Empty => 0,
            Framing::Length(_) => {
                let n = self.left.min(buf.len() as u64) as usize;
                self.left -= n as u64;
                n
            }
            Framing::Chunked => self.chunked.advance(buf).map_err(|_| ())?,
            Framing::UntilClose => buf.len(),
        };
        out.extend_from_slice(&buf.split_to(n));
        Ok(self.is_done())
    }

    /// Bytes still to come of a `Framing::Length` body (0 for any other).
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Takes the body's next data out of `buf`, decoded (chunk framing removed; what lies
    /// beyond the body stays in `buf`). `Err` for a malformed chunked body.
    pub fn take_decoded(&mut self, buf: &mut BytesMut) -> Result<Bytes, ()> {
        Ok(match self.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(_) => {
                let n = self.left.min(buf.len() as u64);
                self.left -= n;
                buf.split_to(n as usize).freeze()
            }
            Framing::UntilClose => buf.split().freeze(),
            Framing::Chunked => {
                let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
                let used = (self.chunked)
                    .advance_with(buf, |r| runs.push(r))
                    .map_err(|_| ())?;
                let framed = buf.split_to(used).freeze();
                match runs.as_slice() {
                    [] => Bytes::new(),
                    [one] => framed.slice(one.clone()),
                    many => {
                        let mut joined = BytesMut::new();
                        for r in many {
                            joined.extend_from_slice(&framed[r.clone()]);
                        }
                        joined.freeze()
                    }
                }
            }
        })
    }
}
