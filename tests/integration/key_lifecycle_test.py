#!/usr/bin/python3
"""Key lifecycle on the real binary: rotation under load (xks-load --verify across two
rotations), retire, disable and enable seen by the running proxy, ciphertextMetadata tampering,
and keys the HSM does not protect refused unless the key store allows them.

Usage: key_lifecycle_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


def encrypt_body(plaintext=b"p" * 32, aad=b"context"):
    return {"requestMetadata": metadata(), "plaintext": b64(plaintext),
            "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"}


def decrypt_body(sealed, aad=b"context", ciphertext_metadata=None):
    body = {"requestMetadata": metadata("Decrypt"), "ciphertext": sealed["ciphertext"],
            "initializationVector": sealed["initializationVector"],
            "authenticationTag": sealed["authenticationTag"],
            "additionalAuthenticatedData": b64(aad), "encryptionAlgorithm": "AES_GCM"}
    metadata_value = sealed.get("ciphertextMetadata") if ciphertext_metadata is None \
        else ciphertext_metadata
    if metadata_value:
        body["ciphertextMetadata"] = metadata_value
    return body


def pkcs11_tool(state_dir, *arguments):
    """Another tool at work on the demo's token, logged in. pkcs11-tool takes the PIN only on
    its command line: a failure reports its output, never the command."""
    with open(os.path.join(state_dir, "secrets/hsm-pin")) as f:
        pin = f.read().strip()
    run = subprocess.run(
        ["pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label",
         "xks-demo", "--login", "--pin", pin] + list(arguments),
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, SOFTHSM2_CONF=os.path.join(state_dir, "softhsm/softhsm2.conf")))
    if run.returncode != 0:
        raise RuntimeError("pkcs11-tool %s failed: %s" % (arguments[0], run.stderr))


def make_weak_key(state_dir):
    """A key the HSM would hand out in the clear, made by another tool."""
    pkcs11_tool(state_dir, "--keygen", "--key-type", "AES:32", "--label", "weak", "--extractable")


class KeyLifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-lifecycle-test-")

        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), before_serve=make_weak_key,
                                 edit_config=also_serve("weak", "rotating", "lifecycle"))
        cls.env = dict(os.environ,
                       SOFTHSM2_CONF=os.path.join(cls.proxy.dir, "softhsm/softhsm2.conf"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def keys(self, *arguments, expect=0):
        run = subprocess.run([BINARY, "keys"] + list(arguments) + ["--config", self.proxy.config],
                             capture_output=True, text=True, timeout=60, env=self.env)
        self.assertEqual(run.returncode, expect, run.stdout + run.stderr)
        return run.stdout

    def encrypt(self, key):
        status, sealed = self.proxy.call("keys/%s/encrypt" % key, encrypt_body())
        self.assertEqual(status, 200, sealed)
        return sealed

    def version_of(self, sealed):
        data = base64.b64decode(sealed["ciphertextMetadata"])
        self.assertEqual(data[0], 1)  # the format byte
        return int.from_bytes(data[1:], "big")

    def audit_events(self):
        time.sleep(0.3)
        with open(os.path.join(self.proxy.dir, "audit.log")) as f:
            return [json.loads(line) for line in f if '"event":"key_change"' in line]

    def test_rotation_under_load_loses_nothing_and_every_version_still_decrypts(self):
        self.keys("create", "--label", "rotating")
        first = self.encrypt("rotating")
        self.assertEqual(self.version_of(first), 1)
        result = {}

        def load():
            result["run"] = subprocess.run(
                [LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
                 "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
                 "--key", "rotating", "--mix", "encrypt:1,decrypt:1", "--verify",
                 "--rate", "200", "--seconds", "4", "--json", os.path.join(self.tmp, "load.json")],
                capture_output=True, text=True, timeout=60)

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1)
        self.assertIn("version 2 made", self.keys("rotate", "rotating"))
        time.sleep(1)
        self.assertIn("version 3 made", self.keys("rotate", "rotating"))
        thread.join(60)
        run = result["run"]
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        with open(os.path.join(self.tmp, "load.json")) as f:
            report = json.load(f)
        self.assertEqual(report["errors"], 0, report["errors_by"])
        self.assertGreater(report["ok"], 600)
        # The proxy saw both rotations at once (the command signalled it) and recorded them.
        third = self.encrypt("rotating")
        self.assertEqual(self.version_of(third), 3)
        changes = [e["change"] for e in self.audit_events()]
        self.assertIn("key rotating version 2 appeared (active)", changes)
        self.assertIn("key rotating version 3 appeared (active)", changes)
        # Ciphertexts of every version decrypt.
        for sealed in (first, third):
            status, opened = self.proxy.call("keys/rotating/decrypt", decrypt_body(sealed))
            self.assertEqual(status, 200, opened)
        listing = self.keys("list")
        self.assertRegex(listing, r"rotating +3 +active")

    def test_retire_disable_and_enable(self):
        self.keys("create", "--label", "lifecycle")
        self.keys("rotate", "lifecycle")
        second = self.encrypt("lifecycle")
        self.assertEqual(self.version_of(second), 2)
        self.keys("retire", "lifecycle", "--version", "2")
        # Encrypt goes back to the newest active version; version 2 still decrypts.
        self.assertEqual(self.version_of(self.encrypt("lifecycle")), 1)
        status, _ = self.proxy.call("keys/lifecycle/decrypt", decrypt_body(second))
        self.assertEqual(status, 200)
        self.keys("disable", "lifecycle")
        status, body = self.proxy.call("keys/lifecycle/metadata",
                                       {"requestMetadata": metadata("DescribeKey")})
        self.assertEqual((status, body["keyStatus"]), (200, "DISABLED"))
        for path, payload in (("encrypt", encrypt_body()), ("decrypt", decrypt_body(second))):
            status, body = self.proxy.call("keys/lifecycle/" + path, payload)
            self.assertEqual((status, body["errorName"]), (400, "InvalidStateException"))
        self.keys("enable", "lifecycle")
        status, body = self.proxy.call("keys/lifecycle/metadata",
                                       {"requestMetadata": metadata("DescribeKey")})
        self.assertEqual(body["keyStatus"], "ENABLED")
        status, _ = self.proxy.call("keys/lifecycle/decrypt", decrypt_body(second))
        self.assertEqual(status, 200)
        changes = [e["change"] for e in self.audit_events()]
        for change in ("key lifecycle version 2 is now decrypt-only", "key lifecycle disabled",
                       "key lifecycle enabled"):
            self.assertIn(change, changes)
        self.keys("retire", "nope", "--version", "1", expect=1)

    def test_any_bit_flipped_in_the_metadata_is_an_invalid_ciphertext(self):
        sealed = self.encrypt("foo")
        original = base64.b64decode(sealed["ciphertextMetadata"])
        for bit in range(len(original) * 8):
            tampered = bytearray(original)
            tampered[bit // 8] ^= 1 << (bit % 8)
            status, body = self.proxy.call("keys/foo/decrypt",
                                           decrypt_body(sealed, ciphertext_metadata=b64(
                                               bytes(tampered))))
            self.assertEqual((status, body["errorName"]), (400, "InvalidCiphertextException"),
                             bit)
        # Removed: the original version, whose AAD had no metadata: it does not authenticate.
        status, body = self.proxy.call("keys/foo/decrypt", decrypt_body(sealed,
                                                                        ciphertext_metadata=""))
        self.assertEqual((status, body["errorName"]), (400, "InvalidCiphertextException"))

    def test_a_key_the_hsm_does_not_protect_is_refused(self):
        for path, payload in (("metadata", {"requestMetadata": metadata("DescribeKey")}),
                              ("encrypt", encrypt_body())):
            status, body = self.proxy.call("keys/weak/" + path, payload)
            self.assertEqual((status, body["errorName"]), (400, "InvalidStateException"), path)
        self.assertRegex(self.keys("list"), r"weak .*NOT-SENSITIVE,EXTRACTABLE")


class FleetRotationTest(unittest.TestCase):
    def test_every_hsm_of_a_fleet_gets_the_same_new_version(self):
        tmp = tempfile.mkdtemp(prefix="xks-fleet-rotation-test-")
        proxy = ProxyProcess(os.path.join(tmp, "demo"), backends=2)
        try:
            env = dict(os.environ, SOFTHSM2_CONF=os.path.join(proxy.dir, "softhsm/softhsm2.conf"))
            run = subprocess.run([BINARY, "keys", "rotate", "foo", "--config", proxy.config],
                                 capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertEqual(run.stdout.count("version 2 made"), 2, run.stdout)
            self.assertIn("has read its keys again", run.stdout)
            # Requests go to both HSMs in turn: whichever encrypted, the other decrypts.
            for _ in range(10):
                status, sealed = proxy.call("keys/foo/encrypt", encrypt_body())
                self.assertEqual(status, 200, sealed)
                self.assertEqual(base64.b64decode(sealed["ciphertextMetadata"]), b"\x01\x00\x02")
                for _ in range(2):
                    status, opened = proxy.call("keys/foo/decrypt", decrypt_body(sealed))
                    self.assertEqual(status, 200, opened)
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class MigrationFromTheSampleProxyTest(unittest.TestCase):
    """Ciphertexts AWS's sample XKS proxy made, built here independently with `cryptography`
    from its documented scheme, decrypt through a key store that migrates from it."""

    SAMPLE_METADATA = b"xks-sample"

    def test_sample_ciphertexts_decrypt_and_new_ones_use_this_proxys_scheme(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        import hashlib
        tmp = tempfile.mkdtemp(prefix="xks-migration-test-")
        key = os.urandom(32)

        def import_known_key(state_dir):
            key_file = os.path.join(tmp, "key.bin")
            with open(key_file, "wb") as f:
                f.write(key)
            pkcs11_tool(state_dir, "--write-object", key_file, "--type", "secrkey", "--key-type",
                        "AES:32", "--label", "migrated", "--sensitive")
            os.remove(key_file)

        proxy = ProxyProcess(
            os.path.join(tmp, "demo"), before_serve=import_known_key,
            edit_config=lambda config: also_serve("migrated")(config) +
            '\n[keystore.aws_sample_proxy]\nciphertext_metadata = "%s"\n' % b64(
                self.SAMPLE_METADATA))
        try:
            for aad in (b"encryption-context", b""):
                plaintext = os.urandom(32)
                # The sample's AAD: u16be(len AAD) || SHA-256(AAD) if any || u8(len ctm) || ctm.
                sample_aad = len(aad).to_bytes(2, "big") + \
                    (hashlib.sha256(aad).digest() if aad else b"") + \
                    bytes([len(self.SAMPLE_METADATA)]) + self.SAMPLE_METADATA
                iv = os.urandom(12)
                sealed = AESGCM(key).encrypt(iv, plaintext, sample_aad)
                body = {"requestMetadata": metadata("Decrypt"), "ciphertext": b64(sealed[:-16]),
                        "initializationVector": b64(iv), "authenticationTag": b64(sealed[-16:]),
                        "ciphertextMetadata": b64(self.SAMPLE_METADATA),
                        "encryptionAlgorithm": "AES_GCM"}
                if aad:
                    body["additionalAuthenticatedData"] = b64(aad)
                status, opened = proxy.call("keys/migrated/decrypt", body)
                self.assertEqual(status, 200, opened)
                self.assertEqual(base64.b64decode(opened["plaintext"]), plaintext)
                # A bit flipped in the tag: refused.
                body["authenticationTag"] = b64(bytes([sealed[-16] ^ 1]) + sealed[-15:])
                status, refused = proxy.call("keys/migrated/decrypt", body)
                self.assertEqual((status, refused["errorName"]),
                                 (400, "InvalidCiphertextException"))
            # New encryptions use this proxy's scheme and metadata, and decrypt.
            status, sealed = proxy.call("keys/migrated/encrypt", encrypt_body())
            self.assertEqual(status, 200, sealed)
            self.assertEqual(base64.b64decode(sealed["ciphertextMetadata"]), b"\x01\x00\x01")
            status, _ = proxy.call("keys/migrated/decrypt", decrypt_body(sealed))
            self.assertEqual(status, 200)
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class EncryptionCountTest(unittest.TestCase):
    """Each version's encryptions are counted, kept on the token (in a count object beside the
    key) across restarts, and the proxy warns well before one AES-GCM key's 2^32."""

    WARNING = 2 ** 30

    def test_counts_survive_a_restart_and_a_version_near_the_limit_is_reported(self):
        tmp = tempfile.mkdtemp(prefix="xks-count-test-")
        near = self.WARNING - 4

        def import_busy_key(state_dir):
            # A version that has, by its count object, served nearly the warning's worth.
            key_file = os.path.join(tmp, "key.bin")
            count_file = os.path.join(tmp, "count")
            with open(key_file, "wb") as f:
                f.write(os.urandom(32))
            with open(count_file, "w") as f:
                f.write(str(near))
            pkcs11_tool(state_dir, "--write-object", key_file, "--type", "secrkey", "--key-type",
                        "AES:32", "--label", "busy", "--sensitive")
            pkcs11_tool(state_dir, "--write-object", count_file, "--type", "data", "--label",
                        "busy", "--application-label", "xks-proxy encryptions v=1", "--private")
            os.remove(key_file)

        demo = os.path.join(tmp, "demo")
        proxy = ProxyProcess(demo, before_serve=import_busy_key,
                             edit_config=also_serve("busy"))
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(demo, "softhsm/softhsm2.conf"))

        def keys_list():
            run = subprocess.run([BINARY, "keys", "list", "--config", proxy.config],
                                 capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            return run.stdout

        def lifetime():
            match = re.search(r'^xks_key_lifetime_encryptions\{hsm="[^"]+",key="busy",'
                              r'version="1"\} (\S+)$', proxy.scrape(), re.MULTILINE)
            return float(match.group(1)) if match else None

        def warnings():
            with open(os.path.join(demo, "audit.log")) as f:
                return [json.loads(line) for line in f
                        if '"event":"encryption_limit_near"' in line]

        try:
            for _ in range(3):
                status, body = proxy.call("keys/busy/encrypt", encrypt_body())
                self.assertEqual(status, 200, body)
            self.assertEqual(lifetime(), near + 3)
            self.assertEqual(warnings(), [])
            # A SIGHUP records the counts at once (else within a minute) and reads them back.
            proxy.process.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while "%d" % (near + 3) not in keys_list() and time.time() < deadline:
                time.sleep(0.2)
            self.assertRegex(keys_list(), r"busy +1 +active .* %d +sensitive" % (near + 3))
            self.assertEqual(warnings(), [])
            # Past the warning: logged and audited once, and `keys list` says what to do.
            for _ in range(3):
                status, body = proxy.call("keys/busy/encrypt", encrypt_body())
                self.assertEqual(status, 200, body)
            proxy.process.send_signal(signal.SIGHUP)
            while not warnings() and time.time() < deadline:
                time.sleep(0.2)
            (warning,) = warnings()
            self.assertEqual((warning["keyId"], warning["version"], warning["encryptions"]),
                             ("busy", "1", str(near + 6)))
            self.assertIn("rotate it (xks-proxy keys rotate busy)", keys_list())
            # What is not yet recorded is recorded as the proxy stops.
            status, body = proxy.call("keys/busy/encrypt", encrypt_body())
            self.assertEqual(status, 200, body)
            self.assertEqual(proxy.metric(
                next(line.split(" ")[0] for line in proxy.scrape().splitlines()
                     if line.startswith("xks_key_encryptions_total{") and 'key="busy"' in line)),
                7)
            self.assertEqual(proxy.stop(), 0)
            self.assertRegex(keys_list(), r"busy +1 +active .* %d +sensitive" % (near + 7))
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class CountsUnderLoadTest(unittest.TestCase):
    def test_recording_counts_under_load_loses_no_request(self):
        """A SIGHUP records every count at once: a hundred of them under load must not disturb
        a request (writing to a key object in use made SoftHSM lose sight of the key: 404s)."""
        tmp = tempfile.mkdtemp(prefix="xks-count-load-test-")
        proxy = ProxyProcess(os.path.join(tmp, "demo"))
        try:
            load = subprocess.Popen(
                [LOAD_BINARY, "--port", str(proxy.port), "--cacert", proxy.ca,
                 "--kms-console", os.path.join(proxy.dir, "kms-console.json"),
                 "--connections", "8", "--rate", "400", "--seconds", "5", "--verify",
                 "--mix", "encrypt:2,decrypt:2,metadata:1",
                 "--json", os.path.join(tmp, "load.json")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(0.3)
            for _ in range(90):
                proxy.process.send_signal(signal.SIGHUP)
                time.sleep(0.05)
            output, _ = load.communicate(timeout=60)
            with open(os.path.join(tmp, "load.json")) as f:
                report = json.load(f)
            self.assertEqual(report["errors"], 0, output)
            self.assertGreater(report["ok"], 1500)
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class AllowedUnprotectedKeysTest(unittest.TestCase):
    def test_a_key_store_may_allow_them_explicitly(self):
        tmp = tempfile.mkdtemp(prefix="xks-unprotected-test-")
        proxy = ProxyProcess(
            os.path.join(tmp, "demo"), before_serve=make_weak_key,
            edit_config=lambda config: also_serve("weak")(config).replace(
                "[[keystore]]\n", "[[keystore]]\nallow_unprotected_keys = true\n"))
        try:
            status, body = proxy.call("keys/weak/metadata",
                                      {"requestMetadata": metadata("DescribeKey")})
            self.assertEqual(status, 200, body)
            status, sealed = proxy.call("keys/weak/encrypt", encrypt_body())
            self.assertEqual(status, 200, sealed)
        finally:
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    proxy_process.run(globals())
