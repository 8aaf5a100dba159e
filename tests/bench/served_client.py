#!/usr/bin/python3
# served_client.py MODULE TOKEN PIN KEY SIGNS START OUT [gate]
#
# One client of the served benchmark (served.py): loads MODULE
# (p11-kit-client.so, P11_KIT_SERVER_ADDRESS set), finds TOKEN, opens a
# session, waits until the wall clock reaches START (so that every client
# logs in at once), logs in with PIN, finds the private key labelled KEY and
# signs SIGNS SHA-256 digests with ECDSA. Writes one JSON object to OUT:
#   {"ok": true, "login": [t0, t1], "signs": [[t0, t1], ...]}
# (monotonic seconds, comparable across processes on one machine), or
#   {"ok": false, "error": "..."} at the first failure.
# With "gate" (served_cpu.py), it prints "ready" once the key is found and
# waits for a line on stdin before signing, and prints "done" and waits
# for another line after its last signature, so that the caller can read
# every process's CPU time around the signatures alone.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import hashlib
import json
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel as LL


def gate(word):
    print(word, flush=True)
    sys.stdin.readline()


def run(module, token, pin, key, signs, start, gated):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = None
    for s in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(s).label.strip() == token:
            slot = s
    if slot is None:
        return {"ok": False, "error": "no token " + token}
    session = lib.openSession(slot, LL.CKF_SERIAL_SESSION)
    delay = start - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.monotonic()
    session.login(pin)
    t1 = time.monotonic()
    found = session.findObjects([(LL.CKA_CLASS, LL.CKO_PRIVATE_KEY), (LL.CKA_LABEL, key)])
    if len(found) != 1:
        return {"ok": False, "error": "%d keys labelled %s" % (len(found), key)}
    mech = PyKCS11.Mechanism(LL.CKM_ECDSA, None)
    digest = hashlib.sha256(b"served bench").digest()
    spans = []
    if gated:
        gate("ready")
    for _ in range(signs):
        s0 = time.monotonic()
        session.sign(found[0], digest, mech)
        spans.append([s0, time.monotonic()])
    if gated:
        gate("done")
    session.logout()
    session.closeSession()
    return {"ok": True, "login": [t0, t1], "signs": spans}


def main():
    module, token, pin, key, signs, start, out = sys.argv[1:8]
    gated = sys.argv[8:9] == ["gate"]
    try:
        result = run(module, token, pin, key, int(signs), float(start), gated)
    except PyKCS11.PyKCS11Error as e:
        result = {"ok": False, "error": str(e)}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
