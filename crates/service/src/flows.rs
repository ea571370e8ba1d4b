//! The use cases on stored flow definitions: store a version (only when
//! the content changed), read the latest or one version, list, delete.
//! Every definition is checked in full at upload — every error at once,
//! each located (`flowexec-flows`) — so a stored version always runs.

use flowexec_domain::ports::{DeploymentSecrets, ExecutionStore, RowLock, TenantTx};
use flowexec_domain::{Clock, Flow, FlowName, FlowVersion, Principal, RepoError, SystemClock};
use flowexec_flows::error::ErrorCode;
use flowexec_flows::DefinitionError;

use crate::auth::require_write;
use crate::cursor::{CursorKey, LazyCursorKey};
use crate::error::ServiceError;
use crate::executions::{paged, Page, PageRequest};

/// A flow with one of its versions.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlow {
    pub flow: Flow,
    pub version: FlowVersion,
}

/// What storing a definition came to: the version that holds it, and
/// whether this request created it (`false`: the latest version already
/// had this content).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub stored: StoredFlow,
    pub created: bool,
}

/// What the HTTP layer asks of flow definitions. Object-safe.
pub trait FlowUseCases: Send + Sync + 'static {
    /// Stores `source` (YAML or JSON) as the next version of flow `name`
    /// when its content differs from the latest version's (or the flow is
    /// new or deleted); else answers the latest version. Every error of the
    /// definition at once ([`ServiceError::InvalidDefinition`]). Needs role
    /// admin or write.
    fn put_flow(
        &self,
        principal: &Principal,
        name: FlowName,
        source: String,
    ) -> Result<Stored, ServiceError>;

    /// The flow with its latest version, or version `version`.
    /// [`ServiceError::NotFound`] for a deleted flow. Any role.
    fn get_flow(
        &self,
        principal: &Principal,
        name: FlowName,
        version: Option<i32>,
    ) -> Result<StoredFlow, ServiceError>;

    /// One page of the flows that are not deleted, by name. Any role.
    fn list_flows(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Flow>, ServiceError>;

    /// Deletes the flow: it starts no more runs (those started run on).
    /// Needs role admin or write.
    fn delete_flow(&self, principal: &Principal, name: FlowName) -> Result<(), ServiceError>;
}

/// The flow definition use cases over a store `S`, with time from `C`.
pub struct Flows<S, C = SystemClock> {
    store: S,
    clock: C,
    cursor_key: LazyCursorKey,
}

impl<S: ExecutionStore + DeploymentSecrets> Flows<S> {
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemClock)
    }
}

impl<S: ExecutionStore + DeploymentSecrets, C: Clock> Flows<S, C> {
    pub fn with_clock(store: S, clock: C) -> Self {
        Self {
            store,
            clock,
            cursor_key: LazyCursorKey::default(),
        }
    }

    fn cursor_key(&self) -> Result<&CursorKey, ServiceError> {
        self.cursor_key.get(&self.store)
    }
}

/// The flow if it exists and is not deleted.
pub(crate) fn live<T: TenantTx>(
    tx: &mut T,
    name: &FlowName,
    lock: RowLock,
) -> Result<Flow, RepoError> {
    match tx.flow(name, lock)? {
        Some(flow) if flow.deleted_at.is_none() => Ok(flow),
        _ => Err(RepoError::NotFound),
    }
}

/// The checked definition of `source` stored as `name`, as a JSON object.
fn checked(name: &FlowName, source: &str) -> Result<serde_json::Value, ServiceError> {
    let (definition, located) =
        flowexec_flows::parse_located(source).map_err(ServiceError::InvalidDefinition)?;
    if definition.name != name.as_str() {
        return Err(ServiceError::InvalidDefinition(vec![DefinitionError::new(
            ErrorCode::WrongType,
            "/name",
            located.value_at("/name"),
            format!(
                "the definition is named {:?} but is stored as {:?}: the name in the path and in the definition must be the same",
                definition.name,
                name.as_str()
            ),
        )]));
    }
    Ok(located.value)
}

impl<S: ExecutionStore + DeploymentSecrets, C: Clock> FlowUseCases for Flows<S, C> {
    fn put_flow(
        &self,
        principal: &Principal,
        name: FlowName,
        source: String,
    ) -> Result<Stored, ServiceError> {
        require_write(principal)?;
        let document = checked(&name, &source)?;
        let at = self.clock.now();
        let store = || {
            self.store.in_tenant(principal.tenant(), |tx| {
                // Locked: versions are numbered one writer at a time.
                let existing = tx.flow(&name, RowLock::Exclusive)?;
                if let Some(flow) = existing.as_ref().filter(|f| f.deleted_at.is_none()) {
                    let latest = tx.flow_version(&name, flow.latest_version)?;
                    if latest.document == document {
                        return Ok(Stored {
                            stored: StoredFlow {
                                flow: flow.clone(),
                                version: latest,
                            },
                            created: false,
                        });
                    }
                }
                let number = existing.as_ref().map_or(1, |f| f.latest_version + 1);
                let flow = Flow {
                    name: name.clone(),
                    latest_version: number,
                    created_at: existing.as_ref().map_or(at, |f| f.created_at),
                    updated_at: at,
                    deleted_at: None,
                };
                let version = FlowVersion {
                    name: name.clone(),
                    version: number,
                    source: source.clone(),
                    document: document.clone(),
                    created_by: principal.actor,
                    created_at: at,
                };
                tx.save_flow(&flow)?;
                tx.insert_flow_version(&version)?;
                Ok(Stored {
                    stored: StoredFlow { flow, version },
                    created: true,
                })
            })
        };
        // The first version of a new flow has no row to lock: of two
        // concurrent first uploads, the second meets the first's version
        // and is run again, now finding the flow.
        let outcome = match store() {
            Err(RepoError::Conflict(_)) => store(),
            other => other,
        }?;
        if outcome.created {
            tracing::info!(flow = %name, version = outcome.stored.version.version, "flow version stored");
        }
        Ok(outcome)
    }

    fn get_flow(
        &self,
        principal: &Principal,
        name: FlowName,
        version: Option<i32>,
    ) -> Result<StoredFlow, ServiceError> {
        Ok(self.store.read(principal.tenant(), |tx| {
            let flow = live(tx, &name, RowLock::None)?;
            let number = version.unwrap_or(flow.latest_version);
            if !(1..=flow.latest_version).contains(&number) {
                return Err(RepoError::NotFound);
            }
            let version = tx.flow_version(&name, number)?;
            Ok(StoredFlow { flow, version })
        })?)
    }

    fn list_flows(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Flow>, ServiceError> {
        paged(
            self.cursor_key()?,
            principal,
            "flows",
            &page,
            |after: Option<String>, limit| {
                let after = after
                    .map(FlowName::parse)
                    .transpose()
                    .map_err(|_| ServiceError::InvalidCursor("malformed"))?;
                Ok(self.store.read(principal.tenant(), |tx| {
                    tx.list_flows(after.as_ref(), limit)
                })?)
            },
            |flow: &Flow| flow.name.to_string(),
        )
    }

    fn delete_flow(&self, principal: &Principal, name: FlowName) -> Result<(), ServiceError> {
        require_write(principal)?;
        let at = self.clock.now();
        self.store.in_tenant(principal.tenant(), |tx| {
            let flow = live(tx, &name, RowLock::Exclusive)?;
            tx.save_flow(&Flow {
                deleted_at: Some(at),
                updated_at: at,
                ..flow
            })
        })?;
        tracing::info!(flow = %name, "flow deleted");
        Ok(())
    }
}
