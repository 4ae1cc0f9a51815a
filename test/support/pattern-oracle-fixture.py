# Python's own re as the oracle for src/pattern.ts: reads [[pattern, [values...]], ...] as JSON on stdin and
# writes, per pattern, {"ok": true, "match": [...], "full": [...]} (re.match / re.fullmatch found a match),
# {"ok": false, "error": str(exception)}, or {"timeout": true} when Python's backtracking took over a second
# (random nested repetitions can make it exponential); the first line of output is the Python version.
import json
import re
import signal
import sys
import warnings


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout()


warnings.simplefilter("ignore")
signal.signal(signal.SIGALRM, on_alarm)
queries = json.load(sys.stdin)
results = []
for pattern, values in queries:
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, ValueError, RecursionError) as err:
        results.append({"ok": False, "error": str(err)})
        continue
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        results.append({
            "ok": True,
            "match": [compiled.match(v) is not None for v in values],
            "full": [compiled.fullmatch(v) is not None for v in values],
        })
    except Timeout:
        results.append({"timeout": True})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
print(sys.version.split()[0])
json.dump(results, sys.stdout)
