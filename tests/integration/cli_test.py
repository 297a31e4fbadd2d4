#!/usr/bin/python3
"""The xks-proxy commands around serving: check (configuration and self-test) and credentials new.

Usage: cli_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402


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


if __name__ == "__main__":
    proxy_process.run(globals())
