#!/usr/bin/python3
"""`xks-load probe` against the demo (which passes, warning that its CA is private) and against
deliberately broken setups, each of which must be named as KMS would name it: a private CA
without --cacert, a certificate for another name, a wrong URI path, a wrong secret, an unknown
key, an encrypt-only key, nothing listening, a server that answers too slowly, one that answers
HTML or broken JSON, and an mTLS proxy probed with and without a client certificate.

Usage: probe_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import contextlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


@contextlib.contextmanager
def https_server(context, handler=http.server.BaseHTTPRequestHandler):
    """An HTTPS server on loopback for the duration, yielding its port. The probe hangs up on
    some answers and handshakes: the server does not report those."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda *_: None
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def demo_certificate(proxy):
    """A server TLS context with the demo's certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(proxy.dir, "tls/server.pem"),
                            os.path.join(proxy.dir, "tls/server-key.pem"))
    return context


class MisbehavingHandler(http.server.BaseHTTPRequestHandler):
    """What it answers depends on the URI prefix: /slow waits 400 ms before a right
    GetHealthStatus answer, /html answers a web page, /broken answers JSON that does not parse,
    /gone answers 404 InvalidUriPathException, /noisy answers 500 with an errorMessage of
    terminal escapes, 20 kB long."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        content_type, body = "application/json", json.dumps({
            "xksProxyFleetSize": 1, "xksProxyVendor": "test", "xksProxyModel": "test",
            "ekmVendor": "test",
            "ekmFleetDetails": [{"id": "h", "model": "m", "healthStatus": "ACTIVE"}]})
        if self.path.startswith("/slow/"):
            time.sleep(0.4)
        elif self.path.startswith("/html/"):
            content_type, body = "text/html", "<html>It works!</html>"
        elif self.path.startswith("/broken/"):
            body = '{"xksProxyFleetSize": 1,'
        status = 200
        if self.path.startswith("/gone/"):
            status, body = 404, '{"errorName":"InvalidUriPathException"}'
        elif self.path.startswith("/noisy/"):
            status, body = 500, json.dumps({"errorName": "InternalException",
                                            "errorMessage": "\x1b[2J" * 5000})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


class ProbeTest(proxy_process.SharedProxyTest):
    def probe(self, *arguments, port=None, ca=True, secret_file=None, prefix="/example",
              budget_ms=10000, expect_exit=None):
        """xks-load probe's JSON report. The budget is one no busy test machine misses, but for
        the tests about slow answers: timing is not what the others test."""
        command = [LOAD_BINARY, "probe", "--host", "localhost",
                   "--port", str(port or self.proxy.port),
                   "--access-key-id", self.proxy.access_key_id,
                   "--secret-file", secret_file or os.path.join(self.proxy.dir,
                                                                "secrets/sigv4-secret"),
                   "--prefix", prefix, "--budget-ms", str(budget_ms), "--json", "-"]
        if ca:
            command += ["--cacert", self.proxy.ca]
        run = subprocess.run(command + list(arguments), capture_output=True, text=True,
                             timeout=60)
        if expect_exit is not None:
            self.assertEqual(run.returncode, expect_exit, run.stdout + run.stderr)
        report = json.loads(run.stdout)
        self.assertEqual(report["passed"], run.returncode == 0)
        return report

    def failed(self, report):
        """The one failed check: (name, kms_error, cause)."""
        failures = [c for c in report["checks"] if c["result"] == "failed"]
        self.assertEqual(len(failures), 1, report)
        return failures[0]

    def test_the_demo_passes_with_a_warning_for_its_private_ca(self):
        report = self.probe("--key", "foo", expect_exit=0)
        names = [c["name"] for c in report["checks"]]
        self.assertEqual(names, ["DNS", "TCP", "TLS", "GetHealthStatus", "key foo: GetKeyMetadata",
                                 "key foo: Encrypt and Decrypt with AAD"])
        tls = report["checks"][2]
        self.assertEqual(tls["result"], "warning")
        self.assertEqual(tls["kms_error"], "XKS_PROXY_INVALID_TLS_CONFIGURATION")
        self.assertIn("public certificate authorities only", tls["cause"])
        self.assertRegex(tls["detail"], r"^TLSv1\.3 TLS_AES_256_GCM_SHA384; certificate for "
                                        r"localhost, 127\.0\.0\.1 from /CN=xks-proxy demo CA")
        for check in report["checks"][3:]:
            self.assertEqual(check["result"], "ok", check)
        self.assertIn("ACTIVE", report["checks"][3]["detail"])
        self.assertIn("AES_256, keyUsage [ENCRYPT DECRYPT], ENABLED", report["checks"][4]["detail"])
        self.assertIn("the plaintext came back", report["checks"][5]["detail"])
        # The text form says the same.
        text = subprocess.run(
            [LOAD_BINARY, "probe", "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
             "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"), "--key", "foo",
             "--budget-ms", "10000"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(text.returncode, 0, text.stdout + text.stderr)
        self.assertIn("WARN  TLS", text.stdout)
        self.assertIn("probe: passed, 6 checks (1 with a warning)", text.stdout)

    def test_a_private_ca_without_cacert_is_what_kms_refuses(self):
        report = self.probe(ca=False, expect_exit=1)
        check = self.failed(report)
        self.assertEqual(check["name"], "TLS")
        self.assertEqual(check["kms_error"], "XKS_PROXY_INVALID_TLS_CONFIGURATION")
        self.assertIn("not signed by a CA of the system's trust store", check["cause"])
        self.assertIn("public certificate authority", check["fix"])
        self.assertEqual(report["checks"][-1]["name"], "TLS")  # nothing after a failed handshake

    def test_a_certificate_for_another_name(self):
        tmp = tempfile.mkdtemp(prefix="xks-probe-name-")
        try:
            ca_key, ca = os.path.join(tmp, "ca-key.pem"), os.path.join(tmp, "ca.pem")
            key, csr, cert = (os.path.join(tmp, n) for n in ("key.pem", "req.pem", "cert.pem"))
            extensions = os.path.join(tmp, "ext.cnf")
            with open(extensions, "w") as f:
                f.write("subjectAltName=DNS:xks.wrong.example\n")
            for command in (
                    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", ca_key, "-out", ca, "-subj", "/CN=probe test CA",
                     "-days", "2"],
                    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", key, "-out", csr, "-subj", "/CN=xks.wrong.example"],
                    ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                     "-out", cert, "-days", "2", "-extfile", extensions]):
                subprocess.run(["openssl"] + command, check=True, capture_output=True, timeout=60)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            with https_server(context) as port:
                report = self.probe("--cacert", ca, ca=False, port=port, expect_exit=1)
            check = self.failed(report)
            self.assertEqual(check["kms_error"], "XKS_PROXY_INVALID_TLS_CONFIGURATION")
            self.assertEqual(check["cause"],
                             "the certificate is for xks.wrong.example, not localhost")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_a_wrong_uri_path_and_a_wrong_secret(self):
        # xks-proxy answers a path under none of the credential's key stores 401, as it
        # answers a bad signature (a proxy that answers 404 is in test_slow_...).
        report = self.probe(prefix="/nope", expect_exit=1)
        check = self.failed(report)
        self.assertEqual(check["name"], "GetHealthStatus")
        self.assertEqual(check["kms_error"], "INVALID_CREDENTIALS")
        self.assertIn("or a URI path that names no key store", check["cause"])
        self.assertIn("XksProxyUriPath", check["fix"])
        secret = os.path.join(self.tmp, "wrong-secret")
        with open(secret, "w") as f:
            f.write("A" * 43 + "=\n")
        check = self.failed(self.probe(secret_file=secret, expect_exit=1))
        self.assertEqual(check["kms_error"], "INVALID_CREDENTIALS")
        self.assertIn("401 AuthenticationFailedException", check["cause"])

    def test_an_unknown_key_and_an_encrypt_only_key(self):
        report = self.probe("--key", "nope,encrypt_only_key,foo", expect_exit=1)
        failures = {c["name"]: c for c in report["checks"] if c["result"] == "failed"}
        self.assertEqual(sorted(failures), ["key encrypt_only_key: GetKeyMetadata",
                                            "key nope: GetKeyMetadata"])
        self.assertEqual(failures["key nope: GetKeyMetadata"]["kms_error"],
                         "XksKeyNotFoundException (CreateKey)")
        encrypt_only = failures["key encrypt_only_key: GetKeyMetadata"]
        self.assertEqual(encrypt_only["kms_error"], "XksKeyInvalidConfigurationException (CreateKey)")
        self.assertIn("keyUsage [ENCRYPT]", encrypt_only["detail"])
        # The good key after them is still checked end to end.
        self.assertEqual(report["checks"][-1]["name"], "key foo: Encrypt and Decrypt with AAD")
        self.assertEqual(report["checks"][-1]["result"], "ok")

    def test_no_version_or_cipher_suite_kms_offers(self):
        # TLS 1.2 with an AES-128 suite only: KMS offers none of those (nor TLS 1.0/1.1).
        context = demo_certificate(self.proxy)
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        with https_server(context) as port:
            check = self.failed(self.probe(port=port, expect_exit=1))
        self.assertEqual(check["name"], "TLS")
        self.assertEqual(check["kms_error"], "XKS_PROXY_INVALID_TLS_CONFIGURATION")
        self.assertIn("the handshake failed", check["cause"])
        self.assertIn("TLS_AES_256_GCM_SHA384", check["fix"])

    def test_nothing_listening(self):
        check = self.failed(self.probe(port=free_port(), expect_exit=1))
        self.assertEqual(check["name"], "TCP")
        self.assertEqual(check["kms_error"], "XKS_PROXY_NOT_REACHABLE")
        self.assertIn("Connection refused", check["cause"])

    def test_slow_html_and_broken_answers(self):
        with https_server(demo_certificate(self.proxy), MisbehavingHandler) as port:
            slow = self.failed(self.probe(prefix="/slow", port=port, budget_ms=250,
                                          expect_exit=1))
            self.assertEqual(slow["name"], "GetHealthStatus")
            self.assertEqual(slow["kms_error"], "XKS_PROXY_TIMED_OUT")
            self.assertRegex(slow["cause"], r"^answered in \d+ ms, over the budget of 250 ms "
                                            r"\(KMS gives a call 250 ms")
            html = self.failed(self.probe(prefix="/html", port=port, expect_exit=1))
            self.assertEqual(html["kms_error"], "XKS_PROXY_INVALID_RESPONSE")
            self.assertIn("Content-Type is 'text/html'", html["cause"])
            broken = self.failed(self.probe(prefix="/broken", port=port,
                                            expect_exit=1))
            self.assertEqual(broken["kms_error"], "XKS_PROXY_INVALID_RESPONSE")
            self.assertEqual(broken["cause"], "the answer is not a JSON object")
            noisy = self.failed(self.probe(prefix="/noisy", port=port, expect_exit=1))
            self.assertEqual(noisy["kms_error"], "XKS_PROXY_INVALID_RESPONSE")
            self.assertTrue(noisy["cause"].startswith("the proxy answered 500 InternalException: ?[2J"))
            self.assertNotIn("\x1b", noisy["cause"])
            self.assertLessEqual(len(noisy["cause"]), 403)
            gone = self.failed(self.probe(prefix="/gone", port=port, expect_exit=1))
            self.assertEqual(gone["kms_error"], "XKS_PROXY_INVALID_CONFIGURATION")
            self.assertEqual(gone["cause"], "nothing is served at /gone/kms/xks/v1 "
                                            "(404 InvalidUriPathException)")
            timeout = self.failed(self.probe("--timeout", "0.1", prefix="/slow",
                                             port=port, expect_exit=1))
            self.assertEqual(timeout["kms_error"], "XKS_PROXY_TIMED_OUT")
            self.assertIn("no answer within", timeout["cause"])


class MtlsProbeTest(unittest.TestCase):
    def test_mtls_needs_the_client_certificate(self):
        tmp = tempfile.mkdtemp(prefix="xks-probe-mtls-")
        proxy = ProxyProcess(os.path.join(tmp, "demo"), mtls=True)
        try:
            base = [LOAD_BINARY, "probe", "--port", str(proxy.port), "--cacert", proxy.ca,
                    "--kms-console", os.path.join(proxy.dir, "kms-console.json"), "--json", "-",
                    "--key", "foo", "--budget-ms", "10000"]
            client = ["--client-cert", os.path.join(proxy.dir, "tls/client.pem"),
                      "--client-key", os.path.join(proxy.dir, "tls/client-key.pem")]
            run = subprocess.run(base + client, capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            run = subprocess.run(base, capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
            report = json.loads(run.stdout)
            failed = [c for c in report["checks"] if c["result"] == "failed"]
            self.assertEqual(len(failed), 1, report)
            # TLS 1.3: the proxy's refusal comes with the first answer, not the handshake.
            self.assertEqual(failed[0]["name"], "GetHealthStatus")
            self.assertIn("requires a TLS client certificate (mTLS)", failed[0]["cause"])
            self.assertIn("--client-cert and --client-key", failed[0]["fix"])
            # A certificate the proxy does not accept is what KMS would meet with a wrong
            # client CA or allowed names.
            run = subprocess.run(base + ["--client-cert", os.path.join(proxy.dir, "tls/server.pem"),
                                         "--client-key",
                                         os.path.join(proxy.dir, "tls/server-key.pem")],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
            failed = [c for c in json.loads(run.stdout)["checks"] if c["result"] == "failed"]
            self.assertEqual(failed[0]["kms_error"], "XKS_PROXY_INVALID_TLS_CONFIGURATION")
            self.assertIn("refused the client certificate", failed[0]["cause"])
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    proxy_process.run(globals())
