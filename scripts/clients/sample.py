"""Uses the Python client that openapi-python-client generates from
/openapi.json: type-checked with mypy --strict, then run against a live
server (scripts/check-clients.sh). Every kind of JSON value the server
accepts as input must be accepted by the generated types and come back
equal."""

import sys
from typing import Any

from flowexec_client import AuthenticatedClient
from flowexec_client.api.flow_executions import create_flow_execution
from flowexec_client.api.task_executions import get_task_execution
from flowexec_client.models import FlowExecutionBody, NewFlowExecutionBody, NewTaskBody, TaskExecutionBody

INPUTS: list[Any] = [
    {"source": "s3://bucket/raw"},  # the README's example
    ["a", 1, 2.5, None, True, {"nested": [1]}],
    "text",
    42,
    -0.5,
    True,
    123456789012345678901234567890,
]


def main(base_url: str, key: str) -> None:
    client = AuthenticatedClient(base_url=base_url, token=key)
    tasks = [NewTaskBody(task_name=f"t{i}", input_=value) for i, value in enumerate(INPUTS)]
    body = NewFlowExecutionBody(flow_name="nightly-etl", input_={"day": "2026-11-28"}, tasks=tasks)
    created = create_flow_execution.sync(client=client, body=body)
    assert isinstance(created, FlowExecutionBody), created
    by_name = {task.task_name: task for task in created.task_executions}
    for i, value in enumerate(INPUTS):
        task = get_task_execution.sync(id=by_name[f"t{i}"].id, client=client)
        assert isinstance(task, TaskExecutionBody), task
        assert task.input_ == value, (task.input_, value)
        assert task.status.value == "queued"
    print(f"python client: {len(INPUTS)} inputs created and read back")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
