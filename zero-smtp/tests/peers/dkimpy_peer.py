#!/usr/bin/env python3
"""dkimpy, the independent DKIM implementation zero-smtp's is checked against.

    dkimpy_peer.py verify RECORDS.json < message   one line per signature: pass, or fail and why
    dkimpy_peer.py sign SELECTOR DOMAIN KEYFILE ALG CANON < message
                                                   prints the DKIM-Signature field

RECORDS.json maps key names (selector._domainkey.domain) to TXT records, answered
through dkimpy's dnsfunc instead of the DNS. KEYFILE is a PEM RSA key or, for
ed25519-sha256, the base64 of the 32-byte seed.
"""
import json
import sys

import dkim


def main():
    message = sys.stdin.buffer.read()
    if sys.argv[1] == "verify":
        with open(sys.argv[2]) as f:
            records = json.load(f)

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            return records.get(name.rstrip(".").lower(), "").encode()

        d = dkim.DKIM(message)
        count = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
        for i in range(count):
            try:
                print("pass" if d.verify(idx=i, dnsfunc=dnsfunc) else "fail")
            except dkim.DKIMException as e:
                print(f"fail: {e}")
    else:
        selector, domain, keyfile, alg, canon = sys.argv[2:7]
        key = open(keyfile, "rb").read().strip()
        header, body = canon.split("/")
        field = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            key,
            canonicalize=(header.encode(), body.encode()),
            signature_algorithm=alg.encode(),
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        sys.stdout.buffer.write(field)


main()
