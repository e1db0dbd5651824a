"""Render benchmarks/results/*.json into the results table of benchmarks/README.md.

The table sits between the two marker lines below; everything else in the
README is left alone.  Run after any benchmark: ``python benchmarks/report.py``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from _common import HERE, RESULTS, ROOT

from rae_bench.atomic import write_text

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def table(results: list[dict]) -> str:
    lines = ["| comparison | ours | reference | unit | ratio | target | met | machine | command |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for res in results:
        m = res["machine"]
        # rows from different CPUs do not compare with each other, so each says where it ran
        where = f"{m['cores']} cores, {m['gpu'] or m['cpu']}"
        for r in res["rows"]:
            note = f" ({r['note']})" if r.get("note") else ""
            lines.append(
                f"| {r['comparison']}{note} | {_num(r['ours'])} | {_num(r['reference'])} | {r['unit']} | "
                f"{_num(r['ratio'])}x | {r['target']} | {'yes' if r['met'] else '**no**'} | {where} | "
                f"`{res['command']}` |")
    cpus = sorted({res["machine"]["cpu"] for res in results})
    lines.append("")
    lines.append(f"Machines: {'; '.join(cpus)}. Values are medians of the runs stored in "
                 f"`benchmarks/results/*.json`; ratio > 1 is in our favour.")
    return "\n".join(lines)


def main() -> None:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    readme = HERE / "README.md"
    text = readme.read_text()
    block = f"{START}\n{table(results)}\n{END}"
    if START in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text(readme, text)
    print(f"updated {readme.relative_to(ROOT)} from {len(results)} result files")


if __name__ == "__main__":
    main()
