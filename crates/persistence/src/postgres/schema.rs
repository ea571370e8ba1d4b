//! Diesel schema, written to match `migrations/`.

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        organization_id -> Uuid,
        role -> Text,
        actor -> Text,
        secret_sha256 -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    flow_executions (organization_id, id) {
        organization_id -> Uuid,
        id -> Uuid,
        flow_name -> Text,
        input -> Nullable<Jsonb>,
        modified_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        flow_version -> Nullable<Int4>,
        status -> Text,
    }
}

diesel::table! {
    flows (organization_id, name) {
        organization_id -> Uuid,
        name -> Text,
        latest_version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    flow_versions (organization_id, name, version) {
        organization_id -> Uuid,
        name -> Text,
        version -> Int4,
        source -> Text,
        document -> Jsonb,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    task_executions (organization_id, id) {
        organization_id -> Uuid,
        id -> Uuid,
        flow_execution_id -> Uuid,
        task_name -> Text,
        execution_index -> Int4,
        status -> Text,
        input -> Nullable<Jsonb>,
        output -> Nullable<Jsonb>,
        error -> Nullable<Jsonb>,
        modified_by -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        version -> Int8,
        worker_id -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        heartbeat_at -> Nullable<Timestamptz>,
        not_before -> Nullable<Timestamptz>,
        priority -> Int4,
        timeout_seconds -> Nullable<Int4>,
        retry_policy -> Nullable<Jsonb>,
        iteration -> Nullable<Int4>,
    }
}

diesel::table! {
    task_execution_events (organization_id, id) {
        organization_id -> Uuid,
        id -> Int8,
        task_execution_id -> Uuid,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    deployment_secrets (name) {
        name -> Text,
        value -> Bytea,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    api_keys,
    flow_executions,
    task_executions,
    task_execution_events,
    flows,
    flow_versions,
);
