//! The menu admin API over HTTP: CRUD for sections and items, the "86" pushed live to an
//! open display socket, a price change making an outstanding quote stale, every bad
//! input refused with nothing written, and tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, client, confirm, error_code, get_json, post_json, quote, start};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use stonepot_domain::TenantId;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "sp_menu_test";
const T: &str = "demo-restaurant";

async fn server() -> TestServer {
    start(&[("STONEPOT_DEMO_KEY", KEY)]).await
}

fn url(s: &TestServer, rest: &str) -> String {
    s.url(&format!("/api/tenants/{T}/menu{rest}"))
}

async fn put(s: &TestServer, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client().put(s.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn delete(s: &TestServer, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().delete(s.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn menu(s: &TestServer) -> Value {
    get_json(url(s, ""), None).await
}

fn soup() -> Value {
    json!({
        "sectionId": "specials", "name": "Soup of the day", "description": "Ask us",
        "price": 750, "dietary": ["vegan", "gluten_free"], "allergens": ["celery"],
        "modifierGroups": [{"id": "soup-size", "name": "Size", "min": 1, "max": 1, "modifiers": [
            {"id": "soup-cup", "name": "Cup", "priceDelta": 0, "default": true},
            {"id": "soup-bowl", "name": "Bowl", "priceDelta": 300}
        ]}]
    })
}

#[tokio::test]
async fn sections_and_items_round_trip_and_every_change_bumps_the_version() {
    let s = server().await;
    let v0 = menu(&s).await["version"].as_u64().unwrap();
    assert_eq!(menu(&s).await["currency"], "USD");

    let res = put(
        &s,
        &format!("/api/tenants/{T}/menu/sections/specials"),
        Some(KEY),
        &json!({"name": "Specials", "position": 10}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let res = put(
        &s,
        &format!("/api/tenants/{T}/menu/items/soup"),
        Some(KEY),
        &soup(),
    )
    .await;
    assert_eq!(res.status(), 201);
    let saved: Value = res.json().await.unwrap();
    assert_eq!(saved["created"], true);
    assert_eq!(saved["version"], v0 + 2);

    let got: Value = get_json(url(&s, "/items/soup"), None).await;
    assert_eq!(got["price"], 750);
    assert_eq!(got["available"], true, "available by default");
    assert_eq!(got["modifierGroups"][0]["modifiers"][1]["priceDelta"], 300);

    let mut changed = soup();
    changed["price"] = json!(800);
    let res = put(
        &s,
        &format!("/api/tenants/{T}/menu/items/soup"),
        Some(KEY),
        &changed,
    )
    .await;
    assert_eq!(res.status(), 200);
    let m = menu(&s).await;
    assert_eq!(m["version"], v0 + 3);
    let items = m["items"].as_array().unwrap();
    assert_eq!(items.last().unwrap()["id"], "soup", "a new item goes last");
    assert_eq!(items.last().unwrap()["price"], 800);

    // A section with items cannot go; an empty one can.
    let (code, msg) = error_code(
        delete(
            &s,
            &format!("/api/tenants/{T}/menu/sections/specials"),
            Some(KEY),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(code, "section_in_use", "{msg}");
    assert_eq!(
        delete(&s, &format!("/api/tenants/{T}/menu/items/soup"), Some(KEY))
            .await
            .status(),
        200
    );
    assert_eq!(
        delete(
            &s,
            &format!("/api/tenants/{T}/menu/sections/specials"),
            Some(KEY)
        )
        .await
        .status(),
        200
    );
    error_code(
        delete(&s, &format!("/api/tenants/{T}/menu/items/soup"), Some(KEY)).await,
        404,
    )
    .await;
    assert_eq!(menu(&s).await["version"], v0 + 5);

    // The whole menu round-trips through GET and PUT, guarded by its version.
    let m = menu(&s).await;
    let res = put(&s, &format!("/api/tenants/{T}/menu"), Some(KEY), &m).await;
    assert_eq!(res.status(), 200);
    let (code, _) = error_code(
        put(&s, &format!("/api/tenants/{T}/menu"), Some(KEY), &m).await,
        409,
    )
    .await;
    assert_eq!(code, "version_conflict", "the version sent is now old");
}

/// A session whose display shows the margherita card, with a socket open on it.
async fn watched_session(s: &TestServer) -> (String, Ws) {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": T}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = v["sessionId"].as_str().unwrap().to_string();
    let token = v["token"].as_str().unwrap().to_string();
    let res = post_json(
        s.url(&format!("/conversation/{id}/update")),
        Some(KEY),
        &json!({"type": "dish_card", "key": "focus", "data": {"name": "Margherita Pizza", "itemId": "margherita", "price": {"minor": 1299}, "available": true}}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut ws = tokio_tungstenite::connect_async(format!(
        "ws://{}/conversation/{id}/display?token={token}",
        s.running.addr
    ))
    .await
    .unwrap()
    .0;
    let snap = next(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    (id, ws)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "presence" && v["type"] != "pong" {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn an_86_reaches_open_displays_and_the_agent_refuses_the_dish() {
    let s = server().await;
    let (id, mut ws) = watched_session(&s).await;
    let res = post_json(
        url(&s, "/items/margherita/availability"),
        Some(KEY),
        &json!({"available": false}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["item"]["available"], false);
    assert_eq!(body["displays"], 1, "the one open display was told");

    // The card on screen is put again, durably, marked unavailable ...
    let update = next(&mut ws).await;
    assert_eq!(update["type"], "update", "{update}");
    assert_eq!(update["update"]["key"], "focus");
    assert_eq!(update["update"]["data"]["available"], false);
    // ... and the ephemeral menu frame names the item.
    let frame = next(&mut ws).await;
    assert_eq!(frame["type"], "menu", "{frame}");
    assert_eq!(frame["items"][0]["itemId"], "margherita");
    assert_eq!(frame["items"][0]["available"], false);
    assert_eq!(frame["reload"], false);
    let state: Value = get_json(s.url(&format!("/conversation/{id}/state")), Some(KEY)).await;
    assert_eq!(
        state["components"]["focus"]["data"]["available"], false,
        "resumable: in the state"
    );

    // The agent will not add it, nor will a tap.
    let text = post_json(
        s.url(&format!("/api/conversations/{id}/messages")),
        Some(KEY),
        &json!({"text": "one margherita pizza please"}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        text.contains("unavailable") || text.contains("isn't available"),
        "{text}"
    );
    let cart: Value = get_json(s.url(&format!("/api/conversations/{id}/cart")), Some(KEY)).await;
    assert_eq!(cart["itemCount"], 0, "{cart}");
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/cart/lines")),
        Some(KEY),
        &json!({"itemId": "margherita"}),
    )
    .await;
    let (code, _) = error_code(res, 409).await;
    assert_eq!(code, "unavailable");

    // Back on: the menu frame says so (the turn above may have put other cards first),
    // and a margherita card still on screen follows.
    post_json(
        url(&s, "/items/margherita/availability"),
        Some(KEY),
        &json!({"available": true}),
    )
    .await;
    loop {
        let f = next(&mut ws).await;
        if f["type"] == "menu" {
            assert_eq!(f["items"][0]["available"], true, "{f}");
            break;
        }
    }
    let state: Value = get_json(s.url(&format!("/conversation/{id}/state")), Some(KEY)).await;
    for c in state["components"].as_object().unwrap().values() {
        if c["data"]["itemId"] == "margherita" {
            assert_eq!(c["data"]["available"], true, "{c}");
        }
    }
}

#[tokio::test]
async fn a_price_change_makes_the_outstanding_quote_stale() {
    let s = server().await;
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": T}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = v["sessionId"].as_str().unwrap().to_string();
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/cart/lines")),
        Some(KEY),
        &json!({"itemId": "margherita", "quantity": 2}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let q: Value = quote(&s, KEY, &id).await;
    let hash = q["hash"].as_str().unwrap().to_string();

    let mut pizza: Value = get_json(url(&s, "/items/margherita"), None).await;
    pizza["price"] = json!(1399);
    assert_eq!(
        put(
            &s,
            &format!("/api/tenants/{T}/menu/items/margherita"),
            Some(KEY),
            &pizza
        )
        .await
        .status(),
        200
    );

    let res = confirm(&s, KEY, &id, &json!(hash)).await;
    let (code, msg) = error_code(res, 409).await;
    assert_eq!(code, "price_changed", "{msg}");
    let orders: Value = get_json(s.url(&format!("/api/tenants/{T}/orders")), Some(KEY)).await;
    assert!(
        orders["orders"].as_array().unwrap().is_empty(),
        "no order placed"
    );

    // A change that leaves this cart's prices alone still makes the quote stale.
    let q: Value = quote(&s, KEY, &id).await;
    assert_eq!(q["subtotal"], 2798);
    post_json(
        url(&s, "/items/tiramisu/availability"),
        Some(KEY),
        &json!({"available": false}),
    )
    .await;
    let res = confirm(&s, KEY, &id, &q["hash"]).await;
    let (code, _) = error_code(res, 409).await;
    assert_eq!(code, "menu_changed");
    // The fresh quote confirms.
    let q: Value = quote(&s, KEY, &id).await;
    let res = confirm(&s, KEY, &id, &q["hash"]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_writes_nothing() {
    let s = server().await;
    let before = menu(&s).await;
    let item = |patch: Value| {
        let mut b = soup();
        b["sectionId"] = json!("pizzas");
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            item(json!({"dietary": ["vegan", "keto"]})),
            422,
            "invalid_menu",
            "'keto'",
        ),
        (
            item(json!({"allergens": ["glutten"]})),
            422,
            "invalid_menu",
            "'glutten'",
        ),
        (item(json!({"price": -1})), 422, "invalid_menu", "price"),
        (
            item(json!({"price": 100_000_001})),
            422,
            "invalid_menu",
            "price",
        ),
        (item(json!({"price": 12.99})), 422, "invalid_body", "price"),
        (
            item(json!({"price": 9_223_372_036_854_775_808u64})),
            422,
            "invalid_body",
            "price",
        ),
        (
            item(json!({"currency": "EUR"})),
            422,
            "currency_mismatch",
            "USD",
        ),
        (
            item(json!({"currency": "XXQ"})),
            422,
            "invalid_body",
            "currency",
        ),
        (
            item(json!({"sectionId": "nowhere"})),
            422,
            "invalid_menu",
            "nowhere",
        ),
        (
            item(json!({"id": "other"})),
            422,
            "invalid_body",
            "match the path",
        ),
        (item(json!({"name": " "})), 422, "invalid_menu", "name"),
        (
            item(json!({"availble": false})),
            422,
            "invalid_body",
            "availble",
        ),
        (
            item(
                json!({"modifierGroups": [{"id": "g", "name": "G", "min": 2, "max": 1, "modifiers": [{"id": "a", "name": "A", "priceDelta": 0}]}]}),
            ),
            422,
            "invalid_menu",
            "min",
        ),
        (
            item(
                json!({"modifierGroups": [{"id": "g", "name": "G", "min": 0, "max": 3, "modifiers": [{"id": "a", "name": "A", "priceDelta": 0}]}]}),
            ),
            422,
            "invalid_menu",
            "max",
        ),
        (
            item(
                json!({"modifierGroups": [{"id": "g", "name": "G", "min": 0, "max": 1, "modifiers": [{"id": "a", "name": "A", "priceDelta": 0}, {"id": "a", "name": "B", "priceDelta": 0}]}]}),
            ),
            422,
            "invalid_menu",
            "another modifier",
        ),
        (
            item(
                json!({"modifierGroups": [{"id": "g", "name": "G", "min": 0, "max": 1, "modifiers": [{"id": "a", "name": "A", "priceDelta": -800}]}]}),
            ),
            422,
            "invalid_menu",
            "negative",
        ),
        (
            item(
                json!({"modifierGroups": [{"id": "g", "name": "G", "min": 0, "max": 1, "modifiers": [{"id": "a", "name": "A", "priceDelta": i64::MAX}]}]}),
            ),
            422,
            "invalid_menu",
            "priceDelta",
        ),
    ];
    for (body, status, code, needle) in cases {
        let res = put(
            &s,
            &format!("/api/tenants/{T}/menu/items/soup"),
            Some(KEY),
            &body,
        )
        .await;
        let (got, msg) = error_code(res, status).await;
        assert_eq!(got, code, "{body} → {msg}");
        assert!(msg.contains(needle), "{body} → {msg}");
    }
    // Bad ids in the path, bad JSON, the wrong content type.
    let (code, _) = error_code(
        put(
            &s,
            &format!("/api/tenants/{T}/menu/items/has%20space"),
            Some(KEY),
            &soup(),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(code, "invalid_id");
    let res = client()
        .put(url(&s, "/items/soup"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"price\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, 400).await.0, "malformed_json");
    let res = client()
        .put(url(&s, "/items/soup"))
        .bearer_auth(KEY)
        .body("price=1")
        .send()
        .await
        .unwrap();
    error_code(res, 415).await;
    // Whole menus: a bad one anywhere refuses all of it.
    let mut bad = before.clone();
    bad["items"][3]["dietary"] = json!(["paleo"]);
    let (_, msg) = error_code(
        put(&s, &format!("/api/tenants/{T}/menu"), Some(KEY), &bad).await,
        422,
    )
    .await;
    assert!(
        msg.starts_with("items[3].dietary[0]") && msg.contains("'paleo'"),
        "{msg}"
    );
    let mut bad = before.clone();
    bad["currency"] = json!("GBP");
    error_code(
        put(&s, &format!("/api/tenants/{T}/menu"), Some(KEY), &bad).await,
        422,
    )
    .await;
    // Availability bodies and unknown items.
    error_code(
        post_json(
            url(&s, "/items/margherita/availability"),
            Some(KEY),
            &json!({"available": "no"}),
        )
        .await,
        422,
    )
    .await;
    error_code(
        post_json(
            url(&s, "/items/unicorn/availability"),
            Some(KEY),
            &json!({"available": false}),
        )
        .await,
        404,
    )
    .await;
    error_code(
        put(
            &s,
            &format!("/api/tenants/{T}/menu/sections/x"),
            Some(KEY),
            &json!({"name": ""}),
        )
        .await,
        422,
    )
    .await;

    assert_eq!(
        menu(&s).await,
        before,
        "nothing was written, the version did not move"
    );
}

#[tokio::test]
async fn another_tenants_key_opens_nothing() {
    let s = server().await;
    // A second restaurant with its own key.
    let store = &s.running.app.store;
    let mut other = stonepot_domain::demo::restaurant_tenant();
    other.id = TenantId::new("other-bistro").unwrap();
    other.name = "Other Bistro".into();
    store.upsert_tenant(&other).await.unwrap();
    store
        .add_api_key(&other.id, "sp_other_key", "test")
        .await
        .unwrap();
    let before = menu(&s).await;

    for (method, path, body) in [
        ("PUT", format!("/api/tenants/{T}/menu/items/soup"), soup()),
        (
            "PUT",
            format!("/api/tenants/{T}/menu/sections/x"),
            json!({"name": "X"}),
        ),
        ("PUT", format!("/api/tenants/{T}/menu"), before.clone()),
        (
            "DELETE",
            format!("/api/tenants/{T}/menu/items/margherita"),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/tenants/{T}/menu/items/margherita/availability"),
            json!({"available": false}),
        ),
    ] {
        for key in [Some("sp_other_key"), None, Some("sp_wrong")] {
            let mut req = client().request(method.parse().unwrap(), s.url(&path));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            if !body.is_null() {
                req = req.json(&body);
            }
            let res = req.send().await.unwrap();
            error_code(res, 401).await;
        }
    }
    // Its own key works on its own (empty) menu only.
    let res = put(
        &s,
        "/api/tenants/other-bistro/menu/sections/mains",
        Some("sp_other_key"),
        &json!({"name": "Mains"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    error_code(
        put(
            &s,
            "/api/tenants/nobody/menu/sections/mains",
            Some("sp_other_key"),
            &json!({"name": "Mains"}),
        )
        .await,
        401,
    )
    .await;
    assert_eq!(menu(&s).await, before);
    let theirs: Value = get_json(s.url("/api/tenants/other-bistro/menu"), None).await;
    assert_eq!(theirs["sections"].as_array().unwrap().len(), 1);
    assert!(theirs["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_storefront_renders_the_menu_and_hands_out_guest_sessions() {
    let s = server().await;
    let res = common::get(s.url(&format!("/s/{T}")), None).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Margherita Pizza") && html.contains("$12.99"),
        "prices in the tenant's currency"
    );
    assert!(html.contains("--primary:"), "themed");
    assert!(
        html.contains(r#"data-item="truffle-pizza""#) && html.contains("Sold out"),
        "86'd dishes shown as such"
    );
    assert!(
        html.contains(r#"data-tag="gluten_free""#),
        "filters from the fixed list"
    );
    assert!(!html.contains(KEY), "no key on the page");
    error_code(common::get(s.url("/s/demo-finance"), None).await, 404).await;
    error_code(common::get(s.url("/s/nobody"), None).await, 404).await;

    // A guest session: its token opens its cart, nothing else.
    let res = client()
        .post(s.url(&format!("/s/{T}/session")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sess: Value = res.json().await.unwrap();
    let (id, token) = (
        sess["sessionId"].as_str().unwrap(),
        sess["token"].as_str().unwrap(),
    );
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/cart/lines")),
        Some(token),
        &json!({"itemId": "tiramisu"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    error_code(
        put(
            &s,
            &format!("/api/tenants/{T}/menu/items/tiramisu"),
            Some(token),
            &soup(),
        )
        .await,
        401,
    )
    .await;

    // The menu part, for live reloads: 204 while unchanged.
    let v = menu(&s).await["version"].as_u64().unwrap();
    let res = common::get(s.url(&format!("/s/{T}/menu?since={v}")), None).await;
    assert_eq!(res.status(), 204);
    post_json(
        url(&s, "/items/tiramisu/availability"),
        Some(KEY),
        &json!({"available": false}),
    )
    .await;
    let res = common::get(s.url(&format!("/s/{T}/menu?since={v}")), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-menu-version"].to_str().unwrap(),
        (v + 1).to_string()
    );
    let part = res.text().await.unwrap();
    assert!(
        part.contains(r#"data-item="tiramisu""#) && !part.contains("<html"),
        "{part}"
    );
}
