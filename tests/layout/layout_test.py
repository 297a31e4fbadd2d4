#!/usr/bin/python3
"""The dependency graph between the proxy's concerns and the project's modules, read from
every #include: a new edge against the arrows fails the test. CMake catches a concern that
includes what it does not link, but not relative includes or a new link against the arrows.

Usage: layout_test.py PROJECT_SOURCE_DIR
"""
import os
import re
import sys
import unittest

ROOT = None
CONCERNS = ["config", "ops", "transport", "xks", "app", "cli"]
# Each concern may include itself and these (README "Layout").
ALLOWED = {
    "config": {"hsm", "sigv4", "wire"},  # option and credential types; base64 values
    "ops": {"config"},
    "transport": {"config", "ops"},
    "xks": {"config", "ops", "transport", "wire", "hsm", "sigv4"},
    "app": {"config", "ops", "transport", "xks", "wire", "hsm", "sigv4"},
    "cli": {"app", "config", "ops", "transport", "xks", "wire", "hsm", "sigv4"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def includes(path):
    with open(path) as source:
        return INCLUDE.findall(source.read())


def sources(folder):
    for directory, _, files in os.walk(folder):
        for name in files:
            if name.endswith((".h", ".cpp")):
                yield os.path.join(directory, name)


def target_of(include, private_headers):
    match = re.match(r"xks/(proxy/)?([a-z0-9_]+)/", include)
    if match:
        return match.group(2)  # a proxy concern, or hsm, sigv4, wire
    return private_headers.get(include, "?")


class LayoutTest(unittest.TestCase):
    def proxy_edges(self):
        private = {}
        for concern in CONCERNS:
            for name in os.listdir(os.path.join(ROOT, "proxy", concern, "src")):
                if name.endswith(".h"):
                    self.assertNotIn(name, private, "two private headers named " + name)
                    private[name] = concern
        edges = {}
        for concern in CONCERNS:
            for path in sources(os.path.join(ROOT, "proxy", concern)):
                for include in includes(path):
                    target = target_of(include, private)
                    self.assertNotEqual(target, "?", "%s includes unknown %s" % (path, include))
                    if target != concern:
                        edges.setdefault((concern, target), os.path.relpath(
                            path, os.path.join(ROOT, "proxy")))
        return edges

    def test_the_proxy_concerns_depend_one_way(self):
        edges = self.proxy_edges()
        wrong = {edge: path for edge, path in edges.items() if edge[1] not in ALLOWED[edge[0]]}
        self.assertEqual(wrong, {}, "includes against the layout: %s" % wrong)

    def test_the_graph_has_no_cycle(self):
        state = {}

        def visit(node, path):
            if state.get(node) == "open":
                self.fail("cycle: " + " -> ".join(path + [node]))
            if state.get(node) == "done" or node not in ALLOWED:
                return
            state[node] = "open"
            for target in ALLOWED[node]:
                visit(target, path + [node])
            state[node] = "done"

        for concern in CONCERNS:
            visit(concern, [])

    def test_the_transport_and_ops_read_only_their_own_options(self):
        # config.h carries the HSM and key-store options (PKCS#11 and SigV4 types); the layers
        # below the XKS layer take their own option headers and so never compile those.
        own = {"xks/proxy/config/server_config.h", "xks/proxy/config/ops_config.h",
               "xks/proxy/config/http_limits.h"}
        for concern in ("ops", "transport"):
            for path in sources(os.path.join(ROOT, "proxy", concern)):
                for include in includes(path):
                    if include.startswith(("xks/proxy/config/", "xks/hsm/", "xks/sigv4/")):
                        self.assertIn(include, own, "%s includes %s" % (path, include))

    def test_the_modules_below_never_include_the_proxy_and_load_only_sigv4_and_wire(self):
        for module, allowed in (("wire", {"wire"}), ("sigv4", {"sigv4"}),
                                ("hsm_adapters", {"hsm"}), ("load", {"sigv4", "wire", "load"})):
            for path in sources(os.path.join(ROOT, module)):
                for include in includes(path):
                    match = re.match(r"xks/([a-z0-9_]+)/", include)
                    if match:
                        self.assertIn(match.group(1), allowed, "%s includes %s" % (path, include))


if __name__ == "__main__":
    ROOT = sys.argv[1]
    unittest.main(argv=sys.argv[:1], verbosity=2)
