#!/usr/bin/python3
"""Ask the HAProxy master how the workers are doing: ``lepton-gateway-ctl status`` prints JSON.

``{"reloads": N, "failed_reloads": F, "workers": [pid…], "old_workers": [pid…]}`` — a reload is
complete once the master counts it and no old worker (still finishing requests) remains.
"""

import json
import re
import socket
import sys

MASTER_SOCKET = "/run/lepton-gateway/master.sock"


def ask(command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(MASTER_SOCKET)
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)  # one command, then the master answers and closes
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def status() -> dict:
    section, workers, old, reloads, failed = "", [], [], 0, 0
    for line in ask("show proc").splitlines():
        if line.startswith("#"):
            section = line.strip("# ").split()[0] if line.strip("# ") else section
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        if fields[1] == "master":
            reloads = int(fields[2])
            match = re.search(r"failed: (\d+)", line)
            failed = int(match.group(1)) if match else 0
        elif fields[1] == "worker":
            (old if section == "old" else workers).append(int(fields[0]))
    return {"reloads": reloads, "failed_reloads": failed, "workers": workers, "old_workers": old}


if __name__ == "__main__":
    if sys.argv[1:] != ["status"]:
        print("usage: lepton-gateway-ctl status", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(status()))
