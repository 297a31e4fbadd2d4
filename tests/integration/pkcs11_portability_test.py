#!/usr/bin/python3
"""The PKCS#11 layer on a second, independent implementation: NSS softoken (libsoftokn3), set
up from nothing (a certutil database with a password, keys made through PKCS#11 by
`xks-proxy keys create` with the module's init_reserved parameters), served by the proxy with
the nss vendor profile: distinct, never-extractable keys, the largest plaintext and AAD, the
standard bad-tag code, per-process encryption counts (xks_api_test runs the XKS API tests on
NSS too); a mixed fleet of SoftHSM and NSS holding the same keys, where each opens what the
other sealed. And a module reached through
p11-kit's proxy module (p11-kit-proxy.so, the demo's SoftHSM token chosen by its label), as
many Linux hosts register PKCS#11 modules.

Usage: pkcs11_portability_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402

P11_KIT_PROXY = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"


class NssSoftokenTest(proxy_process.SharedProxyTest):
    """What differs on NSS softoken beyond the XKS API (xks_api_test runs that on it too)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-nss-test-")
        cls.nss = NssSoftoken(os.path.join(cls.tmp, "nss"))
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"),
                                 edit_config=cls.nss.serve_instead_of_softhsm)

    def test_keys_made_through_pkcs11_are_distinct_sensitive_and_never_extractable(self):
        listed = subprocess.run([BINARY, "keys", "list"] + self.nss.token_options,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
        # NSS takes two secret keys with one CKA_ID for one object: each key keeps its own.
        self.assertEqual(sorted(rows), sorted(label for label, _ in NssSoftoken.KEYS),
                         listed.stdout)
        for row in rows.values():
            self.assertIn("sensitive,not-extractable,always-sensitive,never-extractable", row)
            self.assertIn("AES-256", row)

    def test_the_largest_plaintext_and_aad_and_what_tampering_breaks(self):
        plaintext = base64.b64encode(os.urandom(4300)).decode()
        aad = base64.b64encode(os.urandom(8192)).decode()
        status, sealed = self.proxy.call("keys/foo/encrypt", {
            "requestMetadata": metadata("Encrypt"), "plaintext": plaintext,
            "additionalAuthenticatedData": aad, "encryptionAlgorithm": "AES_GCM"})
        self.assertEqual(status, 200, sealed)
        decrypt = {"requestMetadata": metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM",
                   "additionalAuthenticatedData": aad, "ciphertext": sealed["ciphertext"],
                   "initializationVector": sealed["initializationVector"],
                   "authenticationTag": sealed["authenticationTag"]}
        if "ciphertextMetadata" in sealed:  # the key version
            decrypt["ciphertextMetadata"] = sealed["ciphertextMetadata"]
        status, opened = self.proxy.call("keys/foo/decrypt", decrypt)
        self.assertEqual((status, opened.get("plaintext")), (200, plaintext))
        # NSS's bad-tag code is the standard one; the nss profile maps it.
        tag = bytearray(base64.b64decode(sealed["authenticationTag"]))
        tag[0] ^= 1
        self.expect_error(self.proxy.call("keys/foo/decrypt", dict(
            decrypt, authenticationTag=base64.b64encode(bytes(tag)).decode())), 400,
            "InvalidCiphertextException")
        self.expect_error(self.proxy.call("keys/foo/decrypt", dict(
            decrypt, additionalAuthenticatedData=base64.b64encode(b"other").decode())), 400,
            "InvalidCiphertextException")
        self.expect_error(self.proxy.call("keys/decrypt_only_key/encrypt", {
            "requestMetadata": metadata("Encrypt"), "plaintext": plaintext,
            "encryptionAlgorithm": "AES_GCM"}), 400, "InvalidKeyUsageException")

    def test_encryption_counts_are_per_process_on_a_token_without_data_objects(self):
        with open(self.proxy.log.name) as f:
            log = f.read()
        self.assertIn("keeps no data objects (vendor profile 'nss'): the keys' encryption counts "
                      "are this process's only", log)
        self.assertNotIn("encryption counts not recorded", log)
        # `keys list` says so rather than showing 0.
        listed = subprocess.run([BINARY, "keys", "list", "--config", self.proxy.config],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        foo = next(line for line in listed.stdout.splitlines() if line.startswith("foo "))
        self.assertIn("not kept", foo)


class P11KitProxyTest(unittest.TestCase):
    def test_a_token_chosen_by_label_through_p11_kit_proxy(self):
        tmp = tempfile.mkdtemp(prefix="xks-p11-kit-test-")
        try:
            # SoftHSM is registered with p11-kit by its Debian package; the demo's token is
            # found among every registered module's tokens by its label.
            proxy = ProxyProcess(os.path.join(tmp, "demo"), edit_config=lambda config: config
                                 .replace("/usr/lib/softhsm/libsofthsm2.so", P11_KIT_PROXY))
            try:
                with open(proxy.config) as f:
                    self.assertIn('module = "%s"' % P11_KIT_PROXY, f.read())
                status, sealed = proxy.call("keys/foo/encrypt", {
                    "requestMetadata": metadata("Encrypt"), "plaintext": "aGVsbG8=",
                    "encryptionAlgorithm": "AES_GCM"})
                self.assertEqual(status, 200, sealed)
                decrypt = {"requestMetadata": metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM",
                           "ciphertext": sealed["ciphertext"],
                           "initializationVector": sealed["initializationVector"],
                           "authenticationTag": sealed["authenticationTag"]}
                if "ciphertextMetadata" in sealed:  # the key version
                    decrypt["ciphertextMetadata"] = sealed["ciphertextMetadata"]
                status, opened = proxy.call("keys/foo/decrypt", decrypt)
                self.assertEqual((status, opened.get("plaintext")), (200, "aGVsbG8="))
            finally:
                self.assertEqual(proxy.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)



class MixedFleetTest(proxy_process.SharedProxyTest):
    """`xks-proxy demo --backends 2 --vendors softhsm,nss`: the same key material on a SoftHSM
    token and in NSS softoken, one fleet; what either encrypts, the other decrypts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-mixed-fleet-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), backends=2,
                                 vendors="softhsm,nss")

    def test_a_ciphertext_made_on_one_implementation_opens_on_the_other(self):
        status, health = self.proxy.call("health", {"requestMetadata": {
            "kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}})
        self.assertEqual(status, 200, health)
        self.assertEqual([(e["id"], e["healthStatus"]) for e in health["ekmFleetDetails"]],
                         [("hsm-1", "ACTIVE"), ("hsm-2", "ACTIVE")])
        pairs = []
        for i in range(6):
            if i == 3:
                # The fleet takes idle members in turn: one call more, and the pairs swap sides.
                self.assertEqual(self.proxy.call("keys/foo/encrypt", {
                    "requestMetadata": metadata("Encrypt"), "plaintext": "AAAA",
                    "encryptionAlgorithm": "AES_GCM"})[0], 200)
            plaintext = base64.b64encode(os.urandom(48)).decode()
            aad = base64.b64encode(os.urandom(16)).decode()
            sealing = metadata("Encrypt")
            status, sealed = self.proxy.call("keys/foo/encrypt", {
                "requestMetadata": sealing, "plaintext": plaintext,
                "additionalAuthenticatedData": aad, "encryptionAlgorithm": "AES_GCM"})
            self.assertEqual(status, 200, sealed)
            opening = metadata("Decrypt")
            decrypt = {"requestMetadata": opening, "encryptionAlgorithm": "AES_GCM",
                       "additionalAuthenticatedData": aad, "ciphertext": sealed["ciphertext"],
                       "initializationVector": sealed["initializationVector"],
                       "authenticationTag": sealed["authenticationTag"]}
            if "ciphertextMetadata" in sealed:
                decrypt["ciphertextMetadata"] = sealed["ciphertextMetadata"]
            status, opened = self.proxy.call("keys/foo/decrypt", decrypt)
            self.assertEqual((status, opened.get("plaintext")), (200, plaintext), opened)
            pairs.append((sealing["kmsRequestId"], opening["kmsRequestId"]))
        # Which HSM served each request, from the audit log.
        served = {}
        for line in self.audit_lines():
            record = json.loads(line)
            if "kmsRequestId" in record:
                served[record["kmsRequestId"]] = record.get("hsm")
        crossed = [(served[sealing], served[opening]) for sealing, opening in pairs
                   if served[sealing] != served[opening]]
        self.assertIn(("hsm-1", "hsm-2"), crossed, served)  # SoftHSM's opened by NSS
        self.assertIn(("hsm-2", "hsm-1"), crossed, served)  # and the other way

    def test_xks_load_verifies_every_answer_across_the_fleet(self):
        result, stdout = self.load_result("--connections", "4", "--requests", "400",
                                          "--mix", "encrypt:1,decrypt:1", "--verify")
        self.assertEqual(result["ok"], 400, stdout)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.proxy.admin_port,
                                    timeout=10) as response:
            metrics = response.read().decode()
        for hsm in ("hsm-1", "hsm-2"):
            for operation in ("Encrypt", "Decrypt"):
                count = re.search(r'xks_hsm_operation_duration_seconds_count\{hsm="%s",'
                                  r'operation="%s"\} (\d+)' % (hsm, operation), metrics)
                self.assertTrue(count and int(count.group(1)) > 0, (hsm, operation))


class MixedFleetFailoverTest(unittest.TestCase):
    def test_xks_load_verifies_across_a_failover_each_way(self):
        """Each HSM of a SoftHSM + NSS fleet fails in turn (device errors through its fault
        module): every request is answered by the other, every decrypt opens what either
        sealed, and xks-load --verify finds every answer right."""
        tmp = tempfile.mkdtemp(prefix="xks-mixed-failover-test-")
        try:
            fault_dir = os.path.join(tmp, "faults")
            proxy = ProxyProcess(os.path.join(tmp, "demo"), backends=2, vendors="softhsm,nss",
                                 fault_dir=fault_dir)
            with open(os.path.join(fault_dir, "backend-2.target")) as f:
                self.assertEqual(f.read().strip(), "libsoftokn3.so")
            scenario = os.path.join(tmp, "scenario.toml")
            down = ('faults = ["backend-%d: fail C_Encrypt CKR_DEVICE_ERROR every 1", '
                    '"backend-%d: fail C_Decrypt CKR_DEVICE_ERROR every 1"]\n')
            with open(scenario, "w") as f:
                f.write('[[phase]]\nname = "both"\nseconds = 1\n\n'
                        '[[phase]]\nname = "softhsm fails"\nseconds = 1.5\n' + down % (1, 1) +
                        # Time for SoftHSM's circuit to close again (a probe after open_ms).
                        '\n[[phase]]\nname = "both recover"\nseconds = 1.5\n'
                        '\n[[phase]]\nname = "nss fails"\nseconds = 1.5\n' + down % (2, 2) +
                        '\n[[phase]]\nname = "both again"\nseconds = 1\n')
            result_file = os.path.join(tmp, "result.json")
            run = subprocess.run(
                [LOAD_BINARY, "--port", str(proxy.port), "--cacert", proxy.ca,
                 "--kms-console", os.path.join(proxy.dir, "kms-console.json"),
                 "--connections", "4", "--threads", "1", "--mix", "encrypt:1,decrypt:1",
                 "--verify", "--scenario", scenario, "--fault-dir", fault_dir,
                 "--json", result_file],
                capture_output=True, text=True, timeout=120)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % proxy.admin_port,
                                        timeout=10) as response:
                metrics = response.read().decode()
            proxy.stop()
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(result_file) as f:
                phases = {p["name"]: p for p in json.load(f)["phases"]}
            for name in ("softhsm fails", "nss fails"):
                self.assertGreater(phases[name]["requests"], 50, phases[name])
                self.assertEqual(phases[name]["errors"], 0, phases[name])
            # Both members were cut off once, and served again.
            for hsm in ("hsm-1", "hsm-2"):
                self.assertRegex(metrics, r'xks_hsm_circuit_transitions_total\{backend="%s",'
                                          r'to="open"\} [1-9]' % hsm)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    proxy_process.run(globals())
