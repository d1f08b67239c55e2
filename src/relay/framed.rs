//! A response body on its way through the relay: its framing (`response_head::Framing`) and what is
//! left of it, read along as its bytes pass so that the relay knows where it ends.

use bytes::BytesMut;

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
}
