// Uses the types openapi-typescript generates from /openapi.json:
// type-checked with tsc --strict, then run against a live server
// (scripts/check-clients.sh). Every kind of JSON value the server accepts as
// input must be accepted by the generated types and come back equal.
import type { components } from "./api";

type NewFlowExecution = components["schemas"]["NewFlowExecutionBody"];
type FlowExecution = components["schemas"]["FlowExecutionBody"];
type TaskExecution = components["schemas"]["TaskExecutionBody"];

const inputs: unknown[] = [
  { source: "s3://bucket/raw" }, // the README's example
  ["a", 1, 2.5, null, true, { nested: [1] }],
  "text",
  42,
  -0.5,
  true,
];

// The README's request, as a typed literal.
const readme: NewFlowExecution = {
  flow_name: "nightly-etl",
  input: { day: "2026-11-28" },
  tasks: [{ task_name: "extract", input: { source: "s3://bucket/raw" } }, { task_name: "load" }],
};

async function main(base: string, key: string): Promise<void> {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  const body: NewFlowExecution = {
    ...readme,
    tasks: inputs.map((input, i) => ({ task_name: `t${i}`, input })),
  };
  const response = await fetch(`${base}/flow-executions`, { method: "POST", headers, body: JSON.stringify(body) });
  if (response.status !== 201) throw new Error(`create answered ${response.status}`);
  const created = (await response.json()) as FlowExecution;
  for (const [i, input] of inputs.entries()) {
    const id = created.task_executions.find((t) => t.task_name === `t${i}`)?.id;
    const read = await fetch(`${base}/task-executions/${id}`, { headers });
    const task = (await read.json()) as TaskExecution;
    if (JSON.stringify(task.input) !== JSON.stringify(input)) {
      throw new Error(`input ${JSON.stringify(input)} came back as ${JSON.stringify(task.input)}`);
    }
  }
  console.log(`typescript types: ${inputs.length} inputs created and read back`);
}

main(process.argv[2], process.argv[3]).catch((error) => {
  console.error(error);
  process.exit(1);
});
