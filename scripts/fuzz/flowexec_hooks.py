"""Schemathesis hooks for flowexec (loaded by scripts/fuzz.sh).

Some rules of the API cannot be written in JSON Schema; the OpenAPI document
states them in prose, and these hooks set aside exactly the answers they
explain. Every other failure stands.

- The task names of a new flow execution must be distinct (they are part of
  the attempt key): generated bodies are kept valid to that rule, and where
  a phase does not apply body filters, a 422 naming only that rule is set
  aside.
- A task's retry policy waits at most `max_ms`, which must be at least
  `initial_ms` (`backoff`): generated bodies are kept to that rule too, and
  a 422 naming only it is set aside where filters do not apply.
- A list `cursor` is sealed by the server (an HMAC over its position, the
  organization and the query), so no generated string is one: generated
  cursors are removed where the phase allows it, and a 400 refusing a
  cursor the request invented is set aside.
- `If-Match` is a precondition on the row's current version: a 412 for a
  request whose generated `If-Match` names no current version is the rule
  working, and is set aside.
- A claim with `wait_seconds` waits that long when there is no work, which
  is its purpose, not slowness: generated waits are cut to one second (the
  test suite covers the long waits), so that the response-time check
  still applies to everything else.
- A flow definition is any mapping (YAML or JSON) in the schema, but
  only a definition the format accepts, named as the path names it, is
  stored: generated definitions are replaced by a small valid one named as
  the path, so that the check that valid requests are accepted applies
  (the test suite covers refused definitions, every error located).
- `DELETE /task-executions/{id}` is a soft delete: the task execution still
  answers `GET` by id, with status `deleted`, and its history, the delete
  last. Those answers are set aside from "deleted resource still
  available", and only those.
"""

import json
import re

import schemathesis


def _repeats_a_task_name(body):
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return False
    names = [t.get("task_name") for t in body["tasks"] if isinstance(t, dict)]
    names = [n for n in names if isinstance(n, str)]
    return len(names) != len(set(names))


def _backoff_shrinks(body):
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return False
    for task in body["tasks"]:
        # Negative cases put any JSON anywhere: only dicts are looked into.
        retry = task.get("retry") if isinstance(task, dict) else None
        backoff = retry.get("backoff") if isinstance(retry, dict) else None
        if isinstance(backoff, dict):
            low, high = backoff.get("initial_ms"), backoff.get("max_ms")
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
            if numbers and high < low:
                return True
    return False


@schemathesis.hook("filter_body").apply_to(path="/flow-executions", method="POST")
def rules_in_prose_kept(context, body):
    return not _repeats_a_task_name(body) and not _backoff_shrinks(body)


_MAX_MS = re.compile(r"^tasks\[\d+\]\.retry\.backoff\.max_ms$")


def _prose_rule(error, body):
    field, message = error.get("field", ""), error.get("message", "")
    if field == "tasks" and "task names must be unique" in message:
        return _repeats_a_task_name(body)
    return bool(_MAX_MS.match(field)) and _backoff_shrinks(body)


@schemathesis.hook("filter_failure").apply_to(path="/flow-executions", method="POST")
def rules_in_prose_are_refused_by_design(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return True
    return not (errors and all(_prose_rule(e, case.body) for e in errors))


@schemathesis.hook("map_body").apply_to(path="/task-executions/claim", method="POST")
def short_claim_waits(context, body):
    if isinstance(body, dict):
        wait = body.get("wait_seconds")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 1:
            body["wait_seconds"] = 1
    return body


@schemathesis.hook("map_case").apply_to(path="/flows/{name}", method="PUT")
def valid_definitions(context, case):
    name = (case.path_parameters or {}).get("name")
    media_type = str(getattr(case, "media_type", "") or "")
    if isinstance(name, str):
        # Only bodies of the schema's type, a mapping (YAML or JSON); a
        # negative case of another type stays as generated, to be refused.
        if ("yaml" in media_type or "json" in media_type) and isinstance(case.body, dict):
            case.body = {"name": name, "tasks": [{"name": "t"}]}
    return case


@schemathesis.hook("map_query")
def no_invented_cursors(context, query):
    if isinstance(query, dict):
        query.pop("cursor", None)
    return query


def _problem(response):
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return {}


def _header(case, name):
    headers = case.headers or {}
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


@schemathesis.hook("filter_failure")
def rules_outside_the_schema(context, failure, case, response):
    problem = _problem(response)
    if failure.code == "ST202" and response.status_code == 400:
        query = case.query or {}
        if "cursor" in query and str(problem.get("detail", "")).startswith("cursor:"):
            return False
    if failure.code == "ST112" and case.path == "/task-executions/claim":
        # A claim waits as long as it asks when there is no work.
        body = case.body if isinstance(case.body, dict) else {}
        wait = body.get("wait_seconds")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait > 1:
            return False
    if failure.code == "ST202" and response.status_code == 412:
        if _header(case, "If-Match") is not None and problem.get("code") == "precondition_failed":
            return False
    if failure.code == "ST301" and response.status_code == 200 and isinstance(problem, dict):
        if problem.get("status") == "deleted":
            return False
        # The history of a soft-deleted task execution, its delete last.
        events = problem.get("events")
        if isinstance(events, list) and events and (events[-1] or {}).get("to") == "deleted":
            return False
    return True
