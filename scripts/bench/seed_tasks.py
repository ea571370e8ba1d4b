"""Seeds queued task executions through the API, for the PATCH benchmark.

    seed_tasks.py BASE_URL KEY COUNT OUT

POSTs flow executions of up to 1,000 tasks each to BASE_URL with KEY until
COUNT tasks exist, and writes their ids to OUT, one a line.
"""

import json
import sys
import urllib.request


def post_flow(base: str, key: str, body: dict) -> dict:
    """POST /flow-executions with BODY; the created flow execution."""
    request = urllib.request.Request(
        f"{base}/flow-executions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        if answer.status != 201:
            raise SystemExit(f"POST /flow-executions answered {answer.status}")
        return json.load(answer)


def main() -> None:
    base, key, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ids = []
    while len(ids) < count:
        n = min(1000, count - len(ids))
        body = {
            "flow_name": "bench-patch",
            "tasks": [{"task_name": f"t{i}", "input": {"n": i}} for i in range(n)],
        }
        created = post_flow(base, key, body)
        ids.extend(task["id"] for task in created["task_executions"])
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    main()
