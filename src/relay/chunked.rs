//! Where a chunked body ends (RFC 9112 §7.1). The relay forwards a chunked response as the
//! bytes it came in; this reads along to know when the last chunk and the trailer section are
//! over, so that the upstream connection can serve the next request and the caller's
//! response is complete. A framing error ends both connections.

/// Hex digits a chunk size may have (a u64's worth).
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the chunk-size digits.
    Size {
        digits: u8,
        size: u64,
    },
    /// After the size: extensions up to CR.
    Extension {
        size: u64,
    },
    /// CR seen after the size line; LF next.
    SizeLf {
        size: u64,
    },
    /// Chunk data still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk;

/// Reads along a chunked body.
#[derive(Debug, Clone)]
pub struct Chunked(State);

impl Default for Chunked {
    fn default() -> Chunked {
        Chunked(State::Size { digits: 0, size: 0 })
    }
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.0 == State::Done
    }

    /// Reads `bytes`, the body's next ones; returns how many belong to the body (fewer than
    /// all only when it ended within them).
    pub fn advance(&mut self, bytes: &[u8]) -> Result<usize, BadChunk> {
        self.advance_with(bytes, |_| {})
    }

    /// `advance`, handing `data` the range of each run of chunk data within `bytes` (the
    /// body decoded, for a caller that does not take the chunked bytes as they came: an
    /// HTTP/2 stream's).
    pub fn advance_with(
        &mut self,
        bytes: &[u8],
        mut data: impl FnMut(std::ops::Range<usize>),
    ) -> Result<usize, BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            if let State::Data(left) = self.0 {
                // Data is skipped whole, not byte by byte.
                let take = left.min((bytes.len() - i) as u64);
                data(i..i + take as usize);
                i += take as usize;
                self.0 = match left - take {
                    0 => State::DataCr,
                    left => State::Data(left),
                };
                continue;
            }
            if self.0 == State::Done {
                break;
            }
            self.0 = step(self.0, bytes[i])?;
            i += 1;
        }
        Ok(i)
    }
}

fn step(state: State, b: u8) -> Result<State, BadChunk> {
    use State::*;
    Ok(match (state, b) {
        (Size { digits, size }, b) if b.is_ascii_hexdigit() => {
            if digits == MAX_SIZE_DIGITS {
                return Err(BadChunk);
            }
            let d = u64::from((b as char).to_digit(16).expect("a hex digit"));
            Size {
                digits: digits + 1,
                size: size << 4 | d,
            }
        }
        (Size { digits: 0, .. }, _) => return Err(BadChunk),
        (Size { size, .. }, b'\r') => SizeLf { size },
        (Size { size, .. }, b';' | b' ' | b'\t') => Extension { size },
        (Extension { size }, b'\r') => SizeLf { size },
        (Extension { .. }, b'\n') => return Err(BadChunk),
        (Extension { size }, _) => Extension { size },
        (SizeLf { size: 0 }, b'\n') => TrailerStart,
        (SizeLf { size }, b'\n') => Data(size),
        (DataCr, b'\r') => DataLf,
        (DataLf, b'\n') => Size { digits: 0, size: 0 },
        (TrailerStart, b'\r') => EndLf,
        (TrailerStart | TrailerLine, b'\n') => return Err(BadChunk),
        (TrailerLine, b'\r') => TrailerLf,
        (TrailerStart | TrailerLine, _) => TrailerLine,
        (TrailerLf, b'\n') => TrailerStart,
        (EndLf, b'\n') => Done,
        _ => return Err(BadChunk),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends_at(body: &[u8]) -> Result<Option<usize>, BadChunk> {
        let mut c = Chunked::default();
        let n = c.advance(body)?;
        Ok(c.is_done().then_some(n))
    }

    #[test]
    fn finds_the_end_of_a_body() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT";
        assert_eq!(ends_at(body), Ok(Some(body.len() - 4)));
        let trailers = b"3\r\nabc\r\n0\r\nx-sum: 1\r\nx-b: 2\r\n\r\n";
        assert_eq!(ends_at(trailers), Ok(Some(trailers.len())));
        // Byte by byte, the same.
        let mut c = Chunked::default();
        for (i, b) in body.iter().enumerate() {
            let n = c.advance(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, usize::from(i < body.len() - 4));
        }
        assert!(c.is_done());
    }

    #[test]
    fn decodes_the_data_in_any_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nt: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            let mut decoded = Vec::new();
            let mut used = 0;
            for part in [&body[..split], &body[split..]] {
                let n = c
                    .advance_with(part, |r| decoded.extend_from_slice(&part[r]))
                    .unwrap();
                used += n;
            }
            assert_eq!(
                decoded, b"helloabcdefghijklmnopqrstuvwxyz",
                "split at {split}"
            );
            assert_eq!(used, body.len() - 4);
            assert!(c.is_done());
        }
    }

    #[test]
    fn unfinished_bodies_are_not_done() {
        for part in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nx: 1\r\n",
        ] {
            assert_eq!(ends_at(part), Ok(None), "{part:?}");
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\nhello",
            b"5\r\nhelloX\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\n",
            b"0\r\nx: 1\n",
        ] {
            assert_eq!(ends_at(bad), Err(BadChunk), "{bad:?}");
        }
    }
}
