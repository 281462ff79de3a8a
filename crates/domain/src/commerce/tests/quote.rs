use super::*;
use crate::Category;
use crate::display::{TEXT_MAX, normalize};
use proptest::prelude::*;
use serde_json::json;

fn build(cart: &Cart, menu: &Menu, policy: &PricingPolicy, tip: Tip) -> Result<Quote, QuoteError> {
    Quote::build(
        cart,
        menu,
        policy,
        Currency::USD,
        tip,
        NOW,
        DEFAULT_QUOTE_TTL,
        "menu-7",
    )
}

#[test]
fn exclusive_tax_is_added_per_line_and_totals_add_up() {
    let q = quote_with(&exclusive(875), Tip::None);
    let lines: Vec<(&str, u32, i64, i64, i64)> = q
        .lines
        .iter()
        .map(|l| {
            (
                l.item_id.as_str(),
                l.quantity,
                l.unit_price,
                l.line_total,
                l.tax,
            )
        })
        .collect();
    // 8.75 % of 25.98 = 2.27325 → 2.27; of 8.95 = 0.783125 → 0.78.
    assert_eq!(
        lines,
        vec![
            ("margherita", 2, 1299, 2598, 227),
            ("tiramisu", 1, 895, 895, 78)
        ]
    );
    assert_eq!(
        (q.subtotal, q.tax, q.service_charge, q.tip),
        (3493, 305, 0, 0)
    );
    assert_eq!(q.total, 3798);
    assert_eq!(q.item_count(), 3);
    assert_eq!(q.currency, Currency::USD);
    assert_eq!(q.menu_version, "menu-7");
}

#[test]
fn inclusive_tax_is_extracted_per_line() {
    let q = quote_with(&inclusive(2000), Tip::None);
    // 20 % VAT inside 25.98 is 4.33; inside 8.95 it is 1.491666… → 1.49.
    let taxes: Vec<i64> = q.lines.iter().map(|l| l.tax).collect();
    assert_eq!(taxes, vec![433, 149]);
    for l in &q.lines {
        assert_eq!(l.net(true) + l.tax, l.line_total);
    }
    assert_eq!((q.subtotal, q.tax, q.total), (3493, 582, 3493));
}

#[test]
fn tips_and_service_charges_are_rounded_shares_of_the_subtotal() {
    let policy = PricingPolicy {
        service_charge_bps: Some(1000),
        ..exclusive(875)
    };
    // 18 % of 34.93 = 6.2874 → 6.29; 10 % service = 3.493 → 3.49.
    let q = quote_with(&policy, Tip::Percent { bps: 1800 });
    assert_eq!((q.tip, q.service_charge), (629, 349));
    assert_eq!(q.total, 3493 + 305 + 349 + 629);
    let q = quote_with(&exclusive(875), Tip::Amount { minor: 500 });
    assert_eq!((q.tip, q.total), (500, 4298));
}

#[test]
fn prices_come_from_the_menu_never_from_the_cart() {
    let m = menu();
    let mut c = cart(&m);
    for l in &mut c.lines {
        l.unit_price = 1;
        l.line_total = 1;
        l.name = "Free Lunch".into();
        for md in &mut l.modifiers {
            md.price_delta = -10_000;
            md.name = "Gratis".into();
        }
    }
    let q = build(&c, &m, &exclusive(875), Tip::None).unwrap();
    assert_eq!(q.subtotal, 3493);
    assert_eq!(q.lines[0].name, "Margherita Pizza");
    assert!(q.lines[0].modifiers.iter().any(|m| m.name == "No basil"));
}

#[test]
fn refusals_name_the_line_and_the_problem() {
    let m = menu();
    let c = cart(&m);
    let p = exclusive(875);
    let code = |r: Result<Quote, QuoteError>| r.unwrap_err().code();

    assert_eq!(code(build(&Cart::new(), &m, &p, Tip::None)), "empty_cart");

    let mut gone = m.clone();
    gone.items.retain(|i| i.id != "tiramisu");
    let e = build(&c, &gone, &p, Tip::None).unwrap_err();
    assert_eq!(
        e,
        QuoteError::UnknownItem {
            line_id: "l2".into(),
            item_id: "tiramisu".into()
        }
    );

    let mut off = m.clone();
    off.items
        .iter_mut()
        .find(|i| i.id == "margherita")
        .unwrap()
        .available = false;
    let e = build(&c, &off, &p, Tip::None).unwrap_err();
    assert_eq!(e.code(), "unavailable");
    assert_eq!(e.to_string(), "Margherita Pizza is not available right now");

    let mut no_mod = m.clone();
    for g in &mut no_mod
        .items
        .iter_mut()
        .find(|i| i.id == "margherita")
        .unwrap()
        .modifier_groups
    {
        g.modifiers.retain(|x| x.id != "margherita-no-basil");
    }
    let e = build(&c, &no_mod, &p, Tip::None).unwrap_err();
    assert_eq!(e.code(), "modifier_unavailable");
    assert_eq!(
        e.to_string(),
        "Margherita Pizza no longer offers 'No basil'"
    );

    let mut stricter = m.clone();
    let item = stricter
        .items
        .iter_mut()
        .find(|i| i.id == "tiramisu")
        .unwrap();
    item.modifier_groups.push(ModifierGroup {
        id: "tiramisu-spoons".into(),
        name: "Spoons".into(),
        min: 1,
        max: 1,
        modifiers: vec![Modifier {
            id: "tiramisu-two".into(),
            name: "Two spoons".into(),
            price_delta: 0,
            default: true,
        }],
    });
    let e = build(&c, &stricter, &p, Tip::None).unwrap_err();
    assert_eq!(e.code(), "modifier_rules_changed");
    assert!(e.to_string().contains("Spoons now needs at least 1"), "{e}");

    let mut dup = c.clone();
    let extra = dup.lines[0].modifiers[1].clone();
    dup.lines[0].modifiers.push(extra);
    assert_eq!(
        code(build(&dup, &m, &p, Tip::None)),
        "modifier_rules_changed"
    );

    let mut zero = c.clone();
    zero.lines[0].quantity = 0;
    assert_eq!(code(build(&zero, &m, &p, Tip::None)), "bad_quantity");

    let mut cheap = m.clone();
    cheap
        .items
        .iter_mut()
        .find(|i| i.id == "tiramisu")
        .unwrap()
        .price = -1;
    assert_eq!(code(build(&c, &cheap, &p, Tip::None)), "negative_price");

    let mut huge = m.clone();
    huge.items
        .iter_mut()
        .find(|i| i.id == "margherita")
        .unwrap()
        .price = i64::MAX / 2 + 1;
    let e = build(&c, &huge, &p, Tip::None).unwrap_err();
    assert_eq!(
        e,
        QuoteError::Pricing {
            detail: PricingError::Overflow { what: "line total" }
        }
    );

    let no_tips = PricingPolicy {
        tips_allowed: false,
        ..p
    };
    assert_eq!(
        code(build(&c, &m, &no_tips, Tip::Amount { minor: 100 })),
        "tip_not_allowed"
    );
    assert!(build(&c, &m, &no_tips, Tip::Amount { minor: 0 }).is_ok());
    assert_eq!(
        code(build(&c, &m, &p, Tip::Amount { minor: -1 })),
        "negative_tip"
    );
    assert_eq!(
        code(build(&c, &m, &p, Tip::Percent { bps: 10_001 })),
        "tip_percent_out_of_range"
    );
    assert_eq!(
        code(build(&c, &m, &exclusive(10_001), Tip::None)),
        "pricing"
    );

    let with = |now: UnixMs, ttl: Duration, version: &str| {
        Quote::build(&c, &m, &p, Currency::USD, Tip::None, now, ttl, version)
    };
    assert_eq!(code(with(NOW, Duration::ZERO, "v")), "bad_ttl");
    assert_eq!(code(with(NOW, Duration::from_secs(90_000), "v")), "bad_ttl");
    assert_eq!(code(with(UnixMs(-1), ten_minutes(), "v")), "bad_time");
    assert_eq!(code(with(UnixMs::MAX, ten_minutes(), "v")), "bad_time");
    assert_eq!(code(with(NOW, ten_minutes(), "")), "bad_menu_version");
    assert_eq!(
        code(with(NOW, ten_minutes(), &"v".repeat(129))),
        "bad_menu_version"
    );
}

#[test]
fn errors_serialize_with_their_code() {
    let e = QuoteError::Unavailable {
        line_id: "l1".into(),
        item_id: "x".into(),
        name: "X".into(),
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["code"], "unavailable");
    assert_eq!(
        v["lineId"],
        serde_json::Value::Null,
        "fields stay snake_case"
    );
    assert_eq!(v["line_id"], "l1");
    let s = StaleQuote::PriceChanged {
        line_id: "l1".into(),
        name: "Tiramisu".into(),
        currency: Currency::USD,
        quoted: 895,
        current: 950,
    };
    assert_eq!(s.to_string(), "Tiramisu now costs 9.50 instead of 8.95");
    assert_eq!(serde_json::to_value(&s).unwrap()["code"], "price_changed");
}

#[test]
fn expiry_defaults_to_ten_minutes_and_renders_rfc3339() {
    let q = quote_with(&exclusive(875), Tip::None);
    assert_eq!(DEFAULT_QUOTE_TTL, ten_minutes());
    assert_eq!(q.created_at, NOW);
    assert_eq!(q.expires_at, UnixMs(NOW.0 + 600_000));
    assert_eq!(q.expires_at.to_rfc3339(), "2026-09-21T14:23:20Z");
}

#[test]
fn the_hash_is_deterministic_and_names_the_quote() {
    let a = quote_with(&exclusive(875), Tip::None);
    let b = quote_with(&exclusive(875), Tip::None);
    assert_eq!(a, b);
    assert_eq!(a.hash.len(), 64);
    assert!(a.hash.bytes().all(|c| c.is_ascii_hexdigit()));
    assert!(a.verify_hash());
    assert_eq!(a.id.as_str(), format!("q_{}", &a.hash[..24]));
    let canonical = String::from_utf8(a.canonical()).unwrap();
    assert!(
        canonical.starts_with("stonepot.quote.v1\ncurrency=3:USD\n"),
        "{canonical}"
    );
    assert!(
        canonical.contains("modifierName=8:No basil\n"),
        "{canonical}"
    );
    let c = quote_with(&exclusive(876), Tip::None);
    assert_ne!(a.hash, c.hash);
    assert_ne!(a.id, c.id);
}

#[test]
fn a_fresh_confirmation_is_valid() {
    let m = menu();
    let c = cart(&m);
    let q = quote_with(&exclusive(875), Tip::Percent { bps: 1500 });
    assert_eq!(q.is_valid_for(&q.hash, &c, &m, NOW), Ok(()));
    assert_eq!(
        q.is_valid_for(&q.hash, &c, &m, UnixMs(q.expires_at.0 - 1)),
        Ok(())
    );
    // Changes the quote does not depend on: a description, another item's price.
    let mut m2 = m.clone();
    for i in &mut m2.items {
        i.description = "new words".into();
        if i.id == "lasagna" {
            i.price += 100;
        }
    }
    assert_eq!(q.is_valid_for(&q.hash, &c, &m2, NOW), Ok(()));
}

#[test]
fn stale_confirmations_are_refused_with_a_reason() {
    let m = menu();
    let c = cart(&m);
    let q = quote_with(&exclusive(875), Tip::None);
    let check = |q: &Quote, c: &Cart, m: &Menu, now: UnixMs| q.is_valid_for(&q.hash, c, m, now);

    let other = quote_with(&exclusive(900), Tip::None);
    let e = q.is_valid_for(&other.hash, &c, &m, NOW).unwrap_err();
    assert_eq!(e.code(), "hash_mismatch");

    let mut forged = q.clone();
    forged.total -= 100;
    assert_eq!(check(&forged, &c, &m, NOW), Err(StaleQuote::Tampered));

    assert_eq!(
        check(&q, &c, &m, q.expires_at),
        Err(StaleQuote::Expired {
            expires_at: q.expires_at
        })
    );

    let mut more = c.clone();
    more.update(&m, "l2", Some(2), None).unwrap();
    let e = check(&q, &more, &m, NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the cart changed since the quote: Tiramisu went from 1 to 2"
    );

    let mut fewer = c.clone();
    fewer.remove("l2").unwrap();
    assert_eq!(
        check(&q, &fewer, &m, NOW).unwrap_err().to_string(),
        "the cart changed since the quote: Tiramisu was removed"
    );

    let mut added = c.clone();
    added.add(&m, "espresso", 1, &[]).unwrap();
    assert_eq!(
        check(&q, &added, &m, NOW).unwrap_err().code(),
        "cart_changed"
    );

    let mut options = c.clone();
    options
        .update(&m, "l1", None, Some(&["Extra basil".into()]))
        .unwrap();
    assert_eq!(
        check(&q, &options, &m, NOW).unwrap_err().to_string(),
        "the cart changed since the quote: the options of Margherita Pizza changed"
    );

    let mut dearer = m.clone();
    dearer
        .items
        .iter_mut()
        .find(|i| i.id == "tiramisu")
        .unwrap()
        .price = 950;
    assert_eq!(
        check(&q, &c, &dearer, NOW),
        Err(StaleQuote::PriceChanged {
            line_id: "l2".into(),
            name: "Tiramisu".into(),
            currency: Currency::USD,
            quoted: 895,
            current: 950
        })
    );

    let mut eighty_sixed = m.clone();
    eighty_sixed
        .items
        .iter_mut()
        .find(|i| i.id == "tiramisu")
        .unwrap()
        .available = false;
    let e = check(&q, &c, &eighty_sixed, NOW).unwrap_err();
    assert_eq!(e.code(), "menu_changed");
    assert_eq!(
        e.to_string(),
        "the menu changed since the quote: Tiramisu is not available right now"
    );

    let mut renamed = m.clone();
    renamed
        .items
        .iter_mut()
        .find(|i| i.id == "tiramisu")
        .unwrap()
        .name = "Tiramisù".into();
    assert_eq!(
        check(&q, &c, &renamed, NOW).unwrap_err().to_string(),
        "the quote no longer matches the cart and menu: Tiramisu is now called Tiramisù"
    );
}

#[test]
fn read_back_lists_lines_without_defaults_then_the_totals() {
    let q = quote_with(&exclusive(875), Tip::None);
    assert_eq!(
        q.read_back(),
        "2 × Margherita Pizza (No basil) $25.98 and 1 × Tiramisu $8.95. \
         Subtotal $34.93, tax $3.05, total $37.98. Shall I place the order?"
    );
    let q = quote_with(&inclusive(2000), Tip::None);
    assert_eq!(
        q.read_back(),
        "2 × Margherita Pizza (No basil) $25.98 and 1 × Tiramisu $8.95. \
         Total $34.93 (including $5.82 tax). Shall I place the order?"
    );
    let q = quote_with(
        &PricingPolicy {
            service_charge_bps: Some(1000),
            ..inclusive(2000)
        },
        Tip::Amount { minor: 100 },
    );
    assert!(
        q.read_back().ends_with(
            "Subtotal $34.93, service charge $3.49, tip $1.00, total $39.42 \
             (including $5.82 tax). Shall I place the order?"
        ),
        "{}",
        q.read_back()
    );
    let q = quote_with(&exclusive(0), Tip::None);
    assert!(
        q.read_back()
            .ends_with(". Total $34.93. Shall I place the order?")
    );
}

/// A menu of `n` items with long names, and a cart holding all of them.
fn long_order(n: usize) -> (Menu, Cart) {
    let mut m = generated_menu(&vec![(123_456, 0); n]);
    for i in &mut m.items {
        i.name = format!("{} {}", i.name, "with a very long description ".repeat(6));
    }
    let c = generated_cart(&(0..n).map(|k| (k, 99, true)).collect::<Vec<_>>());
    (m, c)
}

#[test]
fn read_back_always_fits_the_display() {
    let (m, c) = long_order(LIST_MAX_FOR_TEST);
    let q = build(&c, &m, &exclusive(875), Tip::None).unwrap();
    let text = q.read_back();
    assert!(text.chars().count() <= TEXT_MAX, "{}", text.chars().count());
    assert!(text.contains(" more items. Subtotal"), "{text}");
    assert!(text.ends_with("Shall I place the order?"));
    assert!(text.starts_with("99 × Item 0 with a very long"));
    let shown = text.matches(" × ").count();
    let rest: u64 = q
        .lines
        .iter()
        .skip(shown)
        .map(|l| u64::from(l.quantity))
        .sum();
    assert!(text.contains(&format!("and {rest} more items")), "{text}");
    normalize(
        Category::Restaurant,
        "quote",
        &q.display_data(),
        Currency::USD,
    )
    .unwrap();
}

const LIST_MAX_FOR_TEST: usize = crate::display::LIST_MAX;

#[test]
fn display_data_is_a_valid_quote_component() {
    let policies = [
        exclusive(875),
        inclusive(2000),
        PricingPolicy {
            service_charge_bps: Some(1250),
            ..exclusive(875)
        },
        PricingPolicy {
            service_charge_bps: Some(1000),
            ..inclusive(2000)
        },
    ];
    for p in &policies {
        for tip in [Tip::None, Tip::Percent { bps: 2000 }] {
            let q = quote_with(p, tip);
            let data = q.display_data();
            let normalized = normalize(Category::Restaurant, "quote", &data, Currency::USD)
                .unwrap_or_else(|e| panic!("{e}: {data}"));
            // Already canonical: normalizing changes nothing.
            assert_eq!(normalized, data);
        }
    }
    let q = quote_with(
        &PricingPolicy {
            service_charge_bps: Some(1000),
            ..exclusive(875)
        },
        Tip::Amount { minor: 100 },
    );
    let d = q.display_data();
    assert_eq!(d["quoteId"], q.id.as_str());
    assert_eq!(d["hash"], q.hash.as_str());
    assert_eq!(
        d["tip"],
        json!({"minor": 449, "currency": "USD"}),
        "tip + service charge"
    );
    assert_eq!(d["total"]["minor"], q.total);
    assert_eq!(d["expiresAt"], "2026-09-21T14:23:20Z");
    assert_eq!(d["readBack"], q.read_back());
    assert_eq!(
        d["lines"][0],
        json!({
            "name": "Margherita Pizza",
            "quantity": 2,
            "unitPrice": {"minor": 1299, "currency": "USD"},
            "lineTotal": {"minor": 2598, "currency": "USD"},
            "modifiers": ["Regular", "No basil"],
            "itemId": "margherita",
        })
    );
}

#[test]
fn display_data_works_for_currencies_without_minor_units() {
    let m = generated_menu(&[(1500, 200)]);
    let c = generated_cart(&[(0, 2, true)]);
    let jpy = Currency::from_code("JPY").unwrap();
    let q = Quote::build(
        &c,
        &m,
        &inclusive(1000),
        jpy,
        Tip::None,
        NOW,
        DEFAULT_QUOTE_TTL,
        "v1",
    )
    .unwrap();
    // 10 % inside ¥3,400 is 309.09… → 309.
    assert_eq!((q.subtotal, q.tax, q.total), (3400, 309, 3400));
    assert!(
        q.read_back()
            .contains("Total 3,400 JPY (including 309 JPY tax)")
    );
    let d = q.display_data();
    assert_eq!(
        normalize(Category::Restaurant, "quote", &d, jpy).unwrap(),
        d
    );
}

#[test]
fn quotes_round_trip_through_json() {
    let q = quote_with(
        &PricingPolicy {
            service_charge_bps: Some(1000),
            ..inclusive(2000)
        },
        Tip::Percent { bps: 1000 },
    );
    let text = serde_json::to_string(&q).unwrap();
    let back: Quote = serde_json::from_str(&text).unwrap();
    assert_eq!(back, q);
    assert!(back.verify_hash());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["policy"]["taxRateBps"], 2000);
    assert_eq!(v["lines"][0]["lineTotal"], 2598);
    assert_eq!(v["expiresAt"], NOW.0 + 600_000);
}

#[test]
fn spoken_amounts_read_naturally() {
    assert_eq!(spoken_amount(2723, Currency::USD), "$27.23");
    assert_eq!(spoken_amount(123_456_789, Currency::USD), "$1,234,567.89");
    assert_eq!(spoken_amount(-5, Currency::USD), "-$0.05");
    assert_eq!(spoken_amount(950, Currency::EUR), "€9.50");
    assert_eq!(
        spoken_amount(1200, Currency::from_code("JPY").unwrap()),
        "1,200 JPY"
    );
    assert_eq!(
        spoken_amount(1234, Currency::from_code("KWD").unwrap()),
        "1.234 KWD"
    );
}

#[test]
fn menu_fingerprint_follows_what_can_be_ordered() {
    let m = menu();
    let base = menu_fingerprint(&m);
    assert_eq!(base, menu_fingerprint(&menu()));
    let mut described = m.clone();
    described.items[0].description = "different".into();
    assert_eq!(menu_fingerprint(&described), base);
    let mut dearer = m.clone();
    dearer.items[0].price += 1;
    assert_ne!(menu_fingerprint(&dearer), base);
    let mut off = m.clone();
    off.items[0].available = !off.items[0].available;
    assert_ne!(menu_fingerprint(&off), base);
}

/// Every field the hash covers, changed one at a time.
fn covered_mutations(q: &Quote) -> Vec<(String, Quote)> {
    let mut out: Vec<(String, Quote)> = Vec::new();
    let mut with = |label: &str, f: &dyn Fn(&mut Quote)| {
        let mut m = q.clone();
        f(&mut m);
        out.push((label.to_string(), m));
    };
    with("currency", &|m| m.currency = Currency::EUR);
    with("exponent", &|m| {
        m.currency = Currency::from_code("KWD").unwrap()
    });
    with("menu_version", &|m| m.menu_version.push('x'));
    with("tax_rate_bps", &|m| m.policy.tax_rate_bps += 1);
    with("tax_inclusive", &|m| m.policy.tax_inclusive ^= true);
    with("service_charge_bps", &|m| {
        m.policy.service_charge_bps = match m.policy.service_charge_bps {
            None => Some(0),
            Some(x) => Some(x.wrapping_add(1)),
        }
    });
    with("tips_allowed", &|m| m.policy.tips_allowed ^= true);
    with("subtotal", &|m| m.subtotal += 1);
    with("tax", &|m| m.tax += 1);
    with("service_charge", &|m| m.service_charge += 1);
    with("tip", &|m| m.tip += 1);
    with("total", &|m| m.total -= 1);
    with("expires_at", &|m| m.expires_at.0 += 1);
    with("line added", &|m| {
        let l = m.lines[0].clone();
        m.lines.push(l);
    });
    with("line removed", &|m| {
        m.lines.pop();
    });
    if q.lines.len() >= 2 {
        with("lines swapped", &|m| {
            let last = m.lines.len() - 1;
            m.lines.swap(0, last);
        });
    }
    for i in 0..q.lines.len() {
        with(&format!("line {i} id"), &|m| m.lines[i].line_id.push('x'));
        with(&format!("line {i} item"), &|m| m.lines[i].item_id.push('x'));
        with(&format!("line {i} name"), &|m| m.lines[i].name.push(' '));
        with(&format!("line {i} quantity"), &|m| m.lines[i].quantity += 1);
        with(&format!("line {i} unit price"), &|m| {
            m.lines[i].unit_price += 1
        });
        with(&format!("line {i} total"), &|m| m.lines[i].line_total += 1);
        with(&format!("line {i} tax"), &|m| m.lines[i].tax += 1);
        with(&format!("line {i} modifier added"), &|m| {
            m.lines[i].modifiers.push(QuoteModifier {
                group_id: "g".into(),
                id: "x".into(),
                name: "X".into(),
                price_delta: 0,
                is_default: false,
            })
        });
        for j in 0..q.lines[i].modifiers.len() {
            with(&format!("line {i} mod {j} group"), &|m| {
                m.lines[i].modifiers[j].group_id.push('x')
            });
            with(&format!("line {i} mod {j} id"), &|m| {
                m.lines[i].modifiers[j].id.push('x')
            });
            with(&format!("line {i} mod {j} name"), &|m| {
                m.lines[i].modifiers[j].name.push('x')
            });
            with(&format!("line {i} mod {j} delta"), &|m| {
                m.lines[i].modifiers[j].price_delta -= 1
            });
        }
    }
    out
}

/// Fields the hash leaves out on purpose.
fn uncovered_mutations(q: &Quote) -> Vec<Quote> {
    let mut a = q.clone();
    a.created_at.0 -= 12_345;
    let mut b = q.clone();
    b.id = QuoteId::new("q_other").unwrap();
    let mut c = q.clone();
    for l in &mut c.lines {
        for m in &mut l.modifiers {
            m.is_default ^= true;
        }
    }
    let mut d = q.clone();
    d.hash = "0".repeat(64);
    vec![a, b, c, d]
}

/// Item `(price, modifier delta)` pairs and cart `(item, quantity, with modifier)` lines.
type Specs = (Vec<(i64, i64)>, Vec<(usize, u32, bool)>);

fn order_specs() -> impl Strategy<Value = Specs> {
    prop::collection::vec((0i64..5_000_000, -100i64..100_000), 1..6).prop_flat_map(|specs| {
        let n = specs.len();
        let lines = prop::collection::vec((0..n, 1u32..=99, any::<bool>()), 1..8);
        (Just(specs), lines)
    })
}

fn policies() -> impl Strategy<Value = PricingPolicy> {
    (
        0u32..=10_000,
        any::<bool>(),
        proptest::option::of(0u32..=3_000),
        any::<bool>(),
    )
        .prop_map(|(bps, incl, sc, tips)| PricingPolicy {
            tax_rate_bps: bps,
            tax_inclusive: incl,
            service_charge_bps: sc,
            tips_allowed: tips,
        })
}

fn tips() -> impl Strategy<Value = Tip> {
    prop_oneof![
        Just(Tip::None),
        (0i64..1_000_000).prop_map(|minor| Tip::Amount { minor }),
        (0u32..=10_000).prop_map(|bps| Tip::Percent { bps }),
    ]
}

/// Menus whose prices and deltas keep every unit price non-negative.
fn priced(specs: &[(i64, i64)]) -> Vec<(i64, i64)> {
    specs.iter().map(|(p, d)| (p + 100, *d)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn exclusive_total_is_subtotal_plus_line_taxes_plus_tip(
        (specs, lines) in order_specs(),
        bps in 0u32..=10_000,
        tip in tips(),
    ) {
        let m = generated_menu(&priced(&specs));
        let c = generated_cart(&lines);
        let p = exclusive(bps);
        let q = build(&c, &m, &p, tip).unwrap();
        let line_tax: i64 = q.lines.iter().map(|l| l.tax).sum();
        prop_assert_eq!(q.tax, line_tax);
        prop_assert_eq!(q.subtotal, q.lines.iter().map(|l| l.line_total).sum::<i64>());
        prop_assert_eq!(q.total, q.subtotal + line_tax + q.tip);
        for (l, (k, qty, with_mod)) in q.lines.iter().zip(&lines) {
            let (price, delta) = priced(&specs)[*k];
            let unit = price + if *with_mod { delta } else { 0 };
            prop_assert_eq!(l.unit_price, unit);
            prop_assert_eq!(l.line_total, unit * i64::from(*qty));
            prop_assert_eq!(l.tax, p.line_tax(l.line_total).unwrap().tax);
        }
        let d = q.display_data();
        prop_assert!(normalize(Category::Restaurant, "quote", &d, Currency::USD).is_ok());
    }

    #[test]
    fn inclusive_lines_split_exactly_into_net_and_tax(
        (specs, lines) in order_specs(),
        bps in 0u32..=10_000,
        tip in tips(),
    ) {
        let m = generated_menu(&priced(&specs));
        let c = generated_cart(&lines);
        let q = build(&c, &m, &inclusive(bps), tip).unwrap();
        for l in &q.lines {
            prop_assert_eq!(l.net(true) + l.tax, l.line_total);
            prop_assert!(l.tax >= 0 && l.tax <= l.line_total);
        }
        prop_assert_eq!(q.total, q.subtotal + q.tip);
        prop_assert!(q.tax <= q.subtotal);
        let d = q.display_data();
        prop_assert!(normalize(Category::Restaurant, "quote", &d, Currency::USD).is_ok());
    }

    #[test]
    fn any_policy_totals_add_up(
        (specs, lines) in order_specs(),
        p in policies(),
        tip in tips(),
    ) {
        let m = generated_menu(&priced(&specs));
        let c = generated_cart(&lines);
        match build(&c, &m, &p, tip) {
            Ok(q) => {
                let tax_added = if p.tax_inclusive { 0 } else { q.tax };
                prop_assert_eq!(q.total, q.subtotal + tax_added + q.service_charge + q.tip);
                prop_assert_eq!(q.service_charge, p.service_charge(q.subtotal).unwrap());
                prop_assert!(q.verify_hash());
                prop_assert_eq!(q.is_valid_for(&q.hash, &c, &m, NOW), Ok(()));
                let d = q.display_data();
                prop_assert!(normalize(Category::Restaurant, "quote", &d, Currency::USD).is_ok());
            }
            Err(e) => prop_assert_eq!(e, QuoteError::TipNotAllowed),
        }
    }

    #[test]
    fn build_never_panics_on_extreme_prices(
        specs in prop::collection::vec((any::<i64>(), any::<i64>()), 1..4),
        lines in prop::collection::vec((0usize..4, any::<u32>(), any::<bool>()), 1..5),
        p in (any::<u32>(), any::<bool>(), proptest::option::of(any::<u32>())),
        tip in prop_oneof![
            any::<i64>().prop_map(|minor| Tip::Amount { minor }),
            any::<u32>().prop_map(|bps| Tip::Percent { bps }),
        ],
        now in any::<i64>(),
        ttl_ms in any::<u64>(),
    ) {
        let n = specs.len();
        let m = generated_menu(&specs);
        let lines: Vec<_> = lines.into_iter().map(|(k, q, w)| (k % n, q, w)).collect();
        let c = generated_cart(&lines);
        let policy = PricingPolicy {
            tax_rate_bps: p.0,
            tax_inclusive: p.1,
            service_charge_bps: p.2,
            tips_allowed: true,
        };
        let r = Quote::build(
            &c, &m, &policy, Currency::USD, tip, UnixMs(now),
            Duration::from_millis(ttl_ms), "v",
        );
        if let Ok(q) = r {
            prop_assert!(q.total >= 0 && q.subtotal >= 0 && q.tax >= 0);
            let _ = q.read_back();
            let _ = q.display_data();
        }
    }

    #[test]
    fn the_hash_changes_with_every_priced_field_and_nothing_else(
        (specs, lines) in order_specs(),
        p in policies(),
    ) {
        let m = generated_menu(&priced(&specs));
        let c = generated_cart(&lines);
        let q = build(&c, &m, &p, Tip::None).unwrap();
        prop_assert_eq!(&q.compute_hash(), &q.hash);
        for (label, changed) in covered_mutations(&q) {
            prop_assert_ne!(changed.compute_hash(), q.hash.clone(), "{}", label);
        }
        for same in uncovered_mutations(&q) {
            prop_assert_eq!(same.compute_hash(), q.hash.clone());
        }
        // Rebuilding from the same inputs is the same quote; a later instant is not.
        prop_assert_eq!(&build(&c, &m, &p, Tip::None).unwrap(), &q);
        let later = Quote::build(
            &c, &m, &p, Currency::USD, Tip::None, UnixMs(NOW.0 + 1),
            DEFAULT_QUOTE_TTL, "menu-7",
        ).unwrap();
        prop_assert_ne!(later.hash, q.hash);
    }
}
