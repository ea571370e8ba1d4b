//! The release binary against clients that do not play fair: bodies that
//! never arrive, keys that are junk, more connections than it may hold, a
//! log reader that goes away.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flowexec_testkit::TestSqlite;
use serde_json::json;
use support::binary::ServerProcess;
use support::TestResult;

/// Stalled connections held at once; raise it with
/// `FLOWEXEC_TEST_STALLED_CONNECTIONS` to measure (see docs/operations.md).
fn stalled_count() -> usize {
    std::env::var("FLOWEXEC_TEST_STALLED_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// A SQLite server in a fresh folder, bootstrapped, with its admin key.
fn server(env: &[(&str, &str)]) -> anyhow::Result<(TestSqlite, ServerProcess, String)> {
    let dir = TestSqlite::new()?;
    let server = ServerProcess::start(dir.dir(), env)?;
    let key = std::fs::read_to_string(dir.dir().join("data").join("admin-key"))?
        .trim()
        .to_owned();
    Ok((dir, server, key))
}

/// Sends the head of a POST whose body is `declared` bytes long, then only
/// `sent` of them.
fn post_head(address: &str, key: &str, declared: usize, sent: &[u8]) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "POST /flow-executions HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )?;
    stream.write_all(sent)?;
    Ok(stream)
}

/// Sends the head of a chunked `method path` request and one chunk of its
/// body, then nothing.
fn chunked_head(address: &str, key: &str, method: &str, path: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{{\r\n"
    )?;
    Ok(stream)
}

/// Reads the rest of what the server sends: it must close the connection
/// within `within` (a read timeout is an error).
fn closed_within(stream: &mut TcpStream, within: Duration) -> anyhow::Result<String> {
    stream.set_read_timeout(Some(within))?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(String::from_utf8_lossy(&rest).into_owned())
}

/// The status code of the response on `stream`, read within `within`.
fn status_within(stream: &mut TcpStream, within: Duration) -> anyhow::Result<u16> {
    stream.set_read_timeout(Some(within))?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response: {text:?}"))
}

fn get(url: &str, key: Option<&str>, within: Duration) -> anyhow::Result<reqwest::StatusCode> {
    let client = reqwest::blocking::Client::builder()
        .timeout(within)
        .build()?;
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    Ok(request.send()?.status())
}

#[test]
fn a_body_that_stalls_is_answered_408_at_the_deadline_and_its_connection_closed() -> TestResult {
    let (_dir, server, key) = server(&[("FLOWEXEC__SERVER__BODY_TIMEOUT_SECS", "1")])?;
    let started = Instant::now();
    let mut stalled = post_head(server.address(), &key, 100, b"{")?;
    assert_eq!(status_within(&mut stalled, Duration::from_secs(30))?, 408);
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The server closed the connection: reading reaches its end.
    stalled.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut rest = Vec::new();
    stalled.read_to_end(&mut rest)?;
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("\"code\":\"request_timeout\"")
            && rest.to_lowercase().contains("connection: close"),
        "{rest}"
    );
    server.stop()?;
    Ok(())
}

#[test]
fn thousands_of_stalled_bodies_leave_health_checks_and_requests_served_and_do_not_delay_shutdown(
) -> TestResult {
    let (_dir, server, key) = server(&[
        ("FLOWEXEC__SERVER__BODY_TIMEOUT_SECS", "300"),
        ("FLOWEXEC__SERVER__SHUTDOWN_TIMEOUT_SECS", "60"),
    ])?;
    let count = stalled_count();
    // This process holds the client side of every connection.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let mut stalled = Vec::with_capacity(count);
    for _ in 0..count {
        stalled.push(post_head(server.address(), &key, 100, b"{")?);
    }
    let started = Instant::now();
    assert_eq!(
        get(&server.url("/healthz"), None, Duration::from_secs(5))?,
        reqwest::StatusCode::OK
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let created = client
        .post(server.url("/flow-executions"))
        .bearer_auth(&key)
        .json(&json!({"flow_name": "f", "tasks": [{"task_name": "t"}]}))
        .send()?;
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    writeln!(
        std::io::stderr(),
        "{count} stalled connections held; /healthz and a create answered in {:?}",
        started.elapsed()
    )?;

    let (status, took, log) = server.terminate()?;
    assert!(status.success(), "exit {status:?}: {log:#?}");
    assert!(
        took < Duration::from_secs(20),
        "shutdown waited {took:?} on stalled clients (its timeout is 60 s)"
    );
    // Each stalled request was answered (503: shutting down), not dropped.
    let answered = stalled
        .iter_mut()
        .take(50)
        .filter_map(|s| status_within(s, Duration::from_secs(5)).ok())
        .filter(|status| *status == 503)
        .count();
    assert_eq!(answered, 50);
    Ok(())
}

#[test]
fn an_unauthenticated_body_is_refused_before_a_byte_of_it_is_read() -> TestResult {
    let (_dir, server, key) = server(&[("FLOWEXEC__SERVER__BODY_TIMEOUT_SECS", "300")])?;
    // Not one body byte is sent: a server that read the body before the key
    // would wait for it until the body timeout (300 s).
    let within = Duration::from_secs(20);
    for junk in ["junk", "fx_00000000000000000000000000000000_nope"] {
        let mut stream = post_head(server.address(), junk, 1024 * 1024, b"")?;
        assert_eq!(status_within(&mut stream, within)?, 401, "{junk}");
    }
    let unknown = format!("fx_{}_{}", uuid::Uuid::new_v4().simple(), "0".repeat(64));
    let mut stream = post_head(server.address(), &unknown, 1024 * 1024, b"")?;
    assert_eq!(status_within(&mut stream, within)?, 401);
    // ...and the connection is closed, the body never read.
    closed_within(&mut stream, within)?;
    // A valid key with a declared length over the limit: 413 at once.
    let mut stream = post_head(server.address(), &key, 2 * 1024 * 1024, b"")?;
    assert_eq!(status_within(&mut stream, within)?, 413);
    server.stop()?;
    Ok(())
}

#[test]
fn a_chunked_body_left_unread_or_stalled_closes_its_connection() -> TestResult {
    let (_dir, server, key) = server(&[("FLOWEXEC__SERVER__BODY_TIMEOUT_SECS", "2")])?;
    let within = Duration::from_secs(20);
    // Answered before the body is read: a junk key, a route that reads no
    // body, an unknown path. Each closes instead of waiting for the rest.
    for (key, method, path, status) in [
        ("junk", "POST", "/flow-executions", 401),
        (key.as_str(), "GET", "/healthz", 200),
        (key.as_str(), "POST", "/nowhere", 404),
    ] {
        let mut stream = chunked_head(server.address(), key, method, path)?;
        assert_eq!(
            status_within(&mut stream, within)?,
            status,
            "{method} {path}"
        );
        closed_within(&mut stream, within)?;
    }
    // Read but stalled: 408 at the body deadline, then closed.
    let mut stream = chunked_head(server.address(), &key, "POST", "/flow-executions")?;
    assert_eq!(status_within(&mut stream, within)?, 408);
    closed_within(&mut stream, within)?;
    server.stop()?;
    Ok(())
}

#[test]
fn connections_past_the_cap_wait_until_one_closes() -> TestResult {
    let (_dir, server, key) = server(&[
        ("FLOWEXEC__SERVER__WORKERS", "1"),
        ("FLOWEXEC__SERVER__MAX_CONNECTIONS", "20"),
        ("FLOWEXEC__SERVER__BODY_TIMEOUT_SECS", "3"),
    ])?;
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("at most 20 connections")),
        "{:#?}",
        server.log
    );
    let mut stalled: Vec<TcpStream> = (0..20)
        .map(|_| post_head(server.address(), &key, 100, b"{"))
        .collect::<Result<_, _>>()?;
    // Every stalled request reached the server (it answers each with a 408
    // later), so the cap is full: the next connection is not served...
    let waiting = get(&server.url("/healthz"), None, Duration::from_millis(1500));
    assert!(waiting.is_err(), "served past the cap: {waiting:?}");
    // ...until the stalled ones time out and close.
    for stream in &mut stalled {
        assert_eq!(status_within(stream, Duration::from_secs(30))?, 408);
    }
    assert_eq!(
        get(&server.url("/healthz"), None, Duration::from_secs(10))?,
        reqwest::StatusCode::OK
    );
    server.stop()?;
    Ok(())
}

#[test]
fn a_closed_stderr_neither_stops_serving_nor_stops_the_shutdown() -> TestResult {
    let (_dir, mut server, key) = server(&[])?;
    server.close_stderr();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    // Every request logs a line; all but the first few meet a closed pipe.
    for i in 0..300 {
        let status = if i % 2 == 0 {
            client.get(server.url("/healthz")).send()?.status()
        } else {
            client
                .post(server.url("/flow-executions"))
                .bearer_auth(&key)
                .json(&json!({"flow_name": "f", "tasks": [{"task_name": "t"}]}))
                .send()?
                .status()
        };
        assert!(status.is_success(), "request {i}: {status}");
    }
    let (status, took, _) = server.terminate()?;
    assert!(status.success(), "exit {status:?}");
    assert!(took < Duration::from_secs(20), "SIGTERM took {took:?}");
    Ok(())
}

#[test]
fn head_answers_like_get_without_a_body_and_405_names_the_allowed_methods() -> TestResult {
    let (_dir, server, key) = server(&[])?;
    let client = reqwest::blocking::Client::new();
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs/"] {
        let response = client.head(server.url(path)).send()?;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        assert!(response.bytes()?.is_empty(), "{path}");
    }
    let response = client
        .head(server.url(&format!("/task-executions/{}", uuid::Uuid::new_v4())))
        .bearer_auth(&key)
        .send()?;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let response = client.delete(server.url("/flow-executions")).send()?;
    assert_eq!(response.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, POST")
    );
    // A list answers HEAD like GET, too.
    let response = client
        .head(server.url("/flow-executions"))
        .bearer_auth(&key)
        .send()?;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.bytes()?.is_empty());
    let response = client.post(server.url("/healthz")).send()?;
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    server.stop()?;
    Ok(())
}
