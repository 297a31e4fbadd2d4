#!/usr/bin/python3
"""The real xks-proxy binary over real TLS, driven by independent clients: botocore signs
(SigV4Auth), Python's ssl/http.client and curl --aws-sigv4 talk HTTP/1.1. Every server runs on
127.0.0.1 with ports picked free, and every wait is bounded.

Usage: server_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BINARY = None
LOAD_BINARY = None
FAULT_MODULE = None
STARTUP_SECONDS = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(data):
    return base64.b64encode(data).decode()


def metadata(operation="Encrypt"):
    return {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1",
            "kmsOperation": operation, "kmsRequestId": str(uuid.uuid4())}


class ProxyProcess:
    """`xks-proxy demo --setup-only` state, a config with short timeouts, `xks-proxy serve`."""

    def __init__(self, state_dir, mtls=False, fault_control=None):
        self.dir = state_dir
        self.port, self.admin_port = free_port(), free_port()
        setup = [BINARY, "demo", "--setup-only", "--state-dir", state_dir,
                 "--port", str(self.port), "--admin-port", str(self.admin_port)]
        if mtls:
            setup.append("--mtls")
        subprocess.run(setup, check=True, stdout=subprocess.DEVNULL, timeout=60)
        with open(os.path.join(state_dir, "xks-proxy.toml")) as f:
            config = f.read()
        config = config.replace(
            "[server]\n",
            "[log]\nformat = \"json\"\n\n"
            "[server]\nheader_timeout_ms = 700\nidle_timeout_ms = 5000\n"
            "max_body_bytes = 65536\nfleet_size = 2\n")
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(state_dir, "softhsm/softhsm2.conf"))
        if fault_control:
            # The fault-injecting module in front of SoftHSM, steered by `fault_control`.
            real_module = re.search(r'module = "([^"]+)"', config).group(1)
            config = config.replace(real_module, FAULT_MODULE)
            env.update(XKS_FAULT_TARGET=real_module, XKS_FAULT_CONTROL=fault_control)
        self.config = os.path.join(state_dir, "test.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.access_key_id = open(os.path.join(state_dir, "secrets/sigv4-access-key-id")).read()
        self.secret = open(os.path.join(state_dir, "secrets/sigv4-secret")).read()
        self.ca = os.path.join(state_dir, "tls/ca.pem")
        self.log = open(os.path.join(state_dir, "serve.log"), "w")
        self.process = subprocess.Popen([BINARY, "serve", "--config", self.config],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + STARTUP_SECONDS
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/readyz" % self.admin_port, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("xks-proxy did not become ready; see " + self.log.name)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def tls_context(self, client_cert=None):
        context = ssl.create_default_context(cafile=self.ca)
        if client_cert:
            context.load_cert_chain(*client_cert)
        return context

    def signed(self, method, path, body, secret=None, region="us-east-1", extra_headers=None):
        """Headers for a request signed by botocore as KMS signs (host;x-amz-date)."""
        request = AWSRequest(method=method, url="https://localhost:%d%s" % (self.port, path),
                             data=body, headers=dict(extra_headers or {}))
        SigV4Auth(Credentials(self.access_key_id, secret or self.secret), "kms-xks-proxy",
                  region).add_auth(request)
        headers = dict(request.headers.items())
        headers["Host"] = "localhost:%d" % self.port
        headers["Content-Type"] = "application/json"
        return headers

    def call(self, operation_path, payload, method="POST", secret=None, connection=None,
             prefix="/example"):
        path = prefix + "/kms/xks/v1/" + operation_path
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        own = connection is None
        if own:
            connection = http.client.HTTPSConnection("localhost", self.port, timeout=10,
                                                     context=self.tls_context())
        connection.request(method, path, body=body, headers=self.signed(method, path, body, secret))
        response = connection.getresponse()
        data = response.read()
        if own:
            connection.close()
        return response.status, json.loads(data) if data else None


class FakeXksServer:
    """An HTTPS server with the demo's certificate that answers Encrypt plausibly, Decrypt with
    the wrong plaintext, and never answers GetKeyMetadata: what xks-load must catch."""

    def __init__(self, proxy):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/metadata"):
                    time.sleep(2)
                    return
                if self.path.endswith("/encrypt"):
                    answer = {"ciphertext": b64(os.urandom(32)),
                              "initializationVector": b64(os.urandom(12)),
                              "authenticationTag": b64(os.urandom(16))}
                else:
                    answer = {"plaintext": b64(b"not what was sealed, 32 bytes.!!")}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(proxy.dir, "tls/server.pem"),
                                os.path.join(proxy.dir, "tls/server-key.pem"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-server-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def expect_error(self, result, status, name):
        self.assertEqual(result[0], status, result)
        self.assertEqual(result[1]["errorName"], name, result)

    def test_health_status(self):
        status, body = self.proxy.call("health", {"requestMetadata": {
            "kmsRequestId": "1", "kmsOperation": "KmsHealthCheck"}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["xksProxyFleetSize"], 2)
        self.assertEqual(body["ekmVendor"], "SoftHSM project")
        self.assertEqual(len(body["ekmFleetDetails"]), 1)
        self.assertEqual(body["ekmFleetDetails"][0]["healthStatus"], "ACTIVE")

    def test_key_metadata(self):
        status, body = self.proxy.call("keys/foo/metadata", {"requestMetadata": metadata("CreateKey")})
        self.assertEqual((status, body), (200, {"keySpec": "AES_256",
                                               "keyUsage": ["ENCRYPT", "DECRYPT"],
                                               "keyStatus": "ENABLED"}))

    def test_encrypt_decrypt_round_trip_with_aad_and_cdiv(self):
        plaintext, aad = os.urandom(4300), os.urandom(8192)
        status, sealed = self.proxy.call("keys/foo/encrypt", {
            "requestMetadata": metadata(), "plaintext": b64(plaintext),
            "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM",
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256"})
        self.assertEqual(status, 200, sealed)
        parts = [base64.b64decode(sealed[k]) for k in
                 ("initializationVector", "ciphertext", "authenticationTag")]
        self.assertEqual(len(parts[0]), 12)
        self.assertEqual(len(parts[1]), 4300)
        self.assertEqual(len(parts[2]), 16)
        # Spec appendix C, computed independently here.
        self.assertEqual(sealed["ciphertextDataIntegrityValue"],
                         b64(hashlib.sha256(aad + b"".join(parts)).digest()))
        decrypt = {"requestMetadata": metadata("Decrypt"), "ciphertext": sealed["ciphertext"],
                   "initializationVector": sealed["initializationVector"],
                   "authenticationTag": sealed["authenticationTag"],
                   "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"}
        status, opened = self.proxy.call("keys/foo/decrypt", decrypt)
        self.assertEqual(status, 200, opened)
        self.assertEqual(base64.b64decode(opened["plaintext"]), plaintext)
        decrypt["authenticationTag"] = b64(bytes(16))
        self.expect_error(self.proxy.call("keys/foo/decrypt", decrypt), 400,
                          "InvalidCiphertextException")

    def test_every_error_the_proxy_produces(self):
        encrypt = {"requestMetadata": metadata(), "plaintext": "AAAA",
                   "encryptionAlgorithm": "AES_GCM"}
        self.expect_error(self.proxy.call("keys/foo/encrypt", {}), 400, "ValidationException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", b"{not json"), 400,
                          "ValidationException")
        self.expect_error(self.proxy.call("keys/missing/encrypt", encrypt), 404,
                          "KeyNotFoundException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", encrypt, prefix="/other"), 404,
                          "InvalidUriPathException")
        self.expect_error(self.proxy.call("keys/foo/encrypt", encrypt, secret="x" * 44), 401,
                          "AuthenticationFailedException")
        self.expect_error(self.proxy.call("keys/decrypt_only_key/encrypt", encrypt), 400,
                          "InvalidKeyUsageException")
        cdiv = dict(encrypt, ciphertextDataIntegrityValueAlgorithm="SHA_256")
        self.expect_error(self.proxy.call("keys/encrypt_only_key/encrypt", cdiv), 400,
                          "InvalidKeyUsageException")
        status, body = self.proxy.call("keys/foo/metadata", {"requestMetadata": metadata()},
                                       method="GET")
        self.assertEqual(status, 405, body)

    def test_forward_compatible_requests_are_accepted(self):
        status, body = self.proxy.call("keys/foo/encrypt", {
            "requestMetadata": dict(metadata("BulkEncryptOfTheFuture"), newField="x"),
            "plaintext": "AAAA", "encryptionAlgorithm": "AES_GCM", "futureOption": [1, 2]})
        self.assertEqual(status, 200, body)

    def test_metrics_are_served_and_promtool_accepts_them(self):
        self.test_encrypt_decrypt_round_trip_with_aad_and_cdiv()
        self.proxy.call("keys/foo/encrypt", {}, secret="x" * 44)  # a SigV4 failure
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
            text = response.read().decode()
        check = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        def sample(prefix):
            found = [v for k, v in samples.items() if k.startswith(prefix)]
            self.assertTrue(found, prefix + " missing:\n" + text)
            return found[0]
        self.assertGreaterEqual(sample('xks_requests_total{keystore="/example",operation="Encrypt",result="ok"'), 1)
        self.assertGreaterEqual(sample('xks_requests_total{keystore="/example",operation="Decrypt",result="error",error="InvalidCiphertextException"'), 1)
        self.assertGreaterEqual(sample('xks_sigv4_failures_total{reason="signature_mismatch"}'), 1)
        self.assertGreaterEqual(sample('xks_request_duration_seconds_count{operation="Encrypt"}'), 1)
        self.assertGreaterEqual(sample('xks_tls_handshakes_total{result="ok"}'), 1)
        self.assertEqual([v for k, v in samples.items() if k.startswith("xks_hsm_health{") and 'state="ACTIVE"' in k], [1])
        self.assertGreater(sample("xks_tls_certificate_expiry_timestamp_seconds"), time.time())
        self.assertEqual(sample('xks_build_info{version='), 1)
        self.assertIn('xks_hsm_sessions{hsm=', text)
        self.assertIn('xks_open_connections{protocol="http1"}', text)

    def audit_lines(self, name="audit.log"):
        time.sleep(0.3)  # the writer thread flushes each batch
        with open(os.path.join(self.proxy.dir, name)) as f:
            return f.read().splitlines()

    def verify_audit(self, name="audit.log"):
        return subprocess.run([BINARY, "audit", "verify", os.path.join(self.proxy.dir, name)],
                              capture_output=True, text=True, timeout=30)

    def test_audit_log_records_each_request_and_survives_rotation(self):
        for _ in range(3):
            self.test_key_metadata()
        request_id = str(uuid.uuid4())
        status, _ = self.proxy.call("keys/foo/metadata", {"requestMetadata": dict(
            metadata("DescribeKey"), kmsRequestId=request_id, kmsViaService="ebs")})
        self.assertEqual(status, 200)
        record = next(json.loads(line) for line in self.audit_lines() if request_id in line)
        self.assertEqual((record["operation"], record["externalKeyId"], record["outcome"],
                          record["status"], record["kmsViaService"], record["keystore"]),
                         ("GetKeyMetadata", "foo", "ok", 200, "ebs", "/example"))
        self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        checked = self.verify_audit()
        self.assertEqual(checked.returncode, 0, checked.stdout)
        self.assertIn("chain intact", checked.stdout)

        # logrotate: move the file away, SIGHUP, and the chain continues in a new file.
        os.rename(os.path.join(self.proxy.dir, "audit.log"),
                  os.path.join(self.proxy.dir, "audit.log.1"))
        last = json.loads(self.audit_lines("audit.log.1")[-1])
        self.proxy.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.test_key_metadata()
        first = json.loads(self.audit_lines()[0])
        self.assertEqual(first["prev"], last["chain"])
        self.assertEqual(self.verify_audit().returncode, 0)
        self.assertEqual(self.verify_audit("audit.log.1").returncode, 0)
        # A line deleted from the middle is found, and named by its position.
        rotated = self.audit_lines("audit.log.1")
        self.assertGreaterEqual(len(rotated), 3)
        del rotated[1]
        with open(os.path.join(self.proxy.dir, "tampered.log"), "w") as f:
            f.write("\n".join(rotated) + "\n")
        tampered = self.verify_audit("tampered.log")
        self.assertEqual(tampered.returncode, 1)
        self.assertIn("line 2:", tampered.stdout)

    def test_no_plaintext_aad_key_pin_or_secret_reaches_any_log(self):
        plaintexts = [os.urandom(32), b"my-very-secret-plaintext-0123456789"]
        aad = b"aad-that-must-stay-private-9876"
        for plaintext in plaintexts:
            status, sealed = self.proxy.call("keys/foo/encrypt", {
                "requestMetadata": metadata(), "plaintext": b64(plaintext),
                "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM",
                "ciphertextDataIntegrityValueAlgorithm": "SHA_256"})
            self.assertEqual(status, 200)
            status, _ = self.proxy.call("keys/foo/decrypt", {
                "requestMetadata": metadata("Decrypt"), "ciphertext": sealed["ciphertext"],
                "initializationVector": sealed["initializationVector"],
                "authenticationTag": sealed["authenticationTag"],
                "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"})
            self.assertEqual(status, 200)
            self.proxy.call("keys/decrypt_only_key/encrypt", {
                "requestMetadata": metadata(), "plaintext": b64(plaintext),
                "encryptionAlgorithm": "AES_GCM"})
        time.sleep(0.3)
        logs = b""
        for root, _, files in os.walk(self.proxy.dir):
            for name in files:
                if name.endswith(".log") or ".log." in name:
                    with open(os.path.join(root, name), "rb") as f:
                        logs += f.read()
        self.assertIn(b"kmsRequestId", logs)  # the audit log is among them
        pin = open(os.path.join(self.proxy.dir, "secrets/hsm-pin"), "rb").read()
        secrets = plaintexts + [aad, self.proxy.secret.encode(), pin]
        for secret in secrets:
            for form in (secret, base64.b64encode(secret), secret.hex().encode(),
                         secret.hex().upper().encode()):
                self.assertNotIn(form, logs, "found %r in the logs" % form)

    def test_the_operational_log_is_json_with_a_start_up_summary(self):
        with open(os.path.join(self.proxy.dir, "serve.log")) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(all(set(e) == {"time", "level", "message"} for e in entries), entries)
        summary = " ".join(e["message"] for e in entries)
        self.assertIn("key stores: /example (1 credential(s))", summary)
        self.assertIn("profile softhsm", summary)
        self.assertNotIn(self.proxy.secret, summary)

    def test_every_metric_the_grafana_dashboard_plots_exists(self):
        dashboard_file = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "../../observability/grafana-dashboard.json")
        with open(dashboard_file) as f:
            dashboard = json.load(f)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            text = response.read().decode()
        exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        plotted = set()
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                plotted.update(re.findall(r"xks_[a-z0-9_]+", target["expr"]))
        self.assertTrue(plotted)
        for name in plotted:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertIn(base, exposed, "the dashboard plots %s, which /metrics lacks" % name)

    def xks_load(self, *arguments, port=None):
        return subprocess.run(
            [LOAD_BINARY, "--port", str(port or self.proxy.port), "--cacert", self.proxy.ca,
             "--access-key-id", self.proxy.access_key_id, "--secret-file",
             os.path.join(self.proxy.dir, "secrets/sigv4-secret")] + list(arguments),
            capture_output=True, text=True, timeout=60)

    def load_result(self, *arguments, expect_exit=0, port=None):
        result_file = os.path.join(self.proxy.dir, "load.json")
        if os.path.exists(result_file):
            os.remove(result_file)
        run = self.xks_load(*arguments, "--json", result_file, port=port)
        self.assertEqual(run.returncode, expect_exit, run.stdout + run.stderr)
        with open(result_file) as f:
            return json.load(f), run.stdout

    def test_xks_load_signs_like_kms_and_reports(self):
        result, _ = self.load_result("--connections", "4", "--seconds", "1")
        self.assertGreater(result["requests"], 0)
        self.assertEqual(result["ok"], result["requests"])
        latency = result["latency_ms"]
        self.assertLessEqual(latency["p50"], latency["p90"])
        self.assertLessEqual(latency["p90"], latency["p99"])
        self.assertLessEqual(latency["p99"], latency["max"])
        self.assertEqual(result["connections_opened"], 4)
        self.assertEqual(sum(s["requests"] for s in result["timeline"]), result["requests"])
        refused = self.xks_load("--requests", "20", "--mix", "metadata", "--key", "nope")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("404 KeyNotFoundException: 20", refused.stdout)
        self.assertIn("errors by errorName:  KeyNotFoundException 20", refused.stdout)

    def test_xks_load_mix_verified_over_http_1_1_and_http_2(self):
        for protocol in (["--http", "1.1", "--connections", "4"],
                         ["--http", "2", "--connections", "2", "--streams", "8"]):
            result, _ = self.load_result(
                *protocol, "--seconds", "1", "--mix", "encrypt:2,decrypt:2,metadata:1,health:1",
                "--key", "foo", "--verify", "--cdiv", "--aad-bytes", "100",
                "--plaintext-bytes", "300")
            self.assertGreater(result["requests"], 50, protocol)
            self.assertEqual(result["errors"], 0, result["outcomes"])
        # Decrypts replayed warm-up ciphertexts, and the proxy saw each operation.
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=5) as r:
            metrics = r.read().decode()
        for operation in ("Decrypt", "Encrypt", "GetKeyMetadata", "GetHealthStatus"):
            self.assertRegex(metrics, r'xks_requests_total\{[^}]*operation="%s"[^}]*\} [1-9]'
                             % operation)

    def test_xks_load_takes_target_and_credential_from_kms_console_json(self):
        run = subprocess.run(
            [LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
             "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
             "--requests", "30", "--mix", "health"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("OK: 30", run.stdout)

    def test_xks_load_open_loop_ramps_up_and_keeps_the_schedule(self):
        result, _ = self.load_result("--connections", "4", "--rate", "200", "--ramp-up", "1",
                                     "--seconds", "1", "--mix", "health")
        ramp, steady = result["phases"]
        self.assertEqual((ramp["name"], ramp["in_summary"]), ("ramp-up", False))
        self.assertAlmostEqual(ramp["requests"], 100, delta=10)
        self.assertAlmostEqual(steady["requests"], 200, delta=10)
        self.assertEqual(result["requests"], steady["requests"])
        self.assertEqual(result["unsent"], 0)

    def test_xks_load_new_connection_per_request(self):
        result, _ = self.load_result("--connections", "2", "--requests", "40",
                                     "--new-connection", "--mix", "health")
        self.assertEqual(result["requests"], 40)
        self.assertEqual(result["connections_opened"], 40)

    def test_xks_load_writes_a_self_contained_html_report(self):
        html_file = os.path.join(self.proxy.dir, "load.html")
        run = self.xks_load("--seconds", "2", "--connections", "2", "--html", html_file)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(html_file) as f:
            html = f.read()
        self.assertEqual(html.count("<svg"), 3)
        self.assertIn("Latency percentile spectrum", html)
        self.assertIn("Throughput and errors", html)
        self.assertGreaterEqual(html.count("<polyline"), 5)
        self.assertNotIn("<script", html)
        self.assertNotRegex(html.replace('xmlns="http://www.w3.org/2000/svg"', ""),
                            r"(src|href)=|https?://www\.")

    def test_xks_load_names_transport_failures_and_bad_input(self):
        closed_port = free_port()
        run = self.xks_load("--requests", "3", "--connections", "1", port=closed_port)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("transport: Connection refused", run.stdout)
        for arguments, message in (
                (["--mix", "encrypt:1,sign:1"], "unknown operation 'sign'"),
                (["--mix", "encrypt:0"], "every weight is zero"),
                (["--scenario", "/nonexistent"], "--scenario and --fault-control go together")):
            run = self.xks_load(*arguments)
            self.assertEqual(run.returncode, 2, run.stdout + run.stderr)
            self.assertIn(message, run.stderr)

    def test_xks_load_verify_mode_and_timeouts_catch_a_misbehaving_server(self):
        with FakeXksServer(self.proxy) as fake:
            result, stdout = self.load_result(
                "--requests", "20", "--connections", "2", "--mix", "decrypt", "--verify",
                port=fake.port, expect_exit=1)
            self.assertEqual(result["errors_by"]["verify"],
                             {"decrypt returned another plaintext": 20}, stdout)
            result, stdout = self.load_result(
                "--requests", "4", "--connections", "2", "--mix", "metadata", "--timeout", "0.3",
                port=fake.port, expect_exit=1)
            # Each request times out and the connection with it: four requests, four timeouts.
            self.assertEqual(result["errors_by"]["transport"], {"timeout": 4}, stdout)

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
        self.assertEqual(status, 413)
        self.assertEqual(body["errorName"], "PayloadTooLargeException")
        self.test_key_metadata()

    def raw_tls_socket(self):
        sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=10)
        return self.proxy.tls_context().wrap_socket(sock, server_hostname="localhost")

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
        self.test_key_metadata()

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

    def curl(self, protocol, body, urls=1, path="/example/kms/xks/v1/keys/foo/encrypt"):
        """curl --aws-sigv4 sending `body` to `path` `urls` times on one connection; returns
        [(http_version, status, body)]."""
        marker = "\n@@%{http_version} %{http_code}@@\n"
        body_file = os.path.join(self.tmp, "curl-body")
        with open(body_file, "w") as f:
            f.write(body)
        command = ["curl", "--silent", "--show-error", protocol, "--max-time", "10",
                   "--cacert", self.proxy.ca, "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy",
                   "--user", self.proxy.access_key_id + ":" + self.proxy.secret,
                   "-H", "Content-Type: application/json", "--data-binary", "@" + body_file,
                   "-w", marker]
        command += ["https://localhost:%d%s" % (self.proxy.port, path)] * urls
        output = subprocess.run(command, capture_output=True, timeout=30, check=True).stdout
        results = []
        for chunk in output.decode().split("@@\n"):
            if "@@" in chunk:
                answer, trailer = chunk.split("\n@@")
                version, status = trailer.split()
                results.append((version, int(status), answer))
        return results

    def test_curl_signs_and_sends_over_http_1_1_and_http_2(self):
        body = json.dumps({"requestMetadata": metadata(), "plaintext": "SGVsbG8=",
                           "encryptionAlgorithm": "AES_GCM"})
        for protocol, version in (("--http1.1", "1.1"), ("--http2", "2")):
            results = self.curl(protocol, body, urls=3)  # three requests, one connection
            self.assertEqual(len(results), 3)
            for got_version, status, answer in results:
                self.assertEqual((got_version, status), (version, 200), answer)
                self.assertEqual(answer.count("\n"), 0)  # compact, one line
                self.assertEqual(len(base64.b64decode(json.loads(answer)["ciphertext"])), 5)

    def test_http_2_answers_errors_and_oversized_bodies(self):
        (version, status, answer), = self.curl("--http2", "{}")
        self.assertEqual((version, status), ("2", 400))
        self.assertEqual(json.loads(answer)["errorName"], "ValidationException")
        (version, status, answer), = self.curl("--http2", " " * (1 << 20))
        self.assertEqual((version, status), ("2", 413))
        self.assertEqual(json.loads(answer)["errorName"], "PayloadTooLargeException")
        (version, status, _), = self.curl("--http2", "{}", path="/nowhere")
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


class PrometheusScrapeTest(unittest.TestCase):
    """A real Prometheus server on loopback scrapes the proxy and answers a query."""

    def test_prometheus_scrapes_and_answers_a_request_rate_query(self):
        tmp = tempfile.mkdtemp(prefix="xks-prometheus-test-")
        proxy = ProxyProcess(os.path.join(tmp, "demo"))
        port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                    "  - job_name: xks\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % proxy.admin_port)
        prometheus = subprocess.Popen(
            ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + tmp + "/tsdb",
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            query = urllib.parse.quote(
                'sum(rate(xks_requests_total{operation="GetKeyMetadata",result="ok"}[10s]))')
            deadline = time.time() + 60
            rate = 0.0
            while time.time() < deadline and rate <= 0:
                for _ in range(5):
                    proxy.call("keys/foo/metadata", {"requestMetadata": metadata()})
                time.sleep(1)
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?query=%s"
                                                % (port, query), timeout=5) as response:
                        answer = json.loads(response.read())
                except OSError:
                    continue
                self.assertEqual(answer["status"], "success")
                if answer["data"]["result"]:
                    rate = float(answer["data"]["result"][0]["value"][1])
            self.assertGreater(rate, 0, "Prometheus never saw the request rate")
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=20)
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


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
        for cert in (None, self.stranger):
            with self.assertRaises(ssl.SSLError) as caught:
                self.handshake(cert)
            if cert is not None:
                self.assertIn("HANDSHAKE_FAILURE", str(caught.exception).upper())


class CheckCommandTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-check-test-")
        cls.dir = os.path.join(cls.tmp, "demo")
        subprocess.run([BINARY, "demo", "--setup-only", "--state-dir", cls.dir],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        with open(os.path.join(cls.dir, "xks-proxy.toml")) as f:
            cls.config = f.read()
        cls.env = dict(os.environ, SOFTHSM2_CONF=os.path.join(cls.dir, "softhsm/softhsm2.conf"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, config):
        path = os.path.join(self.tmp, "check.toml")
        with open(path, "w") as f:
            f.write(config)
        return subprocess.run([BINARY, "check", "--config", path], capture_output=True,
                              text=True, timeout=60, env=self.env)

    def test_a_good_configuration_passes_with_its_self_test(self):
        result = self.check(self.config)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("passed the softhsm self-test", result.stdout)

    def test_problems_are_named(self):
        bad_key = self.check(self.config.replace('health_key = "xks-health"',
                                                 'health_key = "no-such-key"'))
        self.assertEqual(bad_key.returncode, 1)
        self.assertIn("self-test", bad_key.stderr)
        unknown = self.check(self.config.replace("[hsm]\n", "[hsm]\nspeed = 1\n"))
        self.assertEqual(unknown.returncode, 1)
        self.assertRegex(unknown.stderr, r"check\.toml:\d+: hsm\.speed: unknown key")
        wrong_profile = self.check(self.config.replace('vendor_profile = "softhsm"',
                                                       'vendor_profile = "luna"'))
        self.assertEqual(wrong_profile.returncode, 1)
        self.assertIn("self-test of vendor profile 'luna'", wrong_profile.stderr)


class CredentialsCommandTest(unittest.TestCase):
    def test_prints_a_new_credential_for_the_kms_console(self):
        files = [json.loads(subprocess.run(
            [BINARY, "credentials", "new", "--uri-path", "/tenant-a/kms/xks/v1"],
            capture_output=True, check=True, timeout=30).stdout) for _ in range(2)]
        for file in files:
            self.assertEqual(file["XksProxyUriPath"], "/tenant-a/kms/xks/v1")
            credential = file["XksProxyAuthenticationCredential"]
            self.assertRegex(credential["AccessKeyId"], r"^[A-Z2-7]{20}$")
            self.assertEqual(len(base64.b64decode(credential["RawSecretAccessKey"])), 32)
        self.assertNotEqual(files[0], files[1])
        refused = subprocess.run([BINARY, "credentials", "new", "--uri-path", "/bad path"],
                                 capture_output=True, timeout=30)
        self.assertEqual(refused.returncode, 2)


class DrainTest(unittest.TestCase):
    def test_sigterm_stops_cleanly(self):
        tmp = tempfile.mkdtemp(prefix="xks-drain-test-")
        try:
            proxy = ProxyProcess(os.path.join(tmp, "demo"))
            status, _ = proxy.call("keys/foo/metadata", {"requestMetadata": metadata()})
            self.assertEqual(status, 200)
            self.assertEqual(proxy.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class AvailabilityScenarioTest(unittest.TestCase):
    """xks-load drives the fault-injecting PKCS#11 module under a real proxy through phases."""

    def test_error_burst_shows_in_its_phase_and_the_proxy_recovers(self):
        tmp = tempfile.mkdtemp(prefix="xks-scenario-test-")
        try:
            control = os.path.join(tmp, "faults")
            open(control, "w").close()
            proxy = ProxyProcess(os.path.join(tmp, "demo"), fault_control=control)
            scenario = os.path.join(tmp, "scenario.toml")
            with open(scenario, "w") as f:
                f.write('[[phase]]\nname = "baseline"\nseconds = 1.5\n\n'
                        '[[phase]]\nname = "error burst"\nseconds = 1.5\n'
                        'faults = ["fail C_Encrypt CKR_DEVICE_ERROR every 2"]\n\n'
                        '[[phase]]\nname = "latency spike"\nseconds = 1.5\n'
                        'faults = ["delay C_Encrypt 30"]\n\n'
                        '[[phase]]\nname = "recovery"\nseconds = 2\n')
            result_file = os.path.join(tmp, "result.json")
            run = subprocess.run(
                [LOAD_BINARY, "--port", str(proxy.port), "--cacert", proxy.ca,
                 "--kms-console", os.path.join(proxy.dir, "kms-console.json"),
                 "--connections", "4", "--scenario", scenario, "--fault-control", control,
                 "--json", result_file, "--html", os.path.join(tmp, "report.html")],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)  # errors were made
            self.assertEqual(proxy.stop(), 0)
            with open(result_file) as f:
                phases = {p["name"]: p for p in json.load(f)["phases"]}
            self.assertEqual(list(phases), ["baseline", "error burst", "latency spike",
                                            "recovery"])
            self.assertEqual(phases["baseline"]["errors"], 0)
            burst = phases["error burst"]
            self.assertGreater(burst["error_rate"], 0.2, burst)
            self.assertEqual(list(burst["errors_by_error_name"]), ["InternalException"], burst)
            self.assertEqual(burst["faults"], ["fail C_Encrypt CKR_DEVICE_ERROR every 2"])
            spike, baseline = phases["latency spike"], phases["baseline"]
            self.assertGreater(spike["latency_ms"]["p50"], 30)
            self.assertLess(baseline["latency_ms"]["p50"], 30)
            # The control file is re-read on the next call, so only a request or two at the
            # phase change may still see the old fault; the proxy itself recovers at once.
            recovery = phases["recovery"]
            self.assertLess(recovery["error_rate"], 0.01, recovery)
            self.assertLess(recovery["latency_ms"]["p50"], 30)
            with open(control) as f:
                self.assertEqual(f.read(), "")  # faults cleared at the end
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    LOAD_BINARY = sys.argv.pop(1)
    FAULT_MODULE = sys.argv.pop(1)
    unittest.main(verbosity=2)
