"""Creates no-op tasks through the API, for the worker benchmark.

    seed_noop.py BASE_URL KEY COUNT [RATE]

POSTs flow executions of 100 tasks named noop-00 … noop-99 to BASE_URL with
KEY until COUNT tasks exist: as fast as 4 threads can, or, with RATE, at
RATE tasks per second (one flow every 100 / RATE seconds).
"""

import sys
import threading
import time

from seed_tasks import post_flow

FLOW = 100


def post(base: str, key: str, flow: int) -> None:
    body = {
        "flow_name": "bench-workers",
        "tasks": [{"task_name": f"noop-{i:02}", "input": {"flow": flow}} for i in range(FLOW)],
    }
    post_flow(base, key, body)


def main() -> None:
    base, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    flows = count // FLOW
    if len(sys.argv) > 4:
        every = FLOW / float(sys.argv[4])
        start = time.monotonic()
        for flow in range(flows):
            delay = start + flow * every - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            post(base, key, flow)
        return
    lock = threading.Lock()
    next_flow = [0]
    failures = []

    def run() -> None:
        while True:
            with lock:
                flow = next_flow[0]
                next_flow[0] += 1
            if flow >= flows or failures:
                return
            try:
                post(base, key, flow)
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
                return

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"seeding failed: {failures[0]}")


if __name__ == "__main__":
    main()
