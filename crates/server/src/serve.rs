//! `flowexec serve`: connect, refuse an unfit role, bind, run until SIGINT or
//! SIGTERM, then stop accepting and finish in-flight requests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::HttpServer;
use anyhow::Context;
use flowexec_api::{build_app, ApiSettings};
use flowexec_persistence::{inspect_role, PgStore, PoolSettings, RoleReport};
use flowexec_service::{ExecutionService, Service, ServiceSettings};

use crate::settings::Settings;

/// The pool, as the role in `database.url`.
pub fn connect_store(settings: &Settings) -> anyhow::Result<PgStore> {
    PgStore::connect(
        &settings.database.url,
        &PoolSettings {
            max_size: settings.database.pool_size,
            connection_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
        },
    )
    .with_context(|| {
        format!(
            "cannot connect with database.url ({})",
            redact(&settings.database.url)
        )
    })
}

/// Refuses a role that could bypass Row-Level Security, or a database that
/// has not been migrated.
pub fn check_role(store: &PgStore) -> anyhow::Result<RoleReport> {
    let report = store.with_connection(inspect_role)?;
    if let Some(reason) = report.refusal() {
        anyhow::bail!("refusing to serve: {reason}");
    }
    anyhow::ensure!(
        report.schema_ready,
        "the database has no flowexec schema: run `flowexec migrate` first"
    );
    Ok(report)
}

/// The use cases over the store, as the API holds them.
pub fn service(settings: &Settings, store: PgStore) -> Arc<dyn ExecutionService> {
    Arc::new(Service::with_settings(
        store,
        &ServiceSettings {
            key_cache_ttl: Duration::from_secs(settings.auth.key_cache_secs),
            ..ServiceSettings::default()
        },
    ))
}

/// The HTTP server on `listener`, not yet running, with signals left to the
/// caller.
pub fn build_server(
    settings: &Settings,
    service: Arc<dyn ExecutionService>,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let api = ApiSettings {
        max_body_bytes: settings.server.max_body_bytes,
    };
    let workers = settings
        .server
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    // Blocking threads beyond the pool's connections would only wait for one;
    // past this bound, work queues in order on the runtime instead.
    let blocking_threads = (settings.database.pool_size as usize)
        .div_ceil(workers)
        .max(1);
    let server = HttpServer::new(move || build_app(service.clone(), &api))
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)?;
    Ok(server.run())
}

pub(crate) fn serve(settings: &Settings) -> anyhow::Result<()> {
    let store = connect_store(settings)?;
    let role = check_role(&store)?;
    let listener = TcpListener::bind(&settings.server.bind)
        .with_context(|| format!("cannot listen on server.bind = {}", settings.server.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(
        database = %redact(&settings.database.url),
        database.role = %role.name,
        "connected; the role is not superuser, has no BYPASSRLS and does not own the tables"
    );
    tracing::info!("flowexec listening on http://{address}");

    let shared = service(settings, store);
    actix_web::rt::System::new().block_on(async move {
        let server = build_server(settings, shared, listener)?;
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            let signal = shutdown_signal().await;
            tracing::info!(
                signal,
                "shutting down: no new connections, finishing in-flight requests"
            );
            handle.stop(true).await;
        });
        server.await?;
        anyhow::Ok(())
    })?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// The URL without its password, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        Ok(parsed) => parsed.into(),
        Err(_) => "<not a URL>".to_owned(),
    }
}
