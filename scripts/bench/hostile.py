"""Measurements of the server against hostile clients, for scripts/bench.sh.

    hostile.py keytiming HOST:PORT KEY N     unknown key id vs wrong secret
    hostile.py rejected HOST:PORT KEY N PID  server CPU per refused 1 MiB body
    hostile.py stalled HOST:PORT KEY N       stalled bodies held vs /healthz

Standard library only. Prints one "RESULT name=value ..." line per section.
"""

import http.client
import os
import secrets
import socket
import statistics
import sys
import time
import uuid


def split(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def key_timing(address, key, n):
    """Medians of GET latency with a fresh wrong key per request: an unknown
    key id, and the live key id with a wrong secret (both miss the cache and
    are looked up), then one repeated key of each kind (cached)."""
    live_id = key.split("_")[1]
    host, port = split(address)
    conn = http.client.HTTPConnection(host, port)
    path = f"/task-executions/{uuid.uuid4()}"

    def timed(candidate):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {candidate}"})
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 401, response.status
        return elapsed * 1e6

    unknown, wrong = [], []
    for _ in range(200):  # warm-up
        timed(f"fx_{uuid.uuid4().hex}_{secrets.token_hex(32)}")
    for _ in range(n):
        unknown.append(timed(f"fx_{uuid.uuid4().hex}_{secrets.token_hex(32)}"))
        wrong.append(timed(f"fx_{live_id}_{secrets.token_hex(32)}"))
    repeat_unknown = f"fx_{uuid.uuid4().hex}_{secrets.token_hex(32)}"
    repeat_wrong = f"fx_{live_id}_{secrets.token_hex(32)}"
    cached_unknown = [timed(repeat_unknown) for _ in range(n)]
    cached_wrong = [timed(repeat_wrong) for _ in range(n)]
    u, w = statistics.median(unknown), statistics.median(wrong)
    cu, cw = statistics.median(cached_unknown), statistics.median(cached_wrong)
    within = "yes" if 0.9 <= w / u <= 1.1 and 0.9 <= cw / cu <= 1.1 else "NO"
    print(
        f"RESULT unknown_us={u:.0f} wrong_secret_us={w:.0f} ratio={w / u:.3f} "
        f"cached_unknown_us={cu:.0f} cached_wrong_secret_us={cw:.0f} cached_ratio={cw / cu:.3f} "
        f"within_10_percent={within}"
    )


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def post_body(address, key, body, content_type="application/json"):
    """Sends a POST with `body`; returns the status (0 when the server closed
    the connection before the whole body was sent and nothing came back)."""
    host, port = split(address)
    with socket.create_connection((host, port)) as sock:
        head = (
            f"POST /flow-executions HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            sock.sendall(head.encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(64)
        except ConnectionResetError:
            return 0
        return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else 0


def rejected(address, key, n, pid):
    """Server CPU per request for 1 MiB bodies: with a junk key (refused
    before the body is read) and, for comparison, with a valid key and a
    body that is parsed in full and then refused (422, nothing stored)."""
    hz = os.sysconf("SC_CLK_TCK")
    filler = "x" * (1024 * 1024 - 100)
    invalid = f'{{"flow_name": "f", "tasks": [], "input": "{filler}"}}'.encode()
    results = {}
    for name, candidate, expected in (("junk_key", "junk", 401), ("valid_key_422", key, 422)):
        before = cpu_ticks(pid)
        statuses = [post_body(address, candidate, invalid) for _ in range(n)]
        used = cpu_ticks(pid) - before
        wrong = [s for s in statuses if s not in (expected, 0)]
        assert not wrong, wrong[:5]
        results[name] = used / hz * 1e6 / n
    print(
        f"RESULT body_bytes={len(invalid)} junk_key_cpu_us={results['junk_key']:.0f} "
        f"parsed_422_cpu_us={results['valid_key_422']:.0f}"
    )


def stalled(address, key, n):
    """Opens n connections that each send a request head and one body byte
    of 100, then times /healthz and a create while they are held."""
    host, port = split(address)
    held = []
    head = (
        f"POST /flow-executions HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    ).encode()
    for _ in range(n):
        sock = socket.create_connection((host, port))
        sock.sendall(head)
        held.append(sock)
    time.sleep(1)  # let the server read every head
    latencies = []
    for _ in range(20):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        started = time.perf_counter()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1e3)
        assert response.status == 200, response.status
        conn.close()
    print(
        f"RESULT stalled={n} healthz_median_ms={statistics.median(latencies):.2f} "
        f"healthz_max_ms={max(latencies):.2f}"
    )
    for sock in held:
        sock.close()


if __name__ == "__main__":
    command, address, key, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if command == "keytiming":
        key_timing(address, key, count)
    elif command == "rejected":
        rejected(address, key, count, int(sys.argv[5]))
    elif command == "stalled":
        stalled(address, key, count)
    else:
        sys.exit(f"unknown command {command}")
