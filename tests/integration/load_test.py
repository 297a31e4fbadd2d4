#!/usr/bin/python3
"""xks-load against the real proxy (and against a misbehaving fake), and an availability
scenario through the fault-injecting PKCS#11 module.

Usage: load_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


class LoadTest(proxy_process.SharedProxyTest):
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
                (["--scenario", "/nonexistent"], "--scenario goes with --fault-control or --fault-dir")):
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
            # A chunked answer is put together whole, and "Connection: close" is honoured: a new
            # connection for each request.
            result, stdout = self.load_result(
                "--requests", "6", "--connections", "1", "--mix", "health", "--verify",
                port=fake.port)
            self.assertEqual(result["ok"], 6, stdout)
            self.assertEqual(result["connections_opened"], 6, stdout)


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
                        # An error the proxy does not retry (a device error would be).
                        'faults = ["fail C_Encrypt CKR_GENERAL_ERROR every 2"]\n\n'
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
            # A request is counted in the phase it was sent in, so one sent just before the
            # burst began may meet the burst's fault: at most one per connection (closed loop),
            # and only the burst's error.
            baseline = phases["baseline"]
            self.assertLessEqual(baseline["errors"], 4, baseline)
            self.assertLessEqual(set(baseline["errors_by_error_name"]), {"InternalException"},
                                 baseline)
            burst = phases["error burst"]
            self.assertGreater(burst["error_rate"], 0.2, burst)
            self.assertEqual(list(burst["errors_by_error_name"]), ["InternalException"], burst)
            self.assertEqual(burst["faults"], ["fail C_Encrypt CKR_GENERAL_ERROR every 2"])
            spike = phases["latency spike"]
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
    proxy_process.run(globals())
