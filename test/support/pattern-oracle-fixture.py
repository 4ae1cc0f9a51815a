# Python's own re as the oracle for src/pattern.ts: reads [[pattern, [values...]], ...] as JSON on stdin and
# writes, per pattern, {"ok": true, "match": [...], "full": [...]} (re.match / re.fullmatch found a match)
# or {"ok": false, "error": str(exception)}; the first line of output is the Python version.
import json
import re
import sys
import warnings

warnings.simplefilter("ignore")
queries = json.load(sys.stdin)
results = []
for pattern, values in queries:
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, ValueError, RecursionError) as err:
        results.append({"ok": False, "error": str(err)})
        continue
    results.append({
        "ok": True,
        "match": [compiled.match(v) is not None for v in values],
        "full": [compiled.fullmatch(v) is not None for v in values],
    })
print(sys.version.split()[0])
json.dump(results, sys.stdout)
