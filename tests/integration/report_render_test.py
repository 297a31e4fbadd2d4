#!/usr/bin/python3
"""xks-load's HTML report as a person sees it: the report of a fault-scenario run (ramp-up, a
latency spike, an error burst, short phases whose markers crowd each other) rendered by headless
Chromium (Debian's chromium), and the layout measured there: every series inside its chart's
plot area, one visible legend entry per series, legend entries and phase labels clear of each
other, and every text inside the chart. A screenshot is kept in test-artefacts/ under the directory the
test runs in.

Usage: report_render_test.py PATH_TO_XKS_PROXY PATH_TO_XKS_LOAD PATH_TO_FAULT_MODULE
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from proxy_process import *  # noqa: E402,F401,F403  (the process, signing, fakes)
import proxy_process  # noqa: E402

# Measures the charts in the page Chromium laid out, and leaves the figures in <pre id=geometry>.
MEASURE = """<script>
window.addEventListener("load", () => {
  // Where an element is drawn (transforms included), in its chart's coordinates.
  const boxIn = (svg) => (element) => {
    const chart = svg.getBoundingClientRect(), b = element.getBoundingClientRect();
    return {text: element.textContent, x: b.left - chart.left, y: b.top - chart.top,
            w: b.width, h: b.height};
  };
  const charts = [...document.querySelectorAll("svg")].map((svg, _, __, box = boxIn(svg)) => ({
    title: svg.querySelector("text").textContent,
    width: svg.width.baseVal.value,
    height: svg.height.baseVal.value,
    plot: box(svg.querySelector("rect.plot-area")),
    series: [...svg.querySelectorAll("polyline.series")].map((line) =>
        Object.assign(box(line), {points: line.points.numberOfItems})),
    legend: [...svg.querySelectorAll("text.legend")].map(box),
    markers: [...svg.querySelectorAll("text.marker")].map(box),
    texts: [...svg.querySelectorAll("text")].map(box),
  }));
  const out = document.createElement("pre");
  out.id = "geometry";
  out.textContent = JSON.stringify(charts);
  document.body.appendChild(out);
});
</script>"""


def chromium(*arguments):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars"] + list(arguments),
                          capture_output=True, text=True, timeout=120)


def overlap(a, b):
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and \
        a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


class ReportRenderTest(unittest.TestCase):
    def test_a_fault_scenario_report_renders_inside_its_charts(self):
        tmp = tempfile.mkdtemp(prefix="xks-report-render-")
        try:
            control = os.path.join(tmp, "faults")
            open(control, "w").close()
            proxy = ProxyProcess(os.path.join(tmp, "demo"), fault_control=control)
            scenario = os.path.join(tmp, "scenario.toml")
            with open(scenario, "w") as f:
                f.write('[[phase]]\nname = "baseline"\nseconds = 1\n\n'
                        '[[phase]]\nname = "latency spike"\nseconds = 1\n'
                        'faults = ["delay C_Encrypt 25"]\n\n'
                        '[[phase]]\nname = "error burst"\nseconds = 1\n'
                        'faults = ["fail C_Encrypt CKR_GENERAL_ERROR every 3"]\n\n'
                        '[[phase]]\nname = "recovery"\nseconds = 1\n')
            report = os.path.join(tmp, "report.html")
            run = subprocess.run(
                [LOAD_BINARY, "--port", str(proxy.port), "--cacert", proxy.ca,
                 "--kms-console", os.path.join(proxy.dir, "kms-console.json"),
                 "--connections", "4", "--ramp-up", "1", "--scenario", scenario,
                 "--fault-control", control, "--html", report],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)  # the burst's errors
            proxy.stop()

            artefacts = os.path.join(os.getcwd(), "test-artefacts")
            os.makedirs(artefacts, exist_ok=True)
            screenshot = os.path.join(artefacts, "xks-load-report.png")
            if os.path.exists(screenshot):
                os.remove(screenshot)
            shot = chromium("--screenshot=" + screenshot, "--window-size=1000,1900",
                            "file://" + report)
            self.assertTrue(os.path.getsize(screenshot) > 10000, shot.stderr)

            with open(report) as f:
                html = f.read()
            measured = os.path.join(tmp, "measured.html")
            with open(measured, "w") as f:
                f.write(html.replace("</body>", MEASURE + "</body>"))
            dom = chromium("--dump-dom", "file://" + measured)
            found = re.search(r'<pre id="geometry">(.*?)</pre>', dom.stdout, re.DOTALL)
            self.assertTrue(found, dom.stderr[-2000:])
            charts = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                                .replace("&lt;", "<").replace("&gt;", ">"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

        self.assertEqual([c["title"] for c in charts],
                         ["Latency percentile spectrum", "Throughput and errors",
                          "Latency (answers completed in each second)"])
        spectrum = charts[0]
        # Ramp-up and the four phases, and the whole of the counted ones, which no phase repeats.
        self.assertEqual([e["text"] for e in spectrum["legend"]],
                         ["all counted requests", "ramp-up", "baseline", "latency spike",
                          "error burst", "recovery"])
        for chart in charts:
            plot = chart["plot"]
            self.assertEqual(len(chart["series"]), len(chart["legend"]), chart["title"])
            for series, entry in zip(chart["series"], chart["legend"]):
                what = "%s: %s" % (chart["title"], entry["text"])
                self.assertGreater(series["points"], 1, what)
                self.assertGreaterEqual(series["x"], plot["x"] - 0.01, what)
                self.assertGreaterEqual(series["y"], plot["y"] - 0.01, what)
                self.assertLessEqual(series["x"] + series["w"], plot["x"] + plot["w"] + 0.01, what)
                self.assertLessEqual(series["y"] + series["h"], plot["y"] + plot["h"] + 0.01, what)
            for label in chart["texts"]:  # titles, ticks, axis names, markers, legend
                what = "%s: %s" % (chart["title"], label["text"])
                self.assertGreater(label["w"], 0, what)
                self.assertGreaterEqual(label["x"], 0, what)
                self.assertLessEqual(label["x"] + label["w"], chart["width"], what)
                self.assertGreaterEqual(label["y"], 0, what)
                self.assertLessEqual(label["y"] + label["h"], chart["height"], what)
            for labels in (chart["legend"], chart["markers"]):
                for i, a in enumerate(labels):
                    for b in labels[i + 1:]:
                        self.assertFalse(overlap(a, b), "%s: %s over %s" % (
                            chart["title"], a["text"], b["text"]))
            for entry in chart["legend"]:
                self.assertGreater(entry["y"], plot["y"] + plot["h"], entry["text"])
        # The latency spike made the tallest line: the axis still covers it.
        self.assertEqual(len(charts[1]["markers"]), 5)


if __name__ == "__main__":
    proxy_process.run(globals())
