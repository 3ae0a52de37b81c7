"""Benchmark: the merge engine against `git merge-file` in the same run.

Two inputs, each with 1% of lines edited on each side at scattered, disjoint
places (so every tool should merge cleanly):

* a 100,000-line passwd-like file (plus accounts appended by both sides):
  `text` and `records` strategies vs `git merge-file`;
* a 50,000-line config with many repeated lines (the same keys in every
  section): `text` vs `git merge-file`.

Times are the best of --repeat runs, as CPU time (ours: this process; git: its
child's user+system time from getrusage) — on a shared, busy machine wall time
mostly measures the neighbours — and wall time beside it. git's include starting
the process and reading/writing the files; ours include splitting the bytes and
joining the result. Prints the ratios (ours / git), computed from CPU times.
Aim: text within 3x of git; records faster than text.

    python benchmarks/bench_merge.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from overmerge.merge import merge_bytes  # noqa: E402
from overmerge.rules import load_rules  # noqa: E402


def scattered(n: int, count: int, rnd: random.Random, taken: set[int]) -> list[int]:
    """`count` indexes, none within 2 lines of one already taken (keeps edits disjoint)."""
    out: list[int] = []
    while len(out) < count:
        i = rnd.randrange(n)
        if all(j not in taken for j in range(i - 2, i + 3)):
            taken.add(i)
            out.append(i)
    return out


def passwd_like(n: int, seed: int = 1) -> tuple[bytes, bytes, bytes]:
    rnd = random.Random(seed)
    old = [f"user{i}:x:{10000 + i}:{10000 + i}:User {i},,,:/home/user{i}:/bin/bash\n" for i in range(n)]
    yours, new, taken = list(old), list(old), set()
    for i in scattered(n, n // 100, rnd, taken):
        yours[i] = yours[i].replace("/bin/bash", "/bin/zsh")
    for i in scattered(n, n // 100, rnd, taken):
        new[i] = new[i].replace(",,,", ",Room 1,,")
    yours += [f"mine{i}:x:{200000 + i}:{200000 + i}::/home/mine{i}:/bin/sh\n" for i in range(50)]
    new_added = [f"_sys{i}:x:{900 + i}:65534::/nonexistent:/usr/sbin/nologin\n" for i in range(50)]
    new = new_added + new  # vendor accounts at the top, yours at the bottom: no overlap
    return tuple("".join(v).encode() for v in (old, yours, new))  # type: ignore[return-value]


def repeated_config(n: int, seed: int = 2) -> tuple[bytes, bytes, bytes]:
    rnd = random.Random(seed)
    old: list[str] = []
    while len(old) < n:
        s = len(old) // 5
        old += [f"[service{s}]\n", "enabled = yes\n", "restart = on-failure\n", "timeout = 30\n", "\n"]
    old = old[:n]
    yours, new, taken = list(old), list(old), set()
    for i in scattered(n, n // 100, rnd, taken):
        yours[i] = yours[i].replace("yes", "no").replace("30", "60").rstrip("\n") + " # mine\n"
    for i in scattered(n, n // 100, rnd, taken):
        new[i] = new[i].replace("on-failure", "always").rstrip("\n") + " # vendor\n"
    return tuple("".join(v).encode() for v in (old, yours, new))  # type: ignore[return-value]


def _cpu() -> float:
    """CPU seconds used by this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best CPU time, best wall time) over `repeat` runs."""
    cpu, wall = [], []
    for _ in range(repeat):
        c, t = _cpu(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(_cpu() - c)
    return min(cpu), min(wall)


def show(label: str, t: tuple[float, float], ratios: str = "") -> None:
    print(f"  {label:<15} cpu {t[0] * 1000:7.1f} ms  wall {t[1] * 1000:7.1f} ms   {ratios}")


def git_merge_file(tmp: Path, old: bytes, yours: bytes, new: bytes) -> Callable[[], bytes]:
    paths = [tmp / "yours", tmp / "old", tmp / "new"]

    def run() -> bytes:
        for p, data in zip(paths, (yours, old, new)):
            p.write_bytes(data)
        proc = subprocess.run(["git", "merge-file", "-p", *map(str, paths)], capture_output=True)
        if proc.returncode != 0:
            raise SystemExit(f"git merge-file reported {proc.returncode} conflicts")
        return proc.stdout

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("git") is None:
        print("git not installed", file=sys.stderr)
        return 2
    rules = {r.name: r for r in load_rules(host_dir=None).rules}
    # The 100,000-line file is ~6 MB, over the default 4 MiB line-merge limit.
    big = {"max_size": 64 << 20}
    passwd_opts = {**rules["passwd"].options, **big}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        print("passwd-like file, 100,000 lines, 1% edits per side + 50 accounts added by each")
        old, yours, new = passwd_like(100_000)
        git = git_merge_file(tmp, old, yours, new)
        expected = git()
        text_result = merge_bytes("text", old, yours, new, big)
        records_result = merge_bytes("records", old, yours, new, passwd_opts)
        assert text_result.clean and text_result.merged == expected, "text differs from git merge-file"
        assert records_result.clean, records_result.hunks[:1]
        t_git = best(git, args.repeat)
        t_text = best(lambda: merge_bytes("text", old, yours, new, big), args.repeat)
        t_rec = best(lambda: merge_bytes("records", old, yours, new, passwd_opts), args.repeat)
        show("git merge-file", t_git)
        show("text", t_text, f"text/git {t_text[0] / t_git[0]:5.2f}x")
        show("records", t_rec, f"records/git {t_rec[0] / t_git[0]:5.2f}x  records/text {t_rec[0] / t_text[0]:5.2f}x")

        print("config with repeated lines, 50,000 lines, 1% edits per side")
        old, yours, new = repeated_config(50_000)
        git = git_merge_file(tmp, old, yours, new)
        expected = git()
        text_result = merge_bytes("text", old, yours, new, big)
        assert text_result.clean and text_result.merged == expected, "text differs from git merge-file"
        t_git = best(git, args.repeat)
        t_text = best(lambda: merge_bytes("text", old, yours, new, big), args.repeat)
        show("git merge-file", t_git)
        show("text", t_text, f"text/git {t_text[0] / t_git[0]:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
