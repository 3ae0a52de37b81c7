"""Run every benchmark in this directory (`make bench`)."""
import subprocess
import sys
from pathlib import Path

here = Path(__file__).parent
status = 0
for bench in sorted(here.glob("bench_*.py")):
    print(f"== {bench.name}", flush=True)
    status |= subprocess.call([sys.executable, str(bench)])
sys.exit(status)
