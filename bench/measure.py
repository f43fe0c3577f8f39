"""Run a command; print its wall time and peak resident memory (the largest ru_maxrss among the
processes it waited for) as one JSON line on stderr, then exit with the command's status.
Both sides of a benchmark are measured this way, so the RSS figures compare like with like.

  python bench/measure.py CMD ARGS...
"""
import json, resource, subprocess, sys, time

t0 = time.perf_counter()
rc = subprocess.call(sys.argv[1:])
wall = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"measure": True, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1)}), file=sys.stderr)
sys.exit(rc)
