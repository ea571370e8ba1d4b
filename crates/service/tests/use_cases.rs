//! The use cases over the real SQLite store (a temporary file each): the
//! role rules, authentication and its cache, creation and reads, bootstrap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowexec_domain::ports::ApiKeyRepository;
use flowexec_domain::{
    Actor, ApiKeyCredentials, ApiKeyId, FixedClock, FlowExecutionId, FlowName, NewApiKey,
    NewFlowExecution, NewTask, OrganizationId, OrganizationName, Principal, RepoError, Role,
    TaskExecutionId, TaskName, TaskStatus,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, Authenticate, ExecutionUseCases, Executions, KeyAuthenticator, KeyCacheSettings,
    ServiceError,
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
    _db: TestSqlite,
    admin: Admin<SqliteStore, FixedClock>,
    auth: KeyAuthenticator<CountingKeys>,
    executions: Executions<SqliteStore, FixedClock>,
    lookups: Arc<AtomicUsize>,
}

impl World {
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
            _db: db,
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
