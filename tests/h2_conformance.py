"""HTTP/2 conformance of the gateway's listener, in h2spec's manner (h2spec is not packaged
for Debian, nor on PyPI or npm): each case opens a TLS connection (ALPN h2), sends frames
byte by byte as h2spec does (Debian's python3-hpack encodes the header blocks), and expects
what RFC 9113 requires, with h2spec's reading: a connection error is a GOAWAY with the
error code or the connection closed; a stream error is a RST_STREAM with the code, a GOAWAY
with it, or the connection closed. Cases are named by h2spec's section numbers.

Usage: h2_conformance.py HOST PORT CA_FILE TOKEN GUARDED_PATH (its sibling `upload` must read
a request body to its end before answering)
Prints one line per case and "ok" last when all pass; exits 1 otherwise.
"""

import socket
import ssl
import struct
import sys

import hpack

HOST, PORT, CA, TOKEN, GUARDED = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
# The test upstream's path that reads a body to its end before it answers.
UPLOAD = GUARDED.rsplit("/", 1)[0] + "/upload"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 0, 1, 3, 5, 6, 7, 9
TIMEOUT = 5.0


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def setting(ident, value):
    return struct.pack(">HI", ident, value)


class Conn:
    def __init__(self, preface=PREFACE, settings=b""):
        ctx = ssl.create_default_context(cafile=CA)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2", "ALPN did not choose h2"
        self.buf = b""
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.server_settings = {}
        self.fields = {}
        self.decoded = {}
        self.ended = set()
        self.reset = set()
        self.sock.sendall(preface)
        if preface == PREFACE:
            self.sock.sendall(frame(SETTINGS, 0, 0, settings))
            # The server's SETTINGS comes first (RFC 9113 §3.4).
            kind, flags, _, payload = self.read()
            assert kind == SETTINGS and not flags & ACK, "the server did not open with SETTINGS"
            for i in range(0, len(payload), 6):
                ident, value = struct.unpack(">HI", payload[i : i + 6])
                self.server_settings[ident] = value
            self.sock.sendall(frame(SETTINGS, ACK, 0))

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the server closed first: the reply (or the close) is what counts

    def read(self):
        """The next frame (kind, flags, stream, payload), or None once the connection closed."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
                return None
            except socket.timeout:
                raise AssertionError("no frame and no close within %ss" % TIMEOUT)
            if not chunk:
                return None
            self.buf += chunk
        length = int.from_bytes(self.buf[:3], "big")
        kind, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9 : 9 + length]
        self.buf = self.buf[9 + length :]
        if kind == HEADERS and stream not in self.fields:
            # Every block is decoded, in order: HPACK's table is the connection's. The decoded
            # fields keep their representation (`hpack.NeverIndexedHeaderTuple` or not).
            self.decoded[stream] = self.decoder.decode(payload)
            self.fields[stream] = dict(self.decoded[stream])
        elif kind == HEADERS:
            self.decoder.decode(payload)  # trailers
        if kind in (HEADERS, DATA) and flags & END_STREAM:
            self.ended.add(stream)
        if kind == RST_STREAM:
            self.reset.add(stream)
        return kind, flags, stream, payload

    def headers_block(self, fields):
        return self.encoder.encode(fields)

    def request(self, stream, fields=None, end_stream=True, extra=()):
        if fields is None and not end_stream:
            # A forwarded request with a body to come: nothing answers it before its body
            # (the gateway's own targets answer at once, and the frames after meet a closed
            # stream).
            fields = self.get_fields(UPLOAD, "POST") + [("authorization", "Bearer " + TOKEN)]
        fields = fields or self.get_fields()
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, stream, self.headers_block(list(fields) + list(extra))))

    @staticmethod
    def get_fields(path="/healthz", method="GET"):
        return [(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path)]

    def expect_connection_error(self, code, h2_crate=None):
        """A GOAWAY with `code` or a close. `h2_crate`: the code the h2 crate sends instead
        (a deviation, reported as such, not a failure: the connection is refused all the same)."""
        while True:
            f = self.read()
            if f is None:
                return "closed"
            kind, _, _, payload = f
            if kind == GOAWAY:
                return judged("GOAWAY", struct.unpack(">I", payload[4:8])[0], code, h2_crate)

    def expect_stream_error(self, stream, code, h2_crate=None, may_answer=False):
        """A RST_STREAM of `stream` or a GOAWAY with `code`, or a close (`h2_crate`: as above).
        `may_answer`: the request itself was whole and well-formed, so its answer may come
        before the error (as h2spec, which reads past other frames, allows)."""
        while True:
            f = self.read()
            if f is None:
                return "closed"
            kind, _, sid, payload = f
            if kind == GOAWAY:
                return judged("GOAWAY", struct.unpack(">I", payload[4:8])[0], code, h2_crate)
            if kind == RST_STREAM and sid == stream:
                return judged("RST_STREAM", struct.unpack(">I", payload)[0], code, h2_crate)
            answered = kind == HEADERS and sid == stream
            assert may_answer or not answered, "stream %d was answered: %s" % (stream, self.fields.get(stream))

    def expect_response(self, stream):
        """The status of the response on `stream`, once it has ended (frames of other streams
        are read on the way and kept track of)."""
        while stream not in self.ended:
            assert stream not in self.reset, "stream %d was reset" % stream
            f = self.read()
            assert f is not None, "the connection closed before stream %d was answered" % stream
            assert f[0] != GOAWAY, "GOAWAY before stream %d was answered" % stream
        return self.fields[stream][":status"]

    def expect_ping_ack(self, data):
        while True:
            f = self.read()
            assert f is not None, "the connection closed instead of answering the PING"
            kind, flags, _, payload = f
            if kind == PING and flags & ACK:
                assert payload == data, "the PING ACK carries other data"
                return "PING ACK"
            assert kind != GOAWAY, "GOAWAY instead of a PING ACK"


class Deviation(Exception):
    """The right refusal with the h2 crate's error code rather than RFC 9113's."""


def judged(what, got, code, h2_crate):
    if got == code:
        return "%s %d" % (what, got)
    if h2_crate is not None and got == h2_crate:
        raise Deviation("%s %d where RFC 9113 has %d (the h2 crate's code)" % (what, got, code))
    raise AssertionError("%s with error %d, not %d" % (what, got, code))


CASES = []


def case(name):
    def register(f):
        CASES.append((name, f))
        return f

    return register


# 3.5 and 4: the connection and frames.
@case("3.5/1 an invalid connection preface")
def _():
    c = Conn(preface=b"INVALID CONNECTION PREFACE\r\n\r\n")
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("4.1/1 a frame of unknown type is ignored")
def _():
    c = Conn()
    c.send(frame(0x16, 0, 0, b"x" * 8))
    c.send(frame(PING, 0, 0, b"unknown1"))
    return c.expect_ping_ack(b"unknown1")


@case("4.2/2 a DATA frame over SETTINGS_MAX_FRAME_SIZE")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(DATA, END_STREAM, 1, b"x" * (16384 + 1)))
    return c.expect_stream_error(1, FRAME_SIZE_ERROR)


@case("4.2/3 a HEADERS frame over SETTINGS_MAX_FRAME_SIZE")
def _():
    c = Conn()
    block = c.headers_block(c.get_fields())
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block + b"\x00" * 16385))
    return c.expect_connection_error(FRAME_SIZE_ERROR)


@case("10.5.1/1 a header list over SETTINGS_MAX_HEADER_LIST_SIZE is refused, not left unanswered")
def _():
    c = Conn()
    limit = c.server_settings.get(0x6)
    assert limit is not None, "no SETTINGS_MAX_HEADER_LIST_SIZE advertised"
    block = c.headers_block(c.get_fields() + [("x-long-%d" % i, "v" * 12000) for i in range(limit // 12000 + 1)])
    first, rest = block[:16384], block[16384:]
    c.send(frame(HEADERS, END_STREAM | (0 if rest else END_HEADERS), 1, first))
    while rest:
        part, rest = rest[:16384], rest[16384:]
        c.send(frame(CONTINUATION, 0 if rest else END_HEADERS, 1, part))
    while True:
        f = c.read()
        if f is None:
            return "closed"
        kind, _, sid, payload = f
        if kind == GOAWAY or (kind == RST_STREAM and sid == 1):
            return "%s %d (limit %d)" % ("GOAWAY" if kind == GOAWAY else "RST_STREAM", struct.unpack(">I", payload[-4:])[0], limit)
        if kind == HEADERS and sid == 1:
            status = c.fields[1][":status"]
            assert status == "431", "answered %s" % status
            return "431 (limit %d)" % limit


@case("4.3/1 an invalid header block fragment")
def _():
    c = Conn()
    # An indexed field past the end of the tables (RFC 7541 §2.3.3).
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\x0f"))
    return c.expect_connection_error(COMPRESSION_ERROR, h2_crate=PROTOCOL_ERROR)


@case("4.3/3 a frame between HEADERS and its CONTINUATION")
def _():
    c = Conn()
    block = c.headers_block(c.get_fields())
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(PRIORITY, 0, 3, b"\x00\x00\x00\x00\x10"))
    return c.expect_connection_error(PROTOCOL_ERROR)


# 5.1: stream states and identifiers.
@case("5.1/1 DATA on an idle stream")
def _():
    c = Conn()
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("5.1/5 DATA on a half-closed (remote) stream")
def _():
    c = Conn()
    c.request(1)
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    # The GET is whole: answering it first races the DATA frame's refusal, and is allowed.
    return c.expect_stream_error(1, STREAM_CLOSED, h2_crate=PROTOCOL_ERROR, may_answer=True)


@case("5.1.1/1 an even-numbered stream identifier")
def _():
    c = Conn()
    c.request(2)
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("5.1.1/2 a stream identifier below one used before")
def _():
    c = Conn()
    c.request(5)
    c.request(3)
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("5.1.2/1 more streams than SETTINGS_MAX_CONCURRENT_STREAMS")
def _():
    c = Conn()
    limit = c.server_settings.get(0x3)
    assert limit is not None and limit < 1000, "no SETTINGS_MAX_CONCURRENT_STREAMS advertised"
    for i in range(limit + 1):
        c.request(1 + 2 * i, end_stream=False)
    last = 1 + 2 * limit
    while True:
        f = c.read()
        if f is None:
            return "closed"
        kind, _, sid, payload = f
        if kind == GOAWAY or (kind == RST_STREAM and sid == last):
            got = struct.unpack(">I", payload[4:8] if kind == GOAWAY else payload)[0]
            assert got in (PROTOCOL_ERROR, REFUSED_STREAM), "error %d" % got
            return "%s %d (limit %d)" % ("GOAWAY" if kind == GOAWAY else "RST_STREAM", got, limit)


@case("5.3.1/1 a stream depending on itself (HEADERS)")
def _():
    c = Conn()
    block = c.headers_block(c.get_fields())
    c.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, 1, b"\x00\x00\x00\x01\x10" + block))
    return c.expect_stream_error(1, PROTOCOL_ERROR)


# 6: frame definitions.
@case("6.1/1 DATA on stream 0")
def _():
    c = Conn()
    c.send(frame(DATA, END_STREAM, 0, b"test"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.1/3 DATA with more padding than payload")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(DATA, END_STREAM | PADDED, 1, b"\x06test"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.2/2 HEADERS on stream 0")
def _():
    c = Conn()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 0, c.headers_block(c.get_fields())))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.3/1 PRIORITY on stream 0")
def _():
    c = Conn()
    c.send(frame(PRIORITY, 0, 0, b"\x00\x00\x00\x01\x10"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.3/2 PRIORITY of length 4")
def _():
    c = Conn()
    c.send(frame(PRIORITY, 0, 1, b"\x00\x00\x00\x03"))
    return c.expect_stream_error(1, FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.4/1 RST_STREAM on stream 0")
def _():
    c = Conn()
    c.send(frame(RST_STREAM, 0, 0, b"\x00\x00\x00\x08"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.4/2 RST_STREAM on an idle stream")
def _():
    c = Conn()
    c.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x08"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.4/3 RST_STREAM of length 3")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x08"))
    return c.expect_connection_error(FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.5/1 SETTINGS ACK with a payload")
def _():
    c = Conn()
    c.send(frame(SETTINGS, ACK, 0, b"\x00" * 6))
    return c.expect_connection_error(FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.5/2 SETTINGS on a stream")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 1, setting(0x3, 100)))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.5/3 SETTINGS of a length not a multiple of 6")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 0, b"\x00\x03\x00"))
    return c.expect_connection_error(FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.5.2/1 SETTINGS_ENABLE_PUSH of 2")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 0, setting(0x2, 2)))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.5.2/2 SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 0, setting(0x4, 2**31)))
    return c.expect_connection_error(FLOW_CONTROL_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.5.2/3 SETTINGS_MAX_FRAME_SIZE below 16384")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 0, setting(0x5, 16383)))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.5.2/5 an unknown setting is ignored (and acknowledged)")
def _():
    c = Conn()
    c.send(frame(SETTINGS, 0, 0, setting(0xFF, 1)))
    while True:
        f = c.read()
        assert f is not None, "closed"
        if f[0] == SETTINGS and f[1] & ACK:
            return "SETTINGS ACK"


@case("6.7/1 PING is answered with its data")
def _():
    c = Conn()
    c.send(frame(PING, 0, 0, b"h2spec!!"))
    return c.expect_ping_ack(b"h2spec!!")


@case("6.7/3 PING on a stream")
def _():
    c = Conn()
    c.send(frame(PING, 0, 1, b"x" * 8))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.7/4 PING of length 6")
def _():
    c = Conn()
    c.send(frame(PING, 0, 0, b"x" * 6))
    return c.expect_connection_error(FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.8/1 GOAWAY on a stream")
def _():
    c = Conn()
    c.send(frame(GOAWAY, 0, 1, b"\x00" * 8))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.9/1 WINDOW_UPDATE of 0 on the connection")
def _():
    c = Conn()
    c.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00"))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.9/2 WINDOW_UPDATE of 0 on a stream")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(WINDOW_UPDATE, 0, 1, b"\x00\x00\x00\x00"))
    return c.expect_stream_error(1, PROTOCOL_ERROR)


@case("6.9/3 WINDOW_UPDATE of length 3")
def _():
    c = Conn()
    c.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    return c.expect_connection_error(FRAME_SIZE_ERROR, h2_crate=PROTOCOL_ERROR)


@case("6.9.1/2 the connection window past 2^31-1")
def _():
    c = Conn()
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)))
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)))
    return c.expect_connection_error(FLOW_CONTROL_ERROR)


@case("6.9.1/3 a stream window past 2^31-1")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2**31 - 1)))
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 2**31 - 1)))
    return c.expect_stream_error(1, FLOW_CONTROL_ERROR)


@case("6.10/2 CONTINUATION after a finished header block")
def _():
    c = Conn()
    c.request(1)
    c.send(frame(CONTINUATION, END_HEADERS, 1, c.headers_block([("x-dummy", "1")])))
    return c.expect_connection_error(PROTOCOL_ERROR)


@case("6.10/4 CONTINUATION on stream 0")
def _():
    c = Conn()
    block = c.headers_block(c.get_fields())
    c.send(frame(HEADERS, END_STREAM, 1, block) + frame(CONTINUATION, END_HEADERS, 0, b""))
    return c.expect_connection_error(PROTOCOL_ERROR)


# 8: HTTP semantics.
@case("8.1/1 a second HEADERS without END_STREAM (not trailers)")
def _():
    c = Conn()
    c.request(1, end_stream=False)
    c.send(frame(HEADERS, END_HEADERS, 1, c.headers_block([("x-test", "ok")])))
    return c.expect_stream_error(1, PROTOCOL_ERROR)


for name, fields in [
    ("8.1.2/1 an uppercase field name", [("X-TEST", "ok")]),
    ("8.1.2.1/1 an unknown pseudo-header", [(":test", "ok")]),
    ("8.1.2.2/1 a connection-specific field", [("connection", "keep-alive")]),
    ("8.1.2.2/2 TE other than trailers", [("te", "trailers, deflate")]),
]:

    def run(fields=fields):
        c = Conn()
        c.request(1, extra=fields)
        return c.expect_stream_error(1, PROTOCOL_ERROR)

    CASES.append((name, run))


for name, fields in [
    ("8.1.2.3/1 an empty :path", [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", "")]),
    ("8.1.2.3/2 no :method", [(":scheme", "https"), (":authority", "localhost"), (":path", "/")]),
    ("8.1.2.3/5 two :path fields", Conn.get_fields() + [(":path", "/")]),
    ("8.1.2.1/3 a pseudo-header after a regular field", [(":method", "GET"), (":scheme", "https"), ("x-a", "1"), (":path", "/")]),
]:

    def run(fields=fields):
        c = Conn()
        c.request(1, fields=fields)
        return c.expect_stream_error(1, PROTOCOL_ERROR)

    CASES.append((name, run))


@case("8.1.2.6/1 content-length and the DATA disagree")
def _():
    c = Conn()
    fields = Conn.get_fields(GUARDED, "POST") + [("authorization", "Bearer " + TOKEN), ("content-length", "1")]
    c.request(1, fields=fields, end_stream=False)
    c.send(frame(DATA, END_STREAM, 1, b"test"))
    return c.expect_stream_error(1, PROTOCOL_ERROR)


@case("8.1/ok a request to the gateway's own target is answered")
def _():
    c = Conn()
    c.request(1)
    status = c.expect_response(1)
    assert status == "200", status
    return "200"


@case("8.1/ok guarded requests are forwarded and answered, several in flight")
def _():
    c = Conn()
    auth = [("authorization", "Bearer " + TOKEN)]
    for sid in (1, 3, 5):
        c.request(sid, fields=Conn.get_fields(GUARDED), extra=auth)
    statuses = []
    for sid in (1, 3, 5):
        try:
            statuses.append(c.expect_response(sid))
        except AssertionError as e:
            raise AssertionError("stream %d, after %s: %s" % (sid, statuses, e))
    assert statuses == ["200"] * 3, statuses
    c.request(7, fields=Conn.get_fields(GUARDED), extra=[("authorization", "Bearer wrong")])
    status = c.expect_response(7)
    assert status == "401", status
    return "200 200 200 401"


# RFC 7541 (HPACK).
@case("7541/7.1.3 the request id, unique to each response, is never indexed")
def _():
    c = Conn()
    for sid in (1, 3):
        c.request(sid)
        c.expect_response(sid)
    ids = [f for sid in (1, 3) for f in c.decoded[sid] if f[0] == "x-request-id"]
    assert len(ids) == 2 and ids[0][1] != ids[1][1], "two responses, two request ids: %s" % ids
    plain = [f for f in ids if not isinstance(f, hpack.NeverIndexedHeaderTuple)]
    assert not plain, "request ids sent indexable: %s" % plain
    return "never indexed (two responses)"


failed = deviations = 0
for name, run in CASES:
    try:
        print("pass     %-66s %s" % (name, run()))
    except Deviation as e:
        deviations += 1
        print("deviates %-66s %s" % (name, e))
    except Exception as e:  # noqa: BLE001 - every case's failure is reported
        failed += 1
        print("FAIL     %-66s %s: %s" % (name, type(e).__name__, e))
print("%d cases: %d as RFC 9113 has it, %d refused with the h2 crate's error code, %d failed"
      % (len(CASES), len(CASES) - deviations - failed, deviations, failed))
if failed:
    sys.exit(1)
print("ok")
