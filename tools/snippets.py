#!/usr/bin/env python3
"""Keep the code shown in the chapters identical to the compiled sources.

A source file marks a region with            // [snippet:NAME]  ...  // [end]
A chapter (any tutorials/*/README.md) shows it with
    <!-- snippet: path/to/file.h#NAME -->
    ```cpp
    ...
    ```
    <!-- /snippet -->
`--write` refreshes every such block from the sources; `--check` (the test) fails, listing the
stale blocks, when a chapter shows code that is not in the sources any more.
"""
import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- snippet: (?P<ref>[^ ]+) -->\n```(?P<lang>\w*)\n)(?P<body>.*?)(```\n<!-- /snippet -->)",
                   re.S)


def extract(ref: str) -> str:
    path, _, name = ref.partition("#")
    src = (ROOT / path).read_text()
    m = re.search(r"^[ \t]*// \[snippet:%s\]\n(.*?)^[ \t]*// \[end\]" % re.escape(name), src, re.S | re.M)
    if not m:
        raise SystemExit(f"snippets: {path} has no region '// [snippet:{name}]' ... '// [end]'")
    return m.group(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail if any chapter shows stale code")
    mode.add_argument("--write", action="store_true", help="refresh the chapters from the sources")
    args = ap.parse_args()
    stale, blocks = [], 0
    for readme in sorted((ROOT / "tutorials").glob("*/README.md")):
        text = readme.read_text()

        def refresh(m):
            nonlocal blocks
            blocks += 1
            body = extract(m.group("ref"))
            if body != m.group("body"):
                stale.append((readme.relative_to(ROOT), m.group("ref"), m.group("body"), body))
            return m.group(1) + body + m.group(5)

        new = BLOCK.sub(refresh, text)
        if args.write and new != text:
            readme.write_text(new)
    if args.check and stale:
        for readme, ref, old, new in stale:
            print(f"{readme}: snippet {ref} differs from the source:")
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "chapter", "source"))
        print(f"{len(stale)} of {blocks} snippets are stale: run tools/snippets.py --write")
        return 1
    print(f"{blocks} snippets {'checked' if args.check else 'written'}, "
          f"{len(stale)} {'stale' if args.check else 'updated'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
