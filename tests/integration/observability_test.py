#!/usr/bin/python3
"""What operators read from the real binary: /metrics (checked by promtool and scraped by a real
Prometheus), the hash-chained audit log, the operational log, and that no secret reaches any log.

Usage: observability_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import http.client
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

import yaml

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


class ObservabilityTest(proxy_process.SharedProxyTest):
    def test_metrics_are_served_and_promtool_accepts_them(self):
        self.check_round_trip_with_aad_and_cdiv()
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

    def test_audit_log_records_each_request_and_survives_rotation(self):
        for _ in range(3):
            self.check_key_metadata()
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
        # Independently: each line's chain is HMAC-SHA256, under the key file's bytes, of the
        # line without its chain member, and names the line before as prev.
        with open(os.path.join(self.proxy.dir, "secrets/audit-key"), "rb") as f:
            key = f.read()
        previous = None
        for line in self.audit_lines():
            match = re.fullmatch(r'(.*),"chain":"([0-9a-f]{64})"\}', line.rstrip("\n"))
            self.assertIsNotNone(match, line)
            body, chain = match.group(1) + "}", match.group(2)
            self.assertEqual(hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), chain)
            if previous is not None:
                self.assertEqual(json.loads(line)["prev"], previous)
            previous = chain

        # logrotate: move the file away, SIGHUP, and the chain continues in a new file.
        os.rename(os.path.join(self.proxy.dir, "audit.log"),
                  os.path.join(self.proxy.dir, "audit.log.1"))
        self.proxy.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.check_key_metadata()
        last = json.loads(self.audit_lines("audit.log.1")[-1])
        self.assertEqual(last["record"], "rotate")
        first = json.loads(self.audit_lines()[0])
        self.assertEqual((first["record"], first["prev"], first["seq"]),
                         ("start", last["chain"], last["seq"] + 1))
        self.assertEqual(self.verify_audit().returncode, 0)
        both = self.verify_audit("audit.log.1", "audit.log")
        self.assertEqual(both.returncode, 0, both.stdout)
        self.assertEqual(self.verify_audit("audit.log.1", live=False).returncode, 0)
        # Without its key, the keyed log is not taken as verified.
        unkeyed = subprocess.run([BINARY, "audit", "verify", "--live",
                                  os.path.join(self.proxy.dir, "audit.log")],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(unkeyed.returncode, 1)
        self.assertIn("--key-file", unkeyed.stdout)
        # A line deleted from the middle is found, and named by its position.
        rotated = self.audit_lines("audit.log.1")
        self.assertGreaterEqual(len(rotated), 3)
        del rotated[1]
        with open(os.path.join(self.proxy.dir, "tampered.log"), "w") as f:
            f.write("\n".join(rotated) + "\n")
        tampered = self.verify_audit("tampered.log", live=False)
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
                "ciphertextMetadata": sealed["ciphertextMetadata"],
                "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"})
            self.assertEqual(status, 200)
            self.proxy.call("keys/decrypt_only_key/encrypt", {
                "requestMetadata": metadata(), "plaintext": b64(plaintext),
                "encryptionAlgorithm": "AES_GCM"})
            # The same secrets on the other paths that log: a refused signature, HTTP/2, a
            # tampered tag, a body over the limit.
            encrypt = {"requestMetadata": metadata(), "plaintext": b64(plaintext),
                       "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"}
            self.proxy.call("keys/foo/encrypt", encrypt, secret="x" * 43)
            self.curl("--http2", json.dumps(encrypt))
            self.proxy.call("keys/foo/decrypt", {
                "requestMetadata": metadata("Decrypt"), "ciphertext": sealed["ciphertext"],
                "initializationVector": sealed["initializationVector"],
                "authenticationTag": b64(bytes(16)), "additionalAuthenticatedData": b64(aad),
                "encryptionAlgorithm": "AES_GCM"})
            self.proxy.call("keys/foo/encrypt", dict(encrypt, padding="p" * 70000))
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

    def assert_exposed(self, expressions, what):
        """Every xks_ metric named in `expressions` is in the proxy's /metrics."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            text = response.read().decode()
        exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        named = set()
        for expression in expressions:
            named.update(re.findall(r"\bxks_[a-z0-9_]+", expression))
        self.assertTrue(named)
        for name in named:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertIn(base, exposed, "%s uses %s, which /metrics lacks" % (what, name))

    def test_every_metric_the_grafana_dashboard_plots_exists(self):
        with open(os.path.join(SOURCE_DIR, "observability/grafana-dashboard.json")) as f:
            dashboard = json.load(f)
        self.assert_exposed([target["expr"] for panel in dashboard["panels"]
                             for target in panel["targets"]], "the dashboard")

    def test_every_metric_the_alert_rules_watch_exists_and_readiness_is_one(self):
        with open(os.path.join(SOURCE_DIR, "observability/prometheus-rules.yaml")) as f:
            groups = yaml.safe_load(f)["groups"]
        self.assert_exposed([rule["expr"] for group in groups for rule in group["rules"]],
                            "an alert rule")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            self.assertIn("\nxks_ready 1\n", response.read().decode())


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


if __name__ == "__main__":
    proxy_process.run(globals())
