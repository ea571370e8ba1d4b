"""Schemathesis hooks for flowexec (loaded by scripts/fuzz.sh).

Two rules of the requests cannot be written in JSON Schema, and the OpenAPI
document states them in prose:

- the task names of a new flow execution must be distinct (they are part of
  the attempt key). These hooks keep the data Schemathesis generates valid
  to that rule, and where a phase does not apply body filters, set aside
  exactly the one answer the rule explains: "schema-valid data rejected" for
  a body with a repeated task name, answered 422 naming only that rule;
- a list `cursor` is sealed by the server (an HMAC over its position, the
  organization and the query), so no generated string is one; generated
  cursors are removed, and lists are fuzzed from their first page.

Every other failure stands.
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
