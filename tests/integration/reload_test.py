#!/usr/bin/python3
"""Live reconfiguration of the real binary by SIGHUP: credential rotation, certificate
rotation, a broken file (the running configuration keeps serving), settings that need a
restart, the log level, reloads under load with no request lost (HTTP/1.1 and HTTP/2), and the
owner's kill switch (`xks-proxy keystore block|unblock`) under load.

Usage: reload_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
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
import threading
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402

NEW_ACCESS_KEY_ID = "AKIAXKSROTATED234567"
NEW_SECRET = "rotatedSecretrotatedSecretrotatedSecret+/=12"


def health():
    return {"requestMetadata": {"kmsRequestId": str(uuid.uuid4()),
                                "kmsOperation": "KmsHealthCheck"}}


def encrypt():
    return {"requestMetadata": metadata(), "plaintext": b64(b"p" * 32),
            "encryptionAlgorithm": "AES_GCM"}


class ReloadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-reload-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"))
        with open(cls.proxy.config) as f:
            cls.original = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        # Each test starts from the original file, applied.
        self.write_config(self.original)
        self.reload()

    def write_config(self, text):
        with open(self.proxy.config, "w") as f:
            f.write(text)

    def reloads(self, result):
        return self.proxy.metric('xks_config_reloads_total{result="%s"}' % result) or 0

    def reload(self, expect="success"):
        """SIGHUP, then waits until the proxy counted the reload's result."""
        before = self.reloads(expect)
        self.proxy.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.reloads(expect) == before:
            self.assertLess(time.time(), deadline, "no reload with result " + expect)
            time.sleep(0.02)

    def call_as(self, access_key_id, secret, path="keys/foo/encrypt", payload=None):
        saved = self.proxy.access_key_id
        self.proxy.access_key_id = access_key_id
        try:
            return self.proxy.call(path, payload or encrypt(), secret=secret)
        finally:
            self.proxy.access_key_id = saved

    def log(self):
        with open(self.proxy.log.name) as f:
            return f.read()

    def test_credentials_rotate_without_a_restart(self):
        secret_file = os.path.join(self.tmp, "rotated-secret")
        with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(NEW_SECRET)
        credential = ('\n[[keystore.credential]]\naccess_key_id = "%s"\nsecret_file = "%s"\n'
                      % (NEW_ACCESS_KEY_ID, secret_file))
        old = re.search(r'\[\[keystore\.credential\]\]\naccess_key_id = "[^"]+"\n'
                        r'secret_file = "[^"]+"\n', self.original).group(0)
        # Both during the rotation...
        self.write_config(self.original.replace(old, old + credential))
        self.assertEqual(self.call_as(NEW_ACCESS_KEY_ID, NEW_SECRET)[0], 401)
        self.reload()
        self.assertEqual(self.call_as(NEW_ACCESS_KEY_ID, NEW_SECRET)[0], 200)
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        # ...then the old one removed: refused right after the reload.
        self.write_config(self.original.replace(old, credential.lstrip("\n")))
        self.reload()
        status, body = self.proxy.call("keys/foo/encrypt", encrypt())
        self.assertEqual((status, body["errorName"]), (401, "AuthenticationFailedException"))
        self.assertEqual(self.call_as(NEW_ACCESS_KEY_ID, NEW_SECRET)[0], 200)

    def test_a_new_handshake_sees_a_rotated_certificate(self):
        tls = os.path.join(self.proxy.dir, "tls")
        kept = http.client.HTTPSConnection("localhost", self.proxy.port, timeout=10,
                                           context=self.proxy.tls_context())
        self.assertEqual(self.proxy.call("health", health(), connection=kept)[0], 200)
        before = self.server_certificate()
        # Renewed in place, at the same paths (as cert-manager does), by the demo's CA.
        backup = {}
        for name in ("server.pem", "server-key.pem"):
            with open(os.path.join(tls, name), "rb") as f:
                backup[name] = f.read()
        try:
            subprocess.run(
                ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", "/CN=localhost", "-keyout", os.path.join(tls, "new-key.pem"),
                 "-out", os.path.join(tls, "new.csr")], check=True, capture_output=True)
            extensions = os.path.join(tls, "new.ext")
            with open(extensions, "w") as f:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
            subprocess.run(
                ["openssl", "x509", "-req", "-in", os.path.join(tls, "new.csr"), "-CA",
                 os.path.join(tls, "ca.pem"), "-CAkey", os.path.join(tls, "ca-key.pem"),
                 "-CAcreateserial", "-days", "30", "-extfile", extensions,
                 "-out", os.path.join(tls, "new.pem")], check=True, capture_output=True)
            os.replace(os.path.join(tls, "new.pem"), os.path.join(tls, "server.pem"))
            os.replace(os.path.join(tls, "new-key.pem"), os.path.join(tls, "server-key.pem"))
            self.reload()
            after = self.server_certificate()
            self.assertNotEqual(after, before)
            with open(os.path.join(tls, "server.pem")) as f:
                self.assertEqual(ssl.PEM_cert_to_DER_cert(f.read()), after)
            # The connection made before the rotation still serves.
            self.assertEqual(self.proxy.call("health", health(), connection=kept)[0], 200)
            self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        finally:
            kept.close()
            for name, data in backup.items():
                with open(os.path.join(tls, name), "wb") as f:
                    f.write(data)

    def server_certificate(self):
        with self.proxy.tls_context().wrap_socket(
                socket.create_connection(("127.0.0.1", self.proxy.port)),
                server_hostname="localhost") as sock:
            return sock.getpeercert(binary_form=True)

    def test_a_broken_file_is_refused_and_the_running_configuration_keeps_serving(self):
        self.write_config(self.original + "\n[[keystore.rule]]\nid = \"x\"\neffect = \"maybe\"\n")
        self.reload(expect="failure")
        self.assertEqual(self.proxy.metric("xks_config_last_reload_successful"), 0)
        self.assertRegex(self.log(), r"configuration reload refused, the running configuration "
                                     r"stays: \S+test\.toml:\d+: keystore\.rule\[x\]\.effect: "
                                     r"must be allow or deny")
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        # A certificate that does not load refuses the reload too.
        self.write_config(self.original.replace("server.pem", "missing.pem"))
        self.reload(expect="failure")
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        # `xks-proxy reload` gives the proxy's verdict: refused, then applied.
        command = [BINARY, "reload", "--config", self.proxy.config]
        run = subprocess.run(command, capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        self.assertIn("refused the configuration and keeps the running one", run.stderr)
        self.write_config(self.original)
        run = subprocess.run(command, capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertIn("reloaded: process %d" % self.proxy.process.pid, run.stdout)
        self.assertEqual(self.proxy.metric("xks_config_last_reload_successful"), 1)

    def test_settings_that_need_a_restart_are_reported_and_left_alone(self):
        self.write_config(self.original.replace("header_timeout_ms = 700",
                                                "header_timeout_ms = 900"))
        self.reload()
        self.assertEqual(self.proxy.metric("xks_config_restart_required"), 1)
        self.assertIn("changes to [server] need a restart and were not applied", self.log())
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        self.write_config(self.original)
        self.reload()
        self.assertEqual(self.proxy.metric("xks_config_restart_required"), 0)

    def test_the_log_level_changes_live(self):
        self.write_config(self.original.replace("[log]\n", '[log]\nlevel = "error"\n'))
        self.reload()
        before = self.log().count("SIGHUP:")
        self.reload()
        self.assertEqual(self.log().count("SIGHUP:"), before)  # info lines are off now

    def test_twenty_reloads_under_load_lose_no_request(self):
        rule = '\n[[keystore.rule]]\nid = "nobody"\neffect = "deny"\nprincipals = ["*:user/Nobody"]\n'
        for protocol in ("1.1", "2"):
            result = {}

            def load():
                run = subprocess.run(
                    [LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
                     "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
                     "--http", protocol, "--streams", "4", "--connections", "4",
                     "--rate", "150", "--seconds", "5", "--verify",
                     "--mix", "encrypt:2,decrypt:2,metadata:1,health:1",
                     "--json", os.path.join(self.tmp, "load.json")],
                    capture_output=True, text=True, timeout=60)
                result["run"] = run

            thread = threading.Thread(target=load)
            thread.start()
            time.sleep(0.5)
            for i in range(20):
                self.write_config(self.original + (rule if i % 2 == 0 else ""))
                self.reload()
                time.sleep(0.15)
            thread.join(60)
            run = result["run"]
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(os.path.join(self.tmp, "load.json")) as f:
                report = json.load(f)
            self.assertGreater(report["ok"], 500)
            self.assertEqual(report["errors"], 0, report["errors_by"])


class ClientNamesReloadTest(unittest.TestCase):
    """With mTLS, a reload's client names apply to new handshakes; connections keep theirs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-mtls-reload-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"), mtls=True)
        with open(cls.proxy.config) as f:
            cls.original = f.read()
        tls = os.path.join(cls.proxy.dir, "tls")
        cls.client = (os.path.join(tls, "client.pem"), os.path.join(tls, "client-key.pem"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def connection(self):
        return http.client.HTTPSConnection("localhost", self.proxy.port, timeout=10,
                                           context=self.proxy.tls_context(self.client))

    def reload(self, text):
        with open(self.proxy.config, "w") as f:
            f.write(text)
        run = subprocess.run([BINARY, "reload", "--config", self.proxy.config],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

    def test_a_name_removed_from_client_names_is_refused_at_the_next_handshake(self):
        kept = self.connection()
        self.assertEqual(self.proxy.call("health", health(), connection=kept)[0], 200)
        self.reload(self.original.replace('client_names = ["cks.kms.us-east-1.amazonaws.com"]',
                                          'client_names = ["cks.kms.eu-west-3.amazonaws.com"]'))
        try:
            refused = self.connection()
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                self.proxy.call("health", health(), connection=refused)
            refused.close()
            # The connection made before keeps being served.
            self.assertEqual(self.proxy.call("health", health(), connection=kept)[0], 200)
        finally:
            kept.close()
            self.reload(self.original)
        fresh = self.connection()
        self.assertEqual(self.proxy.call("health", health(), connection=fresh)[0], 200)
        fresh.close()


class DemoReloadTest(unittest.TestCase):
    """`xks-proxy demo` serves the file it wrote and reloads it like serve does: the kill switch
    finds the demo process by its state directory."""

    def test_the_kill_switch_reaches_the_demo(self):
        tmp = tempfile.mkdtemp(prefix="xks-demo-reload-test-")
        port, admin_port = free_port(), free_port()
        state = os.path.join(tmp, "state")
        demo = subprocess.Popen([BINARY, "demo", "--state-dir", state, "--port", str(port),
                                 "--admin-port", str(admin_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin_port,
                                                timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                self.assertLess(time.time(), deadline, "the demo did not start")
                time.sleep(0.1)
            config = os.path.join(state, "xks-proxy.toml")
            for action in ("block", "unblock"):
                run = subprocess.run([BINARY, "keystore", action, "/example", "--config", config],
                                     capture_output=True, text=True, timeout=30)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                self.assertIn("confirmed: process %d" % demo.pid, run.stdout)
        finally:
            demo.terminate()
            demo.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)


class FileWatchTest(unittest.TestCase):
    """[server] reload_on_change with the configuration mounted as Kubernetes mounts a
    ConfigMap, and the SigV4 secret replaced as a Secret's file is."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-file-watch-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"),
                                 server_settings="reload_on_change = true\n",
                                 mounted_config=True)
        with open(cls.proxy.config) as f:
            cls.original = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def wait_for_reload(self, before):
        deadline = time.time() + 10
        while (self.proxy.metric('xks_config_reloads_total{result="success"}') or 0) == before:
            self.assertLess(time.time(), deadline, "the change was not reloaded")
            time.sleep(0.05)

    def test_a_new_configmap_version_is_applied_without_a_signal(self):
        before = self.proxy.metric('xks_config_reloads_total{result="success"}')
        self.proxy.publish_config(self.original.replace("[[keystore]]\n",
                                                        "[[keystore]]\nblocked = true\n"))
        self.wait_for_reload(before)
        status, body = self.proxy.call("keys/foo/encrypt", encrypt())
        self.assertEqual((status, body["errorName"]), (403, "AccessDeniedException"))
        before = self.proxy.metric('xks_config_reloads_total{result="success"}')
        self.proxy.publish_config(self.original)
        self.wait_for_reload(before)
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)

    def test_a_replaced_secret_file_rotates_the_credential(self):
        secret_file = os.path.join(self.proxy.dir, "secrets/sigv4-secret")
        old_secret = self.proxy.secret
        before = self.proxy.metric('xks_config_reloads_total{result="success"}')
        replacement = secret_file + ".new"
        with open(os.open(replacement, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(NEW_SECRET)
        os.replace(replacement, secret_file)
        try:
            self.wait_for_reload(before)
            self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 401)
            self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt(), secret=NEW_SECRET)[0],
                             200)
        finally:
            before = self.proxy.metric('xks_config_reloads_total{result="success"}')
            with open(os.open(replacement, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                      "w") as f:
                f.write(old_secret)
            os.replace(replacement, secret_file)
            self.wait_for_reload(before)


class KillSwitchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-kill-switch-test-")
        cls.proxy = ProxyProcess(os.path.join(cls.tmp, "demo"))

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def keystore(self, action, *extra):
        return subprocess.run([BINARY, "keystore", action, "/example", "--config",
                               self.proxy.config] + list(extra),
                              capture_output=True, text=True, timeout=30)

    def test_block_and_unblock_under_load(self):
        result = {}

        def load():
            result["run"] = subprocess.run(
                [LOAD_BINARY, "--port", str(self.proxy.port), "--cacert", self.proxy.ca,
                 "--kms-console", os.path.join(self.proxy.dir, "kms-console.json"),
                 "--rate", "100", "--seconds", "4",
                 "--json", os.path.join(self.tmp, "load.json")],
                capture_output=True, text=True, timeout=60)

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        block = self.keystore("block", "--reason", "incident 42", "--by", "owner-on-call")
        self.assertEqual(block.returncode, 0, block.stdout + block.stderr)
        self.assertIn("confirmed", block.stdout)
        self.assertLess(time.monotonic() - started, 1.0)
        # Every key operation is refused at once; health still answers.
        for path, payload in (("keys/foo/encrypt", encrypt()),
                              ("keys/foo/metadata", {"requestMetadata": metadata()})):
            status, body = self.proxy.call(path, payload)
            self.assertEqual((status, body["errorName"]), (403, "AccessDeniedException"))
        self.assertEqual(self.proxy.call("health", health())[0], 200)
        self.assertEqual(self.proxy.metric('xks_keystore_blocked{keystore="/example"}'), 1)
        time.sleep(1.0)
        unblock = self.keystore("unblock")
        self.assertEqual(unblock.returncode, 0, unblock.stdout + unblock.stderr)
        self.assertEqual(self.proxy.call("keys/foo/encrypt", encrypt())[0], 200)
        thread.join(60)
        with open(os.path.join(self.tmp, "load.json")) as f:
            report = json.load(f)
        # The load saw the block (and nothing else), and was served before and after it.
        errors = report["errors_by"]
        self.assertEqual(set(errors["errorName"]), {"AccessDeniedException"}, errors)
        self.assertEqual((errors["transport"], errors["verify"]), ({}, {}), errors)
        self.assertGreater(report["ok"], 150)
        self.assertGreater(report["errors"], 50)
        # Who blocked it, when and why, in the audit log; the chain still verifies.
        time.sleep(0.3)
        with open(os.path.join(self.proxy.dir, "audit.log")) as f:
            events = [json.loads(line) for line in f if '"record":"config"' in line]
        blocked = [e for e in events if e.get("event") == "keystore_blocked"]
        self.assertEqual(len(blocked), 1, events)
        self.assertEqual((blocked[0]["keystore"], blocked[0]["by"], blocked[0]["reason"]),
                         ("/example", "owner-on-call", "incident 42"))
        self.assertIn("keystore_unblocked", [e.get("event") for e in events])
        verify = subprocess.run(
            [BINARY, "audit", "verify", "--live", "--key-file",
             os.path.join(self.proxy.dir, "secrets/audit-key"),
             os.path.join(self.proxy.dir, "audit.log")], capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

    def test_an_unknown_key_store_is_refused_and_the_file_left_alone(self):
        with open(self.proxy.config) as f:
            before = f.read()
        run = subprocess.run([BINARY, "keystore", "block", "/nope", "--config",
                              self.proxy.config], capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 2)
        self.assertIn('no [[keystore]] has prefix = "/nope"', run.stderr)
        with open(self.proxy.config) as f:
            self.assertEqual(f.read(), before)


if __name__ == "__main__":
    proxy_process.run(globals())
