#!/usr/bin/python3
"""The real binary's transport: keep-alive, body and header limits, stalled and vanishing clients,
100-continue, HTTP/2, TLS versions and suites, mTLS, and draining on SIGTERM. (Attacks are in
hostile_clients_test.py.)

Usage: transport_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import http.client
import json
import os
import re
import signal
import struct
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402
from raw_clients import *  # noqa: E402,F401,F403  (RawTls, HTTP/2 frames by hand)


class TransportTest(proxy_process.SharedProxyTest):
    def test_keep_alive_serves_several_requests_on_one_connection(self):
        connection = http.client.HTTPSConnection("localhost", self.proxy.port, timeout=10,
                                                 context=self.proxy.tls_context())
        for _ in range(5):
            status, _ = self.proxy.call("keys/foo/metadata", {"requestMetadata": metadata()},
                                        connection=connection)
            self.assertEqual(status, 200)
        connection.close()

    def test_a_one_mebibyte_body_is_refused_and_the_server_keeps_serving(self):
        status, body = self.proxy.call("keys/foo/encrypt", b"{" + b" " * (1 << 20) + b"}")
        self.assertEqual(status, 400)
        self.assertEqual(body["errorName"], "ValidationException")
        self.check_key_metadata()

    def test_a_client_that_stalls_in_its_headers_is_cut_off(self):
        with self.raw_tls_socket() as tls:
            tls.sendall(b"POST /example/kms/xks/v1/health HTTP/1.1\r\nHost: localhost\r\n")
            started = time.time()
            tls.settimeout(10)
            try:
                data = tls.recv(1024)
            except (ssl.SSLError, ConnectionResetError):
                data = b""
            self.assertEqual(data, b"")
            self.assertLess(time.time() - started, 9)  # the 0.7 s header timeout, not ours

    def test_clients_that_vanish_mid_request_do_not_hurt_the_server(self):
        path = "/example/kms/xks/v1/keys/foo/encrypt"
        body = json.dumps({"requestMetadata": metadata(), "plaintext": b64(os.urandom(4000)),
                           "encryptionAlgorithm": "AES_GCM"}).encode()
        headers = self.proxy.signed("POST", path, body)
        request = ("POST %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % kv for kv in headers.items()) +
            "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
        for _ in range(30):
            tls = self.raw_tls_socket()
            tls.sendall(request)
            # Reset the connection without reading: the server's answer meets a dead peer.
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            tls.close()
        time.sleep(0.5)
        self.assertIsNone(self.proxy.process.poll(), "the server died")
        self.check_key_metadata()

    def test_expect_100_continue_is_answered(self):
        path = "/example/kms/xks/v1/keys/foo/metadata"
        body = json.dumps({"requestMetadata": metadata()}).encode()
        headers = self.proxy.signed("POST", path, body, extra_headers={"Expect": "100-continue"})
        with self.raw_tls_socket() as tls:
            head = "POST %s HTTP/1.1\r\n" % path + "".join(
                "%s: %s\r\n" % kv for kv in headers.items())
            head += "Content-Length: %d\r\n\r\n" % len(body)
            tls.sendall(head.encode())
            interim = tls.recv(1024)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue"), interim)
            tls.sendall(body)
            answer = b""
            while b"keySpec" not in answer:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
            self.assertIn(b"HTTP/1.1 200 OK", answer)

    def test_http_2_answers_errors_and_oversized_bodies(self):
        (version, status, answer), = self.curl("--http2", "{}")
        self.assertEqual((version, status), ("2", 400))
        self.assertEqual(json.loads(answer)["errorName"], "ValidationException")
        (version, status, answer), = self.curl("--http2", " " * (1 << 20))
        self.assertEqual((version, status), ("2", 400))
        self.assertEqual(json.loads(answer)["errorName"], "ValidationException")
        (version, status, _), = self.curl("--http2", "{}", path="/example/nowhere")
        self.assertEqual((version, status), ("2", 404))

    def test_tls_versions_and_suites(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            context = self.proxy.tls_context()
            context.minimum_version = context.maximum_version = version
            with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10) as sock:
                with context.wrap_socket(sock, server_hostname="localhost") as tls:
                    self.assertEqual(tls.version(), version.name.replace("v", "v").replace(
                        "TLSv1_", "TLSv1."))
                    self.assertIn(tls.cipher()[0], (
                        "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"))
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(self.proxy.ca)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10) as sock:
            # Refused: OpenSSL's protocol_version alert, or a reset when the client is still
            # sending as the server closes.
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                old.wrap_socket(sock, server_hostname="localhost")


class MutualTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-mtls-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), mtls=True)
        tls = os.path.join(cls.proxy.dir, "tls")
        cls.client = (os.path.join(tls, "client.pem"), os.path.join(tls, "client-key.pem"))
        # A certificate with an allowed-looking name but from another CA.
        cls.stranger = (os.path.join(cls.tmp, "stranger.pem"), os.path.join(cls.tmp, "stranger-key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=cks.kms.us-east-1.amazonaws.com",
                        "-keyout", cls.stranger[1], "-out", cls.stranger[0]],
                       check=True, capture_output=True, timeout=30)

        # Under the right CA, with the allowed name as CN but another name as DNS SAN: the CN
        # does not count when SANs exist (RFC 6125).
        cls.impostor = (os.path.join(cls.tmp, "impostor.pem"),
                        os.path.join(cls.tmp, "impostor-key.pem"))
        request = os.path.join(cls.tmp, "impostor.csr")
        extensions = os.path.join(cls.tmp, "impostor.ext")
        with open(extensions, "w") as f:
            f.write("subjectAltName=DNS:not-kms.example.com\nextendedKeyUsage=clientAuth\n")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=cks.kms.us-east-1.amazonaws.com",
                        "-keyout", cls.impostor[1], "-out", request],
                       check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "x509", "-req", "-in", request, "-days", "1",
                        "-CA", os.path.join(tls, "ca.pem"), "-CAkey", os.path.join(tls, "ca-key.pem"),
                        "-CAcreateserial", "-extfile", extensions, "-out", cls.impostor[0]],
                       check=True, capture_output=True, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def handshake(self, client_cert):
        context = self.proxy.tls_context(client_cert)
        with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10) as sock:
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                # TLS 1.3 reports a rejected client certificate on the first read.
                tls.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return tls.recv(1024)

    def test_the_kms_client_certificate_is_accepted(self):
        self.assertTrue(self.handshake(self.client).startswith(b"HTTP/1.1"))

    def test_other_certificates_end_the_handshake_with_handshake_failure(self):
        for cert in (None, self.stranger, self.impostor):
            with self.assertRaises(ssl.SSLError) as caught:
                self.handshake(cert)
            if cert is not None:
                self.assertIn("HANDSHAKE_FAILURE", str(caught.exception).upper())


class DrainTest(unittest.TestCase):
    """SIGTERM drains: every connection hears its protocol's goodbye (HTTP/2 GOAWAY naming the
    last stream it will answer; HTTP/1.1 Connection: close), requests in flight are answered,
    and the process exits 0."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="xks-drain-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def h2_connection(self, proxy):
        client = RawTls(proxy, alpn=("h2",))
        client.write(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
        client.flush()
        return client

    def h2_encrypt(self, proxy, client, stream_id):
        path = "/example/kms/xks/v1/keys/foo/encrypt"
        body = json.dumps({"requestMetadata": metadata(), "plaintext": b64(b"x" * 32),
                           "encryptionAlgorithm": "AES_GCM"}).encode()
        headers = proxy.signed("POST", path, body)
        block = b"\x83\x87" + hpack_literal(":path", path) + hpack_literal(
            ":authority", headers.pop("Host"))
        for name, value in headers.items():
            block += hpack_literal(name.lower(), value)
        block += hpack_literal("content-length", str(len(body)))
        client.write(frame(HEADERS, END_HEADERS, stream_id, block) +
                     frame(DATA, END_STREAM, stream_id, body))
        client.flush()

    def test_sigterm_stops_cleanly(self):
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"))
        status, _ = proxy.call("keys/foo/metadata", {"requestMetadata": metadata()})
        self.assertEqual(status, 200)
        self.assertEqual(proxy.stop(), 0)

    def test_idle_connections_hear_goodbye(self):
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"))
        h2 = self.h2_connection(proxy)
        h1 = http.client.HTTPSConnection("localhost", proxy.port, timeout=10,
                                         context=proxy.tls_context())
        self.assertEqual(proxy.call("health", health_payload(), connection=h1)[0], 200)
        started = time.time()
        proxy.process.send_signal(signal.SIGTERM)
        received, closed = h2.read_until_closed(seconds=5)
        self.assertTrue(closed)
        goaways = [struct.unpack("!II", p[:8]) for k, _, _, p in parse_frames(received)
                   if k == GOAWAY]
        self.assertEqual(goaways, [(0, 0)])  # no stream answered; NO_ERROR
        h1.sock.settimeout(5)
        self.assertEqual(h1.sock.recv(1), b"")  # the idle keep-alive connection is closed
        self.assertEqual(proxy.process.wait(timeout=10), 0)
        self.assertLess(time.time() - started, 4)  # not held until the 5 s drain limit
        proxy.stop()
        h1.close()
        h2.close()

    def test_busy_connections_answer_then_close(self):
        control = os.path.join(self.tmp, "faults")
        with open(control, "w") as f:
            f.write("delay C_Encrypt 1500\n")
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"), fault_control=control,
                             server_settings="request_deadline_ms = 4000\n")
        h2 = self.h2_connection(proxy)
        self.h2_encrypt(proxy, h2, 1)
        h1 = http.client.HTTPSConnection("localhost", proxy.port, timeout=10,
                                         context=proxy.tls_context())
        path = "/example/kms/xks/v1/keys/foo/encrypt"
        body = json.dumps({"requestMetadata": metadata(), "plaintext": b64(b"y" * 32),
                           "encryptionAlgorithm": "AES_GCM"}).encode()
        h1.request("POST", path, body=body, headers=proxy.signed("POST", path, body))
        # Both requests are at the (slow) HSM before the signal.
        deadline = time.time() + 10
        while (proxy.metric('xks_hsm_sessions{hsm="%s",state="busy"}' % self.hsm_name(proxy))
               or 0) < 2 and time.time() < deadline:
            time.sleep(0.05)
        proxy.process.send_signal(signal.SIGTERM)
        answer = h1.getresponse()
        self.assertEqual(answer.status, 200)
        self.assertEqual(answer.getheader("Connection"), "close")
        answer.read()
        received, closed = h2.read_until_closed(seconds=8)
        self.assertTrue(closed)
        frames = parse_frames(received)
        self.assertEqual(response_statuses(received), {1: 200})
        goaways = [struct.unpack("!II", p[:8]) for k, _, _, p in frames if k == GOAWAY]
        self.assertEqual(goaways, [(1, 0)])  # stream 1 is answered; NO_ERROR
        self.assertEqual(proxy.process.wait(timeout=10), 0)
        proxy.stop()
        h1.close()
        h2.close()

    @staticmethod
    def hsm_name(proxy):
        match = re.search(r'xks_hsm_sessions\{hsm="([^"]+)"', proxy.scrape())
        return match.group(1)


if __name__ == "__main__":
    proxy_process.run(globals())
