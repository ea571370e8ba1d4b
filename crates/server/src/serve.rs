//! `flowexec serve`: open the store (refusing an unfit PostgreSQL role),
//! bootstrap a first organization if there is none, raise the open-file
//! limit and cap connections below it, bind, run until SIGINT or SIGTERM,
//! then stop accepting, close idle connections, answer requests still
//! waiting for their body with a 503 (and claims waiting for work with an
//! empty list), and finish the requests in progress. The sweeper runs
//! beside the server and stops with it.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::HttpServer;
use anyhow::Context;
use flowexec_api::{build_app, ApiServices, ApiSettings, ShutdownSignal, WorkSignal};
use flowexec_persistence::{ListenEvent, WorkListener};
use flowexec_service::Swept;

use crate::bootstrap::bootstrap;
use crate::limits::{self, RESERVED_DESCRIPTORS};
use crate::settings::Settings;
use crate::store::{api_services, open_store, sweeper, AnyStore, Backend, Purpose, Sweep};
use crate::telemetry::Telemetry;

/// The HTTP server on `listener`, not yet running, with signals left to the
/// caller; `shutdown` is what the caller triggers before stopping it.
pub fn build_server(
    settings: &Settings,
    services: ApiServices,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> anyhow::Result<Server> {
    let api = ApiSettings {
        max_body_bytes: settings.server.max_body_bytes,
        body_timeout: Duration::from_secs(settings.server.body_timeout_secs),
        shutdown,
        ..ApiSettings::default()
    };
    let workers = settings.server.worker_count();
    // Blocking threads beyond the pool's connections would only wait for one;
    // past this bound, work queues in order on the runtime instead.
    let blocking_threads = (settings.database.pool_size as usize)
        .div_ceil(workers)
        .max(1);
    let mut server = HttpServer::new(move || build_app(services.clone(), &api))
        .workers(workers)
        .worker_max_blocking_threads(blocking_threads)
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if let Some(total) = settings.server.max_connections {
        // actix counts connections per worker.
        server = server.max_connections(total.div_ceil(workers).max(1));
    }
    Ok(server.listen(listener)?.run())
}

/// Makes `work` hear of all new work. On SQLite all of it is made in this
/// process, which notifies `work`: complete at once. On PostgreSQL work
/// made through any instance is announced by `NOTIFY`: a listener (kept
/// while the answer lives) wakes this process's waiting claims, and `work`
/// is complete while it listens (`ListenEvent`); without one (the database
/// is not on this host) waiting claims poll.
pub fn listen_for_work(
    settings: &Settings,
    store: &AnyStore,
    work: &WorkSignal,
) -> Option<WorkListener> {
    match (store, settings.database.url.as_deref()) {
        (AnyStore::Postgres(_), Some(url)) => {
            let work = work.clone();
            work.set_complete(false);
            WorkListener::start(url, move |event| match event {
                ListenEvent::Listening => work.set_complete(true),
                ListenEvent::Work => work.notify(),
                ListenEvent::Lost => work.set_complete(false),
            })
        }
        (AnyStore::Postgres(_), None) => None,
        (AnyStore::Sqlite(_), _) => {
            work.set_complete(true);
            None
        }
    }
}

/// The sweeper of this process: every `interval`, fails and retries the
/// runs past their lease or time limit (see `Workers::sweep`), waking
/// waiting claims when it queued retries; ends when `shutdown` is
/// triggered (a sweep in progress finishes first).
pub async fn run_sweeper(
    sweep: Sweep,
    interval: Duration,
    shutdown: ShutdownSignal,
    work: WorkSignal,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.triggered() => return,
        }
        let sweep = sweep.clone();
        match tokio::task::spawn_blocking(move || sweep()).await {
            Ok(Ok(swept)) => {
                if swept != Swept::default() {
                    tracing::info!(
                        lease_expired = swept.lease_expired,
                        timed_out = swept.timed_out,
                        retried = swept.retried,
                        "sweep"
                    );
                }
                if swept.retried > 0 {
                    work.notify();
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "the sweep failed; trying again at the next interval")
            }
            Err(error) => {
                tracing::error!(%error, "the sweep panicked; trying again at the next interval")
            }
        }
    }
}

pub(crate) fn serve(settings: &Settings, telemetry: &Telemetry) -> anyhow::Result<()> {
    crate::telemetry::exit_on_panic();
    let limit = limits::raise_and_derive(
        settings.server.max_connections,
        RESERVED_DESCRIPTORS + u64::from(settings.database.pool_size),
    )?;
    tracing::info!(
        open_files.soft_before = limit.soft_before,
        open_files.soft = limit.soft,
        open_files.hard = limit.hard,
        max_connections = limit.max_connections,
        "open-file limit {} (was {}, hard limit {}); at most {} connections",
        limit.soft,
        limit.soft_before,
        limit.hard,
        limit.max_connections
    );
    let mut settings = settings.clone();
    settings.server.max_connections = Some(limit.max_connections);
    let settings = &settings;
    let backend = Backend::from_settings(settings)?;
    tracing::info!("store: {}", backend.describe());
    if let Backend::Sqlite { .. } = backend {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    }
    let store = open_store(settings, &backend, Purpose::Serve)?;
    if let AnyStore::Postgres(_) = store {
        tracing::info!(
            "the database role is not superuser, has no BYPASSRLS and does not own the tables"
        );
    }
    let listener = TcpListener::bind(&settings.server.bind)
        .with_context(|| format!("cannot listen on server.bind = {}", settings.server.bind))?;
    let address = listener.local_addr()?;
    if settings.bootstrap.enabled {
        bootstrap(settings, &backend, &store, address)?;
    }
    let services = api_services(settings, &store);
    // Stopped when dropped, after the server.
    let _listener = listen_for_work(settings, &store, &services.work);
    let sweep = sweeper(settings, &store);
    let interval = Duration::from_secs(settings.workers.sweep_interval_secs);
    actix_web::rt::System::new().block_on(async move {
        // Handlers first, so that a signal from the moment "listening" is
        // logged on stops the server gracefully.
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let shutdown = ShutdownSignal::new();
        let sweeping = actix_web::rt::spawn(run_sweeper(
            sweep,
            interval,
            shutdown.clone(),
            services.work.clone(),
        ));
        let server = build_server(settings, services, listener, shutdown.clone())?;
        let handle = server.handle();
        let stopping = shutdown.clone();
        tracing::info!("flowexec listening on http://{address}");
        actix_web::rt::spawn(async move {
            let signal = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(
                signal,
                "shutting down: no new connections, finishing the requests in progress"
            );
            shutdown.trigger();
            handle.stop(true).await;
        });
        server.await?;
        // Stopped with the server.
        stopping.trigger();
        let _ = sweeping.await;
        anyhow::Ok(())
    })?;
    let dropped = telemetry.dropped_lines();
    if dropped > 0 {
        tracing::warn!(
            log.dropped_lines = dropped,
            "log lines were lost (stderr closed or too slow)"
        );
    }
    tracing::info!("stopped");
    Ok(())
}
