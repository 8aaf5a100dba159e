#!/usr/bin/python3
# served.py - load on a served token: N client processes at once through
# `p11-kit server` + p11-kit-client.so, each logging in and signing
# (served_client.py), against Strata (one view over one SoftHSM2 token, at
# several Argon2id settings) and against that SoftHSM2 token served the
# same way. Reports per row: failures, logins/s, login p50/p99, signs/s,
# sign p50/p99, the server's memory per connection (median resident set
# of the per-client processes while all are logged in) and its peak
# (resident sets of the server and all its per-client processes, summed,
# sampled every 20 ms). A benchmark, not a test: run by hand, see
# README.md. Everything lives in a temporary world (own SOFTHSM2_CONF,
# HOME, XDG_*, STRATA_CONF); the machine's tokens are never touched.
#
#   tests/bench/served.py [--build DIR] [--clients "1 8 32 128"]
#       [--signs 20] [--md FILE] [--keep]
#   tests/bench/served.py --pairs 6 [--clients "1 8"] [--signs 400]
#       signing only: rounds that serve SoftHSM2 and Strata (one view at the
#       minimum Argon2id) one after the other, the order swapped each
#       round, so that both see the same machine; reports each round's
#       ratio Strata/SoftHSM2 of signs/s and the median per client count.
#       The clients log in one after the other (150 ms apart: SoftHSM2
#       served directly loses logins made at once), then sign together
#       once every one of them is ready (served_client.py's gate), so that
#       no login's work falls among the signatures (with logins at once,
#       staggered by the Argon2id turns, 8 clients of 100 signatures each
#       never all signed at the same time)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
CLIENT = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"
PY = "/usr/bin/python3"
TOKEN_PIN = "personal-pin-71"
VIEW_PIN = "work-view-pin"
# Argon2id settings (ops, mem bytes): libsodium's minimum, 32 MiB, and the
# default (libsodium's "interactive" limits, used without <kdf>).
KDFS = [("min", 1, 8192), ("32MiB", 2, 32 << 20), ("default", 2, 64 << 20)]
# --pairs: seconds between two clients' logins
LOGIN_GAP = 0.15


def sh(cmd, env, stdin=None):
    subprocess.run(cmd, env=env, input=stdin, check=True, text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_world(build, keep):
    """The temporary world: one SoftHSM2 token with an EC key, one policy
    and catalog per Argon2id setting, each view enrolled."""
    world = tempfile.mkdtemp(prefix="strata-served.")
    for d in ("tokens", "home", "config", "data", "run"):
        os.mkdir(os.path.join(world, d))
    os.chmod(os.path.join(world, "run"), 0o700)
    env = dict(os.environ)
    env.update(HOME=world + "/home", XDG_CONFIG_HOME=world + "/config",
               XDG_DATA_HOME=world + "/data", XDG_RUNTIME_DIR=world + "/run",
               SOFTHSM2_CONF=world + "/softhsm2.conf")
    for k in ("STRATA_LOG", "STRATA_LOG_FILE", "P11_KIT_SERVER_ADDRESS"):
        env.pop(k, None)
    with open(env["SOFTHSM2_CONF"], "w") as f:
        f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % world)
    sh(["softhsm2-util", "--init-token", "--free", "--label", "personal",
        "--so-pin", "so-pin-70", "--pin", TOKEN_PIN], env)
    sh(["pkcs11-tool", "--module", SOFTHSM, "--token-label", "personal", "--login",
        "--pin", TOKEN_PIN, "--keypairgen", "--key-type", "EC:prime256v1",
        "--label", "work-ec", "--id", "11"], env)
    cli = os.path.join(build, "cli", "strata")
    for name, ops, mem in KDFS:
        conf = "%s/strata-%s.xml" % (world, name)
        with open(conf, "w") as f:
            f.write('<strata version="1">\n'
                    '  <catalog path="catalog-%s.db"/>\n'
                    '  <module id="soft" path="%s"/>\n'
                    '  <layer id="personal" module="soft" token="personal"/>\n'
                    '  <token label="Strata">\n'
                    '    <kdf ops="%d" mem="%d"/>\n'
                    '    <view id="work" layers="personal"/>\n'
                    '  </token>\n'
                    '</strata>\n' % (name, SOFTHSM, ops, mem))
        e = dict(env, STRATA_CONF=conf)
        sh([cli, "init"], e)
        sh([cli, "enroll", "--token", "Strata", "--view", "work", "--pin-stdin"], e,
           stdin="%s\n%s\n" % (VIEW_PIN, TOKEN_PIN))
    if keep:
        print("world kept in", world)
    return world, env


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples the server's and its children's resident sets every 20 ms."""

    def __init__(self, server_pid):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.stop = threading.Event()
        self.peak_kib = 0
        self.widest = []  # the children's RSS at the sample with the most children

    def run(self):
        while not self.stop.is_set():
            kids = [rss_kib(p) for p in children_of(self.server_pid)]
            kids = [k for k in kids if k > 0]
            total = rss_kib(self.server_pid) + sum(kids)
            self.peak_kib = max(self.peak_kib, total)
            if len(kids) >= len(self.widest):
                self.widest = kids
            time.sleep(0.02)


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def union(spans):
    """Total length of the union of [t0, t1] spans."""
    total, end = 0.0, None
    for t0, t1 in sorted(spans):
        if end is None or t0 > end:
            total += t1 - t0
            end = t1
        elif t1 > end:
            total += t1 - end
            end = t1
    return total


def serve(world, env, target, n):
    """Starts `p11-kit server` for target's module (a socket per target
    and client count) and waits for its socket. Returns the server and
    the clients' environment."""
    name, module, token, _, conf = target
    tag = name.replace("/", "-")
    sock = "%s/run/%s-%d.sock" % (world, tag, n)
    e = dict(env)
    if conf:
        e["STRATA_CONF"] = conf
    server = subprocess.Popen(["p11-kit", "server", "-f", "-n", sock, "--provider", module,
                               "pkcs11:token=" + token], env=e,
                              stdout=subprocess.DEVNULL, stderr=open(sock + ".err", "w"))
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.025)
    return server, dict(e, P11_KIT_SERVER_ADDRESS="unix:path=" + sock)


def said(procs, word):
    """The gated clients (served_client.py's "gate") that say word next."""
    return [p for p in procs if p.stdout.readline().strip() == word]


def go(procs):
    """Lets gated clients go on past their gate."""
    for p in procs:
        try:
            p.stdin.write("\n")
            p.stdin.flush()
        except OSError:
            pass


def release_all(procs, word):
    """Waits until every gated client has said word (or ended), then lets
    them all go on at once."""
    go(said(procs, word))


def one_row(world, env, target, n, signs, gated=False):
    """Serves target's module, runs n clients at once, returns the row.
    gated: the clients sign only once every client has logged in and found
    its key, all released at once, so no login runs among the signatures
    and the signing window is the same for every client."""
    name, _, token, pin, _ = target
    tag = name.replace("/", "-")
    server, ce = serve(world, env, target, n)
    sampler = Sampler(server.pid)
    sampler.start()
    start = time.time() + 2.0 + 0.08 * n  # every client loaded and waiting
    outs = ["%s/run/out-%s-%d-%d.json" % (world, tag, n, i) for i in range(n)]
    pipe = subprocess.PIPE if gated else subprocess.DEVNULL
    # gated, the logins are not what is measured: one every LOGIN_GAP
    # seconds, so that the served SoftHSM2's login race (docs/hosting.md)
    # leaves both targets the same number of signers
    gap = LOGIN_GAP if gated else 0.0
    procs = [subprocess.Popen([PY, os.path.join(ROOT, "tests/bench/served_client.py"), CLIENT,
                               token, pin, "work-ec", str(signs), "%.3f" % (start + i * gap),
                               out] + (["gate"] if gated else []),
                              env=ce, stdin=pipe, stdout=pipe, stderr=open(out + ".err", "w"),
                              text=True)
             for i, out in enumerate(outs)]
    if gated:
        release_all(procs, "ready")
        release_all(procs, "done")
    for p in procs:
        p.wait()
    sampler.stop.set()
    sampler.join()
    server.send_signal(signal.SIGTERM)
    server.wait()
    results = []
    for out in outs:
        try:
            with open(out) as f:
                results.append(json.load(f))
        except (OSError, ValueError):
            results.append({"ok": False, "error": "no result"})
    good = [r for r in results if r["ok"]]
    errors = sorted({r["error"] for r in results if not r["ok"]})
    logins = [r["login"] for r in good]
    sign_spans = [s for r in good for s in r["signs"]]
    row = {"target": name, "clients": n, "failures": n - len(good), "errors": errors}
    if logins:
        wall = max(t1 for _, t1 in logins) - min(t0 for t0, _ in logins)
        lat = [(t1 - t0) * 1e3 for t0, t1 in logins]
        row.update(logins_s=len(logins) / wall if wall > 0 else float("nan"),
                   login_p50_ms=pct(lat, 0.5), login_p99_ms=pct(lat, 0.99))
    if sign_spans:
        # time during which some client was signing (the union of each
        # client's first-to-last signature), so login waits do not count
        wall = union([(r["signs"][0][0], r["signs"][-1][1]) for r in good if r["signs"]])
        lat = [(t1 - t0) * 1e6 for t0, t1 in sign_spans]
        row.update(signs_s=len(sign_spans) / wall, sign_p50_us=pct(lat, 0.5),
                   sign_p99_us=pct(lat, 0.99))
    row.update(conn_mib=statistics.median(sampler.widest) / 1024 if sampler.widest else 0,
               peak_mib=sampler.peak_kib / 1024)
    return row


def fmt(row, key, spec):
    value = row.get(key)
    return "-" if value is None else format(value, spec)


def table(rows):
    lines = ["| target | clients | failures | logins/s | login p50 / p99 ms | signs/s | "
             "sign p50 / p99 µs | memory per connection | peak RSS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %d | %d | %s | %s / %s | %s | %s / %s | %s MiB | %s MiB |" % (
            r["target"], r["clients"], r["failures"], fmt(r, "logins_s", ".1f"),
            fmt(r, "login_p50_ms", ".0f"), fmt(r, "login_p99_ms", ".0f"),
            fmt(r, "signs_s", ".0f"), fmt(r, "sign_p50_us", ".0f"),
            fmt(r, "sign_p99_us", ".0f"), fmt(r, "conn_mib", ".1f"), fmt(r, "peak_mib", ".0f")))
    return "\n".join(lines)


def paired(world, env, plan, counts, rounds, signs):
    """Rounds of SoftHSM2 and Strata/min served one after the other (the
    order swapped every round); prints each round's signs/s ratio and the
    median ratio per client count. Failures of the served SoftHSM2 (its
    own race) leave fewer signers in its row, noted beside the ratio."""
    softhsm = plan[0][0]
    strata = [t for t, _ in plan if t[0] == "strata/min"][0]
    for n in counts:
        ratios = []
        for r in range(rounds):
            order = (softhsm, strata) if r % 2 == 0 else (strata, softhsm)
            got = {t[0]: one_row(world, env, t, n, signs, gated=True) for t in order}
            base, ours = got["softhsm2"], got["strata/min"]
            if "signs_s" not in base or "signs_s" not in ours:
                print("clients %d round %d: no signatures (%s / %s)" %
                      (n, r, base["errors"], ours["errors"]), flush=True)
                continue
            ratio = ours["signs_s"] / base["signs_s"]
            ratios.append(ratio)
            print("clients %d round %d: softhsm2 %.0f signs/s (%d failed), strata %.0f "
                  "signs/s (%d failed), ratio %.3f" %
                  (n, r, base["signs_s"], base["failures"], ours["signs_s"],
                   ours["failures"], ratio), flush=True)
        if ratios:
            print("clients %d: median ratio %.3f over %d rounds (min %.3f, max %.3f)" %
                  (n, statistics.median(ratios), len(ratios), min(ratios), max(ratios)),
                  flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--clients", default="1 8 32 128")
    ap.add_argument("--signs", type=int, default=None,
                    help="signatures per client (default 100; 400 with --pairs)")
    ap.add_argument("--kdf-clients", default="1 32",
                    help="client counts for the non-default Argon2id settings")
    ap.add_argument("--md", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pairs", type=int, default=0,
                    help="interleaved signing rounds SoftHSM2 / Strata instead of the table")
    args = ap.parse_args()
    if args.signs is None:
        args.signs = 400 if args.pairs else 100
    # absolute: p11-kit reads a relative --provider path as relative to its
    # own module folder
    args.build = os.path.abspath(args.build)
    module = os.path.join(args.build, "engine", "strata-pkcs11.so")
    world, env = make_world(args.build, args.keep)
    counts = [int(c) for c in args.clients.split()]
    kdf_counts = [int(c) for c in args.kdf_clients.split()]
    plan = [(("softhsm2", SOFTHSM, "personal", TOKEN_PIN, None), counts)]
    for name, _, _ in KDFS:
        target = ("strata/" + name, module, "Strata", VIEW_PIN,
                  "%s/strata-%s.xml" % (world, name))
        plan.append((target, counts if name == "default" else kdf_counts))
    if args.pairs:
        try:
            return paired(world, env, plan, counts, args.pairs, args.signs)
        finally:
            if not args.keep:
                shutil.rmtree(world, ignore_errors=True)
    rows = []
    try:
        for target, ns in plan:
            for n in ns:
                row = one_row(world, env, target, n, args.signs)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(world, ignore_errors=True)
    md = table(rows)
    print(md)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md + "\n")
    return 0 if all(r["failures"] == 0 for r in rows if r["target"].startswith("strata")) else 1


if __name__ == "__main__":
    sys.exit(main())
