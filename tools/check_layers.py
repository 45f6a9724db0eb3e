#!/usr/bin/env python3
"""The house has no back-edges: no file of a lower layer includes a file of a higher one.

Layers, bottom up (a file may include files of its own layer and of the layers below):

  0  ref/common.*, ref/rng.h,         errors, thread control, random numbers, strict JSON reads
     ref/json.h
  1  ref/ops/                         forward/backward pairs on raw arrays
  2  ref/params.*                     the parameter layout and its Input/Output tags
  3  ref/scale/                       the scale-vector modules (parameterizations, placements)
  4  ref/model/                       config, block, transformer
  5  ref/train/, ref/check/           optimizers, data, checkpoints, trainer; gradient and theory checks
  6  gpu/                             the CUDA mirror (beside the model, above the reference)
  7  tools/                           the command line
  8  tutorials/                       the chapters' programs
  9  tests/                           everything may be tested, but tests/ref/ is layer 5: the
                                      reference's tests depend on nothing above the reference

Every `#include "..."` of a C++/CUDA source under ref/, gpu/, tools/, tutorials/ and tests/ is
resolved (relative to its file, else to the repository root) and must not point up. The CMake
files are checked too: a target of a lower layer must not compile a source of a higher one
(e.g. a ref test compiling tools/config_flags.cpp). Exit 1 with one line per back-edge.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = [  # (prefix, layer, name)
    ("ref/common.", 0, "ref base"), ("ref/rng.h", 0, "ref base"), ("ref/json.h", 0, "ref base"),
    ("ref/ops/", 1, "ops"),
    ("ref/params.", 2, "params"),
    ("ref/scale/", 3, "scale"),
    ("ref/model/", 4, "model"),
    ("ref/train/", 5, "train/check"), ("ref/check/", 5, "train/check"),
    ("gpu/", 6, "gpu"),
    ("tools/", 7, "tools"),
    ("tutorials/", 8, "tutorials"),
    ("tests/ref/", 5, "ref tests"),  # the reference's tests test the reference alone
    ("tests/", 9, "tests"),
]
SOURCES = (".h", ".hpp", ".cpp", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    for prefix, layer, name in LAYERS:
        if rel.startswith(prefix):
            return layer, name
    return None


def resolve(include, src):
    for base in (src.parent, ROOT):
        p = (base / include).resolve()
        if p.exists():
            try:
                return p.relative_to(ROOT).as_posix()
            except ValueError:
                return None
    return None


def main():
    problems, edges = [], 0
    for top in ("ref", "gpu", "tools", "tutorials", "tests"):
        for src in sorted((ROOT / top).rglob("*")):
            if src.suffix not in SOURCES or not src.is_file():
                continue
            rel = src.relative_to(ROOT).as_posix()
            here = layer_of(rel)
            for n, line in enumerate(src.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = resolve(m.group(1), src)
                there = layer_of(target) if target else None
                if not here or not there:
                    continue
                edges += 1
                if there[0] > here[0]:
                    problems.append(f"{rel}:{n}: {here[1]} (layer {here[0]}) includes {target}, "
                                    f"{there[1]} (layer {there[0]}): a back-edge")
    # CMake: the sources a directory's targets compile.
    for cm in sorted(ROOT.rglob("CMakeLists.txt")):
        rel_dir = cm.parent.relative_to(ROOT).as_posix() + "/"
        here = layer_of(rel_dir)
        if not here:
            continue
        for n, line in enumerate(cm.read_text().splitlines(), 1):
            for m in re.finditer(r"\$\{PROJECT_SOURCE_DIR\}/([\w./-]+\.(?:cpp|cu|h))", line):
                there = layer_of(m.group(1))
                if there and there[0] > here[0]:
                    problems.append(f"{cm.relative_to(ROOT)}:{n}: {here[1]} compiles {m.group(1)}, "
                                    f"{there[1]}: a back-edge")
    for p in problems:
        print(p)
    print(f"check_layers: {edges} includes between layers checked, {len(problems)} back-edges")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
