//! The repository contract on the in-memory store, so that the fakes the
//! service tests use keep the stores' promises.

use flowexec_testkit::MemoryStore;

fn memory() -> anyhow::Result<((), MemoryStore)> {
    Ok(((), MemoryStore::new()))
}

flowexec_testkit::contract_tests!(memory());
