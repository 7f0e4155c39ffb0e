"""Compares student-from-scratch, vanilla KD, TAKD, Annealing-KD and Continuation-KD on one suite.

With no flags: the embedded digits suite (real data shipped with scikit-learn, no download), 10 seeds, students
of 2 / 4 / 8 / 16 hidden units and a noisy teacher, paired 95% intervals against KD, dead-unit diagnostics;
results in results/digits/. Running the same command again skips finished runs and reuses trained teachers; an
interrupted run is redone. Every run is a YAML config trained by plugins.runner (torchdistill).

Examples:
  python benchmarks/run.py                                # the default digits comparison (<= 10 min, 2 CPU cores)
  python benchmarks/run.py --option ablations=true        # ... plus Annealing-KD's tau_max and Stage-I loss ablations
  python benchmarks/run.py --suite digits_tuning          # how the digits recipe and the margin were chosen
  python benchmarks/run.py --quick                        # smoke run (about 20 s)
  python benchmarks/run.py --suite sinusoid               # the paper's toy example (Figure 2)
  python benchmarks/run.py --methods kd,annealing_kd --seeds 0 1 2
  python benchmarks/run.py --suite cifar10 --device cuda --data-root ~/datasets --option family=cnn
"""
import os
import shlex
import sys

# `python benchmarks/run.py` puts benchmarks/ on sys.path; the packages live at the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:], doc=__doc__, repo_root=REPO_ROOT,
                  command=' '.join(['python benchmarks/run.py'] + [shlex.quote(arg) for arg in sys.argv[1:]])))
