//! A panic in a server thread ends the process with a failure status, so a
//! supervisor restarts it, instead of leaving a process that accepts
//! connections and answers nothing.
//!
//! The server under test runs in a child process: this same test binary,
//! started again with `FLOWEXEC_PANIC_CHILD` set, which installs the hook
//! `flowexec serve` installs and serves the real application plus one route
//! that panics (no such route exists in the product).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{web, HttpServer};
use flowexec_api::{build_app, ApiSettings};
use flowexec_server::store::{api_services, open_store, Backend, Purpose};
use flowexec_testkit::TestSqlite;
use support::TestResult;

const CHILD: &str = "FLOWEXEC_PANIC_CHILD";

async fn a_buggy_handler() -> &'static str {
    panic!("a bug in a handler")
}

/// The child: the application on a free port, its address on stdout.
fn serve_with_a_panicking_route() -> TestResult {
    flowexec_server::telemetry::exit_on_panic();
    let dir = TestSqlite::new()?;
    let db = support::Database::Sqlite(dir);
    let settings = support::settings(&db);
    let store = open_store(
        &settings,
        &Backend::from_settings(&settings)?,
        Purpose::Serve,
    )?;
    let services = api_services(&settings, &store);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // On its own line: the test harness may have begun one.
    writeln!(
        std::io::stdout(),
        "\nlistening-at={}",
        listener.local_addr()?
    )?;
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            build_app(services.clone(), &ApiSettings::default())
                .route("/test-panic", web::get().to(a_buggy_handler))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run()
        .await
    })?;
    Ok(())
}

#[test]
fn a_panic_in_a_request_handler_ends_the_process_with_a_failure_status() -> TestResult {
    if std::env::var_os(CHILD).is_some() {
        return serve_with_a_panicking_route();
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "a_panic_in_a_request_handler_ends_the_process_with_a_failure_status",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let address = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening-at=").map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("the child did not start"))?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    assert!(client
        .get(format!("http://{address}/healthz"))
        .send()?
        .status()
        .is_success());
    let answer = client.get(format!("http://{address}/test-panic")).send();
    assert!(
        answer.is_err(),
        "the panicking request was answered: {answer:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("the process lived on after the panic");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "exit {status:?}");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    assert!(stderr.contains("a bug in a handler"), "{stderr}");
    assert!(
        stderr.contains("exiting so that a supervisor can restart"),
        "{stderr}"
    );
    Ok(())
}
