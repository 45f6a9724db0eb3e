#!/usr/bin/env python3
"""Summarise the [cmp] lines of a GPU test log (test_gpu or test_gpu_host) by family.

Each comparison of tests/gpu/test_gpu.cpp and test_engine.cpp prints one line:

    [cmp] <what>  n=<count>  max abs <e>  max rel <e> | norm rel <e>  <s>% of threshold (...)

This prints a Markdown table with one row per family (an op, a precision, the model after one or
ten steps, the trainer with the CUDA engine): how many comparisons, the largest absolute and
relative errors, the largest share of its threshold any of them used, and which comparison used
it. tools/gpu-check.sh puts the table at the top of its results file.

    python3 tools/cmp_summary.py LOG [LOG ...]
"""
import argparse
import re
import sys

# (pattern on the comparison's label, family name); the first match wins. {p} is the precision.
FAMILIES = [
    (r"^linear (tf32|bf16) .* vs bf16-rounded ref", "linear, bf16 vs the reference on rounded operands"),
    (r"^linear (tf32|bf16) ", "linear, {p} vs fp32"),
    (r"^linear ", "linear (fp32)"),
    (r"^attention (tf32|bf16) ", "attention, {p} vs fp32"),
    (r"^attention ", "attention and RoPE (fp32)"),
    (r"^rmsnorm ", "rmsnorm (fp32)"),
    (r"^scale vector ", "scale-vector parameterizations (fp32)"),
    (r"^scale ", "scale (fp32)"),
    (r"^swiglu ", "swiglu (fp32)"),
    (r"^crossentropy ", "cross-entropy (fp32)"),
    (r"^embedding ", "embedding (fp32)"),
    (r"^newton-schulz ", "Newton-Schulz (fp32)"),
    (r"lr 1e-6 update", "bf16: an update below its resolution"),
    (r"^engine bf16", "trainer with the CUDA engine, bf16, vs the CPU trainer (12 steps)"),
    (r" (tf32|bf16) step 1 ", "model, {p}: loss and gradients after 1 step"),
    (r" (tf32|bf16) params after", "model, {p}: parameters after 10 steps"),
    (r" step 1 ", "model (fp32): loss and gradients after 1 step"),
    (r" step 10 ", "model (fp32): gradients after 10 steps"),
    (r"params after", "model (fp32): parameters after 10 steps"),
    (r"^engine |^7 steps ", "trainer with the CUDA engine vs the CPU trainer (12 steps)"),
]

NUM = r"([0-9.]+(?:e[+-]?[0-9]+)?|inf|nan)"


def family(label):
    for pattern, name in FAMILIES:
        m = re.search(pattern, label)
        if m:
            return name.format(p=m.group(1) if m.groups() else "")
    return "other"


def parse(line):
    """(label, max abs, max rel, share in %) of one [cmp] line, or None for an info line."""
    body = line[len("[cmp] "):].rstrip("\n")
    label = re.split(r"\s+n=|\s+rms of all|\s+repeat runs", body)[0].strip()
    abs_m = re.search(r"max abs " + NUM, body)
    rel_m = re.search(r"(?:max|norm) rel " + NUM, body)
    share_m = re.search(NUM + r"% of threshold", body)
    if not rel_m:
        return None
    rel = float(rel_m.group(1))
    return (label, float(abs_m.group(1)) if abs_m else None, rel,
            float(share_m.group(1)) if share_m else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+", help="test logs holding [cmp] lines")
    args = ap.parse_args(argv)
    rows = {}  # family -> [count, max abs, max rel, max share, worst label]
    for path in args.logs:
        try:
            lines = open(path, encoding="utf-8", errors="replace").readlines()
        except OSError as e:
            print(f"cmp_summary.py: error: {e}", file=sys.stderr)
            return 2
        for line in lines:
            if not line.startswith("[cmp] "):
                continue
            parsed = parse(line)
            if parsed is None:
                continue
            label, a, rel, share = parsed
            r = rows.setdefault(family(label), [0, None, 0.0, None, ""])
            r[0] += 1
            if a is not None:
                r[1] = a if r[1] is None else max(r[1], a)
            r[2] = max(r[2], rel)
            if share is not None and (r[3] is None or share > r[3]):
                r[3], r[4] = share, label
            elif share is None and not r[4]:
                r[4] = label
    if not rows:
        print("(no [cmp] lines)")
        return 0
    print("| family | comparisons | max abs error | max rel error | largest share of threshold | where |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name in rows:  # in the order the log first shows them
        count, a, rel, share, worst = rows[name]
        print(f"| {name} | {count} | {'–' if a is None else f'{a:.1e}'} | {rel:.1e} | "
              f"{'–' if share is None else f'{share:.1f}%'} | {worst} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
