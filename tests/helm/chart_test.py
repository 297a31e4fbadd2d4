#!/usr/bin/python3
"""The Helm chart, rendered by tests/helm/render (text/template + sprig with Helm's built-ins)
for the standalone and sidecar value sets: the expected objects, probes, security context, no
secret inline, a config checksum that follows the config, and a rendered configuration that
the real `xks-proxy check` accepts against a SoftHSM token.

Usage: chart_test.py SOURCE_DIR PATH_TO_XKS_PROXY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import jsonschema
import yaml

SOURCE = None
BINARY = None


def merge(base, override):
    """Helm's coalescing of values: maps merge, everything else replaces."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


class ChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xks-helm-test-")
        cls.renderer = os.path.join(cls.tmp, "render")
        env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                   GOCACHE=os.path.join(cls.tmp, "gocache"), GOFLAGS="")
        subprocess.run(["go", "build", "-o", cls.renderer,
                        os.path.join(SOURCE, "tests/helm/render/main.go")],
                       check=True, env=env, timeout=300)
        cls.chart = os.path.join(SOURCE, "helm/xks-proxy")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def render(self, *values):
        result = subprocess.run([self.renderer, self.chart, "rel", "xks"] + list(values),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout, [d for d in yaml.safe_load_all(result.stdout) if d]

    def values(self, name):
        return os.path.join(SOURCE, "tests/helm", name)

    @staticmethod
    def value_sets():
        return sorted(name for name in os.listdir(os.path.join(SOURCE, "tests/helm"))
                      if name.endswith(".yaml"))

    @staticmethod
    def kinds(documents):
        return {d["kind"]: d for d in documents}

    def check_pod(self, deployment):
        pod = deployment["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
        proxy = next(c for c in pod["containers"] if c["name"] == "xks-proxy")
        context = proxy["securityContext"]
        self.assertTrue(context["readOnlyRootFilesystem"])
        self.assertFalse(context["allowPrivilegeEscalation"])
        self.assertEqual(context["capabilities"]["drop"], ["ALL"])
        ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
        self.assertEqual(ports, {"xks": 8443, "admin": 9090})
        self.assertEqual(proxy["livenessProbe"]["httpGet"], {"path": "/livez", "port": "admin"})
        self.assertEqual(proxy["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "admin"})
        secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        self.assertTrue(secrets)
        self.assertIn("checksum/config", deployment["spec"]["template"]["metadata"]["annotations"])
        return pod, proxy

    def check_no_secret_inline(self, text, documents):
        self.assertNotIn("Secret", {d["kind"] for d in documents})
        config = self.kinds(documents)["ConfigMap"]["data"]["xks-proxy.toml"]
        self.assertNotRegex(config, r"(?m)^(secret|pin)\s*=")
        self.assertIn("secret_file", config)
        self.assertNotIn("RawSecretAccessKey", text)

    def test_standalone(self):
        text, documents = self.render(self.values("standalone.yaml"))
        objects = self.kinds(documents)
        self.assertEqual(set(objects), {"ConfigMap", "Deployment", "NetworkPolicy",
                                        "PodDisruptionBudget", "Service", "ServiceMonitor"})
        pod, _ = self.check_pod(objects["Deployment"])
        self.assertEqual(objects["Deployment"]["spec"]["replicas"], 2)
        self.assertEqual([c["name"] for c in pod["containers"]], ["xks-proxy"])
        self.assertEqual(objects["ServiceMonitor"]["spec"]["endpoints"][0]["path"], "/metrics")
        self.check_no_secret_inline(text, documents)
        config = objects["ConfigMap"]["data"]["xks-proxy.toml"]
        self.assertIn("fleet_size = 2", config)
        self.assertIn("max_connections = 10000\nmax_connections_per_client = 10000\n", config)
        self.assertIn('key_file = "/etc/xks-proxy/audit-key/audit-key"', config)
        self.assertIn('keys = ["foo", "bar", "tenant-*"]\n', config)
        self.assertIn('[keystore.aws_sample_proxy]\nciphertext_metadata = "eGtzLXNhbXBsZQ=="\n',
                      config)
        self.assertIn("[keystore.quota]\nrequests_per_second = 500\n"
                      "per_key_requests_per_second = 100\n", config)
        self.assertIn('[[keystore.rule]]\nid = "no-mallory-decrypt"\neffect = "deny"\n'
                      'operations = ["Decrypt"]\nprincipals = ["arn:aws:iam::*:user/Mallory"]\n',
                      config)
        self.assertIn('[[keystore.rule]]\nid = "ebs-only"\neffect = "allow"\n'
                      'source_vpces = ["vpce-1234"]\nvia_services = ["ebs.*.amazonaws.com"]', config)
        self.assertIn("/etc/xks-proxy/audit-key", [m["mountPath"] for m in
                                                    pod["containers"][0]["volumeMounts"]])

    def test_sidecar(self):
        text, documents = self.render(self.values("sidecar.yaml"))
        objects = self.kinds(documents)
        self.assertTrue({"Certificate", "HorizontalPodAutoscaler", "Deployment"} <= set(objects))
        pod, proxy = self.check_pod(objects["Deployment"])
        self.assertNotIn("replicas", objects["Deployment"]["spec"])  # the HPA owns it
        self.assertEqual([c["name"] for c in pod["containers"]], ["xks-proxy", "cloudhsm-client"])
        self.assertIn("cloudhsm-run", [v["name"] for v in pod["volumes"]])
        self.assertIn("/var/run/cloudhsm", [m["mountPath"] for m in proxy["volumeMounts"]])
        config = objects["ConfigMap"]["data"]["xks-proxy.toml"]
        self.assertIn('vendor_profile = "cloudhsm"', config)
        self.assertIn('client_names = ["cks.kms.us-east-1.amazonaws.com"]', config)
        self.assertIn("fleet_size = 5", config)  # the HPA's maximum
        # A fleet of two, each with the chart's breaker settings.
        self.assertEqual(config.count("[[hsm]]"), 2)
        self.assertEqual(config.count("[hsm.circuit_breaker]\nconsecutive_failures = 3\nopen_ms = 100\n"), 2)
        self.assertIn('name = "hsm-b"\nmodule = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"\n'
                      'vendor_profile = "cloudhsm"\ntoken_label = "cavium-b"\n'
                      'pin_file = "/etc/xks-proxy/pin/pin-b"\nsessions = 16\n', config)
        self.check_no_secret_inline(text, documents)

    def test_a_config_change_rolls_the_pods(self):
        _, first = self.render(self.values("standalone.yaml"))
        override = os.path.join(self.tmp, "deadline.yaml")
        with open(override, "w") as f:
            f.write("proxy:\n  requestDeadlineMs: 150\n")
        _, second = self.render(self.values("standalone.yaml"), override)
        checksum = lambda docs: self.kinds(docs)["Deployment"]["spec"]["template"]["metadata"][
            "annotations"]["checksum/config"]
        self.assertNotEqual(checksum(first), checksum(second))
        # What the proxy reloads live (here a key store's keys and kill switch) changes the
        # ConfigMap, not the pods.
        live = os.path.join(self.tmp, "live.yaml")
        with open(live, "w") as f:
            f.write("keystores:\n  - prefix: /example\n    regions: [us-east-1]\n"
                    "    keys: [foo]\n    blocked: true\n    credentials:\n"
                    "      - accessKeyId: AKIAXKSEXAMPLE234567\n"
                    "        secretKey: example-current\n")
        _, third = self.render(self.values("standalone.yaml"), live)
        self.assertEqual(checksum(first), checksum(third))
        config = self.kinds(third)["ConfigMap"]["data"]["xks-proxy.toml"]
        self.assertIn("blocked = true", config)
        self.assertIn("reload_on_change = true", config)

    def test_a_client_ca_without_allowed_names_is_refused(self):
        override = os.path.join(self.tmp, "no-names.yaml")
        with open(override, "w") as f:
            f.write("tls:\n  clientCA:\n    existingSecret: kms-ca\n    allowedNames: []\n")
        result = subprocess.run([self.renderer, self.chart, "rel", "xks",
                                 self.values("standalone.yaml"), override],
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("tls.clientCA.allowedNames is required", result.stderr)

    def test_missing_secret_references_are_refused(self):
        result = subprocess.run([self.renderer, self.chart, "rel", "xks"], capture_output=True,
                                text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("is required", result.stderr)

    def test_xks_proxy_check_accepts_the_rendered_configuration(self):
        _, documents = self.render(self.values("standalone.yaml"))
        config = self.kinds(documents)["ConfigMap"]["data"]["xks-proxy.toml"]
        demo = os.path.join(self.tmp, "demo")
        subprocess.run([BINARY, "demo", "--setup-only", "--state-dir", demo], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        # The paths the pod mounts, pointed at a test SoftHSM token and the demo's files.
        sigv4 = os.path.join(self.tmp, "sigv4")
        os.makedirs(sigv4)
        with open(os.path.join(demo, "secrets/sigv4-secret")) as f:
            secret = f.read()
        for name in ("example-current", "example-next"):
            with open(os.open(os.path.join(sigv4, name), os.O_WRONLY | os.O_CREAT, 0o600),
                      "w") as f:
                f.write(secret)
        config = (config.replace("/etc/xks-proxy/tls/tls.crt", demo + "/tls/server.pem")
                  .replace("/etc/xks-proxy/tls/tls.key", demo + "/tls/server-key.pem")
                  .replace("/etc/xks-proxy/pin/pin", demo + "/secrets/hsm-pin")
                  .replace("/etc/xks-proxy/sigv4/", sigv4 + "/")
                  .replace("/etc/xks-proxy/audit-key/audit-key", demo + "/secrets/audit-key")
                  .replace('token_label = "xks"', 'token_label = "xks-demo"')
                  .replace('"0.0.0.0:8443"', '"127.0.0.1:0"').replace('"0.0.0.0:9090"', '"127.0.0.1:0"'))
        path = os.path.join(self.tmp, "rendered.toml")
        with open(path, "w") as f:
            f.write(config)
        env = dict(os.environ, SOFTHSM2_CONF=os.path.join(demo, "softhsm/softhsm2.conf"))
        result = subprocess.run([BINARY, "check", "--config", path], capture_output=True,
                                text=True, timeout=60, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("configuration OK", result.stdout)

    def test_monitoring_objects_carry_the_observability_files(self):
        _, documents = self.render(self.values("monitoring.yaml"))
        kinds = self.kinds(documents)
        self.assertEqual(kinds["ServiceMonitor"]["metadata"]["labels"]["release"], "prometheus")
        rule = kinds["PrometheusRule"]
        self.assertEqual(rule["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(rule["metadata"]["labels"]["release"], "prometheus")
        with open(os.path.join(SOURCE, "observability/prometheus-rules.yaml")) as f:
            plain = yaml.safe_load(f)
        # With the job named as in the plain file, the rendered rules are the plain file's alerts
        # with its default thresholds written in (no threshold series, which every release on
        # one Prometheus would share), so the rules' unit tests pass on them too.
        alerts, thresholds = plain["groups"]
        text = json.dumps(alerts)
        for threshold in thresholds["rules"]:
            number = threshold["expr"][len("vector("):-1]
            text = text.replace("on() group_left() " + threshold["record"], number)
        self.assertEqual(rule["spec"], {"groups": [json.loads(text)]})
        rules_file = os.path.join(self.tmp, "prometheus-rules.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump(rule["spec"], f)
        tests_file = os.path.join(self.tmp, "alert_rules_test.yaml")
        with open(os.path.join(SOURCE, "tests/observability/alert_rules_test.yaml")) as f:
            tests = yaml.safe_load(f)
        tests["rule_files"] = [rules_file]
        with open(tests_file, "w") as f:
            yaml.safe_dump(tests, f)
        run = subprocess.run(["promtool", "test", "rules", tests_file], capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        dashboard = next(d for d in documents if d["kind"] == "ConfigMap"
                         and d["metadata"]["name"] == "xks-proxy-dashboard")
        self.assertEqual(dashboard["metadata"]["labels"]["grafana_dashboard"], "1")
        self.assertEqual(dashboard["metadata"]["annotations"]["grafana_folder"], "KMS")
        with open(os.path.join(SOURCE, "observability/grafana-dashboard.json")) as f:
            self.assertEqual(json.loads(dashboard["data"]["xks-proxy.json"]), json.load(f))

    def test_alert_rules_follow_the_release_and_the_values(self):
        override = os.path.join(self.tmp, "rules.yaml")
        with open(override, "w") as f:
            yaml.safe_dump({"fullnameOverride": "", "prometheusRule": {
                "runbookUrl": "https://runbooks.example/xks.html",
                "thresholds": {"credential_age_days": 30, "latency_p99_seconds": 0.2}}}, f)
        _, documents = self.render(self.values("monitoring.yaml"), override)
        groups = self.kinds(documents)["PrometheusRule"]["spec"]["groups"]
        self.assertEqual(len(groups), 1)
        alerts = {rule["alert"]: rule for rule in groups[0]["rules"]}
        self.assertEqual(alerts["XksProxyDown"]["expr"], 'up{job="rel-xks-proxy"} == 0')
        self.assertEqual(alerts["XksHsmDegraded"]["annotations"]["runbook_url"],
                         "https://runbooks.example/xks.html#xkshsmdegraded")
        self.assertIn("> 30 * 86400", alerts["XksSigV4CredentialOld"]["expr"])
        self.assertIn("> 0.2", alerts["XksLatencyHigh"]["expr"])
        self.assertIn("< 21 * 86400", alerts["XksTlsCertificateExpiresSoon"]["expr"])
        self.assertNotIn("xks:alert_threshold", json.dumps(groups))
        rules_file = os.path.join(self.tmp, "rendered-rules.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump({"groups": groups}, f)
        run = subprocess.run(["promtool", "check", "rules", rules_file], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

    def test_scaling_out(self):
        override = os.path.join(self.tmp, "scaling.yaml")
        with open(override, "w") as f:
            yaml.safe_dump({"autoscaling": {"requestsPerSecond": {"target": "2000"}}}, f)
        _, documents = self.render(self.values("sidecar.yaml"), override)
        objects = self.kinds(documents)
        hpa = objects["HorizontalPodAutoscaler"]["spec"]
        self.assertEqual((hpa["minReplicas"], hpa["maxReplicas"]), (2, 5))
        self.assertEqual(hpa["metrics"][0]["resource"]["target"]["averageUtilization"], 70)
        pods = hpa["metrics"][1]["pods"]
        self.assertEqual(pods["target"], {"type": "AverageValue", "averageValue": "2000"})
        self.assertEqual(hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 300)
        # The metric is the one the adapter rule we ship serves, and its query is PromQL.
        with open(os.path.join(SOURCE, "observability/prometheus-adapter-rules.yaml")) as f:
            adapter = yaml.safe_load(f)["rules"][0]
        self.assertEqual(pods["metric"]["name"], adapter["name"]["as"])
        query = (adapter["metricsQuery"].replace("<<.Series>>", "xks_requests_total")
                 .replace("<<.LabelMatchers>>", 'namespace="xks",pod=~"rel-.*"')
                 .replace("<<.GroupBy>>", "pod"))
        rules_file = os.path.join(self.tmp, "adapter-query.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump({"groups": [{"name": "q", "rules": [
                {"record": "xks:adapter_query", "expr": query}]}]}, f)
        run = subprocess.run(["promtool", "check", "rules", rules_file], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        # Without a target, CPU only.
        _, documents = self.render(self.values("sidecar.yaml"))
        self.assertEqual(len(self.kinds(documents)["HorizontalPodAutoscaler"]["spec"]["metrics"]), 1)
        # Replicas spread over nodes (soft by default, hard on request) and zones; a PDB.
        pod = objects["Deployment"]["spec"]["template"]["spec"]
        selector = {"app.kubernetes.io/name": "xks-proxy", "app.kubernetes.io/instance": "rel"}
        preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(preferred[0]["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"], selector)
        self.assertEqual(pod["topologySpreadConstraints"][0]["topologyKey"],
                         "topology.kubernetes.io/zone")
        self.assertEqual(objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], selector)
        with open(override, "w") as f:
            yaml.safe_dump({"podAntiAffinity": "hard"}, f)
        _, documents = self.render(self.values("sidecar.yaml"), override)
        pod = self.kinds(documents)["Deployment"]["spec"]["template"]["spec"]
        required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(required[0]["labelSelector"]["matchLabels"], selector)
        # One pod per node: an update cannot surge, it replaces pods one by one.
        self.assertEqual(self.kinds(documents)["Deployment"]["spec"]["strategy"]["rollingUpdate"],
                         {"maxSurge": 0, "maxUnavailable": 1})
        with open(override, "w") as f:
            yaml.safe_dump({"podAntiAffinity": "none"}, f)
        _, documents = self.render(self.values("sidecar.yaml"), override)
        self.assertNotIn("affinity", self.kinds(documents)["Deployment"]["spec"]["template"]["spec"])

    def kubernetes_validate(self, documents):
        """tests/k8s/validate.mjs: each object against the Kubernetes API's schemas (and the
        Prometheus Operator's and cert-manager's); returns (exit status, lines)."""
        run = subprocess.run(["node", os.path.join(SOURCE, "tests/k8s/validate.mjs")],
                             input=json.dumps(documents), capture_output=True, text=True,
                             timeout=120)
        self.assertFalse(run.stderr, run.stderr)
        return run.returncode, run.stdout.splitlines()

    def test_rendered_objects_match_the_kubernetes_schemas(self):
        kinds_seen = set()
        for name in self.value_sets():
            _, documents = self.render(self.values(name))
            status, lines = self.kubernetes_validate(documents)
            self.assertEqual(status, 0, "%s:\n%s" % (name, "\n".join(lines)))
            self.assertEqual(len(lines), len(documents), lines)
            self.assertTrue(all(line.startswith("ok ") for line in lines), lines)
            kinds_seen.update(d["kind"] for d in documents)
        self.assertTrue({"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget", "NetworkPolicy", "Certificate", "ServiceMonitor",
                         "PrometheusRule"} <= kinds_seen, kinds_seen)
        # The check can fail: a wrong type, a missing required field, a kind with no schema.
        _, documents = self.render(self.values("monitoring.yaml"))
        deployment = next(d for d in documents if d["kind"] == "Deployment")
        deployment["spec"]["replicas"] = "three"
        rule = next(d for d in documents if d["kind"] == "PrometheusRule")
        del rule["spec"]["groups"][0]["rules"][0]["expr"]
        documents.append({"apiVersion": "example.com/v1", "kind": "Gadget",
                          "metadata": {"name": "g"}})
        status, lines = self.kubernetes_validate(documents)
        self.assertEqual(status, 1)
        invalid = [line for line in lines if line.startswith("invalid ")]
        self.assertEqual(len(invalid), 3, lines)
        self.assertIn("replicas must be integer", invalid[0] + invalid[1])
        self.assertIn("no schema", invalid[2])

    def test_values_files_match_the_values_schema(self):
        with open(os.path.join(self.chart, "values.schema.json")) as f:
            schema = json.load(f)
        with open(os.path.join(self.chart, "values.yaml")) as f:
            defaults = yaml.safe_load(f)
        for name in self.value_sets():
            with open(self.values(name)) as f:
                values = merge(json.loads(json.dumps(defaults)), yaml.safe_load(f))
            jsonschema.validate(values, schema)
        # Values that would break the rendered YAML or PromQL are refused.
        for broken in (dict(defaults, mode="sideways"),
                       merge(json.loads(json.dumps(defaults)),
                             {"prometheusRule": {"runbookUrl": 'https://x/"a'}}),
                       merge(json.loads(json.dumps(defaults)),
                             {"grafanaDashboard": {"label": 'x: "1"\n  evil'}}),
                       merge(json.loads(json.dumps(defaults)),
                             {"autoscaling": {"requestsPerSecond": {"metric": "a b"}}}),
                       merge(json.loads(json.dumps(defaults)),
                             {"prometheusRule": {"thresholds": {"latency_p99_seconds": "1 or up"}}})):
            with self.assertRaises(jsonschema.ValidationError):
                jsonschema.validate(broken, schema)

    def test_values_files_pass_yamllint(self):
        files = [os.path.join(self.chart, "values.yaml")] + [self.values(name)
                                                             for name in self.value_sets()]
        result = subprocess.run(["yamllint", "-c", os.path.join(SOURCE, ".yamllint")] + files,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout)


if __name__ == "__main__":
    SOURCE, BINARY = sys.argv.pop(1), sys.argv.pop(1)
    unittest.main(verbosity=2)
