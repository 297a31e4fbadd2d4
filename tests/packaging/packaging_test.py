#!/usr/bin/python3
"""Keeps the packaging honest: the Dockerfile builds with scripts/install-deps and its runtime
stage installs every library the real binary links; the systemd unit passes systemd-analyze
and carries the hardening; the logrotate snippet reloads the service.

Usage: packaging_test.py SOURCE_DIR PATH_TO_XKS_PROXY
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

SOURCE = None
BINARY = None


def read(relative):
    with open(os.path.join(SOURCE, relative)) as f:
        return f.read()


def stage(dockerfile, name):
    match = re.search(r"^FROM \S+ AS %s\n(.*?)(?=^FROM |\Z)" % name, dockerfile, re.M | re.S)
    assert match, "no stage " + name
    return match.group(1)


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.dockerfile = read("Dockerfile")

    def test_the_build_stage_installs_with_scripts_install_deps(self):
        build = stage(self.dockerfile, "build")
        self.assertIn("COPY scripts/install-deps", build)
        self.assertRegex(build, r"RUN scripts/install-deps")

    def test_the_runtime_stage_has_every_library_the_binary_links(self):
        runtime = stage(self.dockerfile, "runtime")
        installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", runtime.split("install -y", 1)[1]
                                   .split("&&", 1)[0]))
        libraries = subprocess.run(["ldd", BINARY], capture_output=True, text=True,
                                   check=True).stdout
        needed = set()
        for path in re.findall(r"=> (/\S+)", libraries):
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                                   text=True)
            if owner.returncode != 0:
                owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            needed.add(owner.stdout.split(":")[0])
        needed -= {"libc6", "libstdc++6", "libgcc-s1"}  # in every Debian base image
        self.assertTrue(needed)
        self.assertEqual(needed - installed, set(),
                         "the runtime stage lacks libraries xks-proxy links")

    def test_the_image_runs_unprivileged_without_secrets(self):
        runtime = stage(self.dockerfile, "runtime")
        user = re.findall(r"^USER (\S+)", runtime, re.M)
        self.assertTrue(user and not user[-1].startswith("0") and user[-1] != "root")
        self.assertIn('ENTRYPOINT ["/usr/bin/xks-proxy"]', runtime)
        self.assertNotRegex(self.dockerfile, r"(?i)(secret|pin|password)\s*=")
        demo = stage(self.dockerfile, "demo")
        self.assertIn("softhsm2", demo)
        self.assertRegex(demo, r'CMD \["demo"')


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.unit = read("packaging/xks-proxy.service")

    def test_systemd_analyze_accepts_the_unit(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "xks-proxy.service")
            with open(path, "w") as f:
                f.write(self.unit.replace("/usr/bin/xks-proxy", os.path.abspath(BINARY)))
            result = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                                    text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_unit_is_hardened(self):
        for setting in ("User=xks-proxy", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                        "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                        "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=\n",
                        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                        "SystemCallFilter=@system-service"):
            self.assertIn(setting, self.unit)

    def test_logrotate_reloads_the_service_after_rotating(self):
        snippet = read("packaging/xks-proxy.logrotate")
        self.assertIn("/var/log/xks-proxy/audit.log", snippet)
        self.assertRegex(snippet, r"postrotate\s+systemctl reload xks-proxy")


if __name__ == "__main__":
    SOURCE, BINARY = sys.argv.pop(1), sys.argv.pop(1)
    unittest.main(verbosity=2)
