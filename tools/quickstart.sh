#!/usr/bin/env bash
# The main job: install what is missing, build, and train the `tiny` preset on the fortunes
# corpus (a few minutes on 2 cores), with a progress line, validation losses and a sample at the
# end. The run goes to runs/quickstart (started over each time). Extra arguments go to
# `scalevec train`, e.g.  tools/quickstart.sh --scale none
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
BUILD_TARGETS=scalevec tools/build.sh
echo "[train] build/tools/scalevec train --preset tiny --out runs/quickstart --force $*"
exec build/tools/scalevec train --preset tiny --out runs/quickstart --force "$@"
