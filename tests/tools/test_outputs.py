#!/usr/bin/env python3
"""tools/outputs.py's comparison rules, on hand-written lines: what each tolerance class accepts
and what it refuses (exit 1 on the first failure, with the case)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import outputs  # noqa: E402

failures = []


def check(name, got, want):
    if got != want:
        failures.append(f"{name}: got {got!r}, want {want!r}")


def agree(quoted, printed, rules=""):
    return not outputs.compare_lines([quoted], [printed], outputs.parse_rules(rules, "test"), "test")


# Numbers: not the digits inside names; durations are one number.
check("tokens names", outputs.tokens("layers.0.attn.wq  24 entries 8.31e-08"),
      ["layers.0.attn.wq", "24", "entries", "8.31e-08", ""])
check("tokens duration", outputs.tokens("ETA 21m03s"), ["ETA", "21m03s", ""])
check("tokens signs", outputs.tokens("| -0.0361 ± 0.0091 |")[1], "-0.0361")

# exact (the default): any other digit fails, whitespace runs do not matter.
check("exact same", agree("loss 1.9097", "loss   1.9097"), True)
check("exact digit", agree("loss 1.9097", "loss 1.9098"), False)
check("text differs", agree("val loss 1.9097", "train loss 1.9097"), False)
check("line count", outputs.compare_lines(["a", "b"], ["a"], outputs.parse_rules("", "t"), "t") != [], True)

# sig N: less than one unit of the N-th significant digit.
check("sig 3 close", agree("loss 1.9097", "loss 1.9106", "sig 3"), True)
check("sig 3 far", agree("loss 1.9097", "loss 1.9210", "sig 3"), False)
check("sig 4 far", agree("loss 1.9097", "loss 1.9108", "sig 4"), False)
check("sig small", agree("2.57e-09", "2.59e-09", "sig 2"), True)

# abs X: within X.
check("abs in", agree("loss 1.9097", "loss 1.9168", "abs 0.02"), True)
check("abs out", agree("loss 1.9097", "loss 1.9310", "abs 0.02"), False)

# roundoff: the same order of magnitude; zero only matches zero.
check("roundoff x3", agree("err 3.12e-10", "err 9.0e-10", "roundoff"), True)
check("roundoff x100", agree("err 3.12e-10", "err 5.19e-08", "roundoff"), False)
check("roundoff zero", agree("err 0.00e+00", "err 1e-17", "roundoff"), False)

# any, col K, on /RE/ (col K), and the order they apply in.
check("any", agree("took 607.2s", "took 162.0s", "any"), True)
rules = "sig 3, col 1: exact, on /^done/ col 2: any"
check("col exact", agree("step 100: 2.6315", "step 101: 2.6315", rules), False)
check("col default", agree("step 100: 2.6315", "step 100: 2.6320", rules), True)
check("on col any", agree("done 1000 in 607.2s", "done 1000 in 162.0s", rules), True)
check("on only its lines", agree("step 1000 in 607.2s", "step 1000 in 162.0s", rules), False)
check("duration under sig", agree("ETA 21m03s", "ETA 3m10s", "sig 3"), False)
check("duration any", agree("ETA 21m03s", "ETA 3m10s", "any"), True)
check("duration forms", agree("ETA 1m11s", "ETA 58s", "any"), True)
check("duration seconds", agree("in 607.2s (3373 tok/s)", "in 177.4s (11544 tok/s)", "any"), True)
check("seconds exact", agree("in 607.2s", "in 177.4s"), False)
check("comma inside a regex", outputs.split_rules("on /a,b/: any, sig 2"), ["on /a,b/: any", "sig 2"])
check("fixed", outputs.parse_rules("sig 3, fixed", "t")["fixed"], True)
check("lines any", outputs.compare_lines(["x"], ["y", "z"], outputs.parse_rules("lines any", "t"), "t"), [])

# Selections.
out = ["head", "1. first", "a", "b", "2. second", "c"]
check("from to", outputs.select_lines(out, "from /^1\\./ to /^2\\./", "t"), ["1. first", "a", "b", "2. second"])
check("from lines", outputs.select_lines(out, "from /^1\\./ lines 2", "t"), ["1. first", "a"])
check("grep", outputs.select_lines(out, "grep /^[ac]$/", "t"), ["a", "c"])

# A block keeps its own format.
lines, fmt = outputs.body_lines("    x = 1\n    y = 2\n")
check("indent", (lines, fmt[0]), (["x = 1", "y = 2"], "indent"))
check("indent back", outputs.format_body(["z"], fmt), "    z\n")
lines, fmt = outputs.body_lines("```text\nx\n```\n")
check("fence", (lines, outputs.format_body(["y"], fmt)), (["x"], "```text\ny\n```\n"))

# Figures: coordinates may move by less than half a unit.
check("svg moved", outputs.svg_agree("<line x1='10.0' y1='20.3'/>", "<line x1='10.2' y1='20.3'/>"), True)
check("svg far", outputs.svg_agree("<line x1='10.0'/>", "<line x1='11.0'/>"), False)
check("svg text", outputs.svg_agree("<text>none: 1.9</text>", "<text>hg: 1.9</text>"), False)

for f in failures:
    print("FAIL", f)
print(f"test_outputs: {len(failures)} failures")
sys.exit(1 if failures else 0)
