#!/usr/bin/python3
"""A bad day for the HSM, on the real binary through the fault-injecting PKCS#11 module: a hung
HSM is answered at the request deadline, its late results are discarded and counted, and the
proxy serves again as soon as the HSM does.

Usage: hsm_trouble_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import concurrent.futures
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import proxy_process  # noqa: E402
from proxy_process import ProxyProcess, b64, metadata  # noqa: E402


class HsmTroubleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-hsm-trouble-test-")
        cls.control = os.path.join(cls.tmp, "faults")
        open(cls.control, "w").close()
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), fault_control=cls.control)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def faults(self, *lines):
        with open(self.control + ".new", "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(self.control + ".new", self.control)

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            return response.read().decode()

    def metric(self, series):
        text = self.scrape()
        match = re.search("^" + re.escape(series) + r" (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else None

    def encrypt(self):
        return self.proxy.call("keys/foo/encrypt", {"requestMetadata": metadata(),
                                                    "plaintext": b64(b"x" * 32),
                                                    "encryptionAlgorithm": "AES_GCM"})

    def ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.proxy.admin_port,
                                        timeout=10) as response:
                return response.status == 200
        except urllib.error.HTTPError as error:
            return error.code == 200

    def health_status(self):
        status, body = self.proxy.call("health", {"requestMetadata": metadata("KmsHealthCheck")})
        self.assertEqual(status, 200, body)
        return body["ekmFleetDetails"][0]["healthStatus"]

    def wait_for(self, condition, seconds=20):
        give_up = time.time() + seconds
        while not condition() and time.time() < give_up:
            time.sleep(0.05)
        return condition()

    def test_an_outage_opens_the_circuit_and_its_end_closes_it(self):
        state = 'xks_hsm_circuit_state{backend="%s"}'
        backend = re.search(r'xks_hsm_circuit_state\{backend="([^"]+)"\}', self.scrape()).group(1)
        state = state % backend
        self.assertEqual(self.metric(state), 0)
        self.faults("fail C_Encrypt CKR_DEVICE_REMOVED every 1",
                    "fail C_OpenSession CKR_DEVICE_REMOVED every 1")
        try:
            # Failing requests open the circuit (5 failures in a row by default).
            self.assertTrue(self.wait_for(lambda: self.encrypt()[0] != 200 and
                                          self.metric(state) == 2))
            status, body = self.encrypt()
            self.assertEqual(status, 503, body)
            self.assertEqual(body["errorName"], "DependencyTimeoutException", body)
            self.assertEqual(self.health_status(), "UNAVAILABLE")
            self.assertFalse(self.ready())
            self.assertGreater(self.metric("xks_hsm_circuit_rejections_total"), 0)
        finally:
            self.faults()
        # The prober finds the HSM back and closes the circuit; serving resumes.
        self.assertTrue(self.wait_for(lambda: self.metric(state) == 0))
        self.assertTrue(self.wait_for(lambda: self.encrypt()[0] == 200))
        self.assertTrue(self.ready())
        self.assertEqual(self.health_status(), "ACTIVE")
        for to in ("open", "half_open", "closed"):
            self.assertGreater(self.metric(
                'xks_hsm_circuit_transitions_total{backend="%s",to="%s"}' % (backend, to)), 0)

    def test_device_errors_are_retried_on_another_session(self):
        self.faults("fail C_Encrypt CKR_DEVICE_ERROR every 3")
        try:
            for _ in range(30):
                status, body = self.encrypt()
                self.assertEqual(status, 200, body)
        finally:
            self.faults()

    def test_a_hung_hsm_is_answered_at_the_deadline_and_the_proxy_recovers(self):
        late = 'xks_hsm_late_results_total{operation="Encrypt"}'
        late_before = self.metric(late)
        # Every C_Encrypt blocks 1.5 s: far past the 200 ms request deadline.
        self.faults("hang C_Encrypt 1500")
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: self.encrypt(), range(12)))
        for status, body in answers:
            self.assertEqual(status, 503, body)
            self.assertEqual(body["errorName"], "DependencyTimeoutException", body)
        # Requests that need no HSM call are answered while the HSM hangs.
        status, body = self.proxy.call("health", {"requestMetadata": metadata("KmsHealthCheck")})
        self.assertEqual(status, 200, body)
        self.faults()
        # The hung calls return after 1.5 s; their results come too late and are discarded.
        give_up = time.time() + 20
        while self.metric(late) == late_before and time.time() < give_up:
            time.sleep(0.1)
        self.assertGreater(self.metric(late), late_before)
        # And the proxy serves again as soon as the HSM does.
        give_up = time.time() + 20
        status, body = self.encrypt()
        while status != 200 and time.time() < give_up:
            time.sleep(0.1)
            status, body = self.encrypt()
        self.assertEqual(status, 200, body)
        self.assertGreaterEqual(self.metric(
            'xks_requests_total{keystore="/example",operation="Encrypt",result="error",'
            'error="DependencyTimeoutException"}'), 12)


if __name__ == "__main__":
    proxy_process.run(globals())
