"""Schemathesis hooks for flowexec (loaded by scripts/fuzz.sh).

Some rules of the API cannot be written in JSON Schema; the OpenAPI document
states them in prose, and these hooks set aside exactly the answers they
explain. Every other failure stands.

- The task names of a new flow execution must be distinct (they are part of
  the attempt key): generated bodies are kept valid to that rule, and where
  a phase does not apply body filters, a 422 naming only that rule is set
  aside.
- A list `cursor` is sealed by the server (an HMAC over its position, the
  organization and the query), so no generated string is one: generated
  cursors are removed where the phase allows it, and a 400 refusing a
  cursor the request invented is set aside.
- `If-Match` is a precondition on the row's current version: a 412 for a
  request whose generated `If-Match` names no current version is the rule
  working, and is set aside.
- `DELETE /task-executions/{id}` is a soft delete: the task execution still
  answers `GET` by id, with status `deleted`. That answer is set aside from
  "deleted resource still available", and only that one.
"""

import json

import schemathesis


def _repeats_a_task_name(body):
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        return False
    names = [t.get("task_name") for t in body["tasks"] if isinstance(t, dict)]
    names = [n for n in names if isinstance(n, str)]
    return len(names) != len(set(names))


@schemathesis.hook("filter_body").apply_to(path="/flow-executions", method="POST")
def distinct_task_names(context, body):
    return not _repeats_a_task_name(body)


@schemathesis.hook("filter_failure").apply_to(path="/flow-executions", method="POST")
def repeated_task_names_are_refused_by_design(context, failure, case, response):
    if failure.code != "ST202" or response.status_code != 422 or not _repeats_a_task_name(case.body):
        return True
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return True
    only_this_rule = all(
        e.get("field") == "tasks" and "task names must be unique" in e.get("message", "") for e in errors
    )
    return not only_this_rule


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
    if failure.code == "ST202" and response.status_code == 412:
        if _header(case, "If-Match") is not None and problem.get("code") == "precondition_failed":
            return False
    if failure.code == "ST301" and response.status_code == 200:
        if isinstance(problem, dict) and problem.get("status") == "deleted":
            return False
    return True
