#!/usr/bin/python3
"""PyKCS11 through Strata: list the objects before login (the README's
policy as written: the first view, work, is public), log in with the work
PIN and print the objects, log out, log in with the pseudonym PIN and
print the objects; the views must be what SoftHSM2 shows directly for
their layers (work: personal and group, before login their public
objects; pseudonym: nym) and neither may see the other's objects. A
public session object made before login keeps its handle when work logs
in.

Run by pykcs11.sh inside the world lib.sh builds; speaks TAP on stdout.
`pykcs11.py --direct MODULE TOKEN PIN` prints one SoftHSM2 token's objects
(used, in a separate process, for the comparison); PIN "-" lists them
without login.
"""
import os
import subprocess
import sys

import PyKCS11
from PyKCS11 import LowLevel as LL

CLASSES = {
    LL.CKO_DATA: "data",
    LL.CKO_CERTIFICATE: "cert",
    LL.CKO_PUBLIC_KEY: "pubkey",
    LL.CKO_PRIVATE_KEY: "privkey",
    LL.CKO_SECRET_KEY: "secretkey",
}


def load(path):
    lib = PyKCS11.PyKCS11Lib()
    lib.load(path)
    return lib


def slot_of(lib, label):
    """The slot holding the token labelled `label`."""
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == label:
            return slot
    raise LookupError("no token labelled %r" % label)


def objects(session):
    """Sorted 'class label id' strings of every object the session sees."""
    out = []
    for obj in session.findObjects():
        cls, label, ident = session.getAttributeValue(
            obj, [LL.CKA_CLASS, LL.CKA_LABEL, LL.CKA_ID])
        if label is None:
            label = ""
        elif not isinstance(label, str):
            label = bytes(label).decode()
        ident = bytes(ident).hex() if ident is not None else ""
        out.append("%s %s %s" % (CLASSES.get(cls, hex(cls)), label, ident))
    return sorted(out)


def view(lib, slot, pin):
    """Log in with `pin` (None: no login), list the objects, log out;
    returns the listing."""
    session = lib.openSession(slot)
    try:
        if pin is None:
            return objects(session)
        session.login(pin)
        try:
            return objects(session)
        finally:
            session.logout()
    finally:
        session.closeSession()


def direct(token, login=True):
    """One SoftHSM2 token's objects, listed by this script in a subprocess
    (without login when `login` is false)."""
    out = subprocess.run(
        [sys.executable, __file__, "--direct",
         "/usr/lib/softhsm/libsofthsm2.so", token, token + "-pin" if login else "-"],
        check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def made_before_login(tap, lib, slot):
    """A public session object made before login is found, and keeps its
    handle number once the work view (the public one) logs in."""
    session = lib.openSession(slot)
    try:
        made = session.createObject([
            (LL.CKA_CLASS, LL.CKO_DATA), (LL.CKA_TOKEN, False),
            (LL.CKA_PRIVATE, False), (LL.CKA_LABEL, "made-before-login"),
            (LL.CKA_VALUE, b"v")])
        before = session.findObjects([(LL.CKA_LABEL, "made-before-login")])
        tap.check([o.value() for o in before] == [made.value()],
                  "a public session object made before login is found")
        session.login("1111")
        try:
            after = session.findObjects([(LL.CKA_LABEL, "made-before-login")])
            tap.check([o.value() for o in after] == [made.value()],
                      "it keeps its handle after the work login",
                      "before %r, after %r" % (made.value(), [o.value() for o in after]))
        finally:
            session.logout()
    except PyKCS11.PyKCS11Error as e:
        tap.check(False, "a public session object made before login", str(e))
    finally:
        session.closeSession()


class Tap:
    def __init__(self, plan):
        self.n = 0
        self.failed = 0
        print("1..%d" % plan, flush=True)

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)

    def check(self, cond, desc, detail=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond:
            self.failed += 1
            if detail is not None:
                self.diag(detail)
        return cond

    def same(self, want, got, desc):
        return self.check(want == got, desc, "expected:\n%s\ngot:\n%s"
                          % ("\n".join(want), "\n".join(got)))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--direct":
        lib = load(sys.argv[2])
        pin = None if sys.argv[4] == "-" else sys.argv[4]
        for line in view(lib, slot_of(lib, sys.argv[3]), pin):
            print(line)
        return 0

    tap = Tap(12)
    public_want = sorted(direct("personal", False) + direct("group", False))
    work_want = sorted(direct("personal") + direct("group"))
    nym_want = sorted(direct("nym"))

    lib = load(os.environ["STRATA_MODULE"])
    slots = lib.getSlotList(tokenPresent=True)
    labels = [lib.getTokenInfo(s).label.strip() for s in slots]
    tap.check(labels == ["Strata"], "one token, Strata", "tokens: %r" % labels)
    slot = slot_of(lib, "Strata")

    public = view(lib, slot, None)
    tap.same(public_want, public,
             "before login: personal's and group's public objects (work is public)")
    made_before_login(tap, lib, slot)

    results = {}
    for name, pin in (("work", "1111"), ("pseudonym", "2222")):
        try:
            results[name] = view(lib, slot, pin)
            tap.check(True, "login with the %s PIN, list, logout" % name)
        except PyKCS11.PyKCS11Error as e:
            results[name] = []
            tap.check(False, "login with the %s PIN, list, logout" % name, str(e))
        print("# view %s:" % name)
        tap.diag("\n".join("  " + o for o in results[name]))

    work, nym = results["work"], results["pseudonym"]
    tap.same(work_want, work, "the work view is personal's and group's objects")
    tap.same(nym_want, nym, "the pseudonym view is nym's objects")
    tap.check(not set(work) & set(nym), "the two views share no object",
              "shared: %r" % sorted(set(work) & set(nym)))
    tap.check(any(" shared-ec " in o for o in work)
              and not any(" shared-ec " in o for o in nym),
              "shared-ec is seen by work only")
    tap.check(any(" nym-ec " in o for o in nym)
              and not any(" nym-ec " in o for o in work),
              "nym-ec is seen by the pseudonym only")

    # A wrong PIN is refused with CKR_PIN_INCORRECT.
    session = lib.openSession(slot)
    try:
        session.login("9999")
        tap.check(False, "a wrong PIN is CKR_PIN_INCORRECT", "login succeeded")
        session.logout()
    except PyKCS11.PyKCS11Error as e:
        tap.check(e.value == LL.CKR_PIN_INCORRECT, "a wrong PIN is CKR_PIN_INCORRECT", str(e))
    finally:
        session.closeSession()
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
