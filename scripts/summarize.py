#!/usr/bin/env python3
"""Sums up every test a run executed: one line 'N passed, N failed'.

Reads meson's testlog.json files. A test that speaks TAP (criterion with
--tap, our shell tests) counts each of its 'ok' / 'not ok' lines; a test
that crashed or timed out after its last TAP line counts one failure more;
any other test counts once. Extra results come as NAME=pass|fail arguments.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b", re.M)


def count_log(path):
    passed = failed = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            out = entry.get("stdout") or ""
            marks = TAP.findall(out)
            ok = entry.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            if marks:
                p = sum(1 for m in marks if m == "ok")
                f_ = len(marks) - p
                passed += p
                failed += f_
                if not ok and f_ == 0:
                    failed += 1
                    print(f"  FAIL {entry.get('name')}: {entry.get('result')} after its TAP lines")
            elif ok:
                passed += 1
            else:
                failed += 1
                print(f"  FAIL {entry.get('name')}: {entry.get('result')}")
    return passed, failed


def main(argv):
    passed = failed = 0
    for arg in argv:
        if "=" in arg and not arg.endswith(".json"):
            name, verdict = arg.split("=", 1)
            if verdict == "pass":
                passed += 1
            else:
                failed += 1
                print(f"  FAIL {name}")
            continue
        try:
            p, f_ = count_log(arg)
        except OSError as e:
            print(f"  FAIL {arg}: {e}")
            p, f_ = 0, 1
        passed += p
        failed += f_
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
