"""Raw clients for tests that need to control every byte: TLS over memory BIOs (each write one
TLS record, a whole exchange in one TCP write), hand-built HTTP/1.1 requests signed as KMS signs
them, and HTTP/2 frames with RFC 7541 literals (no Huffman coding), read back with the hpack
package."""
import json
import socket
import ssl
import struct
import time

import hpack


class RawTls:
    """A TLS client whose every write() is one TLS record, sent when flush() is called."""

    def __init__(self, proxy, alpn=("http/1.1",), fragment_client_hello=False,
                 source="127.0.0.1"):
        context = ssl.create_default_context(cafile=proxy.ca)
        context.set_alpn_protocols(list(alpn))
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10,
                                             source_address=(source, 0))
        self.pending = b""
        first = True
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = self.outgoing.read()
                if first and fragment_client_hello:
                    data = one_byte_handshake_records(data)
                first = False
                self.sock.sendall(data)
                self._receive_some()
        self.sock.sendall(self.outgoing.read())

    def _receive_some(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the proxy")
        self.incoming.write(data)

    def write(self, data, record_size=None):
        """Queues `data` as TLS records of `record_size` bytes (one record when None)."""
        step = record_size or max(1, len(data))
        for i in range(0, len(data), step):
            self.tls.write(data[i:i + step])
        self.pending += self.outgoing.read()

    def flush(self):
        """Sends everything queued in one TCP write; False when the proxy closed meanwhile."""
        data, self.pending = self.pending, b""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def read_until_closed(self, seconds=10):
        """Everything the proxy sends until it closes the connection or `seconds` pass."""
        received = b""
        self.sock.settimeout(0.5)
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                while True:
                    data = self.tls.read(65536)
                    if not data:
                        return received, True
                    received += data
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return received, True
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return received, True
            if not data:
                return received, True
            self.incoming.write(data)
        return received, False

    def close(self):
        self.sock.close()


def one_byte_handshake_records(data):
    """Re-frames the ClientHello record(s) as TLS records of one handshake byte each."""
    out = b""
    while data:
        content_type, version, length = struct.unpack("!BHH", data[:5])
        body, data = data[5:5 + length], data[5 + length:]
        for byte in body:
            out += struct.pack("!BHH", content_type, version, 1) + bytes([byte])
    return out


def http1_request(proxy, operation_path, payload, extra=b""):
    path = "/example/kms/xks/v1/" + operation_path
    body = json.dumps(payload).encode()
    headers = proxy.signed("POST", path, body)
    lines = ["POST %s HTTP/1.1" % path] + ["%s: %s" % item for item in headers.items()]
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n").encode() + extra + b"\r\n" + body


def health_payload():
    return {"requestMetadata": {"kmsRequestId": "hostile-test", "kmsOperation": "KmsHealthCheck"}}


# --- HTTP/2 by hand (RFC 9113 frames, RFC 7541 literals without Huffman coding) ---

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, GOAWAY, RST_STREAM, PING = 0x0, 0x1, 0x4, 0x7, 0x3, 0x6
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream_id, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack("!I", stream_id) + payload


def hpack_int(value, prefix_bits, first_byte_flags):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = [first_byte_flags | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, indexed=False):
    """A literal field with a literal name; `indexed` adds it to the dynamic table."""
    name, value = name.encode(), value.encode()
    return (b"\x40" if indexed else b"\x00") + hpack_int(len(name), 7, 0) + name + \
        hpack_int(len(value), 7, 0) + value


def request_block(path, extra_fields=b""):
    return (b"\x83" + b"\x87" + hpack_literal(":path", path) +  # :method POST, :scheme https
            hpack_literal(":authority", "localhost") + extra_fields)


def parse_frames(data):
    frames = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        kind, flags = data[3], data[4]
        stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        frames.append((kind, flags, stream_id, data[9:9 + length]))
        data = data[9 + length:]
    return frames


def response_statuses(data):
    """{stream id: :status} of every response HEADERS frame in `data`."""
    decoder = hpack.Decoder()
    statuses = {}
    for kind, flags, stream_id, payload in parse_frames(data):
        if kind == HEADERS:
            fields = dict(decoder.decode(payload))
            statuses[stream_id] = int(fields[":status"])
    return statuses


def goaway_error(data):
    for kind, _, _, payload in parse_frames(data):
        if kind == GOAWAY:
            return struct.unpack("!II", payload[:8])[1]
    return None
