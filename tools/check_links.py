#!/usr/bin/env python3
"""Every link and every cited file in the project's prose resolves inside a clone.

Scanned: README.md, docs/**/*.md, tutorials/**/*.md (what a reader reads), and the comments of
the sources (ref/, gpu/, tools/, tests/, tutorials/), where only citations of Markdown files are
checked (e.g. "docs/SCALE_VECTORS.md §3" in a header).

Checked in Markdown (not inside fenced code, which is cut from the sources, nor inside the
quoted program output of tools/outputs.py's blocks):
  links      [text](target), ![alt](target), <img src="target">: a relative target must be a file
             or directory of the repository (relative to the page), and a #anchor must be a heading
             of the target page (GitHub's slugs); http(s) and mailto links are not followed
  citations  a path-like word ending in a source or document extension (ref/ops/rmsnorm.h,
             tools/snippets.py, docs/REPLICATION.md, main.cpp, ...) must name a file of the
             repository, relative to the page or to the repository root; a bare name (no "/")
             may name a file anywhere in the repository. Words under build/ or runs/ (what the
             build and the trainer write), absolute system paths, placeholders (<dir>, *, $X,
             {..}), arguments of flags (--json run.json) and the names of files the programs
             write (GENERATED) are not citations.
Everywhere: nothing may point outside the repository (a relative path that climbs above the
root, /work/..., or the design folder outside the repository, "shared/").

Exit status 1 with one line per problem, 0 if everything resolves. --list prints what was checked.
"""
import argparse
import pathlib
import re
import sys
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXT = r"(?:md|h|hpp|cpp|cu|cuh|py|sh|json|txt|svg|png|csv|gdb|cmake)"
# A path-like word: optional ./ or ../ steps, then name(/name)*.ext, not part of a longer word.
CITE = re.compile(r"(?<![\w/.\-~$<{*])((?:\.{1,2}/)*(?:[\w\-.]+/)*[\w\-]+(?:\.[\w\-]+)*\." + EXT + r")(?![\w/\-])")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG = re.compile(r"<img\s[^>]*src=[\"']([^\"']+)[\"']", re.I)
# Files the programs write (run directories, ablation grids, GPU results): named in the prose as
# what a command produces, not as files of the repository.
GENERATED = {"summary.md", "results.csv", "curves.svg", "delta.svg", "grid.json", "result.json",
             "bench.json", "bench.txt", "tests.log", "build.log", "configure.log", "sample.txt",
             "gpu-results.md", "curves.csv", "runs.json", "trace.safetensors"}
SKIP_PREFIX = ("build/", "build-", "runs/", "/", "~", "http:", "https:", "mailto:")
OUTSIDE = re.compile(r"(?:\.\./)+shared/|/work/|(?<![\w/])shared/design")


def md_files():
    yield ROOT / "README.md"
    for top in ("docs", "tutorials"):
        yield from sorted((ROOT / top).rglob("*.md"))


def source_files():
    for top in ("ref", "gpu", "tools", "tests", "tutorials"):
        for p in sorted((ROOT / top).rglob("*")):
            if p.suffix in (".h", ".cpp", ".cu", ".cuh", ".py", ".sh", ".txt") and p.is_file():
                yield p


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[|\]\([^)]*\)", "", heading.strip().lower())
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in "LN" or cat == "Mn":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def anchors(path):
    seen, result = {}, set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            result.add(s if n == 0 else f"{s}-{n}")
    return result


def inside(p):
    try:
        p.resolve().relative_to(ROOT)
        return True
    except ValueError:
        return False


def exists_by_name(name, _cache={}):
    if not _cache:
        for p in ROOT.rglob("*"):
            if ".git" in p.parts or p.parts[len(ROOT.parts)].startswith("build"):
                continue
            _cache.setdefault(p.name, []).append(p)
    return name in _cache


def resolve(word, page):
    """The file a cited word names, or None."""
    for base in (page.parent, ROOT):
        p = (base / word)
        if p.exists():
            return p
    if "/" not in word and exists_by_name(word):
        return ROOT / word  # somewhere in the repository
    return None


def check_markdown(page, problems, listed):
    rel = page.relative_to(ROOT)
    text = page.read_text()
    in_output = False  # the body of a quoted program output (tools/outputs.py): not citations
    in_code = False
    for n, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{n}"
        if line.startswith("<!-- output "):
            in_output = True
            continue
        if line.startswith("<!-- /output -->"):
            in_output = False
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_output or in_code:  # fenced code is source code (snippets), not prose
            continue
        if OUTSIDE.search(line):
            problems.append(f"{where}: points outside the repository: {OUTSIDE.search(line).group(0)!r}")
        targets = [m.group(1) for m in LINK.finditer(line)] + [m.group(1) for m in IMG.finditer(line)]
        for t in targets:
            listed.append(f"{where}: link {t}")
            if re.match(r"[a-z]+:", t):
                continue
            path, _, anchor = t.partition("#")
            target = page if not path else (page.parent / path)
            if path and not inside(target):
                problems.append(f"{where}: link {t} leaves the repository")
            elif not target.exists():
                problems.append(f"{where}: link {t}: no such file")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                problems.append(f"{where}: link {t}: {target.relative_to(ROOT)} has no heading #{anchor}")
        # Citations outside link targets (a link's target is checked above).
        plain = LINK.sub(lambda m: m.group(0).split("](")[0], line)
        for m in CITE.finditer(plain):
            word = m.group(1)
            if word.startswith(SKIP_PREFIX) or word in GENERATED:
                continue
            if re.search(r"(?:^|\s)--[\w-]+[ =]$", plain[:m.start()]):
                continue  # the argument of a flag (--json run.json): a file the command writes
            listed.append(f"{where}: cites {word}")
            p = resolve(word, page)
            if p is None:
                problems.append(f"{where}: cites {word}: no such file in the repository")
            elif not inside(p):
                problems.append(f"{where}: cites {word}: outside the repository")


def check_source(path, problems, listed):
    rel = path.relative_to(ROOT)
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        where = f"{rel}:{n}"
        if path.name == "check_links.py":
            continue
        if OUTSIDE.search(line):
            problems.append(f"{where}: points outside the repository: {OUTSIDE.search(line).group(0)!r}")
        # Documents are named in capitals (docs/SCALE_VECTORS.md) or by their path (docs/..., a
        # chapter's README); lower-case names in code are files the code writes.
        for m in re.finditer(r"(?<![\w/.\-])((?:docs/|tutorials/)?(?:[\w\-]+/)*[A-Z][A-Z_\-]*\.md)\b", line):
            word = m.group(1)
            listed.append(f"{where}: cites {word}")
            if resolve(word, path) is None:
                problems.append(f"{where}: cites {word}: no such file in the repository")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print every link and citation checked")
    args = ap.parse_args()
    problems, listed = [], []
    pages = list(md_files())
    for page in pages:
        check_markdown(page, problems, listed)
    sources = list(source_files())
    for src in sources:
        check_source(src, problems, listed)
    if args.list:
        print("\n".join(listed))
    for p in problems:
        print(p)
    print(f"check_links: {len(pages)} pages and {len(sources)} sources, {len(listed)} links and "
          f"citations, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
