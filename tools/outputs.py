#!/usr/bin/env python3
"""Keep the program output quoted in the README, docs/ and the chapters equal to what the
programs print now (tools/snippets.py does the same for code).

A page declares the programs it quotes and marks every quotation; the markers are HTML comments,
invisible where the Markdown is rendered:

  <!-- run NAME: COMMAND -->
      a run of a program: a shell command from the repository root, as a reader would type it
      (a leading build/ is the build directory, see --build). Runs with the same command are
      run once.
  <!-- output NAME [SELECT] [; RULES] -->
  ... the quoted lines: a fenced or indented code block, or plain Markdown lines (table rows) ...
  <!-- /output -->
  <!-- value NAME /REGEX/ [RULES] -->TEXT<!-- /value -->
      one value in the prose: group 1 of the first match of REGEX in the run's output.
  <!-- figure PATH: COMMAND -->
      PATH (an SVG, relative to the page) is what COMMAND draws: COMMAND writes it to {out} (a
      file name) or, with the name of PATH, into {dir} (a directory; several figures of one
      command share one run). --check redraws it into a temporary directory, compares it with
      PATH (numbers to within 0.5, the unit of the SVG coordinates) and renders it to PNG with
      rsvg-convert; --write redraws PATH.
  <!-- figure PATH -->
      a figure that no command in the repository can redraw (the data it was drawn from were not
      kept): --check only renders it to PNG.

SELECT    from /RE/ to /RE/   the first line matching RE through the next line matching the second
          from /RE/ lines N   N lines from the first line matching RE
          grep /RE/           every line matching RE
          (nothing)           the whole output
RULES     comma-separated; the tolerance class of the numbers in the quoted text:
          exact      as printed (the default): counts, shapes, structure, deterministic values
          sig N      to N significant digits: a difference of less than one unit in the N-th digit
                     (losses of long runs, whose last digits move with the CPU's BLAS kernels)
          abs X      within X of the quoted value (losses of long runs: a stated tolerance)
          roundoff   the same order of magnitude (within a factor of 10; zero only matches zero):
                     values made of floating-point round-off, which depends on the BLAS kernels
          any        not compared (timings, speeds, dates)
          col K: R   rule R for the K-th number of every line (1-based), overriding the above
          on /RE/: R, on /RE/ col K: R
                     the same for the lines matching RE only (they override the rules above)
          lines any  the lines are not compared at all (a model's sample text); --write refreshes them
          fixed      --write leaves the quotation as it is: a number measured elsewhere (another
                     CPU), which this machine's output must still agree with under the rules
Between the numbers the text must match, runs of spaces counting as one.

--check (the test) fails, listing each disagreement with its rule; --write refreshes every marked
quotation from the programs. --file limits either to some pages.
"""
import argparse
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

RUN = re.compile(r"<!-- run (?P<name>[\w.-]+): (?P<cmd>.*?) -->")
OUTPUT = re.compile(r"(?P<open><!-- output (?P<name>[\w.-]+)(?P<spec>[^\n]*?) -->\n)(?P<body>.*?)(?P<close><!-- /output -->)", re.S)
VALUE = re.compile(r"(?P<open><!-- value (?P<name>[\w.-]+) /(?P<re>(?:[^/\\]|\\.)*)/(?P<spec>[^\n]*?) -->)(?P<body>.*?)(?P<close><!-- /value -->)", re.S)
FIGURE = re.compile(r"<!-- figure (?P<path>[^:\s]+)(?:: (?P<cmd>.*?))? -->")
# A number: not the digits of a name (layers.0.attn, fp32, x1.0067); a duration (1h05m, 2m42s,
# 58s, 177.4s) counts as one number, so that a timing rule covers it whatever its form.
NUMBER = re.compile(r"(?<![\w.])(?:\d+h\d\dm|\d+m\d\ds|\d+(?:\.\d+)?s(?!\w)|"
                    r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)")


def pages(only):
    if only:
        return [ROOT / f for f in only]
    found = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / "tutorials").glob("*/README.md"))
    return [p for p in found if "<!-- run " in p.read_text() or "<!-- figure " in p.read_text()]


# ------------------------------------------------------------------------------------------------
# Running the programs.

class Runner:
    def __init__(self, build, timeout, keep=None):
        self.build, self.timeout, self.cache = build, timeout, {}
        self.keep = pathlib.Path(keep) if keep else None  # --cache: outputs kept between calls

    def command(self, cmd):
        if self.build != "build":
            cmd = re.sub(r"(?<![\w/.-])build/", self.build.rstrip("/") + "/", cmd)
        return cmd

    def run(self, cmd, where):
        cmd = self.command(cmd)
        kept = None
        if self.keep:
            import hashlib
            kept = self.keep / hashlib.sha256(cmd.encode()).hexdigest()[:16]
            if cmd not in self.cache and kept.exists():
                self.cache[cmd] = kept.read_text()
        if cmd not in self.cache:
            print(f"[outputs] running: {cmd}", file=sys.stderr, flush=True)
            try:
                p = subprocess.run(["bash", "-c", cmd + " 2>&1"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise SystemExit(f"{where}: '{cmd}' ran longer than {self.timeout} s")
            if p.returncode != 0:
                raise SystemExit(f"{where}: '{cmd}' exited with {p.returncode}:\n{p.stdout[-2000:]}")
            self.cache[cmd] = p.stdout
            if kept:
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(p.stdout)
        return self.cache[cmd]


# ------------------------------------------------------------------------------------------------
# Selecting lines and comparing them.

def parse_spec(spec, where):
    """'from /a/ to /b/ ; sig 3, col 2: any' -> (select, rules)."""
    select, _, rules = spec.partition(";")
    return select.strip(), parse_rules(rules, where)


def split_rules(text):
    """Comma-separated rules; a comma inside /RE/ does not split."""
    parts, cur, in_re = [], "", False
    for i, ch in enumerate(text):
        if ch == "/" and (i == 0 or text[i - 1] != "\\"):
            in_re = not in_re
        if ch == "," and not in_re:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


def parse_rules(text, where):
    rules = {"default": ("exact", None), "cols": {}, "lines_any": False, "on": [], "fixed": False}
    for part in split_rules(text):
        if part == "fixed":
            rules["fixed"] = True
            continue
        col, on = None, None
        m = re.match(r"on /((?:[^/\\]|\\.)*)/(?: col (\d+))?:\s*(.*)", part)
        if m:
            on, col, part = m.group(1), int(m.group(2)) if m.group(2) else None, m.group(3).strip()
        m = re.match(r"col (\d+):\s*(.*)", part)
        if m and on is None:
            col, part = int(m.group(1)), m.group(2).strip()
        if part == "lines any":
            rules["lines_any"] = True
            continue
        m = re.fullmatch(r"(exact|roundoff|any)|sig (\d+)|abs ([0-9.eE+-]+)", part)
        if not m:
            raise SystemExit(f"{where}: unknown rule '{part}' (exact, sig N, abs X, roundoff, any, col K: RULE, lines any)")
        rule = (("sig", int(m.group(2))) if m.group(2) else ("abs", float(m.group(3))) if m.group(3)
                else (m.group(1), None))
        if on is not None:
            rules["on"].append((on, col, rule))
        elif col is None:
            rules["default"] = rule
        else:
            rules["cols"][col] = rule
    return rules


def rule_for(rules, line, k):
    """The rule of the k-th number of a line: a line rule for its column, a line rule, a column
    rule, the default."""
    for re_, col, rule in rules["on"]:
        if col == k and re.search(re_, line):
            return rule
    for re_, col, rule in rules["on"]:
        if col is None and re.search(re_, line):
            return rule
    return rules["cols"].get(k, rules["default"])


def select_lines(lines, select, where):
    if not select:
        return lines
    m = re.fullmatch(r"from /((?:[^/\\]|\\.)*)/ (?:to /((?:[^/\\]|\\.)*)/|lines (\d+))", select)
    g = re.fullmatch(r"grep /((?:[^/\\]|\\.)*)/", select)
    if g:
        out = [l for l in lines if re.search(g.group(1), l)]
    elif m:
        start = next((i for i, l in enumerate(lines) if re.search(m.group(1), l)), None)
        if start is None:
            raise SystemExit(f"{where}: no output line matches /{m.group(1)}/")
        if m.group(3):
            out = lines[start:start + int(m.group(3))]
        else:
            end = next((i for i in range(start + 1, len(lines)) if re.search(m.group(2), lines[i])), None)
            if end is None:
                raise SystemExit(f"{where}: no output line after line {start + 1} matches /{m.group(2)}/")
            out = lines[start:end + 1]
    else:
        raise SystemExit(f"{where}: cannot read the selection '{select}' (from /RE/ to /RE/, from /RE/ lines N, grep /RE/)")
    if not out:
        raise SystemExit(f"{where}: the selection '{select}' selects no line")
    return out


def tokens(line):
    """[text, number, text, number, ..., text] with whitespace runs folded."""
    parts, last = [], 0
    for m in NUMBER.finditer(line):
        parts += [line[last:m.start()], m.group(0)]
        last = m.end()
    parts.append(line[last:])
    return [" ".join(p.split()) if i % 2 == 0 else p for i, p in enumerate(parts)]


def numbers_agree(q, a, rule):
    kind, n = rule
    if kind == "any":
        return True
    if kind == "exact":
        return q == a
    try:
        x, y = float(q), float(a)
    except ValueError:  # a duration under a numeric rule: only "any" lets it differ
        return q == a
    if kind == "abs":
        return abs(x - y) <= n * (1 + 1e-12)
    if kind == "roundoff":
        if x == 0 or y == 0:
            return x == y
        return 0.1 <= abs(y / x) <= 10
    # sig n: |x - y| < one unit in the n-th significant digit of the quoted value
    if x == 0:
        return abs(y) < 10.0 ** (-n)
    unit = 10.0 ** (math.floor(math.log10(abs(x))) - n + 1)
    return abs(x - y) < unit * (1 + 1e-9)


def describe(rule):
    if rule[0] == "abs":
        return f"within {rule[1]:g}"
    return {"exact": "exact", "roundoff": "round-off (same order of magnitude)", "any": "any"}.get(
        rule[0], f"{rule[1]} significant digits")


def compare_lines(quoted, actual, rules, where):
    """Problems (strings) of the quoted lines against the program's."""
    if rules["lines_any"]:
        return []
    if len(quoted) != len(actual):
        return [f"{where}: {len(quoted)} lines quoted, the program prints {len(actual)} here:\n"
                + "\n".join("    | " + l for l in actual)]
    problems = []
    for i, (q, a) in enumerate(zip(quoted, actual)):
        tq, ta = tokens(q), tokens(a)
        bad = None
        if len(tq) != len(ta) or any(tq[j] != ta[j] for j in range(0, len(tq), 2)):
            bad = "the text differs"
        else:
            for k, j in enumerate(range(1, len(tq), 2), 1):
                rule = rule_for(rules, a, k)
                if not numbers_agree(tq[j], ta[j], rule):
                    bad = f"number {k}: quoted {tq[j]}, printed {ta[j]} (rule: {describe(rule)})"
                    break
        if bad:
            problems.append(f"{where}, line {i + 1}: {bad}\n    quoted:  {q}\n    printed: {a}")
    return problems


# ------------------------------------------------------------------------------------------------
# The quoted block's own format: fenced, indented, or plain lines.

def body_lines(body):
    lines = body.rstrip("\n").split("\n") if body.strip("\n") else []
    if lines and lines[0].startswith("```"):
        return lines[1:-1], ("fence", lines[0], lines[-1])
    indents = [len(l) - len(l.lstrip(" ")) for l in lines if l.strip()]
    if indents and min(indents) >= 4:
        return [l[4:] for l in lines], ("indent", None, None)
    return lines, ("plain", None, None)


def format_body(lines, fmt):
    kind, open_, close = fmt
    if kind == "fence":
        return "\n".join([open_] + lines + [close]) + "\n"
    if kind == "indent":
        return "\n".join(("    " + l).rstrip() for l in lines) + "\n"
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Figures.

def svg_agree(committed, fresh):
    """The same SVG up to coordinates that moved by less than 0.5."""
    tc, tf = tokens(committed), tokens(fresh)
    if len(tc) != len(tf):
        return False
    for j, (a, b) in enumerate(zip(tc, tf)):
        if j % 2 == 0:
            if a != b:
                return False
        elif abs(float(a) - float(b)) >= 0.5:
            return False
    return True


class Figures:
    """Runs each figure command once, into a temporary directory of its own."""

    def __init__(self, runner):
        self.runner, self.dirs, self.root = runner, {}, tempfile.TemporaryDirectory()

    def draw(self, cmd, name, where):
        if cmd not in self.dirs:
            d = pathlib.Path(self.root.name) / str(len(self.dirs))
            d.mkdir()
            self.runner.run(cmd.replace("{dir}", str(d)).replace("{out}", str(d / name)), where)
            self.dirs[cmd] = d
        return self.dirs[cmd] / name


def figure(m, page, figures, write, problems):
    rel = page.relative_to(ROOT)
    target = (page.parent / m.group("path")).resolve()
    where = f"{rel}: figure {m.group('path')}"
    with tempfile.TemporaryDirectory() as tmp:
        if m.group("cmd") is None:  # render only
            if not target.exists():
                problems.append(f"{where}: the file does not exist")
            else:
                render_check(target, pathlib.Path(tmp), where, problems)
            return
        out = figures.draw(m.group("cmd"), target.name, where)
        if not out.exists():
            problems.append(f"{where}: '{m.group('cmd')}' did not write {target.name}")
            return
        fresh = out.read_text()
        if write:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_text() != fresh:
                target.write_text(fresh)
                print(f"[outputs] wrote {target.relative_to(ROOT)}", file=sys.stderr)
        elif not target.exists():
            problems.append(f"{where}: the file does not exist (run tools/outputs.py --write)")
        elif not svg_agree(target.read_text(), fresh):
            problems.append(f"{where}: differs from what '{m.group('cmd')}' draws now (run tools/outputs.py --write)")
        if target.suffix == ".svg":
            render_check(out, pathlib.Path(tmp), where, problems)


def render_check(svg, tmp, where, problems):
    """The SVG renders to a PNG with rsvg-convert (librsvg, as image viewers and browsers do)."""
    render = shutil.which("rsvg-convert")
    if render is None:
        problems.append(f"{where}: rsvg-convert is missing (Debian: librsvg2-bin; tools/setup.sh --test installs it)")
        return
    png = tmp / "figure.png"
    r = subprocess.run([render, "-o", str(png), str(svg)], capture_output=True, text=True)
    if r.returncode != 0 or not png.exists() or png.stat().st_size < 1000:
        problems.append(f"{where}: rsvg-convert could not render it: {r.stderr.strip()}")


# ------------------------------------------------------------------------------------------------

def process(page, runner, figures, write, problems, counts):
    rel = page.relative_to(ROOT)
    text = page.read_text()
    runs = {m.group("name"): m.group("cmd") for m in RUN.finditer(text)}

    def output_of(name, where):
        if name not in runs:
            raise SystemExit(f"{where}: no '<!-- run {name}: ... -->' on this page")
        return runner.run(runs[name], where)

    def line_of(pos):
        return text.count("\n", 0, pos) + 1

    def block(m):
        where = f"{rel}:{line_of(m.start())} (output {m.group('name')})"
        select, rules = parse_spec(m.group("spec"), where)
        actual = select_lines(output_of(m.group("name"), where).rstrip("\n").split("\n"), select, where)
        quoted, fmt = body_lines(m.group("body"))
        if not m.group("body").strip():  # a new block: table rows stay Markdown, the rest is code
            fmt = ("plain", None, None) if all(l.startswith("|") for l in actual) else ("indent", None, None)
        counts["blocks"] += 1
        if write and not rules["fixed"]:
            return m.group("open") + format_body(actual, fmt) + m.group("close")
        if write:
            return m.group(0)
        problems.extend(compare_lines(quoted, actual, rules, where))
        return m.group(0)

    def value(m):
        where = f"{rel}:{line_of(m.start())} (value {m.group('name')})"
        rules = parse_rules(m.group("spec"), where)
        found = re.search(m.group("re"), output_of(m.group("name"), where), re.M)
        if not found:
            raise SystemExit(f"{where}: /{m.group('re')}/ matches nothing in the output")
        counts["values"] += 1
        if write and not rules["fixed"]:
            return m.group("open") + found.group(1) + m.group("close")
        if write:
            return m.group(0)
        problems.extend(compare_lines([m.group("body")], [found.group(1)], rules, where))
        return m.group(0)

    new = OUTPUT.sub(block, text)
    new = VALUE.sub(value, new)
    for m in FIGURE.finditer(text):
        counts["figures"] += 1
        figure(m, page, figures, write, problems)
    if write and new != text:
        page.write_text(new)
        print(f"[outputs] refreshed {rel}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if a quotation disagrees with its program")
    mode.add_argument("--write", action="store_true", help="refresh every quotation from its program")
    ap.add_argument("--build", default=os.environ.get("SCALEVEC_BUILD", "build"),
                    help="the build directory that build/ in the commands means (default: %(default)s)")
    ap.add_argument("--file", action="append", help="only this page (repeatable), relative to the repository")
    ap.add_argument("--timeout", type=int, default=900, help="seconds one run may take (default: %(default)s)")
    ap.add_argument("--cache", metavar="DIR",
                    help="keep each run's output in DIR and reuse it on the next call (for editing "
                         "pages; the test does not use it)")
    args = ap.parse_args()
    runner = Runner(args.build, args.timeout, args.cache)
    figures = Figures(runner)
    problems, counts = [], {"blocks": 0, "values": 0, "figures": 0}
    todo = pages(args.file)
    for page in todo:
        process(page, runner, figures, args.write, problems, counts)
    for p in problems:
        print(p)
    print(f"outputs: {len(todo)} pages, {counts['blocks']} output blocks, {counts['values']} values, "
          f"{counts['figures']} figures, {len(runner.cache)} program runs: "
          + (f"{len(problems)} disagree" if not args.write else "written"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
