//! Ordering from a conversation, pay at counter: quote (price lock) on the display,
//! confirm by hash, stale confirmations refused with a fresh quote, one order per
//! quote, staff moves with guarded transitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{TestServer, confirm, error_code, get, post_json, quote, say, start};
use serde_json::{Value, json};

const KEY: &str = "sp_orders_test";

async fn conversation_with(s: &TestServer, text: &str) -> String {
    let v: Value = post_json(
        s.url("/api/restaurant/sessions"),
        Some(KEY),
        &json!({"tenantId": "demo-restaurant"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = v["sessionId"].as_str().unwrap().to_string();
    say(s, KEY, &id, text).await;
    id
}

/// The text the agent streamed in one SSE reply.
fn reply_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter(|v| v["type"] == "assistant_delta")
        .map(|v| v["text"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn the_agent_quotes_reads_back_and_places_the_order_on_a_yes() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let id = conversation_with(&s, "a margherita and a lemonade").await;
    // "that's all": the server's quote, read back word for word.
    let sse = say(&s, KEY, &id, "that's all").await;
    assert!(sse.contains("quote_order"), "{sse}");
    let heard = reply_text(&sse);
    assert!(heard.contains("Shall I place the order?"), "{heard}");
    let state = get(s.url(&format!("/conversation/{id}/state")), Some(KEY))
        .await
        .text()
        .await
        .unwrap();
    assert!(state.contains("\"quote\""), "{state}");

    // "no": nothing is placed.
    let heard = reply_text(&say(&s, KEY, &id, "no").await);
    assert!(heard.contains("isn't placed"), "{heard}");
    let list: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["orders"].as_array().unwrap().len(), 0, "{list}");

    // "yes": one order, confirmed by the agent's tool call, its ticket fired once.
    let sse = say(&s, KEY, &id, "yes please").await;
    assert!(sse.contains("confirm_order"), "{sse}");
    let heard = reply_text(&sse);
    assert!(heard.contains("Your order is placed"), "{heard}");
    let list: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    let orders = list["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{list}");
    let order = &orders[0];
    assert_eq!(order["audit"][0]["actor"]["kind"], "agent", "{order}");
    assert!(order["confirmedToolCallId"].is_string(), "{order}");
    assert_eq!(order["lines"].as_array().unwrap().len(), 2);
    let t: Value = get(s.url(&format!("/api/conversations/{id}")), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert!(t["cart"]["lines"].as_array().unwrap().is_empty(), "{t}");

    // A second yes places nothing new: the quote is spent.
    say(&s, KEY, &id, "yes").await;
    let list: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["orders"].as_array().unwrap().len(), 1, "{list}");
    let metrics = get(s.url("/metrics"), None).await.text().await.unwrap();
    assert!(
        metrics.contains("stonepot_kitchen_tickets_fired_total 1"),
        "exactly one ticket: {metrics}"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn quote_confirm_and_move_an_order() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let id = conversation_with(&s, "two margherita pizzas, one without basil").await;
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/quote")),
        Some(KEY),
        &json!({}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let q: Value = res.json().await.unwrap();
    assert_eq!(q["subtotal"], 2598, "{q}");
    // 8.88 % per line, each rounded: 12.99 → 1.15, twice.
    assert_eq!(q["tax"], 230, "{q}");
    assert_eq!(
        q["total"],
        q["subtotal"].as_i64().unwrap() + q["tax"].as_i64().unwrap() + q["tip"].as_i64().unwrap()
    );
    assert!(
        q["readBack"].as_str().unwrap().contains("Margherita Pizza"),
        "{q}"
    );
    let hash = q["hash"].as_str().unwrap().to_string();
    let state = get(s.url(&format!("/conversation/{id}/state")), Some(KEY))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        state.contains("\"quote\""),
        "the quote is on the display: {state}"
    );

    // A wrong hash is refused and a fresh quote is shown.
    let res = confirm(&s, KEY, &id, &json!("0000")).await;
    assert_eq!(error_code(res, 409).await.0, "hash_mismatch");
    let q2: Value = quote(&s, KEY, &id).await;
    let hash = q2["hash"].as_str().map(String::from).unwrap_or(hash);

    // The cart changes after the quote: the old hash is stale.
    say(&s, KEY, &id, "and a lemonade").await;
    let res = confirm(&s, KEY, &id, &json!(hash)).await;
    let (code, msg) = error_code(res, 409).await;
    assert!(
        code == "cart_changed" || code == "hash_mismatch",
        "{code}: {msg}"
    );

    // Confirm the fresh quote: one order, the same on a second confirmation.
    let q3: Value = quote(&s, KEY, &id).await;
    let body = json!({"quoteHash": q3["hash"], "orderType": "pickup"});
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/confirm")),
        Some(KEY),
        &body,
    )
    .await;
    assert_eq!(res.status(), 200);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total"], q3["total"]);
    assert!(
        order["lines"][0]["origin"]["toolCallId"].is_string(),
        "each line knows its tool call: {order}"
    );
    let t: Value = get(s.url(&format!("/api/conversations/{id}")), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        t["cart"]["lines"].as_array().unwrap().is_empty(),
        "the cart starts over once ordered: {t}"
    );
    let again: Value = post_json(
        s.url(&format!("/api/conversations/{id}/confirm")),
        Some(KEY),
        &body,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["id"], order["id"]);
    let oid = order["id"].as_str().unwrap();

    // The kitchen's board has its ticket, numbered; without the key there is no board.
    let board_url = s.url("/api/tenants/demo-restaurant/kitchen");
    let res = post_json(board_url.clone(), None, &json!({})).await;
    error_code(res, 401).await;
    let board: Value = post_json(board_url.clone(), Some(KEY), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(board["tickets"].as_array().unwrap().len(), 1, "{board}");
    assert_eq!(board["tickets"][0]["number"], 1);
    assert_eq!(board["tickets"][0]["orderId"], order["id"]);
    assert!(
        board["socketPath"]
            .as_str()
            .unwrap()
            .starts_with("/conversation/kitchen-demo-restaurant/display?token="),
        "{board}"
    );

    // Staff move it along; an illegal move is refused.
    let url = s.url(&format!("/api/tenants/demo-restaurant/orders/{oid}/status"));
    let mv = |to: &'static str| {
        let url = url.clone();
        async move { post_json(url, Some(KEY), &json!({"to": to, "by": "chef"})).await }
    };
    assert_eq!(mv("in_kitchen").await.status(), 200);
    let (_, why) = error_code(mv("confirmed").await, 409).await;
    assert!(!why.is_empty());
    assert_eq!(mv("ready").await.status(), 200);
    let res = mv("completed").await;
    assert_eq!(
        res.status(),
        409,
        "a counter order is paid before it completes"
    );
    let receipt_url = s.url(&format!(
        "/api/tenants/demo-restaurant/orders/{oid}/receipt"
    ));
    error_code(get(receipt_url.clone(), Some(KEY)).await, 404).await;
    assert_eq!(mv("paid").await.status(), 200);
    // Paid: the receipt is written once and served with its hash.
    let res = get(receipt_url.clone(), Some(KEY)).await;
    assert_eq!(res.status(), 200);
    let sha = res.headers()["x-receipt-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Margherita Pizza") && html.contains("Total"),
        "{html}"
    );
    use sha2::Digest;
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(html.as_bytes())));
    let on_disk = s
        .dir
        .path()
        .join(format!("objects/receipts/demo-restaurant/{oid}.html"));
    assert_eq!(std::fs::read_to_string(on_disk).unwrap(), html);
    let done: Value = mv("completed").await.json().await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    let board: Value = post_json(board_url, Some(KEY), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        board["tickets"].as_array().unwrap().is_empty(),
        "a completed order leaves the board: {board}"
    );
    // Later moves never rewrite the receipt.
    let again = get(receipt_url, Some(KEY)).await;
    assert_eq!(again.headers()["x-receipt-sha256"].to_str().unwrap(), sha);
    let metrics = get(s.url("/metrics"), None).await.text().await.unwrap();
    assert!(
        metrics.contains("stonepot_receipts_written_total 1"),
        "{metrics}"
    );
    let list: Value = get(
        s.url("/api/tenants/demo-restaurant/orders?status=completed"),
        Some(KEY),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let res = get(
        s.url("/api/tenants/demo-restaurant/orders?status=eaten"),
        Some(KEY),
    )
    .await;
    error_code(res, 422).await;
    let state = get(s.url(&format!("/conversation/{id}/state")), Some(KEY))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        state.contains("completed"),
        "the guest's display shows the status: {state}"
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn an_empty_cart_cannot_be_quoted() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let id = conversation_with(&s, "hello").await;
    let res = post_json(
        s.url(&format!("/api/conversations/{id}/quote")),
        Some(KEY),
        &json!({}),
    )
    .await;
    assert_eq!(error_code(res, 422).await.0, "empty_cart");
    let res = confirm(&s, KEY, &id, &json!("x")).await;
    assert_eq!(error_code(res, 409).await.0, "no_quote");
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_quote_and_confirm_bodies_are_4xx_naming_the_problem() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let id = conversation_with(&s, "a margherita").await;
    let quote = s.url(&format!("/api/conversations/{id}/quote"));
    for (body, status) in [
        (json!({"tip": {"kind": "amount", "minor": -100}}), 422),
        (json!({"tip": {"kind": "amount", "minor": i64::MAX}}), 422),
        (
            json!({"tip": {"kind": "percent", "bps": 4_000_000_000u32}}),
            422,
        ),
        (json!({"tip": {"kind": "bribe"}}), 422),
        (json!({"tip": "lots"}), 422),
        (json!({"surprise": true}), 422),
    ] {
        let res = post_json(quote.clone(), Some(KEY), &body).await;
        let (code, msg) = error_code(res, status).await;
        assert!(!code.is_empty() && !msg.is_empty(), "{body}: {code} {msg}");
    }
    let confirm = s.url(&format!("/api/conversations/{id}/confirm"));
    let q: Value = post_json(quote.clone(), Some(KEY), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    for body in [
        json!({}),
        json!({"quoteHash": 5}),
        json!({"quoteHash": q["hash"], "orderType": "drone"}),
    ] {
        let res = post_json(confirm.clone(), Some(KEY), &body).await;
        let (_, msg) = error_code(res, 422).await;
        assert!(!msg.is_empty(), "{body}");
    }
    // Nothing was half-written: no order exists, and the good quote still confirms.
    let list: Value = get(s.url("/api/tenants/demo-restaurant/orders"), Some(KEY))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["orders"].as_array().unwrap().is_empty());
    let res = post_json(confirm, Some(KEY), &json!({"quoteHash": q["hash"]})).await;
    assert_eq!(res.status(), 200);
    // Another conversation's token cannot quote this one.
    let res = post_json(quote, Some("sp_not_this_tenant"), &json!({})).await;
    assert!(
        res.status() == 401 || res.status() == 403,
        "{}",
        res.status()
    );
    s.running.stop().await.unwrap();
}

#[tokio::test]
async fn two_guests_with_the_same_cart_get_their_own_quotes() {
    let s = start(&[("STONEPOT_DEMO_KEY", KEY)]).await;
    let a = conversation_with(&s, "a margherita").await;
    let b = conversation_with(&s, "a margherita").await;
    // Quote both at once, many times: same cart, same prices, often the same millisecond.
    let empty = json!({});
    for _ in 0..10 {
        let (qa, qb) = tokio::join!(
            post_json(
                s.url(&format!("/api/conversations/{a}/quote")),
                Some(KEY),
                &empty
            ),
            post_json(
                s.url(&format!("/api/conversations/{b}/quote")),
                Some(KEY),
                &empty
            ),
        );
        let (qa, qb): (Value, Value) = (qa.json().await.unwrap(), qb.json().await.unwrap());
        assert_ne!(qa["quoteId"], qb["quoteId"], "{qa} {qb}");
    }
    for id in [&a, &b] {
        let q: Value = quote(&s, KEY, id).await;
        let res = confirm(&s, KEY, id, &q["hash"]).await;
        assert_eq!(res.status(), 200, "each guest confirms their own quote");
    }
    s.running.stop().await.unwrap();
}
