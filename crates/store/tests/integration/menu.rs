//! Menu edits — whole menu, sections, items, the "86" — each in one transaction that
//! bumps the menu version; refusals write nothing. Run once on SQLite and once on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Fixture;
use stonepot_domain::menu::{Item, MAX_PRICE, Section};
use stonepot_domain::{TenantId, demo};
use stonepot_store::{Backend, MenuEditError, Store};

both_backends!(
    every_change_bumps_the_version_once,
    item_upsert_keeps_places_and_checks_sections,
    refusals_write_nothing,
    eighty_six_and_delete,
    sections_are_deleted_only_when_empty,
    expected_version_guards_a_whole_menu_replace,
    edits_stay_within_their_tenant,
);

fn new_item(id: &str, section: &str, price: i64) -> Item {
    Item {
        id: id.into(),
        section_id: section.into(),
        name: format!("Dish {id}"),
        description: "test dish".into(),
        price,
        dietary: vec!["vegan".into()],
        allergens: vec![],
        aliases: vec![],
        available: true,
        image_url: None,
        modifier_groups: vec![],
    }
}

async fn version(s: &Store, t: &TenantId) -> u64 {
    s.menu_with_version(t).await.unwrap().1
}

async fn every_change_bumps_the_version_once(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    assert_eq!(version(s, &f.a).await, 0);
    assert_eq!(
        s.replace_menu(&f.a, &demo::restaurant_menu())
            .await
            .unwrap(),
        1
    );
    let sec = Section {
        id: "specials".into(),
        name: "Specials".into(),
        position: 9,
    };
    assert_eq!(s.upsert_menu_section(&f.a, &sec).await.unwrap(), (true, 2));
    let c = s
        .upsert_menu_item(&f.a, &new_item("soup", "specials", 700))
        .await
        .unwrap();
    assert_eq!((c.before, c.version), (None, 3));
    let c = s
        .set_menu_item_available(&f.a, "soup", false)
        .await
        .unwrap();
    assert_eq!(c.version, 4);
    assert!(!c.after.available);
    let (_, v) = s.delete_menu_item(&f.a, "soup").await.unwrap();
    assert_eq!(v, 5);
    assert_eq!(s.delete_menu_section(&f.a, "specials").await.unwrap(), 6);
    // The commerce side sees the same counter.
    assert_eq!(s.pricing_policy(&f.a).await.unwrap().1, 6);
    assert_eq!(version(s, &f.a).await, 6);
    f.done().await;
}

async fn item_upsert_keeps_places_and_checks_sections(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    s.replace_menu(&f.a, &demo::restaurant_menu())
        .await
        .unwrap();
    let before = s.menu(&f.a).await.unwrap();
    let first = before.items.first().cloned().unwrap();
    let mut changed = first.clone();
    changed.price += 100;
    changed.name = "Renamed".into();
    let c = s.upsert_menu_item(&f.a, &changed).await.unwrap();
    assert_eq!(c.before, Some(first.clone()));
    let after = s.menu(&f.a).await.unwrap();
    assert_eq!(after.items.first(), Some(&changed), "kept its place");
    assert_eq!(after.items.len(), before.items.len());
    // A new item goes last.
    let added = new_item("new-one", "drinks", 250);
    s.upsert_menu_item(&f.a, &added).await.unwrap();
    let after = s.menu(&f.a).await.unwrap();
    assert_eq!(after.items.last(), Some(&added));
    assert_eq!(s.menu_item(&f.a, "new-one").await.unwrap(), Some(added));
    // An unknown section is refused, naming it.
    let e = s
        .upsert_menu_item(&f.a, &new_item("x", "nowhere", 1))
        .await
        .unwrap_err();
    match e {
        MenuEditError::Invalid(m) => {
            assert_eq!(m.field, "sectionId");
            assert!(m.problem.contains("nowhere"));
        }
        other => panic!("{other:?}"),
    }
    f.done().await;
}

async fn refusals_write_nothing(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    s.replace_menu(&f.a, &demo::restaurant_menu())
        .await
        .unwrap();
    let (menu, v) = s.menu_with_version(&f.a).await.unwrap();
    let mut bad = new_item("bad", "drinks", MAX_PRICE + 1);
    assert!(matches!(
        s.upsert_menu_item(&f.a, &bad).await,
        Err(MenuEditError::Invalid(_))
    ));
    bad.price = 1;
    bad.dietary = vec!["keto".into()];
    assert!(matches!(
        s.upsert_menu_item(&f.a, &bad).await,
        Err(MenuEditError::Invalid(_))
    ));
    assert!(matches!(
        s.set_menu_item_available(&f.a, "no-such", false).await,
        Err(MenuEditError::NotFound { kind: "item", .. })
    ));
    assert!(matches!(
        s.delete_menu_item(&f.a, "no-such").await,
        Err(MenuEditError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_menu_section(&f.a, "no-such").await,
        Err(MenuEditError::NotFound { .. })
    ));
    let mut broken = (*menu).clone();
    broken.items.push(new_item("orphan", "nowhere", 100));
    assert!(s.replace_menu(&f.a, &broken).await.is_err());
    assert_eq!(
        s.menu_with_version(&f.a).await.unwrap(),
        (menu, v),
        "neither the menu nor its version moved"
    );
    f.done().await;
}

async fn eighty_six_and_delete(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    s.replace_menu(&f.a, &demo::restaurant_menu())
        .await
        .unwrap();
    let c = s
        .set_menu_item_available(&f.a, "margherita", false)
        .await
        .unwrap();
    assert!(c.before.unwrap().available);
    assert!(
        !s.menu_item(&f.a, "margherita")
            .await
            .unwrap()
            .unwrap()
            .available
    );
    s.set_menu_item_available(&f.a, "margherita", true)
        .await
        .unwrap();
    assert!(
        s.menu_item(&f.a, "margherita")
            .await
            .unwrap()
            .unwrap()
            .available
    );
    let (gone, _) = s.delete_menu_item(&f.a, "margherita").await.unwrap();
    assert_eq!(gone.id, "margherita");
    assert_eq!(s.menu_item(&f.a, "margherita").await.unwrap(), None);
    f.done().await;
}

async fn sections_are_deleted_only_when_empty(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    s.replace_menu(&f.a, &demo::restaurant_menu())
        .await
        .unwrap();
    let v = version(s, &f.a).await;
    match s.delete_menu_section(&f.a, "pizzas").await {
        Err(MenuEditError::SectionInUse { id, items }) => {
            assert_eq!(id, "pizzas");
            assert!(items > 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(version(s, &f.a).await, v, "refused: no bump");
    let renamed = Section {
        id: "pizzas".into(),
        name: "Pizze".into(),
        position: 0,
    };
    assert!(!s.upsert_menu_section(&f.a, &renamed).await.unwrap().0);
    let menu = s.menu(&f.a).await.unwrap();
    assert!(menu.sections.contains(&renamed));
    assert!(menu.items.iter().any(|i| i.section_id == "pizzas"));
    f.done().await;
}

async fn expected_version_guards_a_whole_menu_replace(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    let menu = demo::restaurant_menu();
    let v = s.replace_menu_at(&f.a, &menu, Some(0)).await.unwrap();
    assert_eq!(v, 1);
    match s.replace_menu_at(&f.a, &menu, Some(0)).await {
        Err(MenuEditError::VersionMismatch { expected, current }) => {
            assert_eq!((expected, current), (0, 1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(version(s, &f.a).await, 1);
    assert!(matches!(
        s.replace_menu_at(&f.a, &menu, Some(u64::MAX)).await,
        Err(MenuEditError::VersionMismatch { .. })
    ));
    assert_eq!(s.replace_menu_at(&f.a, &menu, Some(1)).await.unwrap(), 2);
    f.done().await;
}

async fn edits_stay_within_their_tenant(b: Backend) {
    let f = Fixture::new(b, "menu").await;
    let s = &f.store;
    s.replace_menu(&f.a, &demo::restaurant_menu())
        .await
        .unwrap();
    assert!(matches!(
        s.set_menu_item_available(&f.b, "margherita", false).await,
        Err(MenuEditError::NotFound { .. })
    ));
    assert!(matches!(
        s.upsert_menu_item(&f.b, &new_item("margherita", "pizzas", 1))
            .await,
        Err(MenuEditError::Invalid(_))
    ));
    assert!(s.menu(&f.b).await.unwrap().items.is_empty());
    assert!(
        s.menu_item(&f.a, "margherita")
            .await
            .unwrap()
            .unwrap()
            .available
    );
    f.done().await;
}
