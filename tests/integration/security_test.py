#!/usr/bin/python3
"""Attacks on the real binary that the security hardening closes: TLS session resumption (with
and without mTLS), connection hogs on both listeners, and running out of file descriptors.
Each test replays the attack and checks that it is refused cheaply while signed requests still
get through. (Malformed and trickled HTTP is in hostile_clients_test.py.)

Usage: security_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
from raw_clients import *  # noqa: E402,F401,F403  (RawTls, HTTP/2 frames by hand)
import proxy_process  # noqa: E402

proxy_process.measure_rss_under_asan()  # the connection-flood test bounds RSS

HEALTH = "health"


def health_request():
    return {"requestMetadata": {"kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
                                "kmsOperation": "KmsHealthCheck"}}


def wait_until(condition, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def closed_by_server(sock, seconds=10):
    """True when the server closes `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True


class SessionResumptionTest(unittest.TestCase):
    """openssl s_client -sess_out, then -sess_in: the second handshake resumes the session."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-resumption-test-")
        cls.plain = ProxyProcess(os.path.join(cls.tmp, "plain"))
        cls.mutual = ProxyProcess(os.path.join(cls.tmp, "mtls"), mtls=True)
        tls = os.path.join(cls.mutual.dir, "tls")
        cls.client = (os.path.join(tls, "client.pem"), os.path.join(tls, "client-key.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.plain.stop()
        cls.mutual.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def session(self, proxy, version, client_cert, session_option):
        """One s_client connection sending a signed GetHealthStatus; returns its output."""
        path = "/example/kms/xks/v1/health"
        body = json.dumps(health_request()).encode()
        headers = proxy.signed("POST", path, body)
        headers["Connection"] = "close"
        headers["Content-Length"] = str(len(body))
        request = ("POST %s HTTP/1.1\r\n" % path +
                   "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n").encode() + body
        command = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % proxy.port,
                   "-servername", "localhost", "-CAfile", proxy.ca, "-" + version, "-ign_eof"]
        if client_cert:
            command += ["-cert", client_cert[0], "-key", client_cert[1]]
        run = subprocess.run(command + session_option, input=request, capture_output=True,
                             timeout=30)
        output = run.stdout.decode(errors="replace")
        self.assertIn("HTTP/1.1 200 OK", output, output + run.stderr.decode(errors="replace"))
        return output

    def check_resumes(self, proxy, version, client_cert=None):
        saved = os.path.join(self.tmp, "session-%s-%d" % (version, proxy.port))
        first = self.session(proxy, version, client_cert, ["-sess_out", saved])
        self.assertIn("New, TLSv1.", first)
        second = self.session(proxy, version, client_cert, ["-sess_in", saved])
        self.assertIn("Reused, TLSv1.", second)

    def test_tls_1_2_sessions_resume(self):
        self.check_resumes(self.plain, "tls1_2")

    def test_tls_1_3_sessions_resume(self):
        self.check_resumes(self.plain, "tls1_3")

    def test_tls_1_2_sessions_resume_with_mtls(self):
        self.check_resumes(self.mutual, "tls1_2", self.client)

    def test_tls_1_3_sessions_resume_with_mtls(self):
        self.check_resumes(self.mutual, "tls1_3", self.client)


class ConnectionHogTest(unittest.TestCase):
    """Silent sockets, silent TLS connections and floods against small connection limits."""

    MAX_CONNECTIONS = 50
    PER_CLIENT = 30

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-hog-test-")
        cls.proxy = ProxyProcess(
            os.path.join(cls.tmp, "demo"),
            server_settings="max_connections = %d\nmax_connections_per_client = %d\n"
                            "admin_max_connections = 8\n" % (cls.MAX_CONNECTIONS, cls.PER_CLIENT))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        # Each test starts from an empty table: connections an earlier test closed may still be
        # open on the server side for a moment, and would count against max_connections.
        def open_connections():
            return sum(self.proxy.metric('xks_open_connections{protocol="%s"}' % p) or 0
                       for p in ("http1", "http2"))
        self.assertTrue(wait_until(lambda: open_connections() == 0))

    def connect(self, source="127.0.0.1", port=None):
        return socket.create_connection(("127.0.0.1", port or self.proxy.port), timeout=10,
                                        source_address=(source, 0))

    def signed_call(self, source="127.0.0.1"):
        connection = http.client.HTTPSConnection("localhost", self.proxy.port, timeout=10,
                                                 context=self.proxy.tls_context(),
                                                 source_address=(source, 0))
        try:
            return self.proxy.call(HEALTH, health_request(), connection=connection)[0]
        finally:
            connection.close()

    def evictions(self, listener="xks"):
        """Connections of `listener` evicted so far, whichever limit made room."""
        return sum(self.proxy.metric(
            'xks_connections_evicted_total{listener="%s",limit="%s"}' % (listener, limit)) or 0
            for limit in ("max_connections", "max_connections_per_client",
                          "max_handshakes_in_flight"))

    def test_a_client_opening_many_connections_at_once_keeps_them_all(self):
        """While handshake slots are free, nothing is evicted, however many one client opens at
        once (KMS behind a load balancer comes from a few addresses)."""
        before = self.evictions()
        with contextlib.ExitStack() as connections:
            sockets = [connections.enter_context(self.connect("127.0.0.9"))
                       for _ in range(self.PER_CLIENT - 2)]
            time.sleep(0.2)  # all admitted, all in their handshake
            context = self.proxy.tls_context()
            for sock in sockets:
                connection = http.client.HTTPSConnection("localhost", self.proxy.port,
                                                         timeout=10, context=context)
                connection.sock = context.wrap_socket(sock, server_hostname="localhost")
                self.assertEqual(self.proxy.call(HEALTH, health_request(),
                                                 connection=connection)[0], 200)
        self.assertEqual(self.evictions(), before)

    def test_one_address_cannot_churn_every_handshake_slot(self):
        """Bare TCP connects from one address evict that address's own handshakes (its share is
        an eighth of max_handshakes_in_flight), not another client's handshake in progress."""
        with contextlib.ExitStack() as hogs:
            slow = hogs.enter_context(self.connect("127.0.0.5"))
            slow.sendall(b"\x16\x03\x01")  # a ClientHello's first bytes: a handshake under way
            for _ in range(200):
                hogs.enter_context(self.connect("127.0.0.6"))
            time.sleep(0.3)
            slow.settimeout(0.2)
            try:
                self.assertNotEqual(slow.recv(1), b"")  # not closed: nothing to read yet
            except socket.timeout:
                pass
            self.assertEqual(self.signed_call("127.0.0.7"), 200)

    def test_silent_sockets_do_not_lock_out_a_signed_client(self):
        before = self.evictions()
        with contextlib.ExitStack() as hogs:
            for _ in range(self.MAX_CONNECTIONS + 5):
                hogs.enter_context(self.connect())
            time.sleep(0.3)  # accepted and admitted
            self.assertEqual(self.signed_call(), 200)
        self.assertGreater(self.evictions(), before)

    def test_silent_tls_connections_give_way_and_are_cut_off_at_the_header_timeout(self):
        with contextlib.ExitStack() as hogs:
            context = self.proxy.tls_context()
            connections = [hogs.enter_context(context.wrap_socket(
                self.connect("127.0.0.4"), server_hostname="localhost"))
                for _ in range(self.PER_CLIENT + 5)]
            self.assertEqual(self.signed_call("127.0.0.4"), 200)
            # The youngest hogs were admitted last: the server closes them at its 0.7 s header
            # timeout for a first request, not its 5 s idle timeout.
            started = time.time()
            self.assertTrue(closed_by_server(connections[-1], 4))
            self.assertLess(time.time() - started, 4)

    def test_a_flood_from_one_address_does_not_reach_other_clients(self):
        stop = threading.Event()
        opened = [0]

        def flood():
            held = []
            try:
                while not stop.is_set() and opened[0] < 3000:
                    try:
                        held.append(self.connect("127.0.0.2"))
                        opened[0] += 1
                    except OSError:
                        time.sleep(0.01)
                    if len(held) > 200:
                        held.pop(0).close()
            finally:
                for sock in held:
                    sock.close()

        rss_before = rss_bytes(self.proxy.process.pid)
        attacker = threading.Thread(target=flood)
        attacker.start()
        try:
            wait_until(lambda: opened[0] > self.PER_CLIENT * 2)
            statuses = [self.signed_call() for _ in range(20)]
            grown = rss_bytes(self.proxy.process.pid) - rss_before
        finally:
            stop.set()
            attacker.join(60)
        self.assertEqual(statuses, [200] * 20)
        self.assertGreater(self.evictions(), 0)
        # The flood holds at most its share of slots: memory stays bounded.
        self.assertLess(grown, 16 << 20, "RSS grew by %.1f MiB" % (grown / (1 << 20)))

    def test_proven_connections_are_kept_and_a_newcomer_is_refused_at_the_per_client_limit(self):
        kept = []
        try:
            for _ in range(self.PER_CLIENT):
                connection = http.client.HTTPSConnection(
                    "localhost", self.proxy.port, timeout=10, context=self.proxy.tls_context(),
                    source_address=("127.0.0.3", 0))
                kept.append(connection)
                self.assertEqual(self.proxy.call(HEALTH, health_request(),
                                                 connection=connection)[0], 200)
            refused = 'xks_connections_refused_total{listener="xks",' \
                      'limit="max_connections_per_client"}'
            before = self.proxy.metric(refused)
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                self.signed_call("127.0.0.3")
            self.assertEqual(self.proxy.metric(refused), before + 1)
            # Every kept connection still serves.
            for connection in kept:
                self.assertEqual(self.proxy.call(HEALTH, health_request(),
                                                 connection=connection)[0], 200)
            kept.pop().close()
            self.assertTrue(wait_until(lambda: self.signed_call_or_none("127.0.0.3") == 200))
        finally:
            for connection in kept:
                connection.close()

    def signed_call_or_none(self, source):
        try:
            return self.signed_call(source)
        except (ssl.SSLError, OSError):
            return None

    def test_the_admin_listener_has_its_own_cap_and_the_oldest_gives_way(self):
        with contextlib.ExitStack() as hogs:
            for _ in range(40):
                hogs.enter_context(self.connect(port=self.proxy.admin_port))
            time.sleep(0.3)
            self.assertIsNotNone(self.proxy.metric("xks_tls_handshakes_total{result=\"ok\"}"))
        self.assertGreaterEqual(self.evictions("admin"), 32)


class EvictionGoodbyeTest(unittest.TestCase):
    """An HTTP/2 connection evicted to make room is told so with GOAWAY before it closes, so a
    client retries its next request on a new connection. The header timeout is long here: the
    goodbye can only come from the eviction."""

    PER_CLIENT = 4

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-evict-test-")
        cls.proxy = ProxyProcess(
            os.path.join(cls.tmp, "demo"),
            server_settings="max_connections_per_client = %d\n" % cls.PER_CLIENT,
            edit_config=lambda config: config.replace("header_timeout_ms = 700",
                                                      "header_timeout_ms = 60000"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_an_evicted_http2_connection_gets_goaway_then_closes(self):
        clients = []
        try:
            for _ in range(self.PER_CLIENT):
                client = RawTls(self.proxy, alpn=("h2",), source="127.0.0.12")
                client.write(PREFACE + frame(SETTINGS, 0, 0))
                self.assertTrue(client.flush())
                clients.append(client)
            time.sleep(0.3)  # every preface read: each connection is an idle HTTP/2 session
            newcomer = RawTls(self.proxy, alpn=("h2",), source="127.0.0.12")
            clients.append(newcomer)
            received, closed = clients[0].read_until_closed(5)
            self.assertTrue(closed)
            self.assertEqual(goaway_error(received), 0)  # NO_ERROR: a graceful goodbye
            self.assertEqual(self.proxy.metric('xks_connections_evicted_total{listener="xks",'
                                               'limit="max_connections_per_client"}'), 1)
            # The others stay open.
            _, closed = clients[1].read_until_closed(0.5)
            self.assertFalse(closed)
        finally:
            for client in clients:
                client.close()


def audit_settings(path, extra=""):
    """An edit_config for ProxyProcess: the [audit] path replaced, settings added."""
    def edit(config):
        return re.sub(r'\[audit\]\npath = "[^"]*"\n',
                      '[audit]\npath = "%s"\n%s' % (path, extra), config)
    return edit


def encrypt_request():
    return {"requestMetadata": metadata(), "plaintext": b64(b"x" * 32),
            "encryptionAlgorithm": "AES_GCM"}


def readyz(proxy):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % proxy.admin_port,
                                    timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


class AuditFailureTest(unittest.TestCase):
    """An audit log that cannot be written is loud, and with on_full = reject nothing is
    answered 200 unaudited."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="xks-audit-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_full_disk_with_reject_refuses_requests_and_fails_readiness(self):
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"),
                             edit_config=audit_settings("/dev/full", 'on_full = "reject"\n'),
                             wait_for="/livez")
        try:
            self.assertTrue(wait_until(lambda: readyz(proxy) == 503))
            status, body = proxy.call("keys/foo/encrypt", encrypt_request())
            self.assertEqual((status, body["errorName"]), (500, "InternalException"))
            self.assertGreaterEqual(proxy.metric("xks_audit_write_errors_total"), 1)
            self.assertEqual(proxy.metric("xks_audit_writable"), 0)
        finally:
            proxy.stop()
        with open(os.path.join(self.tmp, "demo", "serve.log")) as f:
            self.assertIn("No space left on device", f.read())

    def test_a_full_disk_with_drop_serves_and_counts_what_was_lost(self):
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"),
                             edit_config=audit_settings("/dev/full"))
        try:
            status, _ = proxy.call("keys/foo/encrypt", encrypt_request())
            self.assertEqual(status, 200)
            self.assertTrue(wait_until(
                lambda: (proxy.metric("xks_audit_records_unwritten_total") or 0) >= 1))
            self.assertEqual(readyz(proxy), 200)
        finally:
            proxy.stop()

    def test_requests_the_transport_refuses_are_counted_and_audited(self):
        audit = os.path.join(self.tmp, "audit.log")
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"), edit_config=audit_settings(audit))
        series = 'xks_requests_total{keystore="",operation="",result="error",' \
                 'error="ValidationException"}'
        try:
            before = proxy.metric(series) or 0
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
                with proxy.tls_context().wrap_socket(sock, server_hostname="localhost") as tls:
                    tls.sendall(b"POST /example/kms/xks/v1/health HTTP/1.1\r\n\r\n")  # no Host
                    self.assertTrue(tls.recv(4096).startswith(b"HTTP/1.1 400 "))
            self.assertEqual(proxy.metric(series), before + 1)
        finally:
            proxy.stop()
        with open(audit) as f:
            refused = [json.loads(line) for line in f if '"refusal"' in line]
        self.assertEqual(len(refused), 1)
        self.assertEqual((refused[0]["refusal"], refused[0]["errorName"], refused[0]["status"]),
                         ("malformed", "ValidationException", 400))
        self.assertRegex(refused[0]["client"], r"^127\.0\.0\.1:\d+$")

    def test_an_unwritable_audit_path_stops_start_up_with_a_clear_error(self):
        demo = os.path.join(self.tmp, "demo")
        with self.assertRaises(RuntimeError):
            ProxyProcess(demo, edit_config=audit_settings("/nonexistent-dir/audit.log"))
        with open(os.path.join(demo, "serve.log")) as f:
            self.assertIn("cannot open the audit log /nonexistent-dir/audit.log", f.read())

    def test_a_junk_signature_flood_cannot_fill_the_disk(self):
        proxy = ProxyProcess(os.path.join(self.tmp, "demo"),
                             edit_config=audit_settings(os.path.join(self.tmp, "audit.log"),
                                                        "unauthenticated_per_second = 5\n"))
        try:
            connection = http.client.HTTPSConnection("localhost", proxy.port, timeout=10,
                                                     context=proxy.tls_context())
            for _ in range(400):
                status, _ = proxy.call("keys/foo/encrypt", encrypt_request(), secret="x" * 40,
                                       connection=connection)
                self.assertEqual(status, 401)
            connection.close()
            status, _ = proxy.call("keys/foo/encrypt", encrypt_request())
            self.assertEqual(status, 200)
            self.assertTrue(wait_until(
                lambda: (proxy.metric("xks_audit_records_suppressed_total") or 0) > 300))
        finally:
            proxy.stop()
        with open(os.path.join(self.tmp, "audit.log")) as f:
            lines = [json.loads(line) for line in f]
        failed = [line for line in lines if line.get("errorName") == "AuthenticationFailedException"]
        summarised = sum(line["count"] for line in lines if line.get("record") == "suppressed")
        self.assertEqual(len(failed) + summarised, 400)
        self.assertLess(len(failed), 100)  # 5 a second, over a few seconds
        served = [line for line in lines if line.get("status") == 200]
        self.assertEqual(len(served), 1)
        self.assertRegex(served[0]["client"], r"^127\.0\.0\.1:\d+$")
        checked = subprocess.run([BINARY, "audit", "verify", "--key-file",
                                  os.path.join(proxy.dir, "secrets/audit-key"),
                                  os.path.join(self.tmp, "audit.log")],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(checked.returncode, 0, checked.stdout)


class SecretHandlingTest(unittest.TestCase):
    """Secrets do not linger where other processes can read them, and secret files must be
    private."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="xks-secrets-test-")
        self.demo = os.path.join(self.tmp, "demo")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_secrets_from_the_environment_leave_proc_environ(self):
        subprocess.run([BINARY, "demo", "--setup-only", "--state-dir", self.demo],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        with open(os.path.join(self.demo, "secrets/hsm-pin")) as f:
            pin = f.read().strip()
        with open(os.path.join(self.demo, "secrets/sigv4-secret")) as f:
            secret = f.read().strip()

        def from_environment(config):
            config = re.sub(r'pin_file = "[^"]*"', 'pin_env = "XKS_TEST_PIN"', config)
            return re.sub(r'secret_file = "[^"]*"', 'secret_env = "XKS_TEST_SECRET"', config)

        proxy = ProxyProcess(self.demo, edit_config=from_environment,
                             environment={"XKS_TEST_PIN": pin, "XKS_TEST_SECRET": secret})
        try:
            self.assertEqual(proxy.call(HEALTH, health_request())[0], 200)
            with open("/proc/%d/environ" % proxy.process.pid, "rb") as f:
                environ = f.read()
            self.assertNotIn(pin.encode(), environ)
            self.assertNotIn(secret.encode(), environ)
            self.assertNotIn(b"XKS_TEST_SECRET=" + secret[:8].encode(), environ)
        finally:
            proxy.stop()

    def test_a_secret_file_open_to_other_users_is_refused(self):
        def loosen(state_dir):
            os.chmod(os.path.join(state_dir, "secrets/sigv4-secret"), 0o644)
        with self.assertRaises(RuntimeError):
            ProxyProcess(self.demo, before_serve=loosen)
        with open(os.path.join(self.demo, "serve.log")) as f:
            self.assertIn("is open to other users (mode 0644)", f.read())


class FileDescriptorExhaustionTest(unittest.TestCase):
    """With its descriptors used up the proxy pauses accepting instead of spinning, and serves
    again once they come back."""

    def test_accept_pauses_and_recovers(self):
        tmp = tempfile.mkdtemp(prefix="xks-emfile-test-")
        proxy = ProxyProcess(os.path.join(tmp, "demo"), open_files=96)
        try:
            in_use = len(os.listdir("/proc/%d/fd" % proxy.process.pid))
            self.assertLess(in_use, 80)
            with contextlib.ExitStack() as hogs:
                # From ten addresses: one address's handshakes alone would be held to its share.
                for i in range(120):
                    hogs.enter_context(socket.create_connection(
                        ("127.0.0.1", proxy.port), timeout=10,
                        source_address=("127.0.1.%d" % (1 + i % 10), 0)))
                time.sleep(1)
            # The hogs are gone (their handshakes end at EOF): accepting resumes.
            self.assertTrue(wait_until(lambda: proxy.call(HEALTH, health_request())[0] == 200
                                       if self.reachable(proxy) else False))
            errors = proxy.metric('xks_accept_errors_total{listener="xks"}')
            # About one per 100 ms pause while descriptors ran out, not one per turn.
            self.assertGreater(errors, 0)
            self.assertLess(errors, 40)
            self.assertEqual(proxy.stop(), 0)
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def reachable(proxy):
        try:
            proxy.scrape()
            return True
        except OSError:
            return False


if __name__ == "__main__":
    proxy_process.run(globals())
