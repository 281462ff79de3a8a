//! Questions: about the cart ("what do I have so far") and about the menu (a dish's
//! price, options or availability; dietary and allergen searches; recommendations).

use super::Planner;
use super::intent::{QUESTION_START, is_question};
use crate::offline::matcher::ModOp;
use crate::offline::text::{find, has, has_any, is_stop};
use crate::offline::{Ask, Note, Purpose};
use serde_json::{Value, json};

/// Words a menu question uses that are not what it is about.
const QUESTION_NOISE: &[&str] = &[
    "see",
    "menu",
    "look",
    "show",
    "tell",
    "about",
    "serve",
    "options",
    "option",
    "offer",
    "available",
    "availability",
    "cost",
    "costs",
    "price",
    "priced",
    "prices",
    "recommend",
    "suggest",
    "eat",
    "food",
    "dishes",
    "dish",
    "things",
    "thing",
    "stuff",
    "kinds",
    "types",
    "type",
    "sell",
    "served",
    "come",
    "comes",
    "contain",
    "contains",
    "inside",
    "safe",
    "allergy",
    "allergic",
    "allergies",
    "good",
    "here",
    "today",
    "tonight",
    "popular",
    "best",
    "favourite",
    "favorite",
    "special",
    "specials",
    "list",
    "know",
    "ask",
    "tell",
    "else",
    "choose",
    "pick",
    "there",
    "vegetarian",
    "vegan",
    "veggie",
    "free",
    "gluten",
    "dairy",
    "lactose",
    "nut",
    "nuts",
    "spicy",
    "halal",
    "kosher",
    "does",
    "have",
    "made",
];

/// Topics the order-taker cannot help with.
const OFF_TOPIC: &[&str] = &[
    "time",
    "open",
    "close",
    "closing",
    "hours",
    "parking",
    "wifi",
    "address",
    "located",
    "location",
    "bathroom",
    "toilet",
    "restroom",
    "reservation",
    "book",
    "booking",
    "pay",
    "card",
    "cash",
    "delivery",
    "deliver",
    "tip",
    "job",
    "phone",
    "weather",
];

impl Planner<'_, '_> {
    pub(super) fn cart_question(&self, t: &[String]) -> bool {
        let asks = is_question(t)
            || t.first().is_some_and(|w| {
                ["read", "repeat", "show", "check", "list", "go", "confirm"].contains(&w.as_str())
            });
        if !asks {
            return false;
        }
        let mentions = self.lex.items(t);
        let cart_words = has_any(
            t,
            &[
                "cart", "basket", "total", "bill", "tab", "subtotal", "owe", "due",
            ],
        ) || find(t, &["so", "far"]).is_some()
            || ["my", "our", "the"]
                .iter()
                .any(|d| find(t, &[d, "order"]).is_some());
        let mine = [
            &["do", "i", "have"][..],
            &["do", "we", "have"],
            &["have", "i", "got"],
            &["have", "we", "got"],
            &["did", "i", "order"],
            &["did", "we", "order"],
            &["i", "ordered"],
        ]
        .iter()
        .any(|p| find(t, p).is_some());
        let how_much_that = find(t, &["how", "much"]).is_some()
            && mentions.is_empty()
            && self.lex.sections(t, &mentions).is_empty()
            && has_any(
                t,
                &[
                    "that",
                    "it",
                    "everything",
                    "all",
                    "this",
                    "altogether",
                    "together",
                ],
            );
        let read_back = (has(t, "read") && has(t, "back")) || has(t, "repeat");
        (cart_words && mentions.is_empty()) || mine || how_much_that || read_back
    }

    pub(super) fn menu_question(&mut self, t: &[String]) {
        let mentions = self.lex.items(t);
        if !mentions.is_empty() {
            let ask = if has_any(t, &["much", "cost", "costs", "price", "priced"]) {
                Ask::Price
            } else if has_any(
                t,
                &[
                    "flavor", "flavors", "flavour", "flavours", "size", "sizes", "options",
                    "toppings", "topping", "choices", "extras",
                ],
            ) || find(t, &["come", "in"]).is_some()
            {
                Ask::Options
            } else if has_any(t, &["available", "availability"])
                || find(t, &["do", "you", "have"]).is_some()
                || find(t, &["have", "you", "got"]).is_some()
                || find(t, &["do", "you", "do"]).is_some()
            {
                Ask::Availability
            } else {
                Ask::Describe
            };
            let mut seen = Vec::new();
            for m in mentions.iter().take(3) {
                if seen.contains(&m.item) {
                    continue;
                }
                seen.push(m.item);
                let option = self
                    .lex
                    .modifiers(m.item, t, 0, t.len(), false)
                    .ops
                    .first()
                    .map(|op| match *op {
                        ModOp::Add { group, modifier } | ModOp::Remove { group, modifier } => {
                            self.lex.modifier_name(m.item, group, modifier)
                        }
                    });
                let id = self
                    .lex
                    .item(m.item)
                    .map(|i| i.id.clone())
                    .unwrap_or_default();
                self.call(
                    "show_item",
                    json!({ "item": id }),
                    Purpose::Dish {
                        ask: ask.clone(),
                        option,
                    },
                );
            }
            return;
        }
        let sections = self.lex.sections(t, &mentions);
        let dietary = dietary_tags(t);
        let allergens = allergen_tags(t, &dietary);
        let recommend = has_any(
            t,
            &[
                "recommend",
                "suggest",
                "popular",
                "best",
                "favourite",
                "favorite",
                "good",
                "special",
                "specials",
            ],
        );
        let section = sections
            .first()
            .and_then(|s| self.lex.menu.sections.get(s.section));
        if !dietary.is_empty() || !allergens.is_empty() || section.is_some() {
            let mut args = serde_json::Map::new();
            let mut topic = Vec::new();
            if !dietary.is_empty() {
                args.insert("dietary".into(), json!(dietary));
                topic.push(dietary.join(", ").replace('_', " "));
            }
            match section {
                Some(s) => {
                    args.insert("section".into(), json!(s.id));
                    topic.push(s.name.to_lowercase());
                }
                None => topic.push("dishes".into()),
            }
            if !allergens.is_empty() {
                args.insert("exclude_allergens".into(), json!(allergens));
                topic.push(format!(
                    "without {}",
                    allergens.join(" or ").replace('_', " ")
                ));
            }
            self.call(
                "search_menu",
                Value::Object(args),
                Purpose::Search {
                    topic: topic.join(" "),
                    recommend: false,
                    which: false,
                },
            );
            return;
        }
        let content: Vec<String> = t
            .iter()
            .filter(|w| {
                !is_stop(w)
                    && !QUESTION_NOISE.contains(&w.as_str())
                    && !QUESTION_START.contains(&w.as_str())
            })
            .cloned()
            .collect();
        if content.iter().any(|w| OFF_TOPIC.contains(&w.as_str())) {
            self.plan.note(Note::OffTopic);
            return;
        }
        if recommend || content.is_empty() || has(t, "menu") {
            self.call(
                "search_menu",
                json!({}),
                Purpose::Search {
                    topic: "menu".into(),
                    recommend,
                    which: false,
                },
            );
            return;
        }
        let query = content.join(" ");
        self.call(
            "search_menu",
            json!({ "query": query }),
            Purpose::Search {
                topic: query,
                recommend: false,
                which: false,
            },
        );
    }
}

fn dietary_tags(t: &[String]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut push = |tag: &'static str| {
        if !out.contains(&tag) {
            out.push(tag);
        }
    };
    for (i, w) in t.iter().enumerate() {
        let next = t.get(i + 1).map(String::as_str).unwrap_or("");
        match (w.as_str(), next) {
            ("vegetarian" | "vegetarians" | "veggie" | "veg", _) => push("vegetarian"),
            ("vegan" | "vegans", _) | ("plant", "based") => push("vegan"),
            ("gluten", "free") | ("celiac" | "coeliac" | "gf", _) => push("gluten_free"),
            ("dairy" | "lactose", "free") | ("non", "dairy") => push("dairy_free"),
            ("halal", _) => push("halal"),
            ("kosher", _) => push("kosher"),
            ("spicy" | "spice", _) => push("spicy"),
            _ => {}
        }
    }
    out
}

fn allergen_tags(t: &[String], dietary: &[&str]) -> Vec<&'static str> {
    let trigger = has_any(
        t,
        &[
            "allergic",
            "allergy",
            "allergies",
            "intolerant",
            "intolerance",
            "without",
            "no",
            "avoid",
            "free",
        ],
    ) || find(t, &["can", "not", "eat"]).is_some();
    if !trigger {
        return Vec::new();
    }
    let mut out: Vec<&'static str> = Vec::new();
    for w in t {
        let tags: &[&'static str] = match w.as_str() {
            "nut" | "nuts" => &["tree_nuts", "peanuts"],
            "peanut" | "peanuts" => &["peanuts"],
            "dairy" | "milk" | "lactose" if !dietary.contains(&"dairy_free") => &["milk"],
            "egg" | "eggs" => &["eggs"],
            "gluten" | "wheat" if !dietary.contains(&"gluten_free") => &["gluten"],
            "fish" => &["fish"],
            "shellfish" => &["crustaceans", "molluscs"],
            "soy" | "soya" => &["soy"],
            "sesame" => &["sesame"],
            "celery" => &["celery"],
            "mustard" => &["mustard"],
            _ => &[],
        };
        for tag in tags {
            if !out.contains(tag) {
                out.push(tag);
            }
        }
    }
    out
}
