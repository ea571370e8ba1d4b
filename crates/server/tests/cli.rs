//! The `flowexec` binary: the admin commands, the refusal to serve as a role
//! that bypasses Row-Level Security, and a clean stop on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use flowexec_testkit::TestDb;
use serde_json::Value;
use support::TestResult;

fn flowexec(db: &TestDb, url: &str, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_flowexec"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("FLOWEXEC__DATABASE__URL", url)
        .env("FLOWEXEC__DATABASE__ADMIN_URL", db.admin_url())
        .env("FLOWEXEC__SERVER__BIND", "127.0.0.1:0")
        .env("FLOWEXEC__DATABASE__CONNECT_TIMEOUT_SECS", "2")
        .env("FLOWEXEC__BOOTSTRAP__ENABLED", "false")
        .env(
            "FLOWEXEC__DATA_DIR",
            std::env::temp_dir().join("flowexec-cli-tests"),
        )
        .env("FLOWEXEC__LOG__LEVEL", "info")
        .stdin(Stdio::null())
        .output()?)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The command failed, saying `says` on stderr, and did not panic.
fn fails_saying(output: &Output, says: &str) {
    let message = stderr(output);
    assert!(!output.status.success(), "it succeeded: {message}");
    assert!(message.contains(says), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn serve_refuses_a_superuser_a_bypassrls_role_and_an_owner_role() -> TestResult {
    let db = TestDb::new()?;
    let cases = [
        (db.admin_url(), "superuser"),
        (
            db.login_role_url("flowexec_test_bypass", "BYPASSRLS")?,
            "BYPASSRLS",
        ),
        (
            db.login_role_url("flowexec_test_owner", "IN ROLE flowexec_owner")?,
            "owns the flowexec tables",
        ),
    ];
    for (url, reason) in cases {
        let output = flowexec(&db, &url, &["serve"])?;
        assert!(!output.status.success(), "serve started as a {reason} role");
        let message = stderr(&output);
        assert!(
            message.contains("refusing to serve") && message.contains(reason),
            "{message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
    Ok(())
}

#[test]
fn serve_and_migrate_fail_with_one_clear_line_when_the_database_is_unreachable() -> TestResult {
    let db = TestDb::new()?;
    let unreachable = "postgres://flowexec_app@127.0.0.1:1/flowexec";
    let output = flowexec(&db, unreachable, &["serve"])?;
    fails_saying(&output, "cannot connect with database.url");

    let output = Command::new(env!("CARGO_BIN_EXE_flowexec"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env(
            "FLOWEXEC__DATABASE__ADMIN_URL",
            "postgres://postgres@127.0.0.1:1/flowexec",
        )
        .env("FLOWEXEC__DATABASE__URL", unreachable)
        .output()?;
    fails_saying(&output, "cannot connect with database.admin_url");
    Ok(())
}

#[test]
fn org_create_and_key_create_print_one_json_object_with_a_working_key() -> TestResult {
    let db = TestDb::new()?;
    let output = flowexec(&db, &db.app_url(), &["org", "create", "Acme Inc", "--json"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let org: Value = serde_json::from_slice(&output.stdout)?;
    let key = org["api_key"].as_str().unwrap_or_default();
    assert!(key.starts_with("fx_") && key.len() > 64, "{org}");
    assert!(
        org["key_id"].is_string() && org["organization_id"].is_string(),
        "{org}"
    );
    let org_id = org["organization_id"].as_str().unwrap_or_default();

    let output = flowexec(
        &db,
        &db.app_url(),
        &[
            "key", "create", "--org", org_id, "--role", "worker", "--json",
        ],
    )?;
    assert!(output.status.success(), "{}", stderr(&output));
    let worker: Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(worker["organization_id"], org["organization_id"]);
    assert_eq!(worker["role"], "worker");
    assert_ne!(worker["api_key"], org["api_key"]);

    for (args, complaint) in [
        (
            vec!["key", "create", "--org", org_id, "--role", "root"],
            "--role must be one of",
        ),
        (
            vec!["key", "create", "--org", "nope", "--role", "read"],
            "--org must be a UUID",
        ),
        (
            vec![
                "key", "create", "--org", org_id, "--role", "read", "--actor", "bob",
            ],
            "--actor must be",
        ),
        (
            vec![
                "key",
                "create",
                "--org",
                "123e4567-e89b-12d3-a456-426614174000",
                "--role",
                "read",
            ],
            "no organization",
        ),
        (
            vec!["org", "create", " "],
            "organization name must not be empty",
        ),
    ] {
        let output = flowexec(&db, &db.app_url(), &args)?;
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&output).contains(complaint),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty());
    }
    Ok(())
}

#[test]
fn key_list_shows_no_secret_and_key_revoke_keeps_the_last_admin_key() -> TestResult {
    let db = TestDb::new()?;
    let run = |args: &[&str]| flowexec(&db, &db.app_url(), args);
    let output = run(&["org", "create", "acme", "--json"])?;
    let org: Value = serde_json::from_slice(&output.stdout)?;
    let org_id = org["organization_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let admin_id = org["key_id"].as_str().unwrap_or_default().to_owned();
    let output = run(&[
        "key", "create", "--org", &org_id, "--role", "read", "--json",
    ])?;
    let reader: Value = serde_json::from_slice(&output.stdout)?;
    let reader_key = reader["api_key"].as_str().unwrap_or_default().to_owned();

    let output = run(&["key", "list", "--org", &org_id, "--json"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(
        reader_key
            .trim_start_matches("fx_")
            .split('_')
            .nth(1)
            .unwrap_or("x")
    ));

    // By the key itself or by its id.
    let output = run(&["key", "revoke", &reader_key])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let revoked: Value = serde_json::from_slice(&output.stdout)?;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let output = run(&["key", "revoke", &admin_id])?;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("last active admin key"),
        "{}",
        stderr(&output)
    );
    let output = run(&["key", "revoke", "123e4567-e89b-12d3-a456-426614174000"])?;
    assert!(
        stderr(&output).contains("no active key"),
        "{}",
        stderr(&output)
    );
    let output = run(&["key", "list", "--org", &org_id])?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("revoked") && text.contains("active"),
        "{text}"
    );
    Ok(())
}

#[test]
fn migrating_postgresql_without_an_admin_url_is_refused_clearly() -> TestResult {
    let db = TestDb::new()?;
    let output = Command::new(env!("CARGO_BIN_EXE_flowexec"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env_remove("FLOWEXEC__DATABASE__ADMIN_URL")
        .env("FLOWEXEC__DATABASE__URL", db.app_url())
        .stdin(Stdio::null())
        .output()?;
    fails_saying(&output, "database.admin_url is required");
    Ok(())
}

#[test]
fn migrate_is_idempotent_on_a_migrated_database() -> TestResult {
    let db = TestDb::new()?;
    let output = flowexec(&db, &db.app_url(), &["migrate"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("schema is up to date"));
    Ok(())
}

#[test]
fn serve_as_the_app_role_starts_and_stops_cleanly_on_sigterm() -> TestResult {
    let db = TestDb::new()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowexec"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("FLOWEXEC__DATABASE__URL", db.app_url())
        .env("FLOWEXEC__SERVER__BIND", "127.0.0.1:0")
        .env("FLOWEXEC__BOOTSTRAP__ENABLED", "false")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(
        child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?,
    )
    .lines();
    let address = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("server exited before listening"))??;
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_owned();
        }
    };
    let health = reqwest::blocking::get(format!("http://{address}/readyz"))?;
    assert_eq!(health.status(), reqwest::StatusCode::OK);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let exit = child.wait()?;
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(exit.success(), "exit {exit:?}; log: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("SIGTERM")), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    Ok(())
}

#[test]
fn org_list_shows_every_organization_names_are_unique_and_each_command_names_its_store(
) -> TestResult {
    let db = TestDb::new()?;
    for name in ["acme", "globex"] {
        let output = flowexec(&db, &db.app_url(), &["org", "create", name])?;
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("flowexec: store: PostgreSQL at"),
            "{}",
            stderr(&output)
        );
    }
    let output = flowexec(&db, &db.app_url(), &["org", "create", "acme"])?;
    fails_saying(&output, "an organization named \"acme\" already exists");

    let output = flowexec(&db, &db.app_url(), &["org", "list", "--json"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Value = serde_json::from_slice(&output.stdout)?;
    let names: Vec<&str> = listed
        .as_array()
        .map(|all| all.iter().filter_map(|o| o["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["acme", "globex"]);
    let output = flowexec(&db, &db.app_url(), &["org", "list"])?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.lines().count() == 2 && text.contains("globex"),
        "{text}"
    );

    // Without the admin URL the app role cannot see across organizations.
    let output = support::binary::command()
        .args(["org", "list"])
        .env("FLOWEXEC__DATABASE__URL", db.app_url())
        .output()?;
    fails_saying(&output, "database.admin_url is required");
    Ok(())
}
