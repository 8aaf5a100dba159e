#!/usr/bin/python3
# isolate.py MODULE CMD_FIFO REPLY_FIFO
#
# One long-running client of Strata for tests/hosted/isolate.sh: loads
# MODULE (strata-pkcs11.so), opens a session on the token "Strata", then
# runs the commands read line by line from CMD_FIFO, answering each with
# exactly one line on REPLY_FIFO:
#   login PIN   -> "login ok" | "login CKR_..."
#   labels      -> "labels: a b c" (private keys of the view, sorted)
#               |  "labels CKR_..."
#   sign LABEL  -> "sign LABEL ok HANDLE" | "sign LABEL CKR_... HANDLE"
#                  signs a digest (ECDSA) with the private key labelled
#                  LABEL and verifies it with its public key; the handles
#                  are looked up once, at the first sign of LABEL, and
#                  used as they are afterwards (HANDLE is the private
#                  key's virtual handle)
#   quit        -> "bye", then logout, close and exit 0
# A PKCS#11 error is an answer, not an exit: the test decides.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import hashlib
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL

MECH = PyKCS11.Mechanism(LL.CKM_ECDSA, None)


def code(err):
    return PyKCS11.CKR.get(err.value, "CKR_0x%08x" % err.value)


def text(value):
    return value if isinstance(value, str) else bytes(value).decode()


class Client:
    def __init__(self, module):
        self.lib = PyKCS11.PyKCS11Lib()
        self.lib.load(module)
        slot = None
        for s in self.lib.getSlotList(tokenPresent=True):
            if self.lib.getTokenInfo(s).label.strip() == "Strata":
                slot = s
        if slot is None:
            raise SystemExit("no token Strata")
        self.session = self.lib.openSession(slot, LL.CKF_SERIAL_SESSION | LL.CKF_RW_SESSION)
        self.keys = {}

    def login(self, pin):
        self.session.login(pin)
        return "login ok"

    def labels(self):
        keys = self.session.findObjects([(LL.CKA_CLASS, LL.CKO_PRIVATE_KEY)])
        found = [text(self.session.getAttributeValue(k, [LL.CKA_LABEL])[0]) for k in keys]
        return "labels: " + " ".join(sorted(found))

    def one(self, cls, label):
        objs = self.session.findObjects([(LL.CKA_CLASS, cls), (LL.CKA_LABEL, label)])
        if len(objs) != 1:
            raise SystemExit("%d objects of class %d labelled %s" % (len(objs), cls, label))
        return objs[0]

    def sign(self, label):
        if label not in self.keys:
            self.keys[label] = (self.one(LL.CKO_PRIVATE_KEY, label),
                                self.one(LL.CKO_PUBLIC_KEY, label))
        priv, pub = self.keys[label]
        handle = priv.value()
        digest = hashlib.sha256(b"isolated layer " + label.encode()).digest()
        try:
            signature = self.session.sign(priv, digest, MECH)
            if not self.session.verify(pub, digest, signature, MECH):
                return "sign %s bad-signature %d" % (label, handle)
        except PyKCS11.PyKCS11Error as e:
            return "sign %s %s %d" % (label, code(e), handle)
        return "sign %s ok %d" % (label, handle)


def main():
    module, cmd_path, reply_path = sys.argv[1:4]
    client = Client(module)
    with open(cmd_path) as cmds, open(reply_path, "w") as reply:
        for line in cmds:
            words = line.split()
            if not words:
                continue
            verb, args = words[0], words[1:]
            if verb == "quit":
                print("bye", file=reply, flush=True)
                break
            try:
                answer = getattr(client, verb)(*args)
            except PyKCS11.PyKCS11Error as e:
                answer = "%s %s" % (verb, code(e))
            print(answer, file=reply, flush=True)
    client.session.logout()
    client.session.closeSession()


if __name__ == "__main__":
    main()
