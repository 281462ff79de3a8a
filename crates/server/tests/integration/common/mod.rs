//! Shared test helpers: a real server on 127.0.0.1:0, in-process or as the binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use stonepot_server::config::{Config, Overrides};
use stonepot_server::serve::{self, DemoKeys, Running};

pub struct TestServer {
    pub running: Running,
    pub keys: DemoKeys,
    pub dir: tempfile::TempDir,
    pub base: String,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    pub fn key(&self) -> String {
        self.keys[0].1.clone()
    }
}

/// Starts the demo in-process on SQLite in a temp dir, with extra env settings.
pub async fn start(extra: &[(&str, &str)]) -> TestServer {
    start_in(tempfile::tempdir().unwrap(), extra).await
}

/// Like [`start`], in a given directory (to restart on the same data).
pub async fn start_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> TestServer {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("DATA_DIR".into(), dir.path().display().to_string());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let flags = Overrides {
        port: Some(0),
        demo: true,
        ..Overrides::default()
    };
    let config = Config::load(None, &env, &flags).unwrap();
    let (app, keys) = serve::prepare(config).await.unwrap();
    let running = serve::start(app).await.unwrap();
    let base = format!("http://{}", running.addr);
    TestServer {
        running,
        keys,
        dir,
        base,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GETs `url` (with a bearer key when given) and parses the JSON body.
pub async fn get_json(url: impl reqwest::IntoUrl, key: Option<&str>) -> serde_json::Value {
    let mut req = client().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// POSTs `body` as JSON to `url`, with a bearer key when given.
pub async fn post_json(
    url: impl reqwest::IntoUrl,
    key: Option<&str>,
    body: &serde_json::Value,
) -> reqwest::Response {
    let mut req = client().post(url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// GETs `url`, with a bearer key when given.
pub async fn get(url: impl reqwest::IntoUrl, key: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// Sends one guest message to conversation `id` and reads its SSE reply to the end
/// (which must be `assistant_done`); returns the stream's text.
pub async fn say(s: &TestServer, key: &str, id: &str, text: &str) -> String {
    let body = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(key),
        &serde_json::json!({ "text": text }),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(body.contains("assistant_done"), "{body}");
    body
}

/// Price-locks conversation `id`'s cart (no tip) and returns the quote.
pub async fn quote(s: &TestServer, key: &str, id: &str) -> serde_json::Value {
    post_json(
        s.url(&format!("/api/conversations/{id}/quote")),
        Some(key),
        &serde_json::json!({}),
    )
    .await
    .json()
    .await
    .unwrap()
}

/// Confirms conversation `id`'s quote by `hash` (pay at counter).
pub async fn confirm(
    s: &TestServer,
    key: &str,
    id: &str,
    hash: &serde_json::Value,
) -> reqwest::Response {
    post_json(
        s.url(&format!("/api/conversations/{id}/confirm")),
        Some(key),
        &serde_json::json!({ "quoteHash": hash }),
    )
    .await
}

/// Asserts the standard error body and returns its code.
pub async fn error_code(res: reqwest::Response, status: u16) -> (String, String) {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    assert!(
        res.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(res.headers().contains_key("x-request-id"));
    let v: serde_json::Value = res.json().await.unwrap();
    let code = v["error"]["code"].as_str().expect("error.code").to_string();
    let message = v["error"]["message"]
        .as_str()
        .expect("error.message")
        .to_string();
    assert!(!message.is_empty());
    (code, message)
}

/// The `stonepot` binary started as a child process.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// Every stdout (JSON log) line so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
    /// Waits up to `within` for exit; returns the exit status.
    pub fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "stonepot did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stonepot"))
}

/// Spawns `stonepot serve --port 0 ARGS` with `env`, and waits for its "listening" line.
pub fn spawn_server(args: &[&str], env: &[(&str, &str)], cwd: &std::path::Path) -> Proc {
    let mut cmd = bin();
    cmd.arg("serve")
        .args(["--port", "0"])
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("ENVIRONMENT")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let err_buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let eb = err_buf.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eb.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let out_buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let ob = out_buf.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            ob.lock().unwrap().push_str(&format!("{line}\n"));
            if !sent
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("server did not start: {}", err_buf.lock().unwrap()));
    Proc {
        child,
        addr,
        stderr: err_buf,
        stdout: out_buf,
    }
}
