//! The list queries, written once for both stores as macros over the
//! schema module each store names `te` (task executions) and `fe` (flow
//! executions), and its `newer` alias of `te`. The column types differ
//! between the stores (PostgreSQL's `uuid` and `timestamptz`, SQLite's
//! text), so each call passes how an id becomes a column value.

/// Applies a [`TaskExecutionFilter`](flowexec_domain::TaskExecutionFilter)
/// to a boxed query over `te` (a plain one, or one grouped for counts).
macro_rules! task_filters {
    ($query:expr, $org:expr, $filter:expr, $id:expr) => {{
        use flowexec_domain::{Attempts, TaskStatus};
        let filter = $filter;
        let mut query = $query.filter(te::organization_id.eq($org));
        if let Some(flow) = filter.flow_execution_id {
            query = query.filter(te::flow_execution_id.eq($id(flow.into_uuid())));
        }
        if let Some(name) = &filter.task_name {
            query = query.filter(te::task_name.eq(name.as_str().to_owned()));
        }
        let statuses: Vec<&'static str> = filter
            .shown_statuses()
            .into_iter()
            .map(TaskStatus::as_str)
            .collect();
        query = query.filter(te::status.eq_any(statuses));
        if let Some(actor) = filter.modified_by {
            query = query.filter(te::modified_by.eq(actor.to_string()));
        }
        if let Some(after) = filter.created.after {
            query = query.filter(te::created_at.gt(after));
        }
        if let Some(before) = filter.created.before {
            query = query.filter(te::created_at.lt(before));
        }
        if let Some(after) = filter.updated.after {
            query = query.filter(te::updated_at.gt(after));
        }
        if let Some(before) = filter.updated.before {
            query = query.filter(te::updated_at.lt(before));
        }
        if filter.attempts == Attempts::Latest {
            query = query.filter(latest_attempt!());
        }
        query
    }};
}

/// The condition that a row of `te` is the latest attempt of its task (of
/// its iteration, for a `for_each` task): no attempt of the same one has a
/// higher `execution_index` (`newer` is the store's alias of `te`).
macro_rules! latest_attempt {
    () => {
        diesel::dsl::not(diesel::dsl::exists(
            newer
                .filter(newer.field(te::organization_id).eq(te::organization_id))
                .filter(newer.field(te::flow_execution_id).eq(te::flow_execution_id))
                .filter(newer.field(te::task_name).eq(te::task_name))
                // The same iteration of a for_each task (or none).
                .filter(
                    newer.field(te::iteration).eq(te::iteration).or(newer
                        .field(te::iteration)
                        .is_null()
                        .and(te::iteration.is_null())),
                )
                .filter(newer.field(te::execution_index).gt(te::execution_index)),
        ))
    };
}

/// Applies a [`FlowExecutionFilter`](flowexec_domain::FlowExecutionFilter)
/// to a boxed query over `fe`.
macro_rules! flow_filters {
    ($query:expr, $org:expr, $filter:expr) => {{
        let filter = $filter;
        let mut query = $query.filter(fe::organization_id.eq($org));
        if let Some(name) = &filter.flow_name {
            query = query.filter(fe::flow_name.eq(name.as_str().to_owned()));
        }
        if let Some(after) = filter.created.after {
            query = query.filter(fe::created_at.gt(after));
        }
        if let Some(before) = filter.created.before {
            query = query.filter(fe::created_at.lt(before));
        }
        query
    }};
}

/// Orders a list by `(created_at, id)` in the query's order, starts it
/// strictly after its position, and limits it. The `>=`/`<=` on
/// `created_at` bounds the index scan; the rest drops the rows of the same
/// instant up to the position. Never an offset.
macro_rules! keyset {
    ($query:expr, $created_at:expr, $row_id:expr, $list:expr, $id:expr) => {{
        use flowexec_domain::Order;
        let list = $list;
        let mut query = $query;
        match (list.order, list.after) {
            (Order::OldestFirst, Some(p)) => {
                query = query
                    .filter($created_at.ge(p.created_at))
                    .filter($created_at.gt(p.created_at).or($row_id.gt($id(p.id))));
            }
            (Order::NewestFirst, Some(p)) => {
                query = query
                    .filter($created_at.le(p.created_at))
                    .filter($created_at.lt(p.created_at).or($row_id.lt($id(p.id))));
            }
            (_, None) => {}
        }
        let query = match list.order {
            Order::OldestFirst => query.order(($created_at.asc(), $row_id.asc())),
            Order::NewestFirst => query.order(($created_at.desc(), $row_id.desc())),
        };
        query.limit(i64::try_from(list.limit).unwrap_or(i64::MAX))
    }};
}

/// `task_executions.status` among `statuses`, written with the statuses as
/// literals (never data: the domain's fixed names), so that a partial
/// index whose condition is the same (`status = 'failed'`, `status IN
/// ('queued', 'running', 'stale')`) is seen to serve it: neither store
/// proves that from a bound parameter.
pub(crate) fn status_among(
    statuses: &[flowexec_domain::TaskStatus],
) -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    let names: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let condition = match names.as_slice() {
        [] => "false".to_owned(),
        [one] => format!("task_executions.status = {one}"),
        many => format!("task_executions.status IN ({})", many.join(", ")),
    };
    diesel::dsl::sql::<diesel::sql_types::Bool>(&condition)
}
