#!/usr/bin/env python3
# perf_summary.py - summarises `perf script -F comm,tid,time,ip,sym,dso`
# output of a bench run recorded with `perf record --call-graph dwarf`:
# only the samples whose call chain passes through a frame matching
# --under (e.g. the bench's op_sign, or find_all), minus those through
# --exclude, optionally only those up to (--phase before) or after
# (--phase after) the last sample through --boundary (e.g. the index
# learning of a process's first find); then the share of those samples by
# DSO (self), the top symbols (self), and the inclusive share of each
# --show symbol. See README.md ("Where the time goes").
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import argparse
import collections
import re
import sys


def samples(lines):
    """Yields each sample as (time, frames), frames as (symbol, dso),
    innermost first."""
    frames, when = [], 0.0
    for line in lines:
        if not line.strip():
            continue
        if not line[0].isspace():  # a sample's header line: comm tid time:
            if frames:
                yield when, frames
            frames = []
            m = re.search(r"([0-9]+\.[0-9]+):", line)
            when = float(m.group(1)) if m else 0.0
            continue
        m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line.rstrip())
        if m:
            frames.append((m.group(1), m.group(2)))
    if frames:
        yield when, frames


def short_dso(dso):
    name = dso.rsplit("/", 1)[-1]
    return re.sub(r"\.so[.0-9]*$", ".so", name)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--under", required=True, help="regex: keep samples with such a frame")
    ap.add_argument("--exclude", help="regex: drop samples with such a frame")
    ap.add_argument("--show", action="append", default=[], help="regex: inclusive share")
    ap.add_argument("--boundary", help="regex: with --phase, where the phases meet")
    ap.add_argument("--phase", choices=["before", "after"])
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    under, exclude = re.compile(args.under), args.exclude and re.compile(args.exclude)
    by_dso, by_sym, incl = collections.Counter(), collections.Counter(), collections.Counter()
    total = kept = 0
    all_samples = list(samples(sys.stdin))
    edge = None
    if args.boundary and args.phase:
        bound = re.compile(args.boundary)
        edge = max((t for t, fr in all_samples if any(bound.search(s) for s, _ in fr)),
                   default=None)
    for when, frames in all_samples:
        total += 1
        if edge is not None and (when > edge if args.phase == "before" else when <= edge):
            continue
        syms = [s for s, _ in frames]
        if not any(under.search(s) for s in syms):
            continue
        if exclude and any(exclude.search(s) for s in syms):
            continue
        kept += 1
        # An inlined frame's code lives in the next real frame's DSO.
        dso = next((d for _, d in frames if d != "inlined"), "?")
        by_dso[short_dso(dso)] += 1
        by_sym[f"{frames[0][0]} [{short_dso(dso)}]"] += 1
        for pat in args.show:
            if any(re.search(pat, s) for s in syms):
                incl[pat] += 1
    if kept == 0:
        print(f"no sample under /{args.under}/ ({total} samples in all)")
        return 1
    print(f"{kept} of {total} samples under /{args.under}/"
          + (f", not /{args.exclude}/" if args.exclude else "")
          + (f", {args.phase} the last /{args.boundary}/" if edge is not None else ""))
    print("self, by DSO:")
    for dso, n in by_dso.most_common():
        if 100.0 * n / kept >= 0.5:
            print(f"  {100.0 * n / kept:5.1f}%  {dso}")
    print("self, top symbols:")
    for sym, n in by_sym.most_common(args.top):
        print(f"  {100.0 * n / kept:5.1f}%  {sym}")
    if args.show:
        print("inclusive:")
        for pat in args.show:
            print(f"  {100.0 * incl[pat] / kept:5.1f}%  /{pat}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
