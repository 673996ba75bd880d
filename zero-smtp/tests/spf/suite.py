#!/usr/bin/env python3
"""The openspf.org RFC 7208 test suite (rfc7208-tests.yml, beside this file) served to
zero-smtp's SPF test: it lists the tests, then answers DNS queries from each scenario's
zone the way the suite's drivers do (SPF-type records stand in for TXT where a name has no
TXT; TIMEOUT fails a query; names under error. fail; a CNAME is followed once).

Lines in, lines out; every string hex-encoded (UTF-8 bytes):
    tests                      -> one line per test: scenario name host helo mailfrom results
                                  (results comma-separated), then "end"
    query SCENARIO NAME TYPE   -> "found HEX,HEX,..." | "void" | "failed"
"""
import sys

import yaml


def hx(s):
    if isinstance(s, bytes):
        return s.hex()
    return str(s).encode("utf-8", "surrogateescape").hex()


def load(path):
    with open(path, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    zones = []
    for s in scenarios:
        zone = {}
        for name, records in (s.get("zonedata") or {}).items():
            entries = []
            for r in records or []:
                if r == "TIMEOUT":
                    entries.append(("TIMEOUT", None))
                    continue
                for t, v in r.items():
                    entries.append((t, v))
            zone[name.lower().rstrip(".")] = entries
        zones.append(zone)
    return scenarios, zones


def text(v):
    if isinstance(v, list):
        return "".join(v)
    return v


def lookup(zone, name, qtype, follow=True):
    labels = [l for l in name.split(".") if l]
    if any(len(l) > 63 for l in labels):
        return "failed", []
    name = ".".join(labels).lower()
    if name not in zone:
        return ("failed", []) if name.startswith("error.") else ("void", [])
    entries = zone[name]
    has_txt = any(t == "TXT" for t, _ in entries)
    found = []
    for t, v in entries:
        if t == "TIMEOUT":
            if not found:
                return "failed", []
            break
        if v == "TIMEOUT":
            if t == qtype or (qtype == "TXT" and t == "SPF" and not has_txt):
                return "failed", []
            continue
        if t == qtype or (qtype == "TXT" and t == "SPF" and not has_txt):
            if v == "NONE" or v == ["NONE"]:
                continue
            if t in ("TXT", "SPF"):
                found.append(text(v))
            elif t == "MX":
                found.append(v[1])
            else:
                found.append(v)
        elif t == "CNAME" and follow:
            status, more = lookup(zone, v, qtype, False)
            if status == "failed":
                return status, []
            found.extend(more)
    return ("found", found) if found else ("void", [])


def main():
    scenarios, zones = load(sys.argv[1])
    for line in sys.stdin:
        words = line.rstrip("\n").split(" ")
        if words[0] == "tests":
            for i, s in enumerate(scenarios):
                for name, t in s["tests"].items():
                    results = t["result"] if isinstance(t["result"], list) else [t["result"]]
                    fields = [str(i), hx(name), hx(t["host"]), hx(t.get("helo", "")), hx(t.get("mailfrom", "")), ",".join(results)]
                    print(" ".join(fields))
            print("end")
        else:
            _, scenario, name, qtype = words
            status, found = lookup(zones[int(scenario)], bytes.fromhex(name).decode("utf-8", "surrogateescape"), qtype)
            print(status if status != "found" else "found " + ",".join(hx(v) for v in found))
        sys.stdout.flush()


main()
