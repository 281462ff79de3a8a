//! The `stonepot` binary itself: signals, subcommands, production refusals, smoke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{bin, spawn_server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn get(base: &str, path: &str) -> (u16, String) {
    let url = format!("{base}{path}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let res = reqwest::get(&url).await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(
        &["--demo"],
        &[
            ("STONEPOT_DEMO_KEY", "sp_shutdown"),
            ("SHUTDOWN_GRACE", "10s"),
        ],
        dir.path(),
    );
    let (status, menu) = get(&p.base(), "/api/tenants/demo-restaurant/menu");
    assert_eq!(status, 200);

    // Start a PUT whose body arrives slowly: headers and half the body now…
    let body = menu.as_bytes();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut s = TcpStream::connect(p.addr).unwrap();
    write!(
        s,
        "PUT /api/tenants/demo-restaurant/menu HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sp_shutdown\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(first).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // …then SIGTERM while it is in flight.
    p.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    // New connections are refused once draining has begun.
    assert!(
        TcpStream::connect_timeout(&p.addr, Duration::from_millis(500)).is_err()
            || get_fails(&p.base()),
        "the server still accepts new work after SIGTERM"
    );
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited before finishing"
    );
    s.write_all(rest).unwrap();
    s.flush().unwrap();
    let mut response = String::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let status = p.wait(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

fn get_fails(base: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap()
            .get(format!("{base}/health"))
            .send()
            .await
            .is_err()
    })
}

#[test]
fn shutdown_is_bounded_when_a_client_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(
        &["--demo"],
        &[
            ("STONEPOT_DEMO_KEY", "sp_stall"),
            ("SHUTDOWN_GRACE", "500ms"),
        ],
        dir.path(),
    );
    let mut s = TcpStream::connect(p.addr).unwrap();
    write!(
        s,
        "PUT /api/tenants/demo-restaurant/menu HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sp_stall\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    p.signal("INT");
    let status = p.wait(Duration::from_secs(10));
    assert!(status.success());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn production_refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .env("ENVIRONMENT", "production")
        .env_remove("SIGNING_KEY")
        .env("JWT_SECRET", "jwt-secret-value")
        .env("DATABASE_URL", "sqlite:///var/lib/stonepot-test/never.db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("SIGNING_KEY is required"), "{err}");
    assert!(!err.contains("jwt-secret-value"));

    let out = bin()
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .env("ENVIRONMENT", "production")
        .env("SIGNING_KEY", "s")
        .env("JWT_SECRET", "j")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/x.db", std::env::temp_dir().display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn development_generates_secrets_and_says_so_without_leaking_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn_server(&[], &[("OPENAI_API_KEY", "sk-very-secret-123")], dir.path());
    let (status, _) = get(&p.base(), "/health");
    assert_eq!(status, 200);
    p.signal("TERM");
    p.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    let log = p.stdout.lock().unwrap().clone();
    let err = p.stderr.lock().unwrap().clone();
    assert!(log.contains("generated an ephemeral SIGNING_KEY"), "{log}");
    assert!(log.contains("generated an ephemeral JWT_SECRET"));
    assert!(!log.contains("sk-very-secret-123") && !err.contains("sk-very-secret-123"));
    // Every line is JSON; request lines carry the request id; shutdown is logged.
    let mut saw_request = false;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
        if v["message"] == "request" {
            assert!(v["span"]["request_id"].as_str().is_some(), "{line}");
            saw_request = true;
        }
    }
    assert!(saw_request);
    assert!(log.contains("\"stopped\""), "{log}");
}

#[test]
fn backup_then_restore_round_trip_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_server(
        &["--demo"],
        &[("STONEPOT_DEMO_KEY", "sp_backup")],
        dir.path(),
    );
    let (_, before) = get(&p.base(), "/api/tenants/demo-restaurant/menu");

    // Online backup while the server runs.
    let out = bin()
        .args(["backup", "--out", "backups/b1.db"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up"));

    // Change the menu through the API.
    let mut menu: serde_json::Value = serde_json::from_str(&before).unwrap();
    menu["items"].as_array_mut().unwrap().truncate(1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .put(format!("{}/api/tenants/demo-restaurant/menu", p.base()))
            .bearer_auth("sp_backup")
            .json(&menu)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let (_, changed) = get(&p.base(), "/api/tenants/demo-restaurant/menu");
    assert_ne!(changed, before);

    // Restore (also online) and compare what the API serves.
    let out = bin()
        .args(["restore", "--from", "backups/b1.db"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, after) = get(&p.base(), "/api/tenants/demo-restaurant/menu");
    assert_eq!(after, before);

    // Refusals are clear.
    let out = bin()
        .args(["backup", "--out", "backups/b1.db"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = bin()
        .args(["restore", "--from", "nope.db"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn migrate_creates_the_default_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("migrate")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/stonepot.db").exists());
}

#[test]
fn smoke_passes_against_the_demo_and_fails_clearly_against_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_server(
        &["--demo"],
        &[("STONEPOT_DEMO_KEY", "sp_smoke")],
        dir.path(),
    );
    let out = bin()
        .args(["smoke", "--url", &p.base(), "--key", "sp_smoke"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(stdout.contains("api key"));
    let addr = p.addr;
    drop(p);

    let out = bin()
        .args(["smoke", "--url", &format!("http://{addr}")])
        .env_remove("STONEPOT_DEMO_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("FAIL  health"), "{stdout}");
    assert!(stdout.contains("connection refused"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "stops at the first failure");

    let out = bin()
        .args(["health", "--url", &format!("http://{addr}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn print_default_config_is_the_commented_file() {
    let out = bin().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[server]") && text.contains("# "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stonepot.toml");
    std::fs::write(&path, &text).unwrap();
    // The printed file is accepted by --config as it is.
    let p = spawn_server(&["--config", path.to_str().unwrap()], &[], dir.path());
    assert_eq!(get(&p.base(), "/health").0, 200);
}
