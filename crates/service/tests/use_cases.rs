//! The use cases over the real SQLite store (a temporary file each): the
//! role rules, authentication and its cache, creation and reads, status
//! changes, retries and the event history, bootstrap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowexec_domain::ports::ApiKeyRepository;
use flowexec_domain::{
    Actor, ApiKeyCredentials, ApiKeyId, FixedClock, FlowExecutionId, FlowName, IfMatch, NewApiKey,
    NewFlowExecution, NewTask, OrganizationId, OrganizationName, Principal, RepoError, RetryPolicy,
    RetryRefusal, RetryRequest, Role, TaskExecutionId, TaskName, TaskStatus, Transition, WorkerId,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, ApiKeys, Authenticate, ChangeRequest, ClaimAnswer, ClaimRequest, ExecutionUseCases,
    Executions, KeyAuthenticator, KeyCacheSettings, KeyUseCases, Outcome, PageRequest, Report,
    ServiceError, Swept, WorkerSettings, WorkerUseCases, Workers,
};
use flowexec_testkit::TestSqlite;

type TestResult = anyhow::Result<()>;

/// A key store that counts its lookups.
#[derive(Clone)]
struct CountingKeys {
    store: SqliteStore,
    lookups: Arc<AtomicUsize>,
}

impl ApiKeyRepository for CountingKeys {
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.store.find_api_key(id)
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepoError> {
        self.store.create_api_key(key)
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// The use cases over one fresh SQLite file, at a fixed time.
struct World {
    db: TestSqlite,
    admin: Admin<SqliteStore, FixedClock>,
    auth: KeyAuthenticator<CountingKeys>,
    executions: Executions<SqliteStore, FixedClock>,
    lookups: Arc<AtomicUsize>,
}

impl World {
    /// Another handle on the world's store.
    fn executions_store(&self) -> SqliteStore {
        self.db.open(2).unwrap_or_else(|e| panic!("{e}"))
    }

    fn new() -> anyhow::Result<Self> {
        Self::with_cache(KeyCacheSettings::default())
    }

    fn with_cache(cache: KeyCacheSettings) -> anyhow::Result<Self> {
        let db = TestSqlite::new()?;
        let store = db.open(4)?;
        let lookups = Arc::new(AtomicUsize::new(0));
        let keys = CountingKeys {
            store: store.clone(),
            lookups: lookups.clone(),
        };
        Ok(Self {
            db,
            admin: Admin::with_clock(store.clone(), FixedClock(now())),
            auth: KeyAuthenticator::new(keys, &cache),
            executions: Executions::with_clock(store, FixedClock(now())),
            lookups,
        })
    }

    /// A new organization and the principal of a key of `role` in it.
    fn principal(&self, role: Role, actor: Actor) -> anyhow::Result<Principal> {
        let name = format!("org-{}", uuid::Uuid::new_v4().simple());
        let created = self
            .admin
            .create_organization(&OrganizationName::parse(name)?)?;
        let key = self
            .admin
            .create_api_key(created.organization.id, role, actor)?;
        Ok(self.auth.authenticate(&key.plaintext)?)
    }
}

fn new_flow(tasks: &[&str]) -> anyhow::Result<NewFlowExecution> {
    let tasks = tasks
        .iter()
        .map(|t| {
            Ok(NewTask {
                task_name: TaskName::parse(*t)?,
                input: None,
                run: flowexec_domain::RunOptions::default(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(NewFlowExecution::new(
        FlowName::parse("flow")?,
        None,
        tasks,
    )?)
}

#[test]
fn the_first_key_of_a_new_organization_authenticates_as_an_admin_system_actor() -> TestResult {
    let world = World::new()?;
    let created = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?;
    let principal = world.auth.authenticate(&created.key.plaintext)?;
    assert_eq!(principal.organization_id, created.organization.id);
    assert_eq!(
        (principal.role, principal.actor),
        (Role::Admin, Actor::System)
    );
    assert_eq!(created.organization.created_at, now());
    Ok(())
}

#[test]
fn malformed_unknown_and_tampered_keys_are_unauthorized() -> TestResult {
    let world = World::new()?;
    let created = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?;
    let good = created.key.plaintext;
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('0') { '1' } else { '0' });
    let (unknown, _) = flowexec_service::keys::generate(
        created.organization.id,
        Role::Admin,
        Actor::System,
        now(),
    );
    for key in [
        "",
        "fx_",
        "Bearer x",
        tampered.as_str(),
        unknown.plaintext.as_str(),
    ] {
        assert!(
            matches!(
                world.auth.authenticate(key),
                Err(ServiceError::Unauthorized)
            ),
            "{key:?} was accepted"
        );
    }
    Ok(())
}

#[test]
fn a_key_for_a_missing_organization_is_not_issued() -> TestResult {
    let world = World::new()?;
    let result = world
        .admin
        .create_api_key(OrganizationId::generate(), Role::Read, Actor::System);
    assert!(matches!(result, Err(ServiceError::NotFound)));
    Ok(())
}

#[test]
fn write_and_admin_keys_create_flow_executions_with_their_actor_at_the_clocks_time() -> TestResult {
    for role in [Role::Admin, Role::Write] {
        let world = World::new()?;
        let user = Actor::User(uuid::Uuid::new_v4());
        let principal = world.principal(role, user)?;
        let created = world
            .executions
            .create_flow_execution(&principal, new_flow(&["b", "a"])?)?;
        let names: Vec<&str> = created
            .task_executions
            .iter()
            .map(|t| t.task_name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(created.flow_execution.created_at, now());
        for task in &created.task_executions {
            assert_eq!((task.status, task.execution_index), (TaskStatus::Queued, 0));
            assert_eq!(task.modified_by, user);
            assert_eq!(task.organization_id, principal.organization_id);
            assert_eq!((task.created_at, task.updated_at), (now(), now()));
        }
        assert_eq!(
            world
                .executions
                .get_flow_execution(&principal, created.flow_execution.id)?,
            created,
            "what creation answered is what reads back"
        );
    }
    Ok(())
}

#[test]
fn read_and_worker_keys_may_not_create_flow_executions() -> TestResult {
    for role in [Role::Read, Role::Worker] {
        let world = World::new()?;
        let principal = world.principal(role, Actor::System)?;
        let result = world
            .executions
            .create_flow_execution(&principal, new_flow(&["a"])?);
        assert!(
            matches!(result, Err(ServiceError::Forbidden { .. })),
            "{role} was allowed"
        );
    }
    Ok(())
}

#[test]
fn every_role_reads_its_own_organization_and_nothing_of_another() -> TestResult {
    let world = World::new()?;
    let owner = world.principal(Role::Write, Actor::System)?;
    let created = world
        .executions
        .create_flow_execution(&owner, new_flow(&["a"])?)?;
    let task_id = created.task_executions[0].id;
    let flow_id = created.flow_execution.id;

    for role in Role::ALL {
        let key = world
            .admin
            .create_api_key(owner.organization_id, role, Actor::System)?;
        let reader = world.auth.authenticate(&key.plaintext)?;
        assert_eq!(
            world.executions.get_task_execution(&reader, task_id)?.id,
            task_id
        );
        assert_eq!(
            world
                .executions
                .get_flow_execution(&reader, flow_id)?
                .flow_execution
                .id,
            flow_id
        );
    }

    let stranger = world.principal(Role::Admin, Actor::System)?;
    for found in [
        world
            .executions
            .get_task_execution(&stranger, task_id)
            .map(|_| ()),
        world
            .executions
            .get_flow_execution(&stranger, flow_id)
            .map(|_| ()),
        world
            .executions
            .get_task_execution(&stranger, TaskExecutionId::generate())
            .map(|_| ()),
        world
            .executions
            .get_flow_execution(&stranger, FlowExecutionId::generate())
            .map(|_| ()),
    ] {
        assert!(matches!(found, Err(ServiceError::NotFound)), "{found:?}");
    }
    Ok(())
}

#[test]
fn a_verified_key_is_looked_up_once_within_the_cache_lifetime() -> TestResult {
    let world = World::new()?;
    let key = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    for _ in 0..5 {
        world.auth.authenticate(&key.plaintext)?;
    }
    assert_eq!(world.lookups.load(Ordering::Relaxed), 1);
    Ok(())
}

#[test]
fn an_unknown_key_id_and_a_wrong_secret_take_the_same_path() -> TestResult {
    let world = World::new()?;
    let key = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    world.auth.authenticate(&key.plaintext)?;
    let lookups = world.lookups.load(Ordering::Relaxed);
    let (id_hex, secret) = key
        .plaintext
        .trim_start_matches("fx_")
        .split_once('_')
        .unwrap_or_default();
    let wrong_secret = format!("fx_{id_hex}_{}", "0".repeat(secret.len()));
    let unknown_id = format!("fx_{}_{secret}", uuid::Uuid::new_v4().simple());
    for (n, key) in [wrong_secret, unknown_id].iter().enumerate() {
        // Neither finds the valid key's cached verdict: each is one lookup,
        // refused, then remembered as refused.
        for _ in 0..3 {
            assert!(matches!(
                world.auth.authenticate(key),
                Err(ServiceError::Unauthorized)
            ));
            assert!(matches!(
                world.auth.authenticate_cached(key),
                Some(Err(ServiceError::Unauthorized))
            ));
        }
        assert_eq!(world.lookups.load(Ordering::Relaxed), lookups + n + 1);
    }
    // The valid key still works from its cached verdict.
    assert!(world
        .auth
        .authenticate_cached(&key.plaintext)
        .is_some_and(|r| r.is_ok()));
    assert!(world
        .auth
        .authenticate_cached("not a key")
        .is_some_and(|r| r.is_err()));
    Ok(())
}

#[test]
fn a_zero_cache_lifetime_looks_every_key_up() -> TestResult {
    let world = World::with_cache(KeyCacheSettings {
        ttl: Duration::ZERO,
        ..KeyCacheSettings::default()
    })?;
    let key = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    for _ in 0..3 {
        world.auth.authenticate(&key.plaintext)?;
    }
    assert_eq!(world.lookups.load(Ordering::Relaxed), 3);
    Ok(())
}

#[test]
fn bootstrap_creates_a_default_organization_with_a_working_admin_key_once() -> TestResult {
    let world = World::new()?;
    let created = world
        .admin
        .bootstrap()?
        .ok_or_else(|| anyhow::anyhow!("nothing created"))?;
    assert_eq!(created.organization.name.as_str(), "default");
    let principal = world.auth.authenticate(&created.key.plaintext)?;
    assert_eq!(
        (principal.role, principal.organization_id),
        (Role::Admin, created.organization.id)
    );
    assert!(
        world.admin.bootstrap()?.is_none(),
        "a second bootstrap created another organization"
    );
    Ok(())
}

#[test]
fn bootstrap_does_nothing_when_an_organization_exists() -> TestResult {
    let world = World::new()?;
    world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?;
    assert!(world.admin.bootstrap()?.is_none());
    Ok(())
}

#[test]
fn a_second_organization_of_a_name_is_a_conflict() -> TestResult {
    let world = World::new()?;
    world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?;
    assert!(matches!(
        world
            .admin
            .create_organization(&OrganizationName::parse("acme")?),
        Err(ServiceError::Conflict(_))
    ));
    assert_eq!(world.admin.list_organizations()?.len(), 1);
    Ok(())
}

fn change(transition: Transition) -> ChangeRequest {
    ChangeRequest {
        transition,
        reason: None,
        if_match: IfMatch::Any,
    }
}

/// A world, a writer in a new organization, and one queued task of it.
fn one_task(world: &World) -> anyhow::Result<(Principal, TaskExecutionId)> {
    let writer = world.principal(Role::Write, Actor::Integration)?;
    let created = world
        .executions
        .create_flow_execution(&writer, new_flow(&["t"])?)?;
    Ok((writer, created.task_executions[0].id))
}

#[test]
fn a_task_moves_through_its_life_with_one_event_per_change() -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    let run = world
        .executions
        .change_status(&writer, id, change(Transition::Start))?;
    assert!(run.changed);
    assert_eq!(
        (run.task_execution.status, run.task_execution.version),
        (TaskStatus::Running, 2)
    );
    assert_eq!(run.task_execution.started_at, Some(now()));
    let done = world.executions.change_status(
        &writer,
        id,
        ChangeRequest {
            reason: Some("ok".into()),
            ..change(Transition::Complete {
                output: Some(serde_json::json!({"rows": 3})),
            })
        },
    )?;
    assert_eq!(done.task_execution.status, TaskStatus::Completed);
    for transition in [Transition::MarkStale, Transition::Delete] {
        world
            .executions
            .change_status(&writer, id, change(transition))?;
    }
    let page = world
        .executions
        .task_execution_events(&writer, id, PageRequest::default())?;
    let trail: Vec<(Option<TaskStatus>, TaskStatus)> = page
        .items
        .iter()
        .map(|e| (e.event.from, e.event.to))
        .collect();
    assert_eq!(
        trail,
        [
            (None, TaskStatus::Queued),
            (Some(TaskStatus::Queued), TaskStatus::Running),
            (Some(TaskStatus::Running), TaskStatus::Completed),
            (Some(TaskStatus::Completed), TaskStatus::Stale),
            (Some(TaskStatus::Stale), TaskStatus::Deleted),
        ]
    );
    assert_eq!(page.items[2].event.reason.as_deref(), Some("ok"));
    assert_eq!(page.next_cursor, None);
    Ok(())
}

#[test]
fn a_repeated_change_answers_the_row_and_records_nothing_and_another_payload_conflicts(
) -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    world
        .executions
        .change_status(&writer, id, change(Transition::Start))?;
    let output = Some(serde_json::json!([1, 2]));
    let complete = || ChangeRequest {
        reason: Some("done".into()),
        // The If-Match the client sent the first time.
        if_match: IfMatch::Versions(vec![2]),
        ..change(Transition::Complete {
            output: output.clone(),
        })
    };
    let first = world.executions.change_status(&writer, id, complete())?;
    let again = world.executions.change_status(&writer, id, complete())?;
    assert!(first.changed && !again.changed);
    assert_eq!(again.task_execution, first.task_execution);
    let other = world.executions.change_status(
        &writer,
        id,
        change(Transition::Complete {
            output: Some(serde_json::json!("other")),
        }),
    );
    assert!(matches!(
        other,
        Err(ServiceError::InvalidTransition {
            current: TaskStatus::Completed,
            requested: TaskStatus::Completed
        })
    ));
    let events = world
        .executions
        .task_execution_events(&writer, id, PageRequest::default())?;
    assert_eq!(events.items.len(), 3, "creation, start, one completion");
    Ok(())
}

#[test]
fn a_stale_if_match_fails_before_the_status_machine_is_asked() -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    let stale = ChangeRequest {
        if_match: IfMatch::Versions(vec![9]),
        ..change(Transition::MarkStale)
    };
    assert!(matches!(
        world.executions.change_status(&writer, id, stale),
        Err(ServiceError::PreconditionFailed { current_version: 1 })
    ));
    assert!(matches!(
        world
            .executions
            .change_status(&writer, id, change(Transition::MarkStale)),
        Err(ServiceError::InvalidTransition {
            current: TaskStatus::Queued,
            ..
        })
    ));
    assert_eq!(
        world.executions.get_task_execution(&writer, id)?.version,
        1,
        "a refused change changed the row"
    );
    Ok(())
}

#[test]
fn only_write_and_admin_keys_change_or_retry_and_another_organization_sees_nothing() -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    for role in [Role::Read, Role::Worker] {
        let key = world
            .admin
            .create_api_key(writer.organization_id, role, Actor::System)?;
        let reader = world.auth.authenticate(&key.plaintext)?;
        assert!(matches!(
            world
                .executions
                .change_status(&reader, id, change(Transition::Start)),
            Err(ServiceError::Forbidden { .. })
        ));
        assert!(matches!(
            world.executions.retry(&reader, id, RetryRequest::default()),
            Err(ServiceError::Forbidden { .. })
        ));
        assert_eq!(
            world
                .executions
                .task_execution_events(&reader, id, PageRequest::default())?
                .items
                .len(),
            1
        );
    }
    let stranger = world.principal(Role::Admin, Actor::System)?;
    assert!(matches!(
        world
            .executions
            .change_status(&stranger, id, change(Transition::Start)),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        world
            .executions
            .retry(&stranger, id, RetryRequest::default()),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        world
            .executions
            .task_execution_events(&stranger, id, PageRequest::default()),
        Err(ServiceError::NotFound)
    ));
    assert_eq!(world.executions.get_task_execution(&writer, id)?.version, 1);
    Ok(())
}

#[test]
fn a_retry_is_the_next_attempt_of_the_latest_finished_one_only() -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    assert!(matches!(
        world.executions.retry(&writer, id, RetryRequest::default()),
        Err(ServiceError::RetryRefused(RetryRefusal::NotFinished {
            status: TaskStatus::Queued
        }))
    ));
    world
        .executions
        .change_status(&writer, id, change(Transition::Start))?;
    world.executions.change_status(
        &writer,
        id,
        change(Transition::Fail {
            error: Some(serde_json::json!({"code": "boom"})),
        }),
    )?;
    let retry = world
        .executions
        .retry(&writer, id, RetryRequest::default())?;
    let first = world.executions.get_task_execution(&writer, id)?;
    assert_eq!(
        (retry.execution_index, retry.status, retry.version),
        (1, TaskStatus::Queued, 1)
    );
    assert_eq!(
        (retry.flow_execution_id, &retry.task_name, &retry.input),
        (first.flow_execution_id, &first.task_name, &first.input)
    );
    assert!(matches!(
        world.executions.retry(&writer, id, RetryRequest::default()),
        Err(ServiceError::RetryRefused(RetryRefusal::Superseded {
            latest_execution_index: 1
        }))
    ));
    let events =
        world
            .executions
            .task_execution_events(&writer, retry.id, PageRequest::default())?;
    assert_eq!(
        events.items[0].event.reason.as_deref(),
        Some("retry of attempt 0")
    );
    let detail = world
        .executions
        .get_flow_execution(&writer, first.flow_execution_id)?;
    assert_eq!(detail.task_executions.len(), 2);
    Ok(())
}

#[test]
fn events_page_with_sealed_cursors_of_their_own_list_and_organization() -> TestResult {
    let world = World::new()?;
    let (writer, id) = one_task(&world)?;
    world
        .executions
        .change_status(&writer, id, change(Transition::Start))?;
    world
        .executions
        .change_status(&writer, id, change(Transition::Fail { error: None }))?;
    let page = |cursor: Option<String>| {
        world
            .executions
            .task_execution_events(&writer, id, PageRequest { limit: 2, cursor })
    };
    let first = page(None)?;
    assert_eq!(first.items.len(), 2);
    let second = page(first.next_cursor.clone())?;
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_cursor, None);
    assert!(first.items[1].id < second.items[0].id);
    // Another task's list, another organization, or an altered cursor.
    let cursor = first.next_cursor.unwrap_or_default();
    let (_, other_task) = one_task(&world)?;
    let other_writer = world.principal(Role::Write, Actor::System)?;
    let refused = [
        world.executions.task_execution_events(
            &writer,
            other_task,
            PageRequest {
                limit: 2,
                cursor: Some(cursor.clone()),
            },
        ),
        world.executions.task_execution_events(
            &other_writer,
            id,
            PageRequest {
                limit: 2,
                cursor: Some(cursor.clone()),
            },
        ),
        page(Some(format!("{cursor}x"))),
    ];
    for answer in refused {
        assert!(
            matches!(answer, Err(ServiceError::InvalidCursor(_))),
            "{answer:?}"
        );
    }
    for limit in [0, 501] {
        assert!(matches!(
            world.executions.task_execution_events(
                &writer,
                id,
                PageRequest {
                    limit,
                    cursor: None
                }
            ),
            Err(ServiceError::Invalid(_))
        ));
    }
    Ok(())
}

#[test]
fn of_sixteen_concurrent_retries_of_one_attempt_exactly_one_succeeds() -> TestResult {
    let world = Arc::new(World::new()?);
    let (writer, id) = one_task(&world)?;
    world
        .executions
        .change_status(&writer, id, change(Transition::Start))?;
    world
        .executions
        .change_status(&writer, id, change(Transition::Complete { output: None }))?;
    let threads = 16;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (world, barrier, writer) = (world.clone(), barrier.clone(), writer);
            std::thread::spawn(move || {
                barrier.wait();
                world.executions.retry(&writer, id, RetryRequest::default())
            })
        })
        .collect();
    let mut created = 0;
    for handle in handles {
        match handle
            .join()
            .map_err(|_| anyhow::anyhow!("a retry panicked"))?
        {
            Ok(_) => created += 1,
            Err(ServiceError::RetryRefused(RetryRefusal::Superseded { .. })) => {}
            Err(other) => anyhow::bail!("unexpected answer: {other:?}"),
        }
    }
    assert_eq!(created, 1);
    Ok(())
}

#[test]
fn admins_issue_list_and_revoke_keys_and_a_revoked_key_is_refused_at_once() -> TestResult {
    let world = World::new()?;
    let store = world.executions_store();
    let auth: Arc<dyn Authenticate> = Arc::new(KeyAuthenticator::new(
        store.clone(),
        &KeyCacheSettings::default(),
    ));
    let keys = ApiKeys::with_clock(store, FixedClock(now()), auth.clone());
    let created = world
        .admin
        .create_organization(&OrganizationName::parse("acme")?)?;
    let admin = auth.authenticate(&created.key.plaintext)?;
    let issued = keys.create_key(&admin, Role::Read, None)?;
    assert_eq!((issued.role, issued.actor), (Role::Read, Actor::System));
    let reader = auth.authenticate(&issued.plaintext)?;
    // Cached now: a revocation must still take effect at once here.
    assert!(auth.authenticate_cached(&issued.plaintext).is_some());
    for forbidden in [
        keys.list_keys(&reader).map(|_| ()),
        keys.create_key(&reader, Role::Admin, None).map(|_| ()),
        keys.revoke_key(&reader, admin.key_id).map(|_| ()),
    ] {
        assert!(matches!(forbidden, Err(ServiceError::Forbidden { .. })));
    }
    let listed = keys.list_keys(&admin)?;
    assert_eq!(listed.len(), 2);
    let revoked = keys.revoke_key(&admin, issued.id)?;
    assert_eq!(revoked.revoked_at, Some(now()));
    assert!(matches!(
        auth.authenticate(&issued.plaintext),
        Err(ServiceError::Unauthorized)
    ));
    assert_eq!(
        keys.revoke_key(&admin, issued.id)?,
        revoked,
        "revoking again answers it as it is"
    );
    // The last active admin key stays.
    assert!(matches!(
        keys.revoke_key(&admin, admin.key_id),
        Err(ServiceError::LastAdminKey)
    ));
    // Another organization's key is missing to this one.
    let stranger = world.principal(Role::Admin, Actor::System)?;
    assert!(matches!(
        keys.revoke_key(&stranger, admin.key_id),
        Err(ServiceError::NotFound)
    ));
    assert_eq!(
        keys.list_keys(&stranger)?.len(),
        2,
        "the stranger's own two keys"
    );
    Ok(())
}

/// The worker use cases over the world's store, at the world's time.
fn workers(world: &World, max_attempts: u32) -> Workers<SqliteStore, FixedClock> {
    workers_at(world, max_attempts, now())
}

/// The worker use cases over the world's store, at `at`.
fn workers_at(
    world: &World,
    max_attempts: u32,
    at: DateTime<Utc>,
) -> Workers<SqliteStore, FixedClock> {
    Workers::with_clock(
        world.executions_store(),
        FixedClock(at),
        WorkerSettings {
            // No jitter: each delay is exactly the backoff.
            default_retry: RetryPolicy {
                max_attempts,
                jitter: flowexec_domain::Jitter::None,
                ..RetryPolicy::default()
            },
        },
    )
}

fn claim_request(worker: &str, limit: usize) -> anyhow::Result<ClaimRequest> {
    Ok(ClaimRequest {
        worker_id: WorkerId::parse(worker)?,
        task_names: vec![],
        limit,
        lease_seconds: 30,
    })
}

fn report(id: TaskExecutionId, worker: &str, outcome: Outcome) -> anyhow::Result<Report> {
    Ok(Report {
        task_execution_id: id,
        worker_id: WorkerId::parse(worker)?,
        outcome,
    })
}

#[test]
fn only_admin_and_worker_keys_run_tasks() -> TestResult {
    let world = World::new()?;
    let workers = workers(&world, 3);
    for role in Role::ALL {
        let principal = world.principal(role, Actor::Integration)?;
        let answer = workers.claim(&principal, &claim_request("w", 1)?);
        match role {
            Role::Admin | Role::Worker => assert!(answer.is_ok(), "{role}: {answer:?}"),
            Role::Write | Role::Read => assert!(
                matches!(answer, Err(ServiceError::Forbidden { .. })),
                "{role}: {answer:?}"
            ),
        }
    }
    Ok(())
}

#[test]
fn a_worker_claims_beats_and_completes_and_a_repeat_changes_nothing() -> TestResult {
    let world = World::new()?;
    let workers = workers(&world, 3);
    let worker = world.principal(Role::Worker, Actor::ServiceAccount)?;
    let writer = world.principal(Role::Write, Actor::Integration)?;
    assert!(workers
        .claim(&worker, &claim_request("w1", 5)?)?
        .tasks
        .is_empty());
    // Another organization's tasks are never claimed.
    world
        .executions
        .create_flow_execution(&writer, new_flow(&["x"])?)?;
    assert!(workers
        .claim(&worker, &claim_request("w1", 5)?)?
        .tasks
        .is_empty());
    let mine = world.principal(Role::Admin, Actor::System)?;
    let worker = Principal {
        role: Role::Worker,
        ..mine
    };
    world
        .executions
        .create_flow_execution(&mine, new_flow(&["a", "b"])?)?;
    let taken = workers.claim(&worker, &claim_request("w1", 5)?)?.tasks;
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|t| t.status == TaskStatus::Running
        && t.lease.worker_id.as_ref().map(WorkerId::as_str) == Some("w1")));
    let id = taken[0].id;
    let beat = workers.heartbeat(&worker, id, WorkerId::parse("w1")?, 60)?;
    assert_eq!(
        beat.lease.expires_at,
        Some(now() + chrono::Duration::seconds(60))
    );
    assert!(matches!(
        workers.heartbeat(&worker, id, WorkerId::parse("w2")?, 60),
        Err(ServiceError::LeaseLost {
            current: TaskStatus::Running
        })
    ));
    let done = Outcome::Completed {
        output: Some(serde_json::json!({"rows": 3})),
    };
    let stranger = workers.report(&worker, report(id, "w2", done.clone())?);
    assert!(
        matches!(stranger, Err(ServiceError::LeaseLost { .. })),
        "{stranger:?}"
    );
    let completed = workers.report(&worker, report(id, "w1", done.clone())?)?;
    assert_eq!(completed.status, TaskStatus::Completed);
    assert_eq!(completed.lease.expires_at, None);
    let again = workers.report(&worker, report(id, "w1", done)?)?;
    assert_eq!(again, completed, "a repeat answers the task as it is");
    let other = Outcome::Completed { output: None };
    assert!(matches!(
        workers.report(&worker, report(id, "w1", other)?),
        Err(ServiceError::LeaseLost {
            current: TaskStatus::Completed
        })
    ));
    assert!(matches!(
        workers.heartbeat(&worker, id, WorkerId::parse("w1")?, 60),
        Err(ServiceError::LeaseLost {
            current: TaskStatus::Completed
        })
    ));
    assert!(matches!(
        workers.report(
            &worker,
            report(
                TaskExecutionId::generate(),
                "w1",
                Outcome::Completed { output: None }
            )?
        ),
        Err(ServiceError::NotFound)
    ));
    let history = world
        .executions
        .task_execution_events(&mine, id, PageRequest::default())?
        .items;
    assert_eq!(history.len(), 3, "created, claimed, completed: {history:?}");
    Ok(())
}

#[test]
fn a_retryable_failure_queues_the_next_attempt_until_attempts_run_out() -> TestResult {
    let world = World::new()?;
    let workers = workers(&world, 2);
    let admin = world.principal(Role::Admin, Actor::System)?;
    world
        .executions
        .create_flow_execution(&admin, new_flow(&["t"])?)?;
    let first = workers
        .claim(&admin, &claim_request("w", 1)?)?
        .tasks
        .remove(0);
    let error = Some(serde_json::json!({"code": "boom"}));
    let failed = workers.report(
        &admin,
        report(
            first.id,
            "w",
            Outcome::Failed {
                error: error.clone(),
                retryable: true,
            },
        )?,
    )?;
    assert_eq!((failed.status, &failed.error), (TaskStatus::Failed, &error));
    let flow = world
        .executions
        .get_flow_execution(&admin, first.flow_execution_id)?;
    let second = flow
        .task_executions
        .iter()
        .find(|t| t.execution_index == 1)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no next attempt: {flow:?}"))?;
    assert_eq!(second.status, TaskStatus::Queued);
    assert_eq!(second.input, first.input);
    assert!(second
        .not_before
        .is_some_and(|t| t >= now() && t <= now() + chrono::Duration::seconds(1)));
    // Before it is due, a claim takes nothing and says when it falls due;
    // a claim for other names has nothing to wait for.
    let early = workers.claim(&admin, &claim_request("w", 1)?)?;
    assert!(early.tasks.is_empty(), "{early:?}");
    let due_in = second
        .not_before
        .and_then(|t| (t - now()).to_std().ok())
        .ok_or_else(|| anyhow::anyhow!("no delay: {second:?}"))?;
    assert_eq!(early.next_due_in, Some(due_in));
    let mut others = claim_request("w", 1)?;
    others.task_names = vec![TaskName::parse("other")?];
    assert_eq!(workers.claim(&admin, &others)?, ClaimAnswer::default());
    // Claimed once it is due, by use cases whose clock is past its delay.
    let later = workers_at(&world, 2, now() + chrono::Duration::seconds(2));
    let taken = later.claim(&admin, &claim_request("w", 1)?)?.tasks;
    assert_eq!(taken.first().map(|t| t.id), Some(second.id));
    later.report(
        &admin,
        report(
            second.id,
            "w",
            Outcome::Failed {
                error: None,
                retryable: true,
            },
        )?,
    )?;
    let flow = world
        .executions
        .get_flow_execution(&admin, first.flow_execution_id)?;
    assert_eq!(
        flow.task_executions.len(),
        2,
        "two attempts of two allowed: no third"
    );
    Ok(())
}

#[test]
fn a_non_retryable_failure_is_not_retried_and_a_batch_answers_each_report() -> TestResult {
    let world = World::new()?;
    let workers = workers(&world, 5);
    let admin = world.principal(Role::Admin, Actor::System)?;
    world
        .executions
        .create_flow_execution(&admin, new_flow(&["a", "b", "c"])?)?;
    let taken = workers.claim(&admin, &claim_request("w", 3)?)?.tasks;
    let answers = workers.report_many(
        &admin,
        vec![
            report(
                taken[0].id,
                "w",
                Outcome::Failed {
                    error: None,
                    retryable: false,
                },
            )?,
            report(
                taken[1].id,
                "someone-else",
                Outcome::Completed { output: None },
            )?,
            report(
                TaskExecutionId::generate(),
                "w",
                Outcome::Completed { output: None },
            )?,
            report(
                taken[2].id,
                "w",
                Outcome::Completed {
                    output: Some(serde_json::json!(1)),
                },
            )?,
        ],
    )?;
    assert!(matches!(&answers[0], Ok(t) if t.status == TaskStatus::Failed));
    assert!(matches!(
        &answers[1],
        Err(ServiceError::LeaseLost {
            current: TaskStatus::Running
        })
    ));
    assert!(matches!(&answers[2], Err(ServiceError::NotFound)));
    assert!(matches!(&answers[3], Ok(t) if t.status == TaskStatus::Completed));
    let flow = world
        .executions
        .get_flow_execution(&admin, taken[0].flow_execution_id)?;
    assert_eq!(
        flow.task_executions.len(),
        3,
        "a non-retryable failure is not retried"
    );
    Ok(())
}

#[test]
fn the_sweeper_fails_and_retries_runs_past_their_lease_or_time_limit() -> TestResult {
    let world = World::new()?;
    let admin = world.principal(Role::Admin, Actor::System)?;
    let limited = NewFlowExecution::new(
        FlowName::parse("flow")?,
        None,
        vec![
            NewTask {
                task_name: TaskName::parse("lapses")?,
                input: None,
                run: flowexec_domain::RunOptions::default(),
            },
            NewTask {
                task_name: TaskName::parse("slow")?,
                input: None,
                run: flowexec_domain::RunOptions {
                    timeout_seconds: Some(10),
                    ..flowexec_domain::RunOptions::default()
                },
            },
        ],
    )?;
    world.executions.create_flow_execution(&admin, limited)?;
    let workers = workers(&world, 3);
    let taken = workers.claim(&admin, &claim_request("w", 2)?)?.tasks;
    assert_eq!(taken.len(), 2);
    // Nothing is overdue before the time limit (10 s) or the lease (30 s).
    assert_eq!(
        workers_at(&world, 3, now() + chrono::Duration::seconds(9)).sweep(10)?,
        Swept::default()
    );
    let swept = workers_at(&world, 3, now() + chrono::Duration::seconds(31)).sweep(10)?;
    assert_eq!(
        swept,
        Swept {
            lease_expired: 1,
            timed_out: 1,
            retried: 2
        }
    );
    for task in &taken {
        let failed = world.executions.get_task_execution(&admin, task.id)?;
        let code = if task.task_name.as_str() == "slow" {
            "timed_out"
        } else {
            "lease_expired"
        };
        assert_eq!(failed.status, TaskStatus::Failed);
        assert_eq!(
            failed.error,
            Some(serde_json::json!({"code": code, "worker_id": "w"}))
        );
        let events = world
            .executions
            .task_execution_events(&admin, task.id, PageRequest::default())?
            .items;
        let last = events.last().map(|e| &e.event);
        assert_eq!(
            last.map(|e| (e.actor, e.reason.as_deref())),
            Some((Actor::System, Some(code)))
        );
        // The worker's late report is refused: its lease is lost.
        let late = workers.report(
            &admin,
            report(task.id, "w", Outcome::Completed { output: None })?,
        );
        assert!(
            matches!(
                late,
                Err(ServiceError::LeaseLost {
                    current: TaskStatus::Failed
                })
            ),
            "{late:?}"
        );
    }
    let flow = world
        .executions
        .get_flow_execution(&admin, taken[0].flow_execution_id)?;
    assert_eq!(
        flow.task_executions.len(),
        4,
        "each run failed by the sweeper is retried: {flow:?}"
    );
    // A second sweep finds nothing more.
    assert_eq!(
        workers_at(&world, 3, now() + chrono::Duration::seconds(32)).sweep(10)?,
        Swept::default()
    );
    Ok(())
}

#[test]
fn concurrent_sweepers_fail_each_overdue_run_once() -> TestResult {
    let world = World::new()?;
    let admin = world.principal(Role::Admin, Actor::System)?;
    world
        .executions
        .create_flow_execution(&admin, new_flow(&["a", "b", "c", "d", "e", "f"])?)?;
    let taken = workers(&world, 1)
        .claim(&admin, &claim_request("w", 6)?)?
        .tasks;
    let threads = 4;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let sweeper = workers_at(&world, 1, now() + chrono::Duration::seconds(60));
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                sweeper.sweep(100)
            })
        })
        .collect();
    let mut failed = 0;
    for handle in handles {
        let swept = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a sweeper panicked"))??;
        failed += swept.lease_expired;
    }
    assert_eq!(failed, 6, "each overdue run failed exactly once");
    for task in taken {
        let events = world
            .executions
            .task_execution_events(&admin, task.id, PageRequest::default())?
            .items;
        assert_eq!(events.len(), 3, "created, claimed, failed once: {events:?}");
    }
    Ok(())
}
