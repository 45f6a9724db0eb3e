"""tools/cmp_summary.py on a hand-written log: families, maxima, the worst comparison, info lines
skipped, and a clean error for a missing file."""
import io
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import cmp_summary  # noqa: E402

LOG = """\
[ RUN      ] whatever
[cmp] linear 37x33->260 out                    n=9620     max abs 1.00e-06  max rel 2.00e-07    1.00% of threshold (rtol 2e-05)
[cmp] linear 131x260->1025 dW                  n=266500   max abs 3.00e-05  max rel 1.00e-06    5.20% of threshold (rtol 2e-05)
[cmp] linear bf16 37x33->260 vs fp32 out       n=9620     max abs 7.00e-03  max rel 8.70e-03   27.90% of threshold (rtol 3e-02)
[cmp] baseline adamw step 1                    rms of all gradients 1.234e-02
[cmp] baseline adamw step 10 dhead             n=24576    max abs 2.00e-07  norm rel 3.00e-05    0.40% of threshold (tol 2e-03)
[cmp] unified+post adamw step 10 dlayers.0.b   n=1        max abs 1.70e-06  norm rel 5.20e-03  258.60% of threshold (tol 2e-03)
[cmp] dp+qk+post muon 5 steps                  repeat runs bit-identical: yes
"""


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = cmp_summary.main(argv)
    return rc, out.getvalue(), err.getvalue()


class CmpSummary(unittest.TestCase):
    def test_families_and_maxima(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write(LOG)
        try:
            rc, out, _ = run([f.name])
        finally:
            os.unlink(f.name)
        self.assertEqual(rc, 0)
        rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in out.splitlines()[2:]}
        self.assertEqual(set(rows), {"linear (fp32)", "linear, bf16 vs fp32",
                                     "model (fp32): gradients after 10 steps"})
        fp32 = rows["linear (fp32)"]
        self.assertEqual(fp32[1:5], ["2", "3.0e-05", "1.0e-06", "5.2%"])
        self.assertEqual(fp32[5].rstrip(" |"), "linear 131x260->1025 dW")
        step10 = rows["model (fp32): gradients after 10 steps"]
        self.assertEqual(step10[4], "258.6%")  # a failure shows as a share above 100%
        self.assertEqual(step10[5].rstrip(" |"), "unified+post adamw step 10 dlayers.0.b")

    def test_missing_file_is_an_error(self):
        rc, _, err = run(["/nonexistent/log"])
        self.assertEqual(rc, 2)
        self.assertIn("error", err)


if __name__ == "__main__":
    unittest.main()
