#!/usr/bin/python3
"""Access control on the real binary: key lists (denied by default, the health key never
served), secondary authorization rules (each condition, deny precedence, globs, health never
gated), quotas (429 ThrottlingException at the configured rate, the HSM untouched) and
`xks-proxy authz explain`. Requests are signed by botocore as KMS signs them.

Usage: access_control_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402

RULES = """
[[keystore.rule]]
id = "no-mallory-decrypt"
effect = "deny"
operations = ["Decrypt"]
principals = ["arn:aws:iam::*:user/Mallory"]

[[keystore.rule]]
id = "no-bad-endpoint"
effect = "deny"
source_vpces = ["vpce-bad*"]

[[keystore.rule]]
id = "alice"
effect = "allow"
principals = ["arn:aws:iam::*:user/Alice"]

[[keystore.rule]]
id = "through-ebs"
effect = "allow"
via_services = ["ebs.*.amazonaws.com"]
kms_operations = ["GenerateDataKey*", "Decrypt"]
"""

ALICE = "arn:aws:iam::123456789012:user/Alice"
MALLORY = "arn:aws:iam::123456789012:user/Mallory"


def request_metadata(principal=ALICE, kms_operation="Encrypt", **extra):
    fields = {"awsPrincipalArn": principal, "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/1",
              "kmsOperation": kms_operation, "kmsRequestId": str(uuid.uuid4())}
    fields.update(extra)
    return fields


def encrypt_body(**metadata_fields):
    return {"requestMetadata": request_metadata(**metadata_fields),
            "plaintext": b64(b"p" * 32), "encryptionAlgorithm": "AES_GCM"}


class AccessControlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-access-test-")

        def hidden_key(state_dir):
            # On the HSM but not listed: it must look exactly like a key that does not exist.
            env = dict(os.environ,
                       SOFTHSM2_CONF=os.path.join(state_dir, "softhsm/softhsm2.conf"))
            subprocess.run([proxy_process.BINARY, "keys", "create", "--token-label", "xks-demo",
                            "--pin-file", os.path.join(state_dir, "secrets/hsm-pin"),
                            "--label", "hidden"], check=True, env=env,
                           stdout=subprocess.DEVNULL, timeout=60)

        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), before_serve=hidden_key,
                                 edit_config=lambda config: config + RULES)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def expect(self, result, status, name=None):
        self.assertEqual(result[0], status, result)
        if name:
            self.assertEqual(result[1]["errorName"], name, result)

    def denied(self, rule):
        return self.proxy.metric(
            'xks_authz_denied_total{keystore="/example",rule="%s"}' % rule) or 0

    def audit_records(self):
        time.sleep(0.3)  # the writer thread flushes each batch
        with open(os.path.join(self.proxy.dir, "audit.log")) as f:
            return [json.loads(line) for line in f]

    def ciphertext(self):
        status, sealed = self.proxy.call("keys/foo/encrypt", encrypt_body())
        self.assertEqual(status, 200, sealed)
        return {key: sealed[key] for key in
                ("ciphertext", "initializationVector", "authenticationTag")}

    def test_an_unlisted_key_and_a_missing_key_look_the_same(self):
        hidden = self.proxy.call("keys/hidden/metadata", {"requestMetadata": request_metadata()})
        missing = self.proxy.call("keys/missing/metadata",
                                  {"requestMetadata": request_metadata()})
        self.expect(hidden, 404, "KeyNotFoundException")
        self.assertEqual(hidden, missing)

    def test_the_health_key_is_never_served(self):
        self.expect(self.proxy.call("keys/xks-health/encrypt", encrypt_body()), 404,
                    "KeyNotFoundException")

    def test_an_allow_rule_admits_its_principal(self):
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body()), 200)
        record = [r for r in self.audit_records() if r.get("operation") == "Encrypt"][-1]
        self.assertEqual(record["rule"], "alice")

    def test_a_deny_rule_wins_over_an_allow_rule(self):
        before = self.denied("no-bad-endpoint")
        self.expect(self.proxy.call("keys/foo/encrypt",
                                    encrypt_body(awsSourceVpce="vpce-bad-1")),
                    403, "AccessDeniedException")
        self.assertEqual(self.denied("no-bad-endpoint"), before + 1)
        # Another endpoint is fine.
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body(awsSourceVpce="vpce-ok")),
                    200)

    def test_mallory_may_not_decrypt_even_through_ebs(self):
        before = self.denied("no-mallory-decrypt")
        body = dict(self.ciphertext(), encryptionAlgorithm="AES_GCM",
                    requestMetadata=request_metadata(
                        MALLORY, "Decrypt", kmsViaService="ebs.us-east-1.amazonaws.com"))
        self.expect(self.proxy.call("keys/foo/decrypt", body), 403, "AccessDeniedException")
        self.assertEqual(self.denied("no-mallory-decrypt"), before + 1)
        denied = [r for r in self.audit_records() if r.get("errorName") == "AccessDeniedException"]
        self.assertEqual(denied[-1]["rule"], "no-mallory-decrypt")
        self.assertEqual(denied[-1]["awsPrincipalArn"], MALLORY)

    def test_a_request_no_allow_rule_matches_is_refused(self):
        before = self.denied("(no allow rule)")
        # Mallory directly, and Mallory through EBS for an operation the rule does not list.
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body(principal=MALLORY)),
                    403, "AccessDeniedException")
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body(
            principal=MALLORY, kms_operation="Encrypt",
            kmsViaService="ebs.us-east-1.amazonaws.com")), 403, "AccessDeniedException")
        self.assertEqual(self.denied("(no allow rule)"), before + 2)

    def test_globs_on_via_service_and_kms_operation(self):
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body(
            principal=MALLORY, kms_operation="GenerateDataKeyWithoutPlaintext",
            kmsViaService="ebs.eu-west-3.amazonaws.com")), 200)
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body(
            principal=MALLORY, kms_operation="GenerateDataKey",
            kmsViaService="rds.eu-west-3.amazonaws.com")), 403, "AccessDeniedException")

    def test_health_is_never_gated(self):
        status, body = self.proxy.call("health", {"requestMetadata": {
            "kmsRequestId": str(uuid.uuid4()), "kmsOperation": "KmsHealthCheck"}})
        self.assertEqual(status, 200, body)

    def test_authz_explain_names_the_deciding_rule(self):
        request = os.path.join(self.tmp, "request.json")
        with open(request, "w") as f:
            json.dump({"path": "/example/kms/xks/v1/keys/foo/decrypt",
                       "body": {"requestMetadata": request_metadata(MALLORY, "Decrypt")}}, f)
        run = subprocess.run([proxy_process.BINARY, "authz", "explain", "--config",
                              self.proxy.config, "--request", request],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("rule no-mallory-decrypt (deny): applies", run.stdout)
        self.assertIn("rule alice (allow): does not apply (principals)", run.stdout)
        self.assertIn("REFUSED: 403 AccessDeniedException by deny rule no-mallory-decrypt",
                      run.stdout)
        # An audit record explains too: here an allowed one.
        self.expect(self.proxy.call("keys/foo/encrypt", encrypt_body()), 200)
        record = [r for r in self.audit_records() if r.get("operation") == "Encrypt"][-1]
        with open(request, "w") as f:
            json.dump(record, f)
        run = subprocess.run([proxy_process.BINARY, "authz", "explain", "--config",
                              self.proxy.config, "--request", request],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("ALLOWED by rule alice", run.stdout)


class QuotaTest(unittest.TestCase):
    RATE = 20
    BURST = 10

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-quota-test-")
        cls.proxy = ProxyProcess(
            os.path.join(cls.tmp, "demo"),
            edit_config=lambda config: config + (
                "\n[keystore.quota]\nrequests_per_second = %d\nburst = %d\n"
                "per_key_requests_per_second = 1000\nper_key_burst = 1000\n"
                % (cls.RATE, cls.BURST)))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def hsm_calls(self):
        return self.proxy.metric('xks_hsm_operation_duration_seconds_count'
                                 '{hsm="%s",operation="GetKeyMetadata"}' % self.hsm_name()) or 0

    def hsm_name(self):
        match = re.search(r'xks_hsm_operation_duration_seconds_count\{hsm="([^"]+)"',
                          self.proxy.scrape())
        return match.group(1)

    def test_requests_beyond_the_rate_are_throttled_before_the_hsm(self):
        time.sleep(self.BURST / self.RATE)  # a full bucket
        hsm_before = self.hsm_calls()
        connection = http.client.HTTPSConnection("localhost", self.proxy.port, timeout=10,
                                                 context=self.proxy.tls_context())
        statuses = []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            status, body = self.proxy.call("keys/foo/metadata",
                                           {"requestMetadata": request_metadata()},
                                           connection=connection)
            statuses.append(status)
            if status == 429:
                self.assertEqual(body["errorName"], "ThrottlingException")
        elapsed = time.monotonic() - started
        connection.close()
        admitted = statuses.count(200)
        self.assertEqual(admitted + statuses.count(429), len(statuses), statuses)
        self.assertGreater(statuses.count(429), 0)
        # The burst, then the rate: within a couple of requests of the bucket's arithmetic.
        expected = self.BURST + self.RATE * elapsed
        self.assertLessEqual(abs(admitted - expected), 3,
                             "%d admitted in %.2f s, expected %.1f" % (admitted, elapsed, expected))
        # Only admitted requests reached the HSM.
        self.assertEqual(self.hsm_calls() - hsm_before, admitted)
        throttled = self.proxy.metric(
            'xks_throttled_total{keystore="/example",scope="keystore"}')
        self.assertGreaterEqual(throttled, statuses.count(429))


if __name__ == "__main__":
    proxy_process.run(globals())
