//! Roles and tenant isolation on every endpoint. The endpoints are enumerated from the
//! OpenAPI document, each with the least role its `security` requirement names, so a
//! route added without saying who may call it fails here, and a route that says it is
//! tenant-owned is tried with another tenant's keys, tokens and sessions, and with a
//! role too weak for it. Then each is called with the right credential to show the
//! refusals came from access checks and not from a broken request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, client, error_code, get, post_json, start};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use stonepot_domain::TenantId;
use stonepot_server::auth::{Identity, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ADMIN: &str = "access-admin-token";
const JWT_SECRET: &str = "access-test-jwt-secret-0123456789abcdef";
const VICTIM: &str = "demo-restaurant";
const OTHER: &str = "demo-finance";

/// The operations that need no credential at all; anything else public is a finding.
const PUBLIC: &[&str] = &[
    "GET /health",
    "GET /metrics",
    "GET /api/status",
    "GET /api/session/stats",
    "GET /api/tenants/{tenant}",
    "GET /api/tenants/{tenant}/menu",
    "GET /api/tenants/{tenant}/menu/items/{item}",
    "GET /checkout/success",
    "GET /checkout/cancel",
    "GET /checkout/{session}/qr",
    "POST /webhooks/stripe",
];

/// Operations whose tenant is in the body rather than the path.
const TENANT_IN_BODY: &[&str] = &[
    "POST /api/restaurant/sessions",
    "POST /conversation/{id}/init",
];

/// WebSocket endpoints (tried with a real handshake).
const SOCKETS: &[&str] = &["/conversation/{id}/display", "/ws/restaurant/{id}"];

fn token_for(s: &TestServer, role: Role, tenant: Option<&str>) -> String {
    let who = Identity {
        subject: format!("{}-user", role.as_str()),
        role,
        tenant: tenant.map(|t| TenantId::new(t).unwrap()),
        issuer: "stonepot".into(),
    };
    s.running
        .app
        .verifier
        .issue(&who, jiff::Timestamp::now().as_second(), 600)
        .unwrap()
}

async fn create_key(s: &TestServer, tenant: &str, role: &str, by: &str) -> (String, String) {
    let res = post_json(
        s.url(&format!("/api/admin/tenants/{tenant}/keys")),
        Some(by),
        &json!({"label": format!("{role} key"), "role": role}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    )
}

/// Everything one tenant holds for the test: keys of each role, tokens, a session
/// with its guest token, and an order.
struct Party {
    operator: String,
    staff: String,
    operator_jwt: String,
    staff_jwt: String,
    guest_jwt: String,
    session: String,
    session_token: String,
}

async fn party(s: &TestServer, tenant: &str) -> Party {
    let (_, operator) = create_key(s, tenant, "operator", ADMIN).await;
    let (_, staff) = create_key(s, tenant, "staff", &operator).await;
    let session = format!("access-{tenant}");
    let v: Value = post_json(
        s.url(&format!("/conversation/{session}/init")),
        Some(&staff),
        &json!({"tenantId": tenant}),
    )
    .await
    .json()
    .await
    .unwrap();
    let events = v["eventsUrl"].as_str().expect("eventsUrl");
    let session_token = events.split("token=").nth(1).unwrap().to_string();
    Party {
        operator_jwt: token_for(s, Role::Operator, Some(tenant)),
        staff_jwt: token_for(s, Role::Staff, Some(tenant)),
        guest_jwt: token_for(s, Role::Guest, Some(tenant)),
        operator,
        staff,
        session,
        session_token,
    }
}

/// One documented operation and the least role it accepts (`None`: public).
struct Op {
    method: String,
    path: String,
    role: Option<Role>,
    guest_token: bool,
}

fn operations() -> Vec<Op> {
    let doc = serde_json::to_value(stonepot_server::app::App::openapi()).unwrap();
    let mut ops = Vec::new();
    let mut unstated = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let Some(reqs) = op["security"].as_array().filter(|r| !r.is_empty()) else {
                unstated.push(format!("{} {path}", method.to_uppercase()));
                continue;
            };
            let mut least: Option<Role> = None;
            let mut public = false;
            let mut guest_token = false;
            for r in reqs {
                let r = r.as_object().unwrap();
                if r.is_empty() {
                    public = true;
                }
                for (scheme, scopes) in r {
                    guest_token |= scheme == "session_token";
                    for scope in scopes.as_array().unwrap() {
                        let role = Role::parse(scope.as_str().unwrap())
                            .unwrap_or_else(|| panic!("{path}: unknown role {scope}"));
                        least = Some(least.map_or(role, |l| l.min(role)));
                    }
                }
            }
            if !public {
                assert!(
                    least.is_some(),
                    "{method} {path}: a requirement without a role"
                );
            }
            ops.push(Op {
                method: method.to_uppercase(),
                path: path.clone(),
                role: if public { None } else { least },
                guest_token,
            });
        }
    }
    assert!(
        unstated.is_empty(),
        "operations that do not state the role they need: {unstated:?}"
    );
    ops
}

/// The path with its parameters filled from the victim's data.
#[derive(Clone)]
struct Fill {
    session: String,
    order: String,
    item: String,
    section: String,
    key_id: String,
}

fn fill(path: &str, f: &Fill) -> String {
    path.replace("{tenant}", VICTIM)
        .replace("{id}", &f.session)
        .replace("{order}", &f.order)
        .replace("{item}", &f.item)
        .replace("{section}", &f.section)
        .replace("{key}", &f.key_id)
        .replace("{date}", "2026-01-05")
        .replace("{line}", "l1")
}

fn body_for(op: &Op) -> Value {
    match (op.method.as_str(), op.path.as_str()) {
        ("POST", "/api/restaurant/sessions") | ("POST", "/conversation/{id}/init") => {
            json!({"tenantId": VICTIM})
        }
        ("POST", "/conversation/{id}/update")
        | ("POST", "/api/restaurant/sessions/{id}/display") => {
            json!({"type": "message", "data": {"role": "assistant", "text": "hijacked"}})
        }
        _ => json!({}),
    }
}

/// How a credential is presented.
#[derive(Clone, Copy)]
enum Cred<'a> {
    None,
    Bearer(&'a str),
    Query(&'a str),
}

/// Calls an HTTP operation; the status and, for refusals, the error code.
async fn call(s: &TestServer, op: &Op, url_path: &str, cred: Cred<'_>) -> (u16, String) {
    let mut url = s.url(url_path);
    if op.path == "/ui/conversation" {
        url = format!("{url}?session=access-{VICTIM}&tenant={VICTIM}&category=restaurant");
    }
    let mut req = client().request(Method::from_bytes(op.method.as_bytes()).unwrap(), &url);
    match cred {
        Cred::None => {}
        Cred::Bearer(b) => req = req.bearer_auth(b),
        Cred::Query(t) => req = req.query(&[("token", t)]),
    }
    if matches!(op.method.as_str(), "POST" | "PUT" | "PATCH") {
        req = req.json(&body_for(op));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 401 || status == 403 {
        let v: Value = res.json().await.unwrap_or(Value::Null);
        return (
            status,
            v["error"]["code"].as_str().unwrap_or("").to_string(),
        );
    }
    (status, String::new())
}

/// Opens a socket; `Ok(true)` when the server keeps it open (first frame is not a
/// 4401 close), `Ok(false)` when it closes with 4401, `Err(status)` on a refused
/// handshake.
async fn socket(s: &TestServer, url_path: &str, cred: Cred<'_>) -> Result<bool, u16> {
    let mut url = format!("{}{url_path}", s.base.replacen("http", "ws", 1));
    if let Cred::Query(t) = cred {
        url = format!("{url}?token={t}");
    }
    let mut req = url.into_client_request().unwrap();
    if let Cred::Bearer(b) = cred {
        req.headers_mut()
            .insert("authorization", format!("Bearer {b}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("{url_path}: {e}"),
        Ok((mut ws, _)) => {
            // A refused display socket is closed at once; an accepted one sends its
            // snapshot or (the chat socket) waits for the guest.
            let first = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next()).await;
            Ok(match first {
                Ok(Some(Ok(Message::Close(Some(frame))))) => u16::from(frame.code) != 4401,
                Ok(Some(Ok(_))) | Err(_) => true,
                Ok(_) => false,
            })
        }
    }
}

/// What the victim holds, read with its operator key, to show refused writes changed
/// nothing.
async fn victim_state(s: &TestServer, p: &Party) -> Value {
    let mut out = json!({});
    for path in [
        "/api/tenants/demo-restaurant/menu",
        "/api/tenants/demo-restaurant/orders",
        "/api/tenants/demo-restaurant/agent",
        "/api/tenants/demo-restaurant/close-settings",
        "/api/admin/tenants/demo-restaurant/keys",
        "/api/admin/tenants/demo-restaurant/theme",
        "/conversation/access-demo-restaurant/state",
    ] {
        let mut v: Value = get(s.url(path), Some(&p.operator))
            .await
            .json()
            .await
            .unwrap();
        // Connected-display counts move as the test opens sockets.
        if let Some(o) = v.as_object_mut() {
            o.remove("connected");
            o.remove("displays");
        }
        out[path] = v;
    }
    out
}

#[tokio::test]
async fn every_tenant_endpoint_refuses_other_tenants_and_weaker_roles() {
    // Hundreds of calls from one address: the rate limit is not what is under test.
    let s = start(&[
        ("THEME_API_TOKEN", ADMIN),
        ("JWT_SECRET", JWT_SECRET),
        ("RATE_LIMIT_REQUESTS", "100000"),
    ])
    .await;
    let victim = party(&s, VICTIM).await;
    let other = party(&s, OTHER).await;
    // A spare key of the victim's for the revocation endpoint to aim at.
    let (spare_id, spare) = create_key(&s, VICTIM, "staff", &victim.operator).await;

    // The victim's data: an order through a conversation, a menu item and section.
    let conv: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(&victim.staff),
        &json!({"tenantId": VICTIM}),
    )
    .await
    .json()
    .await
    .unwrap();
    let conv_id = conv["sessionId"].as_str().unwrap().to_string();
    common::say(&s, &victim.staff, &conv_id, "a margherita").await;
    let q = common::quote(&s, &victim.staff, &conv_id).await;
    let order: Value = common::confirm(&s, &victim.staff, &conv_id, &q["hash"])
        .await
        .json()
        .await
        .unwrap();
    let menu: Value = get(s.url("/api/tenants/demo-restaurant/menu"), None)
        .await
        .json()
        .await
        .unwrap();
    let f = Fill {
        session: String::new(),
        order: order["id"].as_str().expect("order id").to_string(),
        item: menu["items"][0]["id"].as_str().unwrap().to_string(),
        section: menu["sections"][0]["id"].as_str().unwrap().to_string(),
        key_id: spare_id.clone(),
    };
    // Conversation routes act on the order's conversation, display routes on the
    // display session; both belong to the victim.
    let session_for = |path: &str| {
        if path.starts_with("/api/conversations/") || path.starts_with("/ws/restaurant/") {
            conv_id.clone()
        } else {
            victim.session.clone()
        }
    };
    let conv_token = conv["token"].as_str().unwrap().to_string();
    let victim_token_for = |path: &str| {
        if path.starts_with("/api/conversations/") || path.starts_with("/ws/restaurant/") {
            conv_token.clone()
        } else {
            victim.session_token.clone()
        }
    };

    let before = victim_state(&s, &victim).await;
    let ops = operations();
    let public: BTreeSet<String> = ops
        .iter()
        .filter(|o| o.role.is_none())
        .map(|o| format!("{} {}", o.method, o.path))
        .collect();
    assert_eq!(
        public,
        PUBLIC
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        "the public operations changed; a new route must state its role"
    );

    let mut findings = Vec::new();
    let mut tried = 0;
    for op in ops.iter().filter(|o| o.role.is_some()) {
        let role = op.role.unwrap();
        let name = format!("{} {}", op.method, op.path);
        let url_path = fill(
            &op.path,
            &Fill {
                session: session_for(&op.path),
                ..f.clone()
            },
        );
        let tenant_owned = op.path.contains("{tenant}")
            || op.path.contains("{id}")
            || op.path == "/ui/conversation"
            || TENANT_IN_BODY.contains(&name.as_str());
        // (credential, why, the refusals that are right)
        let mut attempts: Vec<(Cred, &str, &[u16])> = vec![(Cred::None, "no credential", &[401])];
        if tenant_owned {
            attempts.push((
                Cred::Bearer(&other.operator),
                "other tenant's operator key",
                &[401],
            ));
            attempts.push((
                Cred::Bearer(&other.staff),
                "other tenant's staff key",
                &[401],
            ));
            attempts.push((
                Cred::Bearer(&other.operator_jwt),
                "other tenant's operator JWT",
                &[401],
            ));
            attempts.push((
                Cred::Query(&other.session_token),
                "other session's token",
                &[401],
            ));
            attempts.push((
                Cred::Bearer(&other.session_token),
                "other session's token as bearer",
                &[401],
            ));
        }
        match role {
            Role::Guest => {}
            Role::Staff => {
                attempts.push((
                    Cred::Bearer(&victim.guest_jwt),
                    "guest JWT of the tenant",
                    &[403],
                ));
            }
            Role::Operator => {
                attempts.push((
                    Cred::Bearer(&victim.staff),
                    "staff key of the tenant",
                    &[403],
                ));
                attempts.push((
                    Cred::Bearer(&victim.staff_jwt),
                    "staff JWT of the tenant",
                    &[403],
                ));
            }
            Role::Admin => {
                attempts.push((Cred::Bearer(&victim.operator), "operator key", &[403]));
                attempts.push((Cred::Bearer(&victim.operator_jwt), "operator JWT", &[403]));
            }
        }
        if op.path == "/ui/conversation" || op.path == "/conversation/{id}/display" {
            // Guest-only: only a token in the query is read.
            attempts.retain(|(c, _, _)| !matches!(c, Cred::Bearer(_)));
        }
        for (cred, why, want) in attempts {
            tried += 1;
            if SOCKETS.contains(&op.path.as_str()) {
                match socket(&s, &url_path, cred).await {
                    Err(st) if want.contains(&st) => {}
                    // Display sockets refuse after the handshake, with a 4401 close.
                    Ok(false) => {}
                    other => findings.push(format!("{name} with {why}: {other:?}")),
                }
                continue;
            }
            let (status, code) = call(&s, op, &url_path, cred).await;
            // The error body names the refusal (the OpenAI-compatible routes use
            // OpenAI's error codes).
            let right_code = matches!(status, 401 | 403) && !code.is_empty();
            if !want.contains(&status) || !right_code {
                findings.push(format!("{name} with {why}: {status} {code}"));
            }
        }
    }
    assert!(tried > 100, "only {tried} attempts");
    assert!(
        findings.is_empty(),
        "access findings:\n{}",
        findings.join("\n")
    );
    assert_eq!(
        victim_state(&s, &victim).await,
        before,
        "a refused call changed the victim's data"
    );
    // The spare key still works: the other tenant could not revoke it.
    assert_eq!(
        get(s.url("/api/tenants/demo-restaurant/orders"), Some(&spare))
            .await
            .status(),
        200
    );

    // The right credential gets past the checks on every one (whatever the handler
    // then says about the empty body).
    for op in ops.iter().filter(|o| o.role.is_some()) {
        let name = format!("{} {}", op.method, op.path);
        let url_path = fill(
            &op.path,
            &Fill {
                session: session_for(&op.path),
                ..f.clone()
            },
        );
        let token = victim_token_for(&op.path);
        let cred = match op.role.unwrap() {
            Role::Guest if op.guest_token => Cred::Query(&token),
            Role::Guest | Role::Staff => Cred::Bearer(&victim.staff),
            Role::Operator => Cred::Bearer(&victim.operator),
            Role::Admin => Cred::Bearer(ADMIN),
        };
        if SOCKETS.contains(&op.path.as_str()) {
            let got = socket(&s, &url_path, cred).await;
            assert_eq!(got, Ok(true), "{name} with the right credential");
            continue;
        }
        let (status, code) = call(&s, op, &url_path, cred).await;
        assert!(
            status != 401 && status != 403,
            "{name} with the right credential: {status} {code}"
        );
    }
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let s = start(&[("THEME_API_TOKEN", ADMIN), ("JWT_SECRET", JWT_SECRET)]).await;
    let (op_id, op) = create_key(&s, VICTIM, "operator", ADMIN).await;
    let (staff_id, staff) = create_key(&s, VICTIM, "staff", &op).await;
    assert!(op.starts_with("sp_") && op.len() > 40);
    let keys_url = s.url("/api/admin/tenants/demo-restaurant/keys");

    // Staff cannot manage keys; a bad role or label is 422 naming the field.
    let res = post_json(
        keys_url.clone(),
        Some(&staff),
        &json!({"label": "x", "role": "staff"}),
    )
    .await;
    error_code(res, 403).await;
    for (body, field) in [
        (json!({"label": "x", "role": "admin"}), "role"),
        (json!({"label": "x", "role": "chef"}), "role"),
        (json!({"label": "  ", "role": "staff"}), "label"),
    ] {
        let res = post_json(keys_url.clone(), Some(&op), &body).await;
        let (_, msg) = error_code(res, 422).await;
        assert!(msg.starts_with(field), "{msg}");
    }

    // The listing names keys by id and role and never holds a key or its hash.
    let text = get(keys_url.clone(), Some(&op)).await.text().await.unwrap();
    assert!(!text.contains(&op) && !text.contains(&staff), "{text}");
    assert!(
        !text.contains(&stonepot_store::hash_api_key(&staff)),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).unwrap();
    let mine: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["id"] == op_id.as_str() || k["id"] == staff_id.as_str())
        .collect();
    assert_eq!(mine.len(), 2, "{list}");
    assert!(
        mine.iter()
            .any(|k| k["role"] == "staff" && k["label"] == "staff key")
    );

    // /api/me tells a key its role.
    let me: Value = get(s.url("/api/me"), Some(&staff))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({"tenants": [VICTIM], "role": "staff"}));

    // Revoked: refused on the next request, listed as revoked, not revocable twice.
    let orders = s.url("/api/tenants/demo-restaurant/orders");
    assert_eq!(get(orders.clone(), Some(&staff)).await.status(), 200);
    let res = client()
        .delete(format!("{keys_url}/{staff_id}"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    error_code(get(orders.clone(), Some(&staff)).await, 401).await;
    let res = client()
        .delete(format!("{keys_url}/{staff_id}"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    error_code(res, 404).await;
    let list: Value = get(keys_url.clone(), Some(&op)).await.json().await.unwrap();
    let revoked = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == staff_id.as_str())
        .unwrap();
    assert!(revoked["revokedAt"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn a_staff_token_opens_the_kitchen_and_moves_orders_but_not_the_menu() {
    let s = start(&[("THEME_API_TOKEN", ADMIN), ("JWT_SECRET", JWT_SECRET)]).await;
    let staff = token_for(&s, Role::Staff, Some(VICTIM));
    let board = s.url("/api/tenants/demo-restaurant/kitchen");
    let res = post_json(board.clone(), Some(&staff), &json!({})).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(v["socketPath"].as_str().is_some(), "{v}");
    // The same token is refused on another tenant's kitchen and on the menu.
    let res = post_json(
        s.url("/api/tenants/demo-finance/kitchen"),
        Some(&staff),
        &json!({}),
    )
    .await;
    error_code(res, 401).await;
    let res = client()
        .put(s.url("/api/tenants/demo-restaurant/menu/sections/specials"))
        .bearer_auth(&staff)
        .json(&json!({"name": "Specials"}))
        .send()
        .await
        .unwrap();
    error_code(res, 403).await;
    // An expired token names the problem.
    let who = Identity {
        subject: "late".into(),
        role: Role::Staff,
        tenant: Some(TenantId::new(VICTIM).unwrap()),
        issuer: "stonepot".into(),
    };
    let old = s
        .running
        .app
        .verifier
        .issue(&who, jiff::Timestamp::now().as_second() - 7200, 600)
        .unwrap();
    let res = post_json(board, Some(&old), &json!({})).await;
    assert_eq!(error_code(res, 401).await.0, "token_expired");
}

/// Runs `stonepot ARGS` against the test server's database; its stdout, or a panic with
/// its stderr.
fn cli(s: &TestServer, args: &[&str]) -> std::process::Output {
    let db = format!("sqlite://{}", s.dir.path().join("stonepot.db").display());
    common::bin()
        .args(args)
        .args(["--database-url", &db])
        .env("JWT_SECRET", JWT_SECRET)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_keys_and_issues_tokens() {
    let s = start(&[("JWT_SECRET", JWT_SECRET)]).await;
    let out = cli(
        &s,
        &[
            "tenant", "key", "create", "--tenant", VICTIM, "--label", "line", "--role", "staff",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["role"], "staff");

    // The running server accepts it at once, as staff only.
    let orders = s.url("/api/tenants/demo-restaurant/orders");
    assert_eq!(get(orders.clone(), Some(&key)).await.status(), 200);
    let res = get(s.url("/api/tenants/demo-restaurant/agent"), Some(&key)).await;
    error_code(res, 403).await;

    // Listed by id, never by key.
    let out = cli(&s, &["tenant", "key", "list", "--tenant", VICTIM]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&id) && !text.contains(&key), "{text}");
    let line: Value =
        serde_json::from_str(text.lines().find(|l| l.contains(&id)).unwrap()).unwrap();
    assert_eq!(line["label"], "line");

    // Bad input is refused naming the flag, before anything is written.
    let out = cli(
        &s,
        &[
            "tenant", "key", "create", "--tenant", VICTIM, "--label", "x", "--role", "admin",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role"));
    let out = cli(
        &s,
        &[
            "tenant", "key", "create", "--tenant", "no-such", "--label", "x",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant 'no-such'"));

    // Revoked by another process: the server stops accepting it within the key cache's
    // lifetime.
    let out = cli(
        &s,
        &["tenant", "key", "revoke", "--tenant", VICTIM, "--id", &id],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &s,
        &["tenant", "key", "revoke", "--tenant", VICTIM, "--id", &id],
    );
    assert!(!out.status.success(), "revoking twice is an error");
    let deadline = std::time::Instant::now()
        + stonepot_server::app::KEY_CACHE_TTL
        + std::time::Duration::from_secs(2);
    loop {
        if get(orders.clone(), Some(&key)).await.status() == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A staff token from the CLI opens the kitchen.
    let out = cli(
        &s,
        &[
            "token",
            "--role",
            "staff",
            "--tenant",
            VICTIM,
            "--subject",
            "tablet",
            "--ttl",
            "600",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let res = post_json(
        s.url("/api/tenants/demo-restaurant/kitchen"),
        Some(&token),
        &json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let out = cli(&s, &["token", "--role", "staff", "--subject", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant is required"));
}

/// Routes served outside the OpenAPI document, each public on purpose: HTML pages that
/// authenticate through the documented API (the kitchen), guests' own entry points
/// (kiosk, storefront), probes, and the document itself.
const UNDOCUMENTED: &[&str] = &[
    "/",
    "/assets/{*path}",
    "/demo/{tenant}",
    "/health",
    "/metrics",
    "/openapi.json",
    "/kiosk/{tenant}",
    "/kitchen/{tenant}",
    "/s/{tenant}",
    "/s/{tenant}/menu",
    "/s/{tenant}/session",
];

/// The isolation test above enumerates the OpenAPI document; a route added with plain
/// axum `.route(…)` would escape it. This reads every route registration in the server's
/// source and fails on one that is neither documented nor one of the known pages.
#[test]
fn no_route_escapes_the_openapi_document() {
    let doc = serde_json::to_value(stonepot_server::app::App::openapi()).unwrap();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![dir];
    let mut found = BTreeSet::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for method in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            for (at, _) in text.match_indices(method) {
                let rest = text[at + method.len()..].trim_start();
                let path = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_else(|| {
                        panic!("{}: a route whose path is not a literal", p.display())
                    });
                found.insert(path.to_string());
            }
        }
    }
    assert!(
        found.contains("/kitchen/{tenant}"),
        "the scan found {found:?}"
    );
    let escaped: Vec<&String> = found
        .iter()
        .filter(|p| !documented.contains(*p) && !UNDOCUMENTED.contains(&p.as_str()))
        .collect();
    assert!(
        escaped.is_empty(),
        "routes outside the OpenAPI document (document them with their role, or add a \
         public page to UNDOCUMENTED): {escaped:?}"
    );
    let stale: Vec<&&str> = UNDOCUMENTED
        .iter()
        .filter(|p| !found.contains(**p))
        .collect();
    assert!(
        stale.is_empty(),
        "UNDOCUMENTED names routes that are gone: {stale:?}"
    );
}
