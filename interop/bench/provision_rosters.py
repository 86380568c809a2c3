#!/usr/bin/env python3
"""Writes the benchmark's roster ring in each server's own import format.

Every user gets ROSTER_K mutual (`both`) contacts: its K/2 ring neighbours on each side,
wrapping within chunks of CHUNK users (one generator process each), the same ring
`herald-loadgen --setup-rosters` builds over XMPP and checks. Writing it directly takes
seconds where XMPP subscriptions take minutes (Prosody: about half an hour for 19,000
users and 10 contacts); the setup still checks every roster over XMPP afterwards.

Usage:
  provision_rosters.py herald-csv N K CHUNK OUT.csv
      rows for `herald roster import`
  provision_rosters.py prosody N K CHUNK DATA_PATH DOMAIN
      Prosody roster files (data/<domain>/roster/user{i}.dat)
  provision_rosters.py piefxis N K CHUNK OUT_DIR DOMAIN
      XEP-0227 files for `ejabberdctl import_piefxis` (OUT_DIR/part-NNN.xml, 1,000
      users each, so no single import call runs for minutes): accounts (password
      pass{i}) with their rosters
"""
import os
import sys


def ring(n: int, k: int, chunk: int):
    """(user, [contacts]) for every user, as global indices."""
    for offset in range(0, n, chunk):
        size = min(chunk, n - offset)
        for i in range(size):
            out = []
            for after in (True, False):
                for d in range(1, k // 2 + 1):
                    d %= size
                    j = (i + d) % size if after else (i + size - d) % size
                    if j != i and j not in out:
                        out.append(j)
            yield offset + i, [offset + j for j in out]


def encode(s: str) -> str:
    """Prosody's datamanager file-name encoding: every non-alphanumeric byte as %xx."""
    return "".join(c if c.isalnum() and c.isascii() else "%%%02x" % ord(c) for c in s)


def herald_csv(n, k, chunk, out):
    with open(out, "w", encoding="ascii") as f:
        f.write("owner,contact\n")
        for i, contacts in ring(n, k, chunk):
            for j in contacts:
                f.write(f"user{i},user{j}\n")


def prosody(n, k, chunk, data_path, domain):
    rosters = os.path.join(data_path, encode(domain), "roster")
    os.makedirs(rosters, mode=0o750, exist_ok=True)
    for i, contacts in ring(n, k, chunk):
        body = ["return {\n", '\t[false] = {\n\t\t["version"] = 1;\n\t\t["pending"] = {};\n\t};\n']
        for j in contacts:
            body.append(
                f'\t["user{j}@{domain}"] = {{\n\t\t["groups"] = {{}};\n'
                f'\t\t["subscription"] = "both";\n\t}};\n'
            )
        body.append("};\n")
        path = os.path.join(rosters, encode(f"user{i}") + ".dat")
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write("".join(body))
        os.replace(path + ".tmp", path)


def piefxis(n, k, chunk, out_dir, domain, per_file=1000):
    os.makedirs(out_dir, exist_ok=True)
    f = None
    for i, contacts in ring(n, k, chunk):
        if i % per_file == 0:
            if f:
                f.write("</host>\n</server-data>\n")
                f.close()
            f = open(os.path.join(out_dir, f"part-{i // per_file:03}.xml"), "w", encoding="ascii")
            f.write("<?xml version='1.0' encoding='UTF-8'?>\n")
            f.write(f"<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='{domain}'>\n")
        f.write(f"<user name='user{i}' password='pass{i}'>")
        f.write("<query xmlns='jabber:iq:roster'>")
        for j in contacts:
            f.write(f"<item jid='user{j}@{domain}' subscription='both'/>")
        f.write("</query></user>\n")
    if f:
        f.write("</host>\n</server-data>\n")
        f.close()


def main() -> int:
    if len(sys.argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    what = sys.argv[1]
    n, k, chunk = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rest = sys.argv[5:]
    if what == "herald-csv" and len(rest) == 1:
        herald_csv(n, k, chunk, rest[0])
    elif what == "prosody" and len(rest) == 2:
        prosody(n, k, chunk, rest[0], rest[1])
    elif what == "piefxis" and len(rest) == 2:
        piefxis(n, k, chunk, rest[0], rest[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
