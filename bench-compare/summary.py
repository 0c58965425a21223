#!/usr/bin/env python3
"""Print a compact Markdown table of a compare.jsonl file.

    python summary.py DATA_DIR/compare.jsonl
"""
import json
import sys


def fmt(v, digits=3):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    print("| system | W | variant | n | median s | rate /s | bytes | correct | vs sqlite3 | vs arrow | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("system") == "meta":
            continue
        if "error" in r:
            print(f"| {r['system']} | {r.get('workload', '')} | ERROR | | | | | | | | {r['error'][:120]} |")
            continue
        if r.get("supported") is False:
            print(f"| {r['system']} | {r['workload']} | {r['variant']} | | unsupported | | | | | | {r.get('note', '')} |")
            continue
        rate = r.get("values_per_s") or r.get("rows_per_s") or r.get("runs_per_s")
        extra = []
        for k in ("import_s", "open_query_s", "index_s", "matches"):
            if k in r:
                extra.append(f"{k} {fmt(r[k])}")
        print(f"| {r['system']} | {r['workload']} | {r['variant']} | {fmt(r.get('n'))} | {fmt(r.get('median_s'))} "
              f"| {fmt(rate)} | {fmt(r.get('bytes'))} | {fmt(r.get('correct'))} | {fmt(r.get('ratio'))} "
              f"| {fmt(r.get('ratio2'))} | {'; '.join(extra)} |")


if __name__ == "__main__":
    main()
