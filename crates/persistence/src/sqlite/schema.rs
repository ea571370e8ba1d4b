//! Diesel schema for SQLite, written to match `migrations/sqlite/`.

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        organization_id -> Text,
        role -> Text,
        actor -> Text,
        secret_sha256 -> Binary,
        created_at -> TimestamptzSqlite,
        revoked_at -> Nullable<TimestamptzSqlite>,
    }
}

diesel::table! {
    flow_executions (organization_id, id) {
        organization_id -> Text,
        id -> Text,
        flow_name -> Text,
        input -> Nullable<Text>,
        modified_by -> Text,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
        flow_version -> Nullable<Integer>,
        status -> Text,
    }
}

diesel::table! {
    flows (organization_id, name) {
        organization_id -> Text,
        name -> Text,
        latest_version -> Integer,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
        deleted_at -> Nullable<TimestamptzSqlite>,
    }
}

diesel::table! {
    flow_versions (organization_id, name, version) {
        organization_id -> Text,
        name -> Text,
        version -> Integer,
        source -> Text,
        document -> Text,
        created_by -> Text,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    task_executions (organization_id, id) {
        organization_id -> Text,
        id -> Text,
        flow_execution_id -> Text,
        task_name -> Text,
        execution_index -> Integer,
        status -> Text,
        input -> Nullable<Text>,
        output -> Nullable<Text>,
        error -> Nullable<Text>,
        modified_by -> Text,
        created_at -> TimestamptzSqlite,
        updated_at -> TimestamptzSqlite,
        started_at -> Nullable<TimestamptzSqlite>,
        completed_at -> Nullable<TimestamptzSqlite>,
        version -> BigInt,
        worker_id -> Nullable<Text>,
        lease_expires_at -> Nullable<TimestamptzSqlite>,
        heartbeat_at -> Nullable<TimestamptzSqlite>,
        not_before -> Nullable<TimestamptzSqlite>,
        priority -> Integer,
        timeout_seconds -> Nullable<Integer>,
        retry_policy -> Nullable<Text>,
        iteration -> Nullable<Integer>,
    }
}

diesel::table! {
    task_execution_events (id) {
        id -> BigInt,
        organization_id -> Text,
        task_execution_id -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        actor -> Text,
        reason -> Nullable<Text>,
        created_at -> TimestamptzSqlite,
    }
}

diesel::table! {
    deployment_secrets (name) {
        name -> Text,
        value -> Binary,
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
