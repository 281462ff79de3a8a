//! Store behaviour, run once on SQLite and once on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stonepot_domain::{TenantId, demo};
use stonepot_store::{Backend, Created, Store, StoreError, testing};

/// A migrated store of the given backend, plus what keeps it alive.
struct Fixture {
    store: Store,
    _dir: tempfile::TempDir,
    pg_url: Option<String>,
}

impl Fixture {
    async fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_url) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}",
                    dir.path().join("nested/stonepot.db").display()
                ),
                None,
            ),
            Backend::Postgres => {
                let url = testing::fresh_postgres_url("store")
                    .await
                    .expect("PostgreSQL is required for the store tests");
                (url.clone(), Some(url))
            }
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.backend(), backend);
        Fixture {
            store,
            _dir: dir,
            pg_url,
        }
    }

    async fn done(self) {
        self.store.close().await;
        if let Some(url) = self.pg_url {
            testing::drop_postgres_database(&url).await.unwrap();
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(stonepot_store::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(stonepot_store::Backend::Postgres).await })*
        }
    };
}

both_backends!(
    tenants_round_trip_and_upsert,
    api_keys_are_hashed_scoped_and_revocable,
    api_keys_carry_roles_and_are_listed_and_revoked_by_id,
    menu_round_trips_exactly_and_is_tenant_scoped,
    book_round_trips,
    migrations_are_idempotent,
    ping_and_counts,
    backup_then_restore_round_trip,
    display_log_appends_in_order_with_components_and_trimming,
    conversations_record_tool_calls_once_and_keep_the_transcript,
);

async fn tenants_round_trip_and_upsert(b: Backend) {
    let f = Fixture::new(b).await;
    let mut t = demo::restaurant_tenant();
    f.store.upsert_tenant(&t).await.unwrap();
    assert_eq!(f.store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    t.name = "Renamed".into();
    f.store.upsert_tenant(&t).await.unwrap();
    assert_eq!(
        f.store.tenant(&t.id).await.unwrap().unwrap().name,
        "Renamed"
    );
    f.store
        .upsert_tenant(&demo::finance_tenant())
        .await
        .unwrap();
    let all = f.store.tenants().await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["demo-finance", "demo-restaurant"]
    );
    let missing = TenantId::new("nobody").unwrap();
    assert_eq!(f.store.tenant(&missing).await.unwrap(), None);
    f.done().await;
}

async fn api_keys_are_hashed_scoped_and_revocable(b: Backend) {
    let f = Fixture::new(b).await;
    let r = demo::restaurant_tenant();
    let fin = demo::finance_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    f.store.upsert_tenant(&fin).await.unwrap();
    f.store
        .add_api_key(&r.id, "sp_first", "demo")
        .await
        .unwrap();
    f.store
        .add_api_key(&r.id, "sp_second", "demo")
        .await
        .unwrap();
    f.store.add_api_key(&r.id, "sp_ops", "ops").await.unwrap();
    assert!(f.store.api_key_valid(&r.id, "sp_first").await.unwrap());
    assert!(!f.store.api_key_valid(&fin.id, "sp_first").await.unwrap());
    assert!(!f.store.api_key_valid(&r.id, "sp_nope").await.unwrap());
    // One key may open two tenants; each grant is separate.
    f.store
        .add_api_key(&fin.id, "sp_first", "demo")
        .await
        .unwrap();
    assert_eq!(
        f.store.api_key_tenants("sp_first").await.unwrap(),
        vec![fin.id.clone(), r.id.clone()]
    );
    // Revoke the restaurant's demo keys except the second; the ops key and the
    // finance grant are untouched.
    let n = f
        .store
        .revoke_api_keys(&r.id, "demo", Some("sp_second"))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(!f.store.api_key_valid(&r.id, "sp_first").await.unwrap());
    assert!(f.store.api_key_valid(&fin.id, "sp_first").await.unwrap());
    assert!(f.store.api_key_valid(&r.id, "sp_second").await.unwrap());
    assert!(f.store.api_key_valid(&r.id, "sp_ops").await.unwrap());
    // Granting a revoked key again re-activates it.
    f.store
        .add_api_key(&r.id, "sp_first", "demo")
        .await
        .unwrap();
    assert!(f.store.api_key_valid(&r.id, "sp_first").await.unwrap());
    f.done().await;
}

async fn api_keys_carry_roles_and_are_listed_and_revoked_by_id(b: Backend) {
    let f = Fixture::new(b).await;
    let r = demo::restaurant_tenant();
    let fin = demo::finance_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    f.store.upsert_tenant(&fin).await.unwrap();
    f.store
        .add_api_key(&r.id, "sp_owner", "owner")
        .await
        .unwrap();
    f.store
        .add_api_key_as(&r.id, "sp_line", "kitchen", "staff")
        .await
        .unwrap();
    f.store
        .add_api_key_as(&fin.id, "sp_line", "desk", "operator")
        .await
        .unwrap();
    // A key's role is per tenant; keys from before roles are operators.
    assert_eq!(
        f.store.api_key_grants("sp_line").await.unwrap(),
        vec![
            (fin.id.clone(), "operator".into()),
            (r.id.clone(), "staff".into())
        ]
    );
    assert_eq!(
        f.store.api_key_grants("sp_owner").await.unwrap(),
        vec![(r.id.clone(), "operator".into())]
    );
    let keys = f.store.api_keys(&r.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    let line = keys.iter().find(|k| k.label == "kitchen").unwrap();
    assert_eq!(line.role, "staff");
    assert_eq!(line.id, stonepot_store::hash_api_key("sp_line")[..16]);
    assert_eq!(line.revoked_at_ms, None);
    // Revoking by id touches only that tenant's key; ids of other tenants, malformed
    // ids and already revoked keys revoke nothing.
    assert!(
        !f.store
            .revoke_api_key(&fin.id, "0000000000000000")
            .await
            .unwrap()
    );
    assert!(!f.store.revoke_api_key(&r.id, "%").await.unwrap());
    assert!(!f.store.revoke_api_key(&r.id, &line.id[..8]).await.unwrap());
    assert!(f.store.revoke_api_key(&r.id, &line.id).await.unwrap());
    assert!(!f.store.revoke_api_key(&r.id, &line.id).await.unwrap());
    assert_eq!(
        f.store.api_key_grants("sp_line").await.unwrap(),
        vec![(fin.id.clone(), "operator".into())]
    );
    let keys = f.store.api_keys(&r.id).await.unwrap();
    assert!(
        keys.iter()
            .find(|k| k.label == "kitchen")
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
    f.done().await;
}

async fn menu_round_trips_exactly_and_is_tenant_scoped(b: Backend) {
    let f = Fixture::new(b).await;
    let r = demo::restaurant_tenant();
    let fin = demo::finance_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    f.store.upsert_tenant(&fin).await.unwrap();
    let menu = demo::restaurant_menu();
    f.store.replace_menu(&r.id, &menu).await.unwrap();
    assert_eq!(*f.store.menu(&r.id).await.unwrap(), menu);
    assert!(f.store.menu(&fin.id).await.unwrap().items.is_empty());
    // Replacing is total, not a merge.
    let mut smaller = menu.clone();
    smaller.items.truncate(3);
    f.store.replace_menu(&r.id, &smaller).await.unwrap();
    assert_eq!(f.store.menu(&r.id).await.unwrap().items.len(), 3);
    // An invalid menu is refused and leaves the stored one alone.
    let mut bad = menu.clone();
    bad.items[0].price = -1;
    assert!(f.store.replace_menu(&r.id, &bad).await.is_err());
    assert_eq!(*f.store.menu(&r.id).await.unwrap(), smaller);
    f.done().await;
}

async fn book_round_trips(b: Backend) {
    let f = Fixture::new(b).await;
    let fin = demo::finance_tenant();
    f.store.upsert_tenant(&fin).await.unwrap();
    let book = demo::finance_book();
    f.store.replace_book(&fin.id, &book).await.unwrap();
    assert_eq!(f.store.book(&fin.id).await.unwrap(), book);
    f.done().await;
}

async fn migrations_are_idempotent(b: Backend) {
    let f = Fixture::new(b).await;
    f.store.migrate().await.unwrap();
    f.store.migrate().await.unwrap();
    f.done().await;
}

async fn ping_and_counts(b: Backend) {
    let f = Fixture::new(b).await;
    f.store.ping().await.unwrap();
    f.store.checkpoint().await.unwrap();
    let r = demo::restaurant_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    f.store
        .replace_menu(&r.id, &demo::restaurant_menu())
        .await
        .unwrap();
    f.store.add_api_key(&r.id, "k", "demo").await.unwrap();
    let c = f.store.counts().await.unwrap();
    assert_eq!(c.tenants, 1);
    assert_eq!(c.api_keys, 1);
    assert_eq!(
        c.menu_items,
        i64::try_from(demo::restaurant_menu().items.len()).unwrap()
    );
    f.store.close().await;
    assert!(
        f.store.ping().await.is_err(),
        "a closed store must not ping"
    );
    if let Some(url) = f.pg_url {
        testing::drop_postgres_database(&url).await.unwrap();
    }
}

async fn backup_then_restore_round_trip(b: Backend) {
    let f = Fixture::new(b).await;
    let r = demo::restaurant_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    let menu = demo::restaurant_menu();
    f.store.replace_menu(&r.id, &menu).await.unwrap();
    f.store.add_api_key(&r.id, "sp_keep", "demo").await.unwrap();
    f.store
        .create_display_session("bk", &r.id, r.category, "{}")
        .await
        .unwrap();
    for n in 0..3u64 {
        let body = format!("{{\"data\":{{}},\"key\":\"k{n}\",\"type\":\"message\"}}");
        f.store
            .append_display_update("bk", &r.id, n, &body, 100)
            .await
            .unwrap();
    }

    let out = f._dir.path().join("backups/one.bak");
    let rep = f.store.backup(&out).await.unwrap();
    assert!(rep.bytes > 0);
    // A second backup to the same path is refused, not overwritten.
    assert!(f.store.backup(&out).await.is_err());

    // Diverge: change the menu, add a tenant, revoke the key.
    let mut changed = menu.clone();
    changed.items.truncate(1);
    f.store.replace_menu(&r.id, &changed).await.unwrap();
    f.store
        .upsert_tenant(&demo::finance_tenant())
        .await
        .unwrap();
    f.store.revoke_api_keys(&r.id, "demo", None).await.unwrap();

    let body = "{\"data\":{},\"key\":\"late\",\"type\":\"message\"}";
    f.store
        .append_display_update("bk", &r.id, 3, body, 100)
        .await
        .unwrap();

    f.store.restore(&out).await.unwrap();
    assert_eq!(*f.store.menu(&r.id).await.unwrap(), menu);
    // The display log comes back exactly, and appending continues from it.
    assert_eq!(f.store.display_session("bk").await.unwrap().unwrap().seq, 3);
    assert_eq!(f.store.display_components("bk").await.unwrap().len(), 3);
    f.store
        .append_display_update("bk", &r.id, 3, body, 100)
        .await
        .unwrap();
    assert_eq!(f.store.tenants().await.unwrap(), vec![r.clone()]);
    assert!(f.store.api_key_valid(&r.id, "sp_keep").await.unwrap());
    // Garbage is refused with the store untouched.
    let junk = f._dir.path().join("junk.bak");
    std::fs::write(&junk, b"not a database").unwrap();
    assert!(f.store.restore(&junk).await.is_err());
    assert_eq!(*f.store.menu(&r.id).await.unwrap(), menu);
    f.done().await;
}

async fn display_log_appends_in_order_with_components_and_trimming(b: Backend) {
    let f = Fixture::new(b).await;
    let r = demo::restaurant_tenant();
    let fin = demo::finance_tenant();
    f.store.upsert_tenant(&r).await.unwrap();
    f.store.upsert_tenant(&fin).await.unwrap();
    let created = f
        .store
        .create_display_session("s1", &r.id, r.category, "{\"table\":1}")
        .await
        .unwrap();
    assert!(matches!(created, Created::New(ref rec) if rec.seq == 0));
    let again = f
        .store
        .create_display_session("s1", &fin.id, fin.category, "{}")
        .await
        .unwrap();
    assert!(matches!(again, Created::Existing(ref rec) if rec.tenant_id == r.id));

    let put = |key: &str, n: u64| {
        format!("{{\"data\":{{\"n\":{n}}},\"key\":\"{key}\",\"type\":\"message\"}}")
    };
    let mut seq = 0;
    for n in 1..=30u64 {
        let key = if n % 2 == 0 { "even" } else { "odd" };
        let body = put(key, n);
        seq = f
            .store
            .append_display_update("s1", &r.id, seq, &body, 10)
            .await
            .unwrap();
        assert_eq!(seq, n);
    }
    // A stale expected seq or the wrong tenant is a conflict, never a fork.
    let body = put("odd", 99);
    for (tenant, expected) in [(&r.id, 5), (&fin.id, 30)] {
        let e = f
            .store
            .append_display_update("s1", tenant, expected, &body, 10)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    }
    assert_eq!(
        f.store.display_session("s1").await.unwrap().unwrap().seq,
        30
    );
    // Components hold the latest per key.
    let comps = f.store.display_components("s1").await.unwrap();
    assert_eq!(comps.len(), 2);
    assert_eq!(comps[1].key, "even");
    assert_eq!(comps[1].seq, 30);
    assert!(comps[1].body.contains("\"n\":30"));
    // Removal.
    let rm = "{\"key\":\"odd\",\"op\":\"remove\"}";
    seq = f
        .store
        .append_display_update("s1", &r.id, seq, rm, 10)
        .await
        .unwrap();
    assert_eq!(seq, 31);
    let comps = f.store.display_components("s1").await.unwrap();
    assert_eq!(
        comps.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["even"]
    );
    // The log is trimmed to about the last `retain` entries and reads are ordered.
    let oldest = f.store.display_oldest_seq("s1").await.unwrap().unwrap();
    assert!(oldest > 1 && oldest <= 31 - 10 + 1, "oldest {oldest}");
    let after = f.store.display_updates_after("s1", 25, 100).await.unwrap();
    assert_eq!(
        after.iter().map(|u| u.seq).collect::<Vec<_>>(),
        (26..=31).collect::<Vec<_>>()
    );
    let last = f.store.display_updates_last("s1", 3).await.unwrap();
    assert_eq!(last.iter().map(|u| u.seq).collect::<Vec<_>>(), [29, 30, 31]);
    assert_eq!(f.store.display_session_count().await.unwrap(), 1);

    // A batch appends as consecutive seqs in one go, components included; a batch
    // behind the session's seq writes nothing at all.
    let (a, b2, rm_even) = (
        put("a", 1),
        put("b", 2),
        "{\"key\":\"even\",\"op\":\"remove\"}",
    );
    let stale = f
        .store
        .append_display_updates("s1", &r.id, 30, &[&a, &b2], 10)
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
    assert_eq!(
        f.store.display_session("s1").await.unwrap().unwrap().seq,
        31
    );
    let last_seq = f
        .store
        .append_display_updates("s1", &r.id, 31, &[&a, &b2, rm_even], 10)
        .await
        .unwrap();
    assert_eq!(last_seq, 34);
    let comps = f.store.display_components("s1").await.unwrap();
    assert_eq!(
        comps
            .iter()
            .map(|c| (c.key.as_str(), c.seq))
            .collect::<Vec<_>>(),
        [("a", 32), ("b", 33)]
    );
    let after = f.store.display_updates_after("s1", 31, 100).await.unwrap();
    assert_eq!(
        after.iter().map(|u| u.seq).collect::<Vec<_>>(),
        [32, 33, 34]
    );
    assert_eq!(after[2].body, rm_even);
    // Skipping a trimmed stretch (the JetStream log dropped entries the store never saw):
    // only from the seq the caller saw, then appends continue from the new one.
    f.store.advance_display_seq("s1", 33, 44).await.unwrap();
    assert_eq!(
        f.store.display_session("s1").await.unwrap().unwrap().seq,
        34
    );
    f.store.advance_display_seq("s1", 34, 44).await.unwrap();
    assert_eq!(
        f.store.display_session("s1").await.unwrap().unwrap().seq,
        44
    );
    let e = f
        .store
        .append_display_update("s1", &r.id, 34, &put("odd", 45), 10)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    assert_eq!(
        f.store
            .append_display_update("s1", &r.id, 44, &put("odd", 45), 10)
            .await
            .unwrap(),
        45
    );
    f.done().await;
}

async fn conversations_record_tool_calls_once_and_keep_the_transcript(b: Backend) {
    use stonepot_domain::Category;
    use stonepot_store::{ToolCallRow, TurnRow};
    let f = Fixture::new(b).await;
    let s = &f.store;
    let r = demo::restaurant_tenant();
    let other = demo::finance_tenant();
    s.upsert_tenant(&r).await.unwrap();
    s.upsert_tenant(&other).await.unwrap();
    let (c, created) = s
        .create_conversation(
            "conv-1",
            &r.id,
            Category::Restaurant,
            Some("guest-7"),
            "en",
            "{}",
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!((c.turns, c.user_id.as_deref()), (0, Some("guest-7")));
    let (_, again) = s
        .create_conversation("conv-1", &r.id, Category::Restaurant, None, "en", "{}")
        .await
        .unwrap();
    assert!(!again, "the same tenant gets the existing conversation");
    let clash = s
        .create_conversation("conv-1", &other.id, Category::Financial, None, "en", "{}")
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");

    assert_eq!(s.begin_turn(&r.id, "conv-1").await.unwrap(), 1);
    assert_eq!(s.begin_turn(&r.id, "conv-1").await.unwrap(), 2);
    assert!(matches!(
        s.begin_turn(&other.id, "conv-1").await,
        Err(StoreError::NotFound(_))
    ));

    let call = ToolCallRow {
        call_id: "call_a".into(),
        position: 0,
        name: "add_to_cart".into(),
        arguments: r#"{"item":"margherita"}"#.into(),
        ok: true,
        result: serde_json::json!({"added": "l1"}),
    };
    assert!(
        s.record_tool_call(&r.id, "conv-1", 2, &call, Some("{\"lines\":[1]}"))
            .await
            .unwrap()
    );
    let replay = ToolCallRow {
        result: serde_json::json!({"added": "l2"}),
        ..call.clone()
    };
    assert!(
        !s.record_tool_call(&r.id, "conv-1", 2, &replay, Some("{\"lines\":[1,2]}"))
            .await
            .unwrap(),
        "a replayed call id is refused"
    );
    assert_eq!(
        s.conversation("conv-1").await.unwrap().unwrap().cart,
        "{\"lines\":[1]}"
    );
    assert_eq!(
        s.tool_call(&r.id, "conv-1", 2, "call_a").await.unwrap(),
        Some(call.clone())
    );
    assert_eq!(
        s.tool_call(&other.id, "conv-1", 2, "call_a").await.unwrap(),
        None
    );

    let turn = TurnRow {
        turn: 2,
        user_text: "a margherita".into(),
        assistant_text: "Added.".into(),
        model: "gpt-4o-mini".into(),
        target: "fast".into(),
        status: "ok".into(),
        error: None,
        input_tokens: 800,
        output_tokens: 12,
        cached_tokens: 512,
        cost_micros: 130,
        ttft_ms: Some(210),
        latency_ms: 640,
        created_at: 0,
        tool_calls: Vec::new(),
        voice: None,
    };
    s.save_turn(&r.id, "conv-1", &turn).await.unwrap();
    let got = s.turns(&r.id, "conv-1").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].tool_calls, vec![call]);
    assert_eq!((got[0].cached_tokens, got[0].ttft_ms), (512, Some(210)));
    assert!(s.turns(&other.id, "conv-1").await.unwrap().is_empty());

    // A spoken turn the guest cut short: the voice record lands and the assistant text
    // becomes what was heard; another tenant or a missing turn changes nothing.
    let voice = serde_json::json!({"interrupted": true, "heard": "Add"});
    assert!(
        !s.set_turn_voice(&other.id, "conv-1", 2, Some("Add"), &voice)
            .await
            .unwrap()
    );
    assert!(
        !s.set_turn_voice(&r.id, "conv-1", 9, Some("Add"), &voice)
            .await
            .unwrap()
    );
    assert_eq!(s.turns(&r.id, "conv-1").await.unwrap()[0].voice, None);
    assert!(
        s.set_turn_voice(&r.id, "conv-1", 2, Some("Add"), &voice)
            .await
            .unwrap()
    );
    let got = s.turns(&r.id, "conv-1").await.unwrap();
    assert_eq!(
        (got[0].assistant_text.as_str(), got[0].voice.as_ref()),
        ("Add", Some(&voice))
    );
    assert!(
        s.set_turn_voice(&r.id, "conv-1", 2, None, &serde_json::json!({}))
            .await
            .unwrap()
    );
    assert_eq!(
        s.turns(&r.id, "conv-1").await.unwrap()[0].assistant_text,
        "Add"
    );

    // A turn stored with its voice record (a realtime model's turn) has it at once.
    let spoken = TurnRow {
        turn: 3,
        voice: Some(serde_json::json!({"mode": "relay", "interrupted": false})),
        ..turn.clone()
    };
    s.save_turn(&r.id, "conv-1", &spoken).await.unwrap();
    let got = s.turns(&r.id, "conv-1").await.unwrap();
    assert_eq!(got[1].turn, 3);
    assert_eq!(got[1].voice, spoken.voice);

    assert_eq!(s.agent_profile(&r.id).await.unwrap(), None);
    s.set_agent_profile(&r.id, "Gia", "Be brief.")
        .await
        .unwrap();
    s.set_agent_profile(&r.id, "Gia", "Be briefer.")
        .await
        .unwrap();
    assert_eq!(
        s.agent_profile(&r.id).await.unwrap(),
        Some(("Gia".into(), "Be briefer.".into()))
    );
    f.done().await;
}

#[tokio::test]
async fn a_checkpoint_past_the_limit_starts_the_wal_over_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let r = demo::restaurant_tenant();
    store.upsert_tenant(&r).await.unwrap();
    store
        .replace_menu(&r.id, &demo::restaurant_menu())
        .await
        .unwrap();
    let wal = dir.path().join("wal.db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let before = size();
    assert!(before > 0);
    // Under the limit: a passive checkpoint. The WAL file stays.
    store.checkpoint_past(u64::MAX).await.unwrap();
    assert_eq!(size(), before);
    // Past it: a restart. The file still stays (writing over allocated blocks is
    // cheaper than growing a truncated file), and the next commit writes it from its
    // start, so it does not grow.
    store.checkpoint_past(0).await.unwrap();
    assert_eq!(size(), before);
    let mut renamed = demo::finance_tenant();
    renamed.name = "Renamed".into();
    store.upsert_tenant(&renamed).await.unwrap();
    assert_eq!(size(), before);
    // Nothing was lost, and writing goes on.
    assert_eq!(*store.menu(&r.id).await.unwrap(), demo::restaurant_menu());
    assert_eq!(
        store.tenant(&renamed.id).await.unwrap().unwrap().name,
        "Renamed"
    );
    store.close().await;
}
