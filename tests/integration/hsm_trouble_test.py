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
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import proxy_process  # noqa: E402
from proxy_process import ProxyProcess, also_serve, b64, metadata  # noqa: E402


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
        return self.proxy.scrape()

    def metric(self, series):
        return self.proxy.metric(series)

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
            # Failing requests open the circuit (3 failures in a row by default).
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

    def test_a_module_that_may_block_is_called_on_hsm_threads(self):
        with open(os.path.join(self.proxy.dir, "serve.log")) as f:
            self.assertRegex(f.read(), r"HSM \S+: 8 sessions, calls on 8 HSM threads")

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


class FleetTest(unittest.TestCase):
    """Two HSMs (SoftHSM tokens holding the same keys), each behind its own fault module."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-fleet-test-")
        cls.faults_dir = os.path.join(cls.tmp, "faults")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), backends=2,
                                 fault_dir=cls.faults_dir)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def faults(self, backend, *lines):
        path = os.path.join(self.faults_dir, "backend-%d.ctl" % backend)
        with open(path + ".new", "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(path + ".new", path)

    scrape = HsmTroubleTest.scrape
    metric = HsmTroubleTest.metric
    encrypt = HsmTroubleTest.encrypt
    wait_for = HsmTroubleTest.wait_for
    ready = HsmTroubleTest.ready

    def setUp(self):
        # Each test starts from a healthy, idle fleet (a previous test's circuit may still be
        # open, or its hung calls still hold sessions and so steer the work away).
        self.assertTrue(self.wait_for(lambda: all(
            self.metric('xks_hsm_circuit_state{backend="hsm-%d"}' % k) == 0 and
            self.metric('xks_hsm_sessions{hsm="hsm-%d",state="busy"}' % k) == 0
            for k in (1, 2))))

    def fleet_health(self):
        status, body = self.proxy.call("health", {"requestMetadata": metadata("KmsHealthCheck")})
        self.assertEqual(status, 200, body)
        return {member["id"]: member["healthStatus"] for member in body["ekmFleetDetails"]}

    def test_every_hsm_is_listed_and_a_failing_one_is_routed_around(self):
        self.assertEqual(self.fleet_health(), {"hsm-1": "ACTIVE", "hsm-2": "ACTIVE"})
        self.faults(2, "fail C_Encrypt CKR_DEVICE_REMOVED every 1",
                    "fail C_OpenSession CKR_DEVICE_REMOVED every 1")
        try:
            # Each Encrypt that meets hsm-2 is retried on hsm-1: every answer is 200.
            for _ in range(40):
                status, body = self.encrypt()
                self.assertEqual(status, 200, body)
            self.assertEqual(self.metric('xks_hsm_circuit_state{backend="hsm-2"}'), 2)
            self.assertEqual(self.metric('xks_hsm_circuit_state{backend="hsm-1"}'), 0)
            self.assertEqual(self.fleet_health(), {"hsm-1": "ACTIVE", "hsm-2": "UNAVAILABLE"})
            self.assertTrue(self.ready())  # hsm-1 still serves
        finally:
            self.faults(2)
        self.assertTrue(self.wait_for(
            lambda: self.metric('xks_hsm_circuit_state{backend="hsm-2"}') == 0))
        self.assertEqual(self.fleet_health(), {"hsm-1": "ACTIVE", "hsm-2": "ACTIVE"})
        self.assertGreater(self.metric(
            'xks_hsm_circuit_transitions_total{backend="hsm-2",to="closed"}'), 0)

    def test_a_hanging_hsm_costs_at_most_a_few_deadline_answers(self):
        late = 'xks_hsm_late_results_total{operation="Encrypt"}'
        late_before = self.metric(late)
        self.faults(2, "hang C_Encrypt 1500")
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: self.encrypt(), range(200)))
        finally:
            self.faults(2)
        failed = [body for status, body in answers if status != 200]
        for body in failed:
            self.assertEqual(body["errorName"], "DependencyTimeoutException", body)
        # Calls stuck at hsm-2 make it the busier member, so the rest go to hsm-1; its circuit
        # opens after three deadline answers.
        self.assertLessEqual(len(failed), 10, failed)
        self.assertTrue(self.wait_for(lambda: self.metric(late) > late_before))
        self.assertTrue(self.wait_for(lambda: self.encrypt()[0] == 200))

    def test_xks_load_scenarios_can_aim_a_fault_at_one_hsm(self):
        opened = 'xks_hsm_circuit_transitions_total{backend="%s",to="open"}'
        before = {k: self.metric(opened % k) or 0 for k in ("hsm-1", "hsm-2")}
        scenario = os.path.join(self.tmp, "aimed.toml")
        with open(scenario, "w") as f:
            f.write('[[phase]]\nname = "hsm-2 down"\nseconds = 1.5\n'
                    'faults = ["backend-2: fail C_Encrypt CKR_DEVICE_REMOVED every 1"]\n')
        result_file = os.path.join(self.tmp, "aimed.json")
        run = subprocess.run(
            [proxy_process.LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
             "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
             "--connections", "4", "--scenario", scenario, "--fault-dir", self.faults_dir,
             "--json", result_file], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)  # every request answered 200
        self.assertGreater(self.metric(opened % "hsm-2"), before["hsm-2"])
        self.assertEqual(self.metric(opened % "hsm-1") or 0, before["hsm-1"])
        for k in (1, 2):  # cleared at the end
            with open(os.path.join(self.faults_dir, "backend-%d.ctl" % k)) as f:
                self.assertEqual(f.read(), "")
        # A line for an HSM without a control file is refused before the run.
        with open(scenario, "w") as f:
            f.write('[[phase]]\nname = "x"\nseconds = 1\nfaults = ["backend-9: hang C_Encrypt 1"]\n')
        run = subprocess.run(
            [proxy_process.LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
             "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
             "--scenario", scenario, "--fault-dir", self.faults_dir],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 2, run.stdout + run.stderr)
        self.assertIn("no control file for backend-9", run.stderr)


class FleetKeyInventoryTest(unittest.TestCase):
    """A key that only one HSM of the fleet holds at start."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-fleet-keys-test-")

        def key_on_the_first_token_only(state_dir):
            env = dict(os.environ, SOFTHSM2_CONF=os.path.join(state_dir, "softhsm/softhsm2.conf"))
            subprocess.run([proxy_process.BINARY, "keys", "create", "--token-label", "xks-demo",
                            "--pin-file", os.path.join(state_dir, "secrets/hsm-pin"),
                            "--label", "lonely"], check=True, env=env,
                           stdout=subprocess.DEVNULL, timeout=60)

        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), backends=2,
                                 before_serve=key_on_the_first_token_only,
                                 edit_config=also_serve("lonely", "latecomer", "nowhere"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    metric = HsmTroubleTest.metric
    scrape = HsmTroubleTest.scrape

    def test_a_key_some_hsms_lack_is_reported_and_sent_only_to_its_holders(self):
        self.assertEqual(self.metric('xks_hsm_keys_missing{hsm="hsm-2"}'), 1)
        self.assertEqual(self.metric('xks_hsm_keys_missing{hsm="hsm-1"}'), 0)
        with open(self.proxy.log.name) as f:
            self.assertIn("key 'lonely' is missing from HSM hsm-2", f.read())
        # Taken in turn, half of these would reach hsm-2 and find no key there.
        for _ in range(20):
            self.assertEqual(self.encrypt("lonely"), 200)

    def test_a_key_made_after_start_on_one_hsm_is_found_there(self):
        env = dict(os.environ,
                   SOFTHSM2_CONF=os.path.join(self.proxy.dir, "softhsm/softhsm2.conf"))
        subprocess.run([proxy_process.BINARY, "keys", "create", "--token-label", "xks-demo-2",
                        "--pin-file", os.path.join(self.proxy.dir, "secrets/hsm-pin"),
                        "--label", "latecomer"], check=True, env=env,
                       stdout=subprocess.DEVNULL, timeout=60)
        # No HSM held it at start: one that answers "no such key" is not the last word.
        for _ in range(20):
            self.assertEqual(self.encrypt("latecomer"), 200)
        # A key no HSM has is still KeyNotFoundException.
        status, body = self.proxy.call("keys/nowhere/encrypt", {
            "requestMetadata": metadata(), "plaintext": b64(b"x" * 32),
            "encryptionAlgorithm": "AES_GCM"})
        self.assertEqual((status, body["errorName"]), (404, "KeyNotFoundException"))

    def encrypt(self, key):
        status, body = self.proxy.call("keys/%s/encrypt" % key, {
            "requestMetadata": metadata(), "plaintext": b64(b"x" * 32),
            "encryptionAlgorithm": "AES_GCM"})
        return status if status == 200 else (status, body)


if __name__ == "__main__":
    proxy_process.run(globals())
