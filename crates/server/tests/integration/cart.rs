//! The direct cart API: session-token auth, adds, changes and removals priced from the
//! menu, every bad input refused by name with the cart untouched, the display's cart
//! following, and taps racing agent turns without losing either's change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, client, error_code, get, get_json, post_json, start};
use serde_json::{Value, json};

const KEY: &str = "sp_cart_test";

async fn server() -> TestServer {
    start(&[("STONEPOT_DEMO_KEY", KEY)]).await
}

/// A new restaurant conversation: (id, session token).
async fn session(s: &TestServer, tenant: &str) -> (String, String) {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": tenant}),
    )
    .await
    .json()
    .await
    .unwrap();
    (
        v["sessionId"].as_str().unwrap().into(),
        v["token"].as_str().unwrap().into(),
    )
}

async fn add(s: &TestServer, id: &str, token: &str, body: Value) -> reqwest::Response {
    post_json(
        s.url(&format!("/api/conversations/{id}/cart/lines")),
        Some(token),
        &body,
    )
    .await
}

async fn patch(
    s: &TestServer,
    id: &str,
    token: &str,
    line: &str,
    body: Value,
) -> reqwest::Response {
    client()
        .patch(s.url(&format!("/api/conversations/{id}/cart/lines/{line}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn cart(s: &TestServer, id: &str, token: &str) -> Value {
    get_json(s.url(&format!("/api/conversations/{id}/cart")), Some(token)).await
}

#[tokio::test]
async fn taps_add_change_and_remove_lines_priced_from_the_menu() {
    let s = server().await;
    let (id, token) = session(&s, "demo-restaurant").await;
    let res = add(
        &s,
        &id,
        &token,
        json!({"itemId": "margherita", "quantity": 2, "modifiers": ["margherita-extra-basil"]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["lineId"], "l1");
    assert_eq!(c["lines"][0]["unitPrice"], 1299 + 50);
    assert_eq!(c["subtotal"], 2 * (1299 + 50));
    assert_eq!(c["currency"], "USD");
    // The same item with the same choice joins the line.
    let c: Value = add(
        &s,
        &id,
        &token,
        json!({"itemId": "margherita", "modifiers": ["margherita-extra-basil"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(c["lines"].as_array().unwrap().len(), 1);
    assert_eq!(c["itemCount"], 3);
    let c: Value = add(&s, &id, &token, json!({"itemId": "tiramisu"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["lineId"], "l2");

    let c: Value = patch(
        &s,
        &id,
        &token,
        "l1",
        json!({"quantity": 1, "modifiers": []}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(c["lines"][0]["quantity"], 1);
    assert_eq!(c["lines"][0]["unitPrice"], 1299);
    let res = client()
        .delete(s.url(&format!("/api/conversations/{id}/cart/lines/l2")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let c = cart(&s, &id, &token).await;
    assert_eq!(c["itemCount"], 1);
    assert_eq!(c["subtotal"], 1299);

    // The display shows the same cart.
    let state: Value = get_json(s.url(&format!("/conversation/{id}/state")), Some(KEY)).await;
    let shown = &state["components"]["cart"]["data"];
    assert_eq!(shown["itemCount"], 1, "{shown}");
    assert_eq!(shown["subtotal"]["minor"], 1299);
    // ... and the transcript's cart too: it is the conversation's one cart.
    let conv: Value = get_json(s.url(&format!("/api/conversations/{id}")), Some(KEY)).await;
    assert_eq!(conv["cart"]["lines"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_taps_are_refused_by_name_and_change_nothing() {
    let s = server().await;
    let (id, token) = session(&s, "demo-restaurant").await;
    add(&s, &id, &token, json!({"itemId": "margherita"})).await;
    let before = cart(&s, &id, &token).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"itemId": "margherita", "quantity": 0}),
            422,
            "bad_quantity",
        ),
        (
            json!({"itemId": "margherita", "quantity": -3}),
            422,
            "bad_quantity",
        ),
        (
            json!({"itemId": "margherita", "quantity": 100}),
            422,
            "bad_quantity",
        ),
        (
            json!({"itemId": "margherita", "quantity": 99}),
            422,
            "bad_quantity",
        ),
        (
            json!({"itemId": "margherita", "quantity": 1.5}),
            422,
            "invalid_body",
        ),
        (
            json!({"itemId": "margherita", "quantity": "2"}),
            422,
            "invalid_body",
        ),
        (
            json!({"itemId": "margherita", "quantity": 1e20}),
            422,
            "invalid_body",
        ),
        (
            json!({"itemId": "margherita", "quantity": i64::MAX}),
            422,
            "bad_quantity",
        ),
        (
            json!({"itemId": "margherita", "quantity": i64::MIN}),
            422,
            "bad_quantity",
        ),
        (json!({"itemId": "unicorn-steak"}), 422, "unknown_item"),
        (json!({"itemId": "Margherita Pizza"}), 422, "unknown_item"),
        (
            json!({"itemId": "margherita", "modifiers": ["pineapple"]}),
            422,
            "unknown_modifier",
        ),
        (
            json!({"itemId": "margherita", "modifiers": ["margherita-no-basil", "margherita-extra-basil"]}),
            422,
            "too_many_modifiers",
        ),
        (json!({"itemId": "truffle-pizza"}), 409, "unavailable"),
        (json!({"item": "margherita"}), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let res = add(&s, &id, &token, body.clone()).await;
        let (got, msg) = error_code(res, status).await;
        assert_eq!(got, code, "{body} → {msg}");
    }
    let (code, _) = error_code(
        patch(&s, &id, &token, "l9", json!({"quantity": 2})).await,
        404,
    )
    .await;
    assert_eq!(code, "unknown_line");
    error_code(patch(&s, &id, &token, "l1", json!({})).await, 422).await;
    error_code(
        patch(&s, &id, &token, "l1", json!({"quantity": 0})).await,
        422,
    )
    .await;
    assert_eq!(cart(&s, &id, &token).await, before, "nothing changed");

    // A group that needs a choice names its options.
    let needs_choice = s
        .running
        .app
        .store
        .menu(&stonepot_domain::TenantId::new("demo-restaurant").unwrap())
        .await
        .unwrap();
    if let Some(item) = needs_choice.items.iter().find(|i| {
        i.available
            && i.modifier_groups
                .iter()
                .any(|g| g.min > 0 && !g.modifiers.iter().any(|m| m.default))
    }) {
        let (code, msg) =
            error_code(add(&s, &id, &token, json!({"itemId": item.id})).await, 422).await;
        assert_eq!(code, "too_few_modifiers", "{msg}");
    }
}

#[tokio::test]
async fn only_the_sessions_token_or_its_tenants_key_opens_the_cart() {
    let s = server().await;
    let (id, token) = session(&s, "demo-restaurant").await;
    let (other, other_token) = session(&s, "demo-restaurant").await;
    error_code(
        get(s.url(&format!("/api/conversations/{id}/cart")), None).await,
        401,
    )
    .await;
    error_code(
        get(
            s.url(&format!("/api/conversations/{id}/cart")),
            Some(&other_token),
        )
        .await,
        401,
    )
    .await;
    error_code(
        add(&s, &id, &other_token, json!({"itemId": "margherita"})).await,
        401,
    )
    .await;
    error_code(
        get(s.url("/api/conversations/no-such-conv/cart"), Some(&token)).await,
        404,
    )
    .await;
    assert_eq!(cart(&s, &id, &token).await["itemCount"], 0);
    assert_eq!(cart(&s, &other, &other_token).await["itemCount"], 0);
    // The query-string token works too (EventSource-style clients).
    let res = get(
        s.url(&format!("/api/conversations/{id}/cart?token={token}")),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    // A financial conversation has no cart.
    let (fin, fin_token) = session(&s, "demo-finance").await;
    let (code, _) = error_code(
        add(&s, &fin, &fin_token, json!({"itemId": "margherita"})).await,
        409,
    )
    .await;
    assert_eq!(code, "no_cart");
}

#[tokio::test]
async fn taps_and_agent_turns_never_lose_each_others_changes() {
    let s = server().await;
    let (id, token) = session(&s, "demo-restaurant").await;
    // Ten agent turns and ten taps at once, each adding one different thing.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (url, tok) = (
            s.url(&format!("/api/conversations/{id}/messages")),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = post_json(url, Some(&tok), &json!({"text": "add one tiramisu"}))
                .await
                .text()
                .await
                .unwrap();
            assert!(body.contains("assistant_done"), "turn {i}: {body}");
        }));
        let (url, tok) = (
            s.url(&format!("/api/conversations/{id}/cart/lines")),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = post_json(url, Some(&tok), &json!({"itemId": "garlic-bread"})).await;
            assert_eq!(res.status(), 200, "tap {i}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = cart(&s, &id, &token).await;
    let qty = |item: &str| {
        c["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["itemId"] == item)
            .map(|l| l["quantity"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(qty("garlic-bread"), 10, "{c}");
    assert_eq!(qty("tiramisu"), 10, "{c}");
}
