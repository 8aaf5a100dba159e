#!/usr/bin/python3
# view.py MODULE PIN KEY [READY_FIFO GO_FIFO]
#
# One client of a hosted Strata token: loads MODULE (p11-kit-client.so
# with P11_KIT_SERVER_ADDRESS set), logs in to the token "Strata" with PIN,
# prints the labels of the private keys its view shows, signs a digest
# with the private key labelled KEY (ECDSA) and verifies the signature
# with the public key of the same label. With the two FIFOs it then
# writes "ready" to READY_FIFO, waits for a line on GO_FIFO (another
# client logs in meanwhile, with its session still open here) and prints
# its labels again. Output lines:
#   labels: a b c
#   signed: KEY ok
#   labels-after: a b c
# Exit status 0, or 1 with the PKCS#11 error on stderr.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import hashlib
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL


def labels(session):
    keys = session.findObjects([(LL.CKA_CLASS, LL.CKO_PRIVATE_KEY)])
    found = [session.getAttributeValue(k, [LL.CKA_LABEL])[0] for k in keys]
    return " ".join(sorted(bytes(x).decode() if not isinstance(x, str) else x for x in found))


def one(session, cls, label):
    objs = session.findObjects([(LL.CKA_CLASS, cls), (LL.CKA_LABEL, label)])
    if len(objs) != 1:
        raise SystemExit("%d objects of class %d labelled %s" % (len(objs), cls, label))
    return objs[0]


def main():
    module, pin, key = sys.argv[1:4]
    fifos = sys.argv[4:6]
    lib = PyKCS11.PyKCS11Lib()
    lib.load(module)
    slot = None
    for s in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(s).label.strip() == "Strata":
            slot = s
    if slot is None:
        raise SystemExit("no token Strata")
    session = lib.openSession(slot, LL.CKF_SERIAL_SESSION | LL.CKF_RW_SESSION)
    session.login(pin)
    print("labels:", labels(session), flush=True)

    digest = hashlib.sha256(b"hosted strata " + key.encode()).digest()
    mech = PyKCS11.Mechanism(LL.CKM_ECDSA, None)
    signature = session.sign(one(session, LL.CKO_PRIVATE_KEY, key), digest, mech)
    if not session.verify(one(session, LL.CKO_PUBLIC_KEY, key), digest, signature, mech):
        raise SystemExit("signature with %s does not verify" % key)
    print("signed:", key, "ok", flush=True)

    if fifos:
        with open(fifos[0], "w") as ready:
            ready.write("ready\n")
        with open(fifos[1]) as go:
            go.readline()
        print("labels-after:", labels(session), flush=True)
    session.logout()
    session.closeSession()


if __name__ == "__main__":
    try:
        main()
    except PyKCS11.PyKCS11Error as e:
        print("PKCS#11 error:", e, file=sys.stderr)
        sys.exit(1)
