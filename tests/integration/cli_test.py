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


class DemoFleetTest(unittest.TestCase):
    def test_a_fleet_demo_is_made_once_and_kept_whole(self):
        tmp = tempfile.mkdtemp(prefix="xks-demo-fleet-test-")
        try:
            state, faults = os.path.join(tmp, "state"), os.path.join(tmp, "faults")
            setup = [proxy_process.BINARY, "demo", "--setup-only", "--state-dir", state,
                     "--backends", "2", "--fault-dir", faults]
            for _ in range(2):  # a second start finds everything made
                run = subprocess.run(setup, capture_output=True, text=True, timeout=120)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            with open(os.path.join(state, "xks-proxy.toml")) as f:
                config = f.read()
            self.assertEqual(config.count("[[hsm]]"), 2)
            for k in (1, 2):
                self.assertIn('name = "hsm-%d"' % k, config)
                self.assertIn(os.path.join(faults, "backend-%d.so" % k), config)
                self.assertTrue(os.path.exists(os.path.join(faults, "backend-%d.ctl" % k)))
            self.assertEqual(os.stat(faults).st_mode & 0o777, 0o700)
            # Both tokens hold the same keys: the proxy's fleet check finds none missing.
            env = dict(os.environ, SOFTHSM2_CONF=os.path.join(state, "softhsm/softhsm2.conf"),
                       XKS_FAULT_TARGET=proxy_process.SOFTHSM_MODULE)
            check = subprocess.run([proxy_process.BINARY, "check", "--config",
                                    os.path.join(state, "xks-proxy.toml")],
                                   capture_output=True, text=True, timeout=120, env=env)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertEqual(check.stdout.count("passed the softhsm self-test"), 2, check.stdout)
            self.assertNotIn("is missing from HSM", check.stdout + check.stderr)
            run = subprocess.run(setup[:-4] + ["--backends", "3"], capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(run.returncode, 1)
            self.assertIn("this state holds 2 HSM token(s)", run.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


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
