//! `stonepot smoke`: an end-to-end check of a running instance, one line per step,
//! stopping at the first failure with a readable reason.

use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

fn line(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{s}");
}

fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()
}

fn explain(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused (is the server running at this address?)".into()
    } else if e.is_timeout() {
        "no answer within 5s".into()
    } else {
        e.to_string()
    }
}

type Check = fn(&Value) -> Result<(), String>;

async fn step(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    key: Option<&str>,
    check: Check,
) -> Result<(), String> {
    let mut req = c.get(format!("{base}{path}"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.map_err(|e| explain(&e))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| explain(&e))?;
    if !status.is_success() {
        let snippet: String = text.chars().take(300).collect();
        return Err(format!("HTTP {status}: {snippet}"));
    }
    let body: Value = if path == "/metrics" {
        Value::String(text)
    } else {
        serde_json::from_str(&text).map_err(|e| format!("response is not JSON: {e}"))?
    };
    check(&body)
}

fn health(v: &Value) -> Result<(), String> {
    (v["ok"] == true && v["database"] == "ok")
        .then_some(())
        .ok_or_else(|| format!("unhealthy: {v}"))
}
fn status(v: &Value) -> Result<(), String> {
    v["version"]
        .as_str()
        .map(|_| ())
        .ok_or_else(|| "no version in /api/status".into())
}
fn tenant(v: &Value) -> Result<(), String> {
    (v["id"] == "demo-restaurant")
        .then_some(())
        .ok_or_else(|| "demo-restaurant is missing (start the server with --demo)".into())
}
fn menu(v: &Value) -> Result<(), String> {
    let items = v["items"].as_array().ok_or("menu has no items")?;
    items
        .iter()
        .any(|i| i["name"] == "Margherita Pizza")
        .then_some(())
        .ok_or_else(|| "the demo menu has no Margherita Pizza".into())
}
fn metrics(v: &Value) -> Result<(), String> {
    v.as_str()
        .filter(|t| t.contains("stonepot_http_requests_total"))
        .map(|_| ())
        .ok_or_else(|| "metrics lack stonepot_http_requests_total".into())
}
fn me(v: &Value) -> Result<(), String> {
    v["tenants"]
        .as_array()
        .filter(|t| !t.is_empty())
        .map(|_| ())
        .ok_or_else(|| "the key opens no tenant".into())
}

/// Runs every check against `url`; true when all pass.
pub async fn run(url: &str, key: Option<&str>) -> bool {
    let base = url.trim_end_matches('/');
    let Some(c) = client() else {
        line("FAIL could not build an HTTP client");
        return false;
    };
    let mut steps: Vec<(&str, &str, Option<&str>, Check)> = vec![
        ("health", "/health", None, health),
        ("status", "/api/status", None, status),
        ("demo tenant", "/api/tenants/demo-restaurant", None, tenant),
        ("demo menu", "/api/tenants/demo-restaurant/menu", None, menu),
        ("metrics", "/metrics", None, metrics),
    ];
    if let Some(k) = key {
        steps.push(("api key", "/api/me", Some(k), me));
    }
    for (name, path, key, check) in steps {
        let t = Instant::now();
        match step(&c, base, path, key, check).await {
            Ok(()) => line(&format!(
                "ok    {name:<12} GET {path} ({:.1} ms)",
                t.elapsed().as_secs_f64() * 1000.0
            )),
            Err(why) => {
                line(&format!("FAIL  {name:<12} GET {base}{path}: {why}"));
                return false;
            }
        }
    }
    line(&format!("smoke: all checks passed against {base}"));
    true
}

/// True when `GET {url}/health` answers 200.
pub async fn healthy(url: &str) -> bool {
    let Some(c) = client() else { return false };
    match c
        .get(format!("{}/health", url.trim_end_matches('/')))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}
