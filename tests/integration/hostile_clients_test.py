#!/usr/bin/python3
"""Unauthenticated attacks on the real xks-proxy binary over real TLS: requests split into
one-byte TLS records on every read path, unterminated chunk lines and their relatives, the HPACK
bomb, unfinished HTTP/2 streams. Each attack must leave the process alive, within a stated RSS
bound, and serving a signed request afterwards.

The client side is Python's ssl module over memory BIOs (so that every write becomes one TLS
record and a whole attack leaves in one TCP write), hand-built HTTP/1.1 and HTTP/2 frames, and
the hpack package to read the proxy's HTTP/2 answers.

Usage: hostile_clients_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import json
import os
import socket
import ssl
import struct
import sys
import tempfile
import time
import unittest

import hpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import proxy_process  # noqa: E402  (ProxyProcess and signing helpers)
from proxy_process import rss_bytes  # noqa: E402
from raw_clients import *  # noqa: E402,F401,F403  (RawTls, HTTP/1.1 and HTTP/2 by hand)

MIB = 1 << 20
# What any one attack below may add to the proxy's resident memory. The attacks send up to
# 24 MiB each; before the limits they grew RSS by 27 to 88 MiB.
RSS_BOUND = 16 * MIB
proxy_process.measure_rss_under_asan()



class HostileClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-hostile-test-")
        cls.proxy = proxy_process.ProxyProcess(os.path.join(cls.tmp, "demo"))
        # Warm up every path once so that what is measured is what an attack adds.
        for _ in range(3):
            cls.proxy.call("health", health_payload())

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()

    def setUp(self):
        self.rss_before = rss_bytes(self.proxy.process.pid)

    def assert_survived(self):
        """Alive, within the RSS bound, and a signed request is answered."""
        self.assertIsNone(self.proxy.process.poll(), "the proxy died")
        grown = rss_bytes(self.proxy.process.pid) - self.rss_before
        sys.stderr.write("[RSS %+.1f MiB] " % (grown / MIB))
        self.assertLess(grown, RSS_BOUND, "RSS grew by %.1f MiB" % (grown / MIB))
        status, answer = self.proxy.call("health", health_payload())
        self.assertEqual(status, 200, answer)

    # --- one-byte TLS records on every read path ---

    def test_an_http_1_1_request_in_one_byte_records_is_served(self):
        client = RawTls(self.proxy)
        client.write(http1_request(self.proxy, "health", health_payload()), record_size=1)
        self.assertTrue(client.flush())
        received, _ = client.read_until_closed(seconds=3)
        client.close()
        self.assertTrue(received.startswith(b"HTTP/1.1 200 "), received[:100])
        self.assert_survived()

    def test_an_8000_byte_body_in_one_byte_records_in_one_tcp_write(self):
        # The remote crash: each record completed a read inline, one stack frame per record.
        path = "/example/kms/xks/v1/health"
        head = ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8000\r\n\r\n" % path)
        for _ in range(3):
            client = RawTls(self.proxy)
            client.write(head.encode())
            client.write(b"x" * 8000, record_size=1)
            client.flush()
            received, _ = client.read_until_closed(seconds=10)
            client.close()
            # Unsigned: read whole, then refused by authentication (or as not JSON).
            self.assertRegex(received[:20], rb"^HTTP/1.1 (400|401) ")
        self.assert_survived()

    def test_pipelined_requests_in_one_byte_records(self):
        client = RawTls(self.proxy)
        request = http1_request(self.proxy, "health", health_payload())
        client.write(request * 20, record_size=1)
        client.flush()
        received, _ = client.read_until_closed(seconds=5)
        client.close()
        self.assertEqual(received.count(b"HTTP/1.1 200 "), 20)
        self.assert_survived()

    def test_a_client_hello_in_one_byte_records(self):
        client = RawTls(self.proxy, fragment_client_hello=True)
        client.write(http1_request(self.proxy, "health", health_payload()))
        client.flush()
        received, _ = client.read_until_closed(seconds=3)
        client.close()
        self.assertTrue(received.startswith(b"HTTP/1.1 200 "), received[:100])
        self.assert_survived()

    def test_http_2_frames_in_one_byte_records(self):
        client = RawTls(self.proxy, alpn=("h2",))
        # Small enough that each request arrives within the test configuration's 0.7 s
        # header_timeout even on a busy machine: what is tested is the record splitting.
        body = b"x" * 2000
        frames = PREFACE + frame(SETTINGS, 0, 0)
        for stream_id in range(1, 40, 2):
            frames += frame(HEADERS, END_HEADERS, stream_id,
                            request_block("/example/kms/xks/v1/health"))
            frames += frame(DATA, 0, stream_id, body[:1500]) + \
                frame(DATA, END_STREAM, stream_id, body[1500:])
        client.write(frames, record_size=1)
        client.flush()
        received, _ = client.read_until_closed(seconds=8)
        client.close()
        statuses = response_statuses(received)
        # Unsigned: every stream is read whole and refused by authentication.
        self.assertEqual(len(statuses), 20, statuses)
        self.assertTrue(all(s in (400, 401) for s in statuses.values()), statuses)
        self.assert_survived()

    # --- bytes before a line end: chunk lines, trailers, headers ---

    def send_http1_attack(self, head, filler, total, max_read=4 * MIB):
        """Sends `head` then up to `total` bytes of `filler` without a line end; the answer.
        The proxy must stop reading after `max_read` bytes."""
        client = RawTls(self.proxy)
        client.write(head.encode())
        client.flush()
        sent = 0
        piece = filler * (16384 // len(filler))
        client.sock.settimeout(5)
        while sent < total:
            client.write(piece)
            if not client.flush():
                break
            sent += len(piece)
        received, closed = client.read_until_closed(seconds=5)
        client.close()
        self.assertTrue(closed, "the connection was left open")
        self.assertLess(sent, max_read, "the proxy kept reading past the limit")
        return received

    def test_an_unterminated_chunk_line_is_refused_at_the_limit(self):
        head = ("POST /example/kms/xks/v1/keys/foo/encrypt HTTP/1.1\r\nHost: localhost\r\n"
                "Transfer-Encoding: chunked\r\n\r\n5;ext=")
        received = self.send_http1_attack(head, b"x", 24 * MIB)
        self.assertTrue(received.startswith(b"HTTP/1.1 400 "), received[:200])
        self.assert_survived()

    def test_an_endless_chunk_size_is_refused(self):
        head = ("POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        received = self.send_http1_attack(head, b"0", 24 * MIB)
        self.assertRegex(received[:20], rb"^HTTP/1.1 400 ")
        self.assert_survived()

    def test_endless_trailers_are_refused(self):
        head = ("POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n"
                "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
        received = self.send_http1_attack(head, b"x-trailer: 1\r\n", 24 * MIB)
        self.assertRegex(received[:20], rb"^HTTP/1.1 400 ")
        self.assert_survived()

    def test_endless_header_lines_are_refused_with_a_validation_error(self):
        head = "POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n"
        received = self.send_http1_attack(head, b"x-header: 1\r\n", 24 * MIB)
        self.assertTrue(received.startswith(b"HTTP/1.1 400 "), received[:200])
        self.assertIn(b'"errorName":"ValidationException"', received)
        self.assert_survived()

    def test_an_endless_request_line_is_refused_with_a_validation_error(self):
        received = self.send_http1_attack("POST /", b"a", 24 * MIB)
        self.assertTrue(received.startswith(b"HTTP/1.1 400 "), received[:200])
        self.assert_survived()

    def test_a_chunked_body_over_the_limit_in_tiny_chunks_is_refused(self):
        head = ("POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        # After refusing a body the proxy reads and drops up to 16 MiB for 2 s, so that a client that
        # sends its whole body before reading still sees the answer.
        received = self.send_http1_attack(head, b"1;e=v\r\nx\r\n", 24 * MIB, max_read=24 * MIB)
        self.assertTrue(received.startswith(b"HTTP/1.1 400 "), received[:200])
        self.assertIn(b'"errorName":"ValidationException"', received)
        self.assert_survived()

    # --- HTTP/1.1 message rules (RFC 9112, as a strict origin server) ---

    def exchange(self, raw):
        client = RawTls(self.proxy)
        client.write(raw)
        client.flush()
        received, _ = client.read_until_closed(seconds=3)
        client.close()
        return received

    def test_ambiguous_http_1_1_requests_are_refused_before_authentication(self):
        base = ("POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Length: 2\r\n")
        cases = {
            "no Host": "POST /example/kms/xks/v1/health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "two Hosts": base + "Host: other\r\n\r\n{}",
            "a Host that is no authority": base.replace("Host: localhost", "Host: a b/c") +
                                           "\r\n{}",
            "Content-Length and Transfer-Encoding":
                base + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            "a coding other than chunked":
                base.replace("Content-Length: 2", "Transfer-Encoding: gzip, chunked") +
                "\r\n2\r\n{}\r\n0\r\n\r\n",
            "two Transfer-Encoding fields":
                base.replace("Content-Length: 2", "Transfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: chunked") + "\r\n2\r\n{}\r\n0\r\n\r\n",
            "Transfer-Encoding in HTTP/1.0":
                base.replace("HTTP/1.1", "HTTP/1.0").replace("Content-Length: 2",
                                                              "Transfer-Encoding: chunked") +
                "\r\n2\r\n{}\r\n0\r\n\r\n",
            "an unknown HTTP version": base.replace("HTTP/1.1", "HTTP/1.7") + "\r\n{}",
            "a target in no request form": base.replace("POST /example", "POST example") +
                                           "\r\n{}",
            "a folded header line": base + "X-Folded: a\r\n b\r\n\r\n{}",
            "an absolute-form target with user info":
                base.replace("POST /example", "POST https://u@evil/example") + "\r\n{}",
            "an absolute-form target without authority":
                base.replace("POST /example", "POST https:///example") + "\r\n{}",
        }
        for name, raw in cases.items():
            received = self.exchange(raw.encode())
            self.assertTrue(received.startswith(b"HTTP/1.1 400 "), "%s: %r" % (name, received[:120]))
            self.assertIn(b'"errorName":"ValidationException"', received, name)
            self.assertIn(b"Connection: close", received, name)
        self.assert_survived()

    def test_a_request_target_in_absolute_form_is_served(self):
        # RFC 9112 §3.2.2: a server must accept it; its authority replaces Host.
        raw = http1_request(self.proxy, "health", health_payload())
        path = b"/example/kms/xks/v1/health"
        host = ("localhost:%d" % self.proxy.port).encode()
        raw = raw.replace(b"POST " + path, b"POST https://" + host + path, 1)
        raw = raw.replace(b"Host: " + host, b"Host: ignored.example", 1)
        received = self.exchange(raw)
        self.assertTrue(received.startswith(b"HTTP/1.1 200 "), received[:200])

    # --- HTTP/2 ---

    def test_the_hpack_bomb_is_reset_without_decoding_it(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0))
        # A 4 KB value enters the dynamic table once; every later byte 0xbe refers to it, so
        # each 16 KB frame decodes to 64 MB. Past twice max_header_bytes the proxy stops
        # decoding (nghttp2 checks every field it hands over) and resets the stream.
        bomb = hpack_literal("x-bomb", "a" * 4000, indexed=True)
        for n in range(20):
            stream_id = 2 * n + 1
            block = request_block("/example/kms/xks/v1/health", bomb if n == 0 else b"")
            block += b"\xbe" * (16384 - len(block))
            client.write(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))
        client.flush()
        received, _ = client.read_until_closed(seconds=3)
        client.close()
        resets = {stream_id: struct.unpack("!I", payload[:4])[0]
                  for kind, _, stream_id, payload in parse_frames(received)
                  if kind == RST_STREAM}
        self.assertEqual(resets, {2 * n + 1: 0xb for n in range(20)})  # ENHANCE_YOUR_CALM
        self.assertEqual(response_statuses(received), {})
        self.assert_survived()

    def test_a_header_list_over_the_limit_is_answered_400(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0))
        fields = b"".join(hpack_literal("x-h%d" % i, "v" * 1000) for i in range(20))  # ~20 KB
        block = request_block("/example/kms/xks/v1/health", fields)
        client.write(frame(HEADERS, END_STREAM, 1, block[:16000]) +
                     frame(0x9, END_HEADERS, 1, block[16000:]))  # CONTINUATION
        client.flush()
        received, _ = client.read_until_closed(seconds=2)
        client.close()
        self.assertEqual(response_statuses(received), {1: 400})
        self.assert_survived()

    def unfinished_streams(self, respect_flow_control):
        """128 streams, each HEADERS without END_STREAM and up to 64 KiB of DATA, never ended
        and never read; returns the socket's answer so far."""
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
        client.flush()
        # The proxy's connection window is server.http2_connection_buffer_bytes (256 KiB).
        allowance = 256 * 1024 if respect_flow_control else 128 * 64 * 1024
        for n in range(128):
            stream_id = 2 * n + 1
            client.write(frame(HEADERS, END_HEADERS, stream_id,
                               request_block("/example/kms/xks/v1/keys/foo/encrypt")))
            for _ in range(4):
                size = min(16384, allowance)
                if size:
                    client.write(frame(DATA, 0, stream_id, b"x" * size))
                    allowance -= size
            if not client.flush():
                break
        return client

    def test_unfinished_http_2_bodies_stop_at_the_connection_budget(self):
        clients = [self.unfinished_streams(respect_flow_control=True) for _ in range(4)]
        time.sleep(0.5)
        # Still open (nothing broke the protocol), but holding at most the budget each.
        self.assertIsNone(self.proxy.process.poll())
        self.assert_survived()
        for client in clients:
            client.close()

    def test_http_2_bodies_beyond_the_windows_are_refused_stream_by_stream(self):
        client = self.unfinished_streams(respect_flow_control=False)
        received, _ = client.read_until_closed(seconds=3)
        client.close()
        # Each stream reserves max_body_bytes (no content-length): the first three fit the
        # 256 KiB budget and hold their 64 KiB; every later one is refused (REFUSED_STREAM)
        # and its DATA dropped, so ignoring flow control gains the attacker nothing.
        resets = {stream_id: struct.unpack("!I", payload[:4])[0]
                  for kind, _, stream_id, payload in parse_frames(received)
                  if kind == RST_STREAM}
        refused = [stream_id for stream_id, code in resets.items() if code == 0x7]
        self.assertEqual(sorted(refused), list(range(7, 257, 2)))
        # The three admitted ones never finish their bodies: at the header timeout they are
        # reset too, with CANCEL.
        self.assertEqual({code for stream_id, code in resets.items() if stream_id < 7} - {0x8},
                         set())
        self.assert_survived()

    def test_an_http_2_body_over_the_limit_is_answered_400(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
        client.write(frame(HEADERS, END_HEADERS, 1, request_block("/example/kms/xks/v1/health")))
        # What the stream window allows: one byte more than server.max_body_bytes (64 KiB).
        for _ in range(4):
            client.write(frame(DATA, 0, 1, b"x" * 16384))
        client.write(frame(DATA, 0, 1, b"x"))
        client.flush()
        received, _ = client.read_until_closed(seconds=2)
        client.close()
        self.assertEqual(response_statuses(received), {1: 400})
        self.assert_survived()

    def test_endless_continuation_frames_end_the_connection(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0))
        client.write(frame(HEADERS, 0, 1, request_block("/example/kms/xks/v1/health")))
        for _ in range(200):
            client.write(frame(0x9, 0, 1, hpack_literal("x-more", "y" * 8000)))  # CONTINUATION
        client.flush()
        received, closed = client.read_until_closed(seconds=5)
        client.close()
        self.assertTrue(closed)
        self.assertEqual(goaway_error(received), 0xb)  # ENHANCE_YOUR_CALM
        self.assert_survived()

    def h2_until(self, client, done, seconds, ping_every=0.2):
        """Sends a PING every `ping_every` s (frames that are not requests) until `done(frames)`
        or `seconds` pass; returns the frames received, whether the connection closed, and the
        time taken."""
        received, started = b"", time.time()
        while time.time() - started < seconds:
            client.write(frame(PING, 0, 0, b"\0" * 8))
            if not client.flush():
                return parse_frames(received), True, time.time() - started
            data, closed = client.read_until_closed(seconds=ping_every)
            received += data
            if closed or done(parse_frames(received)):
                return parse_frames(received), closed, time.time() - started
        return parse_frames(received), False, time.time() - started

    def test_a_half_sent_http_2_stream_is_reset_at_the_header_timeout_despite_pings(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0))
        # A header block without END_STREAM: the body never comes.
        client.write(frame(HEADERS, END_HEADERS, 1, request_block("/example/kms/xks/v1/health")))
        client.flush()
        reset = lambda frames: any(k == RST_STREAM and sid == 1 for k, _, sid, _ in frames)
        frames, _, took = self.h2_until(client, reset, seconds=5)
        self.assertTrue(reset(frames), frames)
        code = next(struct.unpack("!I", p)[0] for k, _, sid, p in frames
                    if k == RST_STREAM and sid == 1)
        self.assertEqual(code, 0x8)  # CANCEL
        self.assertLess(took, 3)  # the test configuration's 0.7 s, not the 5 s idle timeout
        client.close()
        self.assert_survived()

    def test_pings_do_not_keep_an_idle_http_2_connection_open(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
        client.flush()
        goaway = lambda frames: any(k == GOAWAY for k, _, _, _ in frames)
        frames, closed, took = self.h2_until(client, goaway, seconds=8)
        client.close()
        # No request within header_timeout: a goodbye (GOAWAY NO_ERROR), then the close.
        self.assertEqual([struct.unpack("!II", p[:8])[1] for k, _, _, p in frames
                          if k == GOAWAY], [0])
        self.assertLess(took, 4)
        self.assert_survived()

    def test_rapid_reset_ends_the_connection(self):
        client = RawTls(self.proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0))
        for i in range(150):
            stream_id = 1 + 2 * i
            client.write(frame(HEADERS, END_HEADERS, stream_id,
                               request_block("/example/kms/xks/v1/health")) +
                         frame(RST_STREAM, 0, stream_id, struct.pack("!I", 0x8)))
        client.flush()
        received, closed = client.read_until_closed(seconds=5)
        client.close()
        self.assertTrue(closed)
        self.assertEqual(goaway_error(received), 0xb)  # ENHANCE_YOUR_CALM
        self.assertGreaterEqual(self.proxy.metric(
            'xks_http_refusals_total{protocol="http2",reason="reset_flood"}'), 1)
        self.assert_survived()

    def test_refusals_are_counted_in_the_metrics(self):
        client = RawTls(self.proxy)
        client.write(b"POST / HTTP/1.1\r\n" + b"x-header: 1\r\n" * 2000)
        client.flush()
        client.read_until_closed(seconds=2)
        client.close()
        import urllib.request
        with urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % self.proxy.admin_port, timeout=5) as response:
            text = response.read().decode()
        line = [l for l in text.splitlines() if l.startswith(
            'xks_http_refusals_total{protocol="http1",reason="header_bytes"}')]
        self.assertEqual(len(line), 1, text)
        self.assertGreaterEqual(float(line[0].split()[-1]), 1)

    def test_a_header_trickled_byte_by_byte_is_cut_off_at_the_header_timeout(self):
        # The test configuration's header_timeout_ms is 700: bytes that keep coming must not
        # extend it, whether they come one record at a time or in bursts of tiny records.
        line = b"POST /example/kms/xks/v1/health HTTP/1.1\r\nX-Slow: " + b"a" * 5000
        for burst in (1, 200):
            client = RawTls(self.proxy)
            started = time.time()
            closed_after = None
            client.sock.settimeout(0.05)
            for i in range(0, len(line), burst):
                client.write(line[i:i + burst], record_size=1)
                try:
                    client.sock.sendall(client.pending)
                    client.pending = b""
                    if client.sock.recv(65536) == b"":  # only the close_notify alert comes
                        closed_after = time.time() - started
                        break
                except socket.timeout:
                    pass
                except OSError:  # reset: closed with our bytes still arriving
                    closed_after = time.time() - started
                    break
                if time.time() - started > 10:
                    break
            client.close()
            self.assertIsNotNone(closed_after, "a trickling client kept its connection")
            self.assertLess(closed_after, 5)
        self.assert_survived()

    def test_signed_requests_are_served_while_attacks_run(self):
        import threading
        stop = threading.Event()

        def tiny_records():
            while not stop.is_set():
                client = RawTls(self.proxy)
                client.write(b"POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: h\r\n"
                             b"Content-Length: 8000\r\n\r\n")
                client.write(b"x" * 8000, record_size=1)
                client.flush()
                client.read_until_closed(seconds=2)
                client.close()

        def endless_headers():
            while not stop.is_set():
                client = RawTls(self.proxy)
                client.write(b"POST / HTTP/1.1\r\n" + b"x-a: b\r\n" * 5000)
                client.flush()
                client.read_until_closed(seconds=2)
                client.close()

        attackers = [threading.Thread(target=t) for t in (tiny_records, tiny_records,
                                                          endless_headers)]
        for attacker in attackers:
            attacker.start()
        try:
            time.sleep(0.3)
            statuses = [self.proxy.call("health", health_payload())[0] for _ in range(20)]
        finally:
            stop.set()
            for attacker in attackers:
                attacker.join()
        self.assertEqual(statuses, [200] * 20)
        self.assert_survived()

    # --- the admin listener (plain HTTP) ---

    def test_the_admin_listener_refuses_an_unterminated_chunk_line(self):
        sock = socket.create_connection(("127.0.0.1", self.proxy.admin_port), timeout=5)
        sock.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=")
        sent = 0
        try:
            while sent < 24 * MIB:
                sock.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            pass
        sock.close()
        self.assertLess(sent, 4 * MIB)
        self.assert_survived()


if __name__ == "__main__":
    proxy_process.run(globals())
