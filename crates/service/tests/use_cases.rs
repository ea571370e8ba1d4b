//! The use cases against the in-memory store: no database, no HTTP.

use flowexec_domain::ports::TaskExecutionRepository;
use flowexec_domain::{
    Actor, FlowExecutionId, FlowName, NewFlowExecution, NewTask, OrganizationId, OrganizationName,
    Principal, Role, StatusChange, TaskExecutionId, TaskName, TaskStatus,
};
use std::time::Duration;

use flowexec_service::{ExecutionService, Service, ServiceError, ServiceSettings};
use flowexec_testkit::MemoryStore;

type TestResult = anyhow::Result<()>;

fn service() -> Service<MemoryStore> {
    Service::new(MemoryStore::new())
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

/// An organization and a principal for a key of `role` in it.
fn principal(
    service: &Service<MemoryStore>,
    role: Role,
    actor: Actor,
) -> anyhow::Result<Principal> {
    let name = format!("org-{}", uuid::Uuid::new_v4().simple());
    let created = service.create_organization(&OrganizationName::parse(name)?)?;
    let key = service.create_api_key(created.organization.id, role, actor)?;
    Ok(service.authenticate(&key.plaintext)?)
}

#[test]
fn the_first_key_of_a_new_organization_authenticates_as_an_admin_system_actor() -> TestResult {
    let service = service();
    let created = service.create_organization(&OrganizationName::parse("acme")?)?;
    let principal = service.authenticate(&created.key.plaintext)?;
    assert_eq!(principal.organization_id, created.organization.id);
    assert_eq!(
        (principal.role, principal.actor),
        (Role::Admin, Actor::System)
    );
    assert_eq!(principal.key_id, created.key.id);
    Ok(())
}

#[test]
fn malformed_unknown_and_tampered_keys_are_unauthorized() -> TestResult {
    let service = service();
    let created = service.create_organization(&OrganizationName::parse("acme")?)?;
    let good = created.key.plaintext;
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('0') { '1' } else { '0' });
    let (unknown, _) =
        flowexec_service::keys::generate(created.organization.id, Role::Admin, Actor::System);
    for key in [
        "",
        "fx_",
        "Bearer x",
        tampered.as_str(),
        unknown.plaintext.as_str(),
    ] {
        assert!(
            matches!(service.authenticate(key), Err(ServiceError::Unauthorized)),
            "{key:?} was accepted"
        );
    }
    Ok(())
}

#[test]
fn a_key_for_a_missing_organization_is_not_issued() {
    let result = service().create_api_key(OrganizationId::generate(), Role::Read, Actor::System);
    assert!(matches!(result, Err(ServiceError::NotFound)));
}

#[test]
fn write_and_admin_keys_create_flow_executions_with_their_actor() -> TestResult {
    for role in [Role::Admin, Role::Write] {
        let service = service();
        let user = Actor::User(uuid_like());
        let principal = principal(&service, role, user)?;
        let created = service.create_flow_execution(&principal, new_flow(&["a", "b"])?)?;
        assert_eq!(created.task_executions.len(), 2);
        for task in &created.task_executions {
            assert_eq!((task.status, task.execution_index), (TaskStatus::Queued, 0));
            assert_eq!(task.modified_by, user);
            assert_eq!(task.organization_id, principal.organization_id);
        }
    }
    Ok(())
}

fn uuid_like() -> uuid::Uuid {
    *OrganizationId::generate().as_uuid()
}

#[test]
fn read_and_worker_keys_may_not_create_flow_executions() -> TestResult {
    for role in [Role::Read, Role::Worker] {
        let service = service();
        let principal = principal(&service, role, Actor::System)?;
        let result = service.create_flow_execution(&principal, new_flow(&["a"])?);
        assert!(
            matches!(result, Err(ServiceError::Forbidden { .. })),
            "{role} was allowed"
        );
    }
    Ok(())
}

#[test]
fn every_role_reads_its_own_organization_and_nothing_of_another() -> TestResult {
    let service = service();
    let owner = principal(&service, Role::Write, Actor::System)?;
    let created = service.create_flow_execution(&owner, new_flow(&["a"])?)?;
    let task_id = created.task_executions[0].id;
    let flow_id = created.flow_execution.id;

    for role in Role::ALL {
        let key = service.create_api_key(owner.organization_id, role, Actor::System)?;
        let reader = service.authenticate(&key.plaintext)?;
        assert_eq!(service.get_task_execution(&reader, task_id)?.id, task_id);
        assert_eq!(
            service
                .get_flow_execution(&reader, flow_id)?
                .flow_execution
                .id,
            flow_id
        );
    }

    let stranger = principal(&service, Role::Admin, Actor::System)?;
    assert!(matches!(
        service.get_task_execution(&stranger, task_id),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        service.get_flow_execution(&stranger, flow_id),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        service.get_task_execution(&stranger, TaskExecutionId::generate()),
        Err(ServiceError::NotFound)
    ));
    assert!(matches!(
        service.get_flow_execution(&stranger, FlowExecutionId::generate()),
        Err(ServiceError::NotFound)
    ));
    Ok(())
}

#[test]
fn an_invalid_transition_is_reported_with_the_current_status_and_changes_nothing() -> TestResult {
    let service = service();
    let owner = principal(&service, Role::Write, Actor::System)?;
    let task = service
        .create_flow_execution(&owner, new_flow(&["a"])?)?
        .task_executions[0]
        .clone();
    let change = StatusChange {
        task_execution_id: task.id,
        to: TaskStatus::Completed,
        actor: Actor::System,
        output: None,
        error: None,
        reason: None,
    };
    let result = service
        .store()
        .transition_task_execution(owner.tenant(), &change);
    assert!(matches!(
        result.map_err(ServiceError::from),
        Err(ServiceError::InvalidTransition {
            current: TaskStatus::Queued,
            requested: TaskStatus::Completed
        })
    ));
    assert_eq!(service.get_task_execution(&owner, task.id)?, task);
    assert_eq!(
        service
            .store()
            .list_task_execution_events(owner.tenant(), task.id)?
            .len(),
        1,
        "only the creation event"
    );
    Ok(())
}

#[test]
fn a_verified_key_is_looked_up_once_within_the_cache_lifetime() -> TestResult {
    let service = service();
    let key = service
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    for _ in 0..5 {
        service.authenticate(&key.plaintext)?;
    }
    assert_eq!(service.store().key_lookups(), 1);

    // A cached key id with a wrong secret is still refused.
    let mut tampered = key.plaintext.clone();
    tampered.pop();
    tampered.push(if key.plaintext.ends_with('0') {
        '1'
    } else {
        '0'
    });
    assert!(matches!(
        service.authenticate(&tampered),
        Err(ServiceError::Unauthorized)
    ));
    Ok(())
}

#[test]
fn an_unknown_key_id_and_a_wrong_secret_take_the_same_path() -> TestResult {
    let service = service();
    let key = service
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    service.authenticate(&key.plaintext)?;
    let lookups = service.store().key_lookups();
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
                service.authenticate(key),
                Err(ServiceError::Unauthorized)
            ));
            assert!(matches!(
                service.authenticate_cached(key),
                Some(Err(ServiceError::Unauthorized))
            ));
        }
        assert_eq!(service.store().key_lookups(), lookups + n + 1);
    }
    // The valid key still works from its cached verdict.
    assert!(service
        .authenticate_cached(&key.plaintext)
        .is_some_and(|r| r.is_ok()));
    assert!(service
        .authenticate_cached("not a key")
        .is_some_and(|r| r.is_err()));
    Ok(())
}

#[test]
fn a_zero_cache_lifetime_looks_every_key_up() -> TestResult {
    let settings = ServiceSettings {
        key_cache_ttl: Duration::ZERO,
        ..ServiceSettings::default()
    };
    let service = Service::with_settings(MemoryStore::new(), &settings);
    let key = service
        .create_organization(&OrganizationName::parse("acme")?)?
        .key;
    for _ in 0..3 {
        service.authenticate(&key.plaintext)?;
    }
    assert_eq!(service.store().key_lookups(), 3);
    Ok(())
}

#[test]
fn bootstrap_creates_a_default_organization_with_a_working_admin_key_once() -> TestResult {
    let service = service();
    let created = service
        .bootstrap()?
        .ok_or_else(|| anyhow::anyhow!("nothing created"))?;
    assert_eq!(created.organization.name.as_str(), "default");
    let principal = service.authenticate(&created.key.plaintext)?;
    assert_eq!(
        (principal.role, principal.organization_id),
        (Role::Admin, created.organization.id)
    );
    assert!(
        service.bootstrap()?.is_none(),
        "a second bootstrap created another organization"
    );
    Ok(())
}

#[test]
fn bootstrap_does_nothing_when_an_organization_exists() -> TestResult {
    let service = service();
    service.create_organization(&OrganizationName::parse("acme")?)?;
    assert!(service.bootstrap()?.is_none());
    Ok(())
}
