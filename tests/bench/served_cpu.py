#!/usr/bin/python3
# served_cpu.py - CPU time per signature through `p11-kit server`, per
# process kind: the clients (PyKCS11 + p11-kit-client.so), the server's
# per-connection processes (`p11-kit remote` with the provider: SoftHSM2
# alone, or Strata over the same SoftHSM2 token) and the server itself.
#
# When the processors are saturated, throughput is the inverse of the CPU
# spent per signature, so the ratio of these sums is what served.py's
# signs/s ratio tends to at many clients; unlike signs/s, CPU time does
# not depend on what else the machine runs (but for cache and frequency
# effects), so it can be read on a shared machine.
#
# Each client (served_client.py with "gate") logs in, finds its key and
# says "ready"; once every client is ready, the CPU time of every
# process is read (/proc/PID/task/*/schedstat: nanoseconds on a
# processor, summed over the threads), the clients are released, each
# signs --signs times (C_SignInit + C_Sign for the size + C_Sign) and
# says "done", and the CPU time is read again. Only the signatures fall
# between the two readings: logins, searches, start-up and C_Finalize do
# not. Rounds alternate the targets (order swapped each round); the
# median per target is reported, and Strata's CPU per signature over
# SoftHSM2's. Clients that fail (the served SoftHSM2 loses some logins
# to its own race at several clients) are left out; the count signed
# is what the figures divide by.
#
#   tests/bench/served_cpu.py [--build DIR] [--clients "1 8"] [--signs 500]
#       [--rounds 3] [--keep]
#   tests/bench/served_cpu.py --callgrind [--build DIR] [--signs 300]
#       instructions instead of time, which no load changes: the server runs
#       under valgrind --tool=callgrind (one client); the per-connection
#       process's counters are zeroed at "ready" and dumped at "done"
#       (callgrind_control), so the dump holds the signatures alone. Then
#       the same in one process, without p11-kit server: tests/bench/bench
#       under callgrind with --signs and twice --signs signatures, the
#       difference divided by --signs. Prints instructions per signature of
#       each target, Strata's extra, and the functions that make it up
#       (callgrind_annotate, the two targets' dumps side by side).
#
# A benchmark, not a test: run by hand (README.md). The world is served.py's.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside served.py
import served  # noqa: E402  (the world, the server and the client's paths)

KINDS = ("client", "remote", "server")


def cpu_ns(pid):
    """Nanoseconds pid's live threads have run (0 when it is gone)."""
    total = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def snapshot(server_pid, clients):
    """CPU nanoseconds per kind of process, now."""
    return {"client": sum(cpu_ns(p.pid) for p in clients),
            "remote": sum(cpu_ns(p) for p in served.children_of(server_pid)),
            "server": cpu_ns(server_pid)}


def finish(server, procs):
    """Lets every client end (logout, close, C_Finalize) and stops the server."""
    for p in procs:
        if p.poll() is None:
            p.stdin.write("\n")
            p.stdin.close()
        p.wait()
    server.send_signal(signal.SIGTERM)
    server.wait()


def cpu_round(world, env, target, n, signs):
    """One target at n clients: CPU µs per signature per kind, the
    signatures counted and the wall seconds of the signing window."""
    name, _, token, pin, _ = target
    server, ce = served.serve(world, env, target, n)
    out = "%s/run/cpu-%s-%d" % (world, name.replace("/", "-"), n)
    procs = [subprocess.Popen([served.PY, os.path.join(served.ROOT, "tests/bench/served_client.py"),
                               served.CLIENT, token, pin, "work-ec", str(signs),
                               "%.3f" % time.time(), "%s-%d.json" % (out, i), "gate"],
                              env=ce, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=open("%s-%d.err" % (out, i), "w"), text=True)
             for i in range(n)]
    ready = served.said(procs, "ready")
    before = snapshot(server.pid, ready)
    t0 = time.monotonic()
    served.go(ready)
    done = served.said(ready, "done")
    wall = time.monotonic() - t0
    after = snapshot(server.pid, ready)
    finish(server, procs)
    count = len(done) * signs
    row = {"target": name, "clients": n, "signers": len(done), "wall_s": wall}
    for k in KINDS:
        row[k] = (after[k] - before[k]) / 1e3 / count if count else float("nan")
    row["total"] = sum(row[k] for k in KINDS)
    return row


def callgrind_total(path):
    """The instruction count of one callgrind dump."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return 0


def served_instructions(world, env, target, signs, out):
    """Instructions per signature the per-connection process spends on
    signs signatures of one client, and its callgrind dumps (out.PID.1)."""
    name, module, token, pin, conf = target
    e = dict(env)
    if conf:
        e["STRATA_CONF"] = conf
    sock = "%s/run/cg-%s.sock" % (world, name.replace("/", "-"))
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--trace-children=yes",
                               "--callgrind-out-file=%s.%%p" % out, "p11-kit", "server", "-f",
                               "-n", sock, "--provider", module, "pkcs11:token=" + token],
                              env=e, stdout=subprocess.DEVNULL, stderr=open(out + ".err", "w"))
    for _ in range(600):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    ce = dict(e, P11_KIT_SERVER_ADDRESS="unix:path=" + sock)
    client = subprocess.Popen([served.PY, os.path.join(served.ROOT, "tests/bench/served_client.py"),
                               served.CLIENT, token, pin, "work-ec", str(signs), "0",
                               out + ".json", "gate"], env=ce, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    total, dumps = None, []
    if client.stdout.readline().strip() == "ready":
        kids = [str(k) for k in served.children_of(server.pid)]
        subprocess.run(["callgrind_control", "-z"] + kids, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        served.go([client])
        if served.said([client], "done"):
            subprocess.run(["callgrind_control", "-d", "signatures"] + kids,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            dumps = ["%s.%s.1" % (out, k) for k in kids if os.path.exists("%s.%s.1" % (out, k))]
            total = sum(callgrind_total(d) for d in dumps) / signs if dumps else None
    finish(server, [client])
    return total, dumps


def inprocess_instructions(build, env, target, signs, out):
    """Instructions per signature of tests/bench/bench calling target's
    module in its own thread (C_SignInit + C_Sign): the difference between
    runs of 2*signs and signs signatures, over signs."""
    name, module, token, pin, conf = target
    e = dict(env)
    if conf:
        e["STRATA_CONF"] = conf
    totals = []
    for n in (signs, 2 * signs):
        dump = "%s-%d" % (out, n)
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + dump,
                        os.path.join(build, "tests", "bench", "bench"), "--module", module,
                        "--token", token, "--pin", pin, "--workload", "sign-ec",
                        "--key-label", "work-ec", "--iterations", str(n), "--warmup", "10"],
                       env=e, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        totals.append(callgrind_total(dump))
    return (totals[1] - totals[0]) / signs


def functions(path, inclusive=False):
    """Instructions per function of one callgrind dump (self, or inclusive)."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100",
                           "--inclusive=" + ("yes" if inclusive else "no"), path],
                          capture_output=True, text=True).stdout
    cost = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(?:\*\s+)?(.*)$", line)
        if m and m.group(2) != "PROGRAM TOTALS":
            cost[m.group(2)] = cost.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return cost


def own_path(path):
    """Instructions of Strata's own path in one dump: its entry points
    (inclusive) less the backend's C_* functions they reach (inclusive), so
    Strata's code, its locks and p11-kit's managed wrapper of the backend."""
    total = 0
    for name, cost in functions(path, inclusive=True).items():
        if re.search(r":C_\w+_entry \[.*strata-pkcs11\.so\]$", name):
            total += cost
        elif re.search(r"\?\?\?:C_\w+ \[.*libsofthsm2\.so\]$", name):
            total -= cost
    return total


def callgrind(args, world, env, softhsm, strata):
    """--callgrind: instructions per signature, served and in one process."""
    cg = os.path.join(world, "callgrind")
    os.mkdir(cg)
    per, dumps = {}, {}
    for t in (softhsm, strata):
        tag = t[0].replace("/", "-")
        served_total, dumps[t[0]] = served_instructions(world, env, t, args.signs,
                                                        "%s/served-%s" % (cg, tag))
        per[t[0]] = (served_total,
                     inprocess_instructions(args.build, env, t, args.signs,
                                            "%s/bench-%s" % (cg, tag)))
    for i, where in enumerate(("served (p11-kit remote)", "in one process (bench)")):
        a, b = per[strata[0]][i], per[softhsm[0]][i]
        if a is None or b is None:
            print("%s: no count (a client failed)" % where)
            continue
        print("%s: instructions per signature: softhsm2 %.0f, strata %.0f, strata's extra %.0f "
              "(%.2f%%)" % (where, b, a, a - b, 100.0 * (a - b) / b), flush=True)
    tag = strata[0].replace("/", "-")
    small, large = ("%s/bench-%s-%d" % (cg, tag, n) for n in (args.signs, 2 * args.signs))
    print("in one process (bench): Strata's own path (its entry points less the backend's "
          "calls): %.0f instructions per signature" %
          ((own_path(large) - own_path(small)) / args.signs))
    if not dumps[strata[0]] or not dumps[softhsm[0]]:
        return
    print("served: Strata's own path: %.0f instructions per signature" %
          (sum(own_path(d) for d in dumps[strata[0]]) / args.signs))
    diff = {}
    for name, sign in ((strata[0], 1), (softhsm[0], -1)):
        for d in dumps[name]:
            total = callgrind_total(d)
            for fn, cost in functions(d).items():
                if cost < total:  # not one of the frames every instruction ran under
                    diff[fn] = diff.get(fn, 0) + sign * cost / args.signs
    print("served: functions by the difference of their own instructions per signature "
          "(strata - softhsm2; a function's address differs between the two processes when "
          "its library has no symbols, which shows as a pair of opposite lines):")
    for fn in sorted(diff, key=lambda k: -abs(diff[k]))[:25]:
        print("  %8.0f  %s" % (diff[fn], fn[:120]))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default=os.path.join(served.ROOT, "build"))
    ap.add_argument("--clients", default="1 8")
    ap.add_argument("--signs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--callgrind", action="store_true",
                    help="instructions per signature under valgrind, served and in one process")
    args = ap.parse_args()
    # absolute: p11-kit reads a relative --provider path as relative to its
    # own module folder
    args.build = os.path.abspath(args.build)
    module = os.path.join(args.build, "engine", "strata-pkcs11.so")
    world, env = served.make_world(args.build, args.keep)
    softhsm = ("softhsm2", served.SOFTHSM, "personal", served.TOKEN_PIN, None)
    strata = ("strata/min", module, "Strata", served.VIEW_PIN, "%s/strata-min.xml" % world)
    try:
        if args.callgrind:
            callgrind(args, world, env, softhsm, strata)
            return 0
        for n in [int(c) for c in args.clients.split()]:
            rows = {softhsm[0]: [], strata[0]: []}
            for r in range(args.rounds):
                for t in (softhsm, strata) if r % 2 == 0 else (strata, softhsm):
                    row = cpu_round(world, env, t, n, args.signs)
                    rows[t[0]].append(row)
                    print("clients %d round %d %-10s signers %d: CPU µs per signature "
                          "client %.1f remote %.1f server %.1f total %.1f (window %.2f s)" %
                          (n, r, t[0], row["signers"], row["client"], row["remote"],
                           row["server"], row["total"], row["wall_s"]), flush=True)
            med = {name: {k: statistics.median(x[k] for x in rs if x["signers"])
                          for k in KINDS + ("total",)}
                   for name, rs in rows.items() if any(x["signers"] for x in rs)}
            for name, m in med.items():
                print("clients %d %-10s median CPU µs per signature: client %.1f remote %.1f "
                      "server %.1f total %.1f" % (n, name, m["client"], m["remote"],
                                                   m["server"], m["total"]), flush=True)
            if len(med) == 2:
                a, b = med[strata[0]], med[softhsm[0]]
                print("clients %d strata/softhsm2 CPU per signature: remote %.3f total %.3f "
                      "(saturated throughput ratio about %.3f)" %
                      (n, a["remote"] / b["remote"], a["total"] / b["total"],
                       b["total"] / a["total"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(world, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
