#!/usr/bin/python3
"""The alerting rules (observability/prometheus-rules.yaml): promtool accepts them and their unit
tests pass (alert_rules_test.yaml, `promtool test rules`); every alert is tested firing and not
firing, carries a severity, a summary and a runbook link, and its runbook section exists.

Usage: alert_rules_test.py SOURCE_DIR
"""
import os
import re
import subprocess
import sys
import unittest

import yaml

SOURCE = None


class AlertRulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rules_file = os.path.join(SOURCE, "observability/prometheus-rules.yaml")
        cls.tests_file = os.path.join(SOURCE, "tests/observability/alert_rules_test.yaml")
        with open(cls.rules_file) as f:
            cls.groups = yaml.safe_load(f)["groups"]
        cls.alerts = [r for g in cls.groups for r in g["rules"] if "alert" in r]

    def promtool(self, *arguments, cwd=None):
        run = subprocess.run(["promtool"] + list(arguments), capture_output=True, text=True,
                             timeout=120, cwd=cwd)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        return run.stdout

    def test_promtool_accepts_the_rules(self):
        self.assertIn("SUCCESS", self.promtool("check", "rules", self.rules_file))

    def test_promtool_unit_tests_pass(self):
        self.assertIn("SUCCESS", self.promtool("test", "rules", os.path.basename(self.tests_file),
                                               cwd=os.path.dirname(self.tests_file)))

    def test_every_alert_is_tested_firing_and_quiet(self):
        with open(self.tests_file) as f:
            cases = [case for test in yaml.safe_load(f)["tests"]
                     for case in test.get("alert_rule_test", [])]
        names = {alert["alert"] for alert in self.alerts}
        for name in names:
            evaluations = [case for case in cases if case["alertname"] == name]
            self.assertTrue(any(case.get("exp_alerts") for case in evaluations),
                            "%s is never tested firing" % name)
            self.assertTrue(any(not case.get("exp_alerts") for case in evaluations),
                            "%s is never tested quiet" % name)
        self.assertFalse({case["alertname"] for case in cases} - names,
                         "the unit tests name alerts the rules do not have")

    def test_every_alert_has_a_severity_a_summary_and_a_runbook_section(self):
        with open(os.path.join(SOURCE, "docs/runbook.md")) as f:
            headings = re.findall(r"^## (\S+)$", f.read(), re.MULTILINE)
        anchors = {heading.lower() for heading in headings}
        for alert in self.alerts:
            name = alert["alert"]
            self.assertIn(alert["labels"]["severity"], ("critical", "warning", "info"), name)
            self.assertTrue(alert["annotations"]["summary"], name)
            url = alert["annotations"]["runbook_url"]
            self.assertEqual(url, "docs/runbook.md#" + name.lower())
            self.assertIn(url.split("#")[1], anchors, "docs/runbook.md has no section " + name)
        self.assertEqual(sorted(headings), sorted(a["alert"] for a in self.alerts),
                         "runbook sections and alerts differ")

    def test_thresholds_are_the_last_group_and_every_one_is_used(self):
        thresholds = self.groups[-1]
        self.assertEqual(thresholds["name"], "xks-proxy-thresholds")
        expressions = " ".join(alert["expr"] for alert in self.alerts)
        for rule in thresholds["rules"]:
            self.assertRegex(rule["expr"], r"^vector\([0-9.]+\)$")
            self.assertIn(rule["record"], expressions, "unused threshold " + rule["record"])


if __name__ == "__main__":
    SOURCE = sys.argv.pop(1)
    unittest.main(verbosity=2)
