#!/usr/bin/env python3
"""Draws one SVG bar chart per scenario of a load-matrix results file (benches/run-matrix).

Usage: benches/plot-matrix.py RESULTS.jsonl OUT_DIR

Each scenario (the run's label without its "(before)" / "(memory)" / "(no search)" suffix)
gets OUT_DIR/<scenario>.svg with one bar per server, the variant in brackets, and each bar's
ratio to Bun's in the same file. What a bar shows depends on the scenario: deliveries/s at
saturation, end-to-end p99 at light load (lower is better), RSS per connection when idle
(lower is better), durable messages/s. Several runs of one server and scenario are drawn at
their median. A run whose harness used over 90 % of its core is marked with a warning sign,
since its figure is the harness's, not the server's. Standard library only, so that anyone can
run it where the benchmarks ran.
"""

import json
import re
import statistics
import sys
from html import escape
from pathlib import Path

# scenario prefix -> (title of the measure, how to read it from a result, lower is better)
MEASURES = {
    "sat-": ("deliveries/s", lambda r: r["deliveries_per_s"], False),
    "light-": ("end-to-end p99, ms", lambda r: (r.get("end_to_end_ms") or {}).get("p99"), True),
    "idle-": ("server RSS per idle connection, bytes", lambda r: r["server"].get("rss_per_connection_bytes"), True),
    "durable-": ("durable messages/s", lambda r: r["sent_per_s"], False),
}

BAR_HEIGHT = 26
NAME_WIDTH = 210
PLOT_WIDTH = 420
VALUE_WIDTH = 190
TOP = 56


def measure_for(scenario):
    for prefix, measure in MEASURES.items():
        if scenario.startswith(prefix):
            return measure
    return None


def split_label(label):
    match = re.match(r"^(.*?)(?: \((before|memory|no search)\))?$", label)
    return match.group(1), match.group(2)


def series_name(target, variant):
    return f"{target} ({variant})" if variant else target


def format_value(value):
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def draw(scenario, title, lower_is_better, bars):
    """bars: list of (name, value, harness_saturated)."""
    bun = next((value for name, value, _ in bars if name == "bun"), None)
    largest = max(value for _, value, _ in bars) or 1
    height = TOP + BAR_HEIGHT * len(bars) + 40
    width = NAME_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    better = "lower is better" if lower_is_better else "higher is better"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="16" font-weight="bold">{escape(scenario)}</text>',
        f'<text x="10" y="42" fill="#555">{escape(title)} ({better}); ratio to Bun in brackets</text>',
    ]
    for index, (name, value, saturated) in enumerate(bars):
        y = TOP + index * BAR_HEIGHT
        bar_width = max(1.0, PLOT_WIDTH * value / largest)
        colour = "#d9480f" if name.startswith("switchboard") else "#868e96"
        ratio = f" ({value / bun:.2f}×)" if bun else ""
        flag = " ⚠ harness-bound" if saturated else ""
        parts += [
            f'<text x="{NAME_WIDTH - 8}" y="{y + 17}" text-anchor="end">{escape(name)}</text>',
            f'<rect x="{NAME_WIDTH}" y="{y + 4}" width="{bar_width:.1f}" height="{BAR_HEIGHT - 8}" fill="{colour}"/>',
            f'<text x="{NAME_WIDTH + bar_width + 6:.1f}" y="{y + 17}">'
            f"{escape(format_value(value) + ratio + flag)}</text>",
        ]
    parts.append(
        f'<text x="10" y="{height - 12}" fill="#888" font-size="11">'
        "server on core 0, harness on core 1; benches/run-matrix, drawn by benches/plot-matrix.py</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    scenarios = {}
    for result in results:
        scenario, variant = split_label(result["label"])
        measure = measure_for(scenario)
        if measure is None:
            continue
        value = measure[1](result)
        if value is None:
            continue
        runs = scenarios.setdefault(scenario, {}).setdefault(series_name(result["target"], variant), [])
        runs.append((value, bool(result.get("harness_saturated"))))
    for scenario, servers in sorted(scenarios.items()):
        title, _, lower_is_better = measure_for(scenario)
        bars = [
            (name, statistics.median(value for value, _ in runs), any(flag for _, flag in runs))
            for name, runs in servers.items()
        ]
        bars.sort(key=lambda bar: (not bar[0].startswith("switchboard"), bar[0]))
        path = out_dir / f"{scenario}.svg"
        path.write_text(draw(scenario, title, lower_is_better, bars), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
