//! Plans the restaurant tools for one guest utterance.
//!
//! The utterance is cut into clauses ("remove the caesar | and add a caprese"); each
//! clause is a clear, a "that's all", a question about the cart or the menu, or an
//! order move: swap, remove, change (quantity, options, "another one"), or add. Every
//! planned call is run at once on a copy of the workspace so later steps see the cart
//! the earlier ones leave behind.

use super::matcher::{Lexicon, Mention, ModOp, ModParse, SectionMention};
use super::text::{
    Quantity, find, has, has_any, homophone, is_punct, is_stop, key, quantity_at, starts_with,
    tokenize,
};
use super::{Ask, Note, Plan, Purpose};
use crate::tools::{ToolOutcome, Workspace};
use serde_json::{Value, json};
use std::sync::Arc;
use stonepot_domain::CartLine;
use stonepot_domain::menu::Menu;

/// Words that start a new clause after "and" or a comma ("… and add a lemonade").
const SPLIT_VERBS: &[&str] = &[
    "add", "remove", "take", "drop", "make", "change", "swap", "switch", "replace", "cancel",
    "delete", "scratch", "forget", "put", "start", "clear",
];
/// Separators between one dish's words and the next dish's.
const CONJ: &[&str] = &["and", ",", "plus", "also", "then", "or", "but", "&"];
const DEFINITE: &[&str] = &[
    "the", "that", "this", "those", "these", "my", "our", "your", "his", "her", "to", "on", "from",
    "off",
];
const REMOVE_VERBS: &[&str] = &[
    "remove", "drop", "delete", "cancel", "forget", "scratch", "ditch", "lose", "nix", "skip",
    "less", "fewer",
];
const QUESTION_START: &[&str] = &[
    "what",
    "which",
    "how",
    "is",
    "are",
    "does",
    "do",
    "did",
    "any",
    "where",
    "when",
    "why",
    "who",
    "tell",
    "describe",
    "explain",
    "anything",
    "got",
    "recommend",
    "suggest",
];
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
/// Nouns after "a" that are not dishes ("a big group", "a moment").
const NOT_DISHES: &[&str] = &[
    "lot", "bit", "few", "little", "moment", "second", "minute", "while", "group", "question",
    "table", "party", "look", "go", "try", "break", "quick", "couple", "pair", "dozen", "half",
    "time", "day", "night", "nut", "allergy", "side", "round",
];

struct Clause {
    t: Vec<String>,
}

fn split_clauses(toks: &[String]) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut push = |cur: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(Clause {
                t: std::mem::take(cur),
            });
        }
    };
    for (i, tok) in toks.iter().enumerate() {
        let next = toks.get(i + 1).map(String::as_str).unwrap_or("");
        match tok.as_str() {
            "." | "!" | ";" | "?" => {
                push(&mut cur);
                continue;
            }
            "and" | "," | "then" | "but" if SPLIT_VERBS.contains(&next) && !cur.is_empty() => {
                push(&mut cur);
                continue;
            }
            "actually" if !cur.is_empty() => push(&mut cur),
            _ => {}
        }
        cur.push(tok.clone());
    }
    push(&mut cur);
    out
}

/// Plans the calls for one utterance in a restaurant conversation.
pub(super) fn plan(ws: &Workspace, text: &str) -> Plan {
    let Workspace::Restaurant { menu, .. } = ws else {
        return Plan::default();
    };
    let menu: Arc<Menu> = Arc::clone(menu);
    let lex = Lexicon::new(&menu);
    let mut p = Planner {
        lex: &lex,
        sim: ws.clone(),
        plan: Plan::default(),
        done: false,
    };
    let toks = tokenize(text);
    let clauses = split_clauses(&toks);
    // "scratch that, start again": whatever came before a clear is moot.
    let first = clauses.iter().rposition(|c| is_clear(&c.t)).unwrap_or(0);
    for clause in clauses.into_iter().skip(first) {
        p.clause(clause.t);
    }
    if p.done {
        p.call("show_cart", json!({}), Purpose::ReadBack { done: true });
    }
    if p.plan.calls.is_empty() && p.plan.notes.is_empty() {
        p.plan.note(Note::Help);
    }
    p.plan
}

struct Planner<'l, 'm> {
    lex: &'l Lexicon<'m>,
    sim: Workspace,
    plan: Plan,
    done: bool,
}

/// What the start of a clause said besides its content.
#[derive(Default)]
struct Lead {
    greeted: bool,
    thanked: bool,
    ack: bool,
    actually: bool,
}

fn strip_phrase(t: &mut Vec<String>, phrase: &[&str]) -> bool {
    if let Some(i) = find(t, phrase) {
        t.drain(i..i + phrase.len());
        true
    } else {
        false
    }
}

fn words_only(t: &[String]) -> bool {
    t.iter().any(|w| !is_punct(w))
}

fn strip_lead(t: &mut Vec<String>) -> Lead {
    let mut lead = Lead::default();
    for phrase in [
        &["thank", "you"][..],
        &["thanks"],
        &["thank", "u"],
        &["cheers"],
    ] {
        while strip_phrase(t, phrase) {
            lead.thanked = true;
        }
    }
    loop {
        let w0 = t.first().map(String::as_str).unwrap_or("");
        let w1 = t.get(1).map(String::as_str).unwrap_or("");
        let n = match (w0, w1) {
            ("hi" | "hello" | "hey" | "hiya" | "howdy", _) => {
                lead.greeted = true;
                1
            }
            ("good", "morning" | "evening" | "afternoon" | "day") => {
                lead.greeted = true;
                2
            }
            ("there", _) if lead.greeted => 1,
            ("sounds" | "looks", "good" | "great" | "perfect") => {
                lead.ack = true;
                2
            }
            (
                "yes" | "yeah" | "yep" | "yup" | "great" | "perfect" | "cool" | "sure" | "correct"
                | "alright" | "lovely" | "excellent" | "awesome",
                _,
            ) => {
                lead.ack = true;
                1
            }
            ("actually" | "sorry" | "wait", _) => {
                lead.actually = true;
                1
            }
            (
                "ok" | "oh" | "so" | "well" | "hmm" | "and" | "also" | "plus" | "then" | "but"
                | "um" | "right" | "now" | ",",
                _,
            ) => 1,
            ("no" | "nah", "," | "" | "wait" | "sorry" | "actually") => 1,
            _ => 0,
        };
        if n == 0 || t.is_empty() {
            break;
        }
        t.drain(..n.min(t.len()));
    }
    lead
}

/// "that's all", "nothing else", "nope": the guest has finished ordering.
fn strip_done(t: &mut Vec<String>) -> bool {
    const DONE: &[&[&str]] = &[
        &["that", "is", "all"],
        &["that", "is", "it"],
        &["that", "is", "everything"],
        &["that", "will", "be", "all"],
        &["that", "will", "be", "it"],
        &["that", "will", "do"],
        &["that", "should", "be", "all"],
        &["that", "should", "be", "it"],
        &["that", "would", "be", "all"],
        &["nothing", "else"],
        &["i", "am", "done"],
        &["we", "are", "done"],
        &["i", "am", "good"],
        &["we", "are", "good"],
        &["all", "done"],
        &["no", "thanks"],
        &["nope"],
        &["i", "am", "finished"],
        &["we", "are", "finished"],
    ];
    let mut done = false;
    for phrase in DONE {
        if strip_phrase(t, phrase) {
            done = true;
        }
    }
    if done {
        strip_phrase(t, &["for", "now"]);
        strip_phrase(t, &["i", "think"]);
        let leftovers = [
            "no", ",", "ok", "yes", "so", "well", "oh", "then", "for", "now", "i", "think", "and",
            "guess", "just",
        ];
        if t.iter().all(|w| leftovers.contains(&w.as_str())) {
            t.clear();
        }
    }
    if t.len() == 1 && t.first().is_some_and(|w| w == "no" || w == "nah") {
        t.clear();
        done = true;
    }
    done
}

fn strip_ack(t: &mut Vec<String>) -> bool {
    let mut ack = false;
    for phrase in [
        &["that", "is", "right"][..],
        &["that", "is", "correct"],
        &["that", "is", "perfect"],
        &["that", "is", "great"],
        &["looks", "good"],
        &["sounds", "good"],
        &["all", "good"],
    ] {
        if strip_phrase(t, phrase) {
            ack = true;
        }
    }
    ack
}

/// Where the clause asks to empty the cart ("start over", "clear my order"), if it does.
fn clear_span(t: &[String]) -> Option<(usize, usize)> {
    const CLEAR: &[&[&str]] = &[
        &["start", "over"],
        &["start", "again"],
        &["begin", "again"],
        &["from", "scratch"],
        &["cancel", "everything"],
        &["cancel", "all"],
        &["cancel", "my", "order"],
        &["cancel", "the", "order"],
        &["cancel", "our", "order"],
        &["cancel", "the", "whole"],
        &["cancel", "it", "all"],
        &["remove", "everything"],
        &["delete", "everything"],
        &["forget", "everything"],
        &["forget", "it", "all"],
        &["scratch", "everything"],
        &["empty", "the", "cart"],
        &["empty", "my", "cart"],
        &["reset"],
    ];
    if let Some((i, p)) = CLEAR.iter().find_map(|p| find(t, p).map(|i| (i, p))) {
        return Some((i, i + p.len()));
    }
    find(t, &["clear"])
        .filter(|&i| {
            let after: Vec<&str> = t.iter().skip(i + 1).take(3).map(String::as_str).collect();
            after.is_empty()
                || after
                    .iter()
                    .any(|w| ["order", "cart", "everything", "all", "it", "basket"].contains(w))
        })
        .map(|i| (i, i + 1))
}

fn is_clear(t: &[String]) -> bool {
    clear_span(t).is_some()
}

fn part_is_question(part: &[String]) -> bool {
    let mut p = part;
    while p
        .first()
        .is_some_and(|w| ["and", "so", "ok", "oh", "then", "but", "well"].contains(&w.as_str()))
    {
        p = p.get(1..).unwrap_or(&[]);
    }
    let w = |i: usize| p.get(i).map(String::as_str).unwrap_or("");
    match (w(0), w(1), w(2)) {
        ("what" | "how", "about", _) => false,
        (f, _, _) if QUESTION_START.contains(&f) => true,
        ("have", "you", _) => true,
        ("can" | "could" | "would" | "will", "you", v) => [
            "tell",
            "recommend",
            "suggest",
            "show",
            "describe",
            "explain",
            "list",
        ]
        .contains(&v),
        ("can" | "could" | "may", "i" | "we", v) => ["see", "look", "ask", "know"].contains(&v),
        ("show", _, _) => true,
        _ => false,
    }
}

fn is_question(t: &[String]) -> bool {
    t.split(|w| w == ",").any(part_is_question)
}

impl Planner<'_, '_> {
    fn call(&mut self, name: &str, args: Value, purpose: Purpose) -> ToolOutcome {
        let out = self.sim.run(name, &args.to_string());
        self.plan.push(name, args, purpose);
        out
    }

    fn cart_lines(&self) -> Vec<CartLine> {
        self.sim.cart().map(|c| c.lines.clone()).unwrap_or_default()
    }

    fn last_line(&self) -> Option<CartLine> {
        let cart = self.sim.cart()?;
        let id = cart.last_line.as_deref()?;
        cart.line(id).cloned()
    }

    fn item_name(&self, idx: usize) -> String {
        self.lex
            .item(idx)
            .map(|i| i.name.clone())
            .unwrap_or_default()
    }

    fn clause(&mut self, mut t: Vec<String>) {
        let done = strip_done(&mut t);
        self.done |= done;
        let mut lead = strip_lead(&mut t);
        if strip_ack(&mut t) {
            lead.ack = true;
        }
        if let Some((a, b)) = clear_span(&t) {
            self.call("clear_cart", json!({}), Purpose::Clear);
            // "let me start again with a funghi": the rest is the new order.
            let rest: Vec<String> = t.get(b..).unwrap_or(&[]).to_vec();
            if a < b && !self.lex.items(&rest).is_empty() {
                self.order(&rest, false);
            }
            return;
        }
        while t.last().is_some_and(|w| is_punct(w) || w == "please") {
            t.pop();
        }
        if !words_only(&t) {
            if done {
                return;
            }
            if lead.greeted {
                self.plan.note(Note::Greeting);
            } else if lead.thanked {
                self.plan.note(Note::Thanks);
            } else if lead.ack {
                self.plan.note(Note::Confirmed);
            }
            return;
        }
        if self.cart_question(&t) {
            self.call("show_cart", json!({}), Purpose::ReadBack { done: false });
            return;
        }
        if is_question(&t) {
            self.menu_question(&t);
            return;
        }
        self.order(&t, lead.actually);
    }

    fn cart_question(&self, t: &[String]) -> bool {
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

    fn menu_question(&mut self, t: &[String]) {
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

    fn order(&mut self, t: &[String], actually: bool) {
        let items = self.lex.items(t);
        let sections = self.lex.sections(t, &items);
        if self.try_swap(t, &items, &sections) {
            return;
        }
        if self.try_remove(t, &items, &sections) {
            return;
        }
        if self.try_change(t, &items, &sections, actually) {
            return;
        }
        self.report_unknown(t, &items, &sections);
        if !items.is_empty() {
            self.add_items(t, &items);
            return;
        }
        if let Some(s) = sections.first()
            && let Some(sec) = self.lex.menu.sections.get(s.section)
        {
            let (id, name) = (sec.id.clone(), sec.name.to_lowercase());
            self.call(
                "search_menu",
                json!({ "section": id }),
                Purpose::Search {
                    topic: name,
                    recommend: false,
                    which: true,
                },
            );
        }
    }

    /// "two cokes", "a cheeseburger": a count and a word that is on no menu.
    fn report_unknown(&mut self, t: &[String], items: &[Mention], sections: &[SectionMention]) {
        let covered = |i: usize| {
            items.iter().any(|m| (m.start..m.end).contains(&i))
                || sections.iter().any(|s| s.start == i)
        };
        let mut i = 0;
        while i < t.len() {
            let Some(q) = quantity_at(t, i) else {
                i += 1;
                continue;
            };
            let j = i + q.len;
            if let Some(w) = t.get(j)
                && !is_stop(w)
                && !covered(j)
                && quantity_at(t, j).is_none()
                && !NOT_DISHES.contains(&key(w).as_str())
                && !NOT_DISHES.contains(&w.as_str())
                && !self.lex.mentions_modifier(t, j, j + 1)
            {
                let mut words = vec![w.clone()];
                let mut k = j + 1;
                while let Some(n) = t.get(k) {
                    if is_stop(n) || covered(k) || self.lex.mentions_modifier(t, k, k + 1) {
                        break;
                    }
                    words.push(n.clone());
                    k += 1;
                }
                self.plan.note(Note::NotOnMenu(words.join(" ")));
                i = k;
                continue;
            }
            i = j.max(i + 1);
        }
    }

    /// Where each dish's words begin (after the last separator before it) and end.
    fn regions(t: &[String], items: &[Mention]) -> Vec<(usize, usize)> {
        let starts: Vec<usize> = items
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let floor = if k == 0 {
                    0
                } else {
                    items.get(k - 1).map_or(0, |p| p.end)
                };
                let mut j = m.start;
                while j > floor && !t.get(j - 1).is_some_and(|w| CONJ.contains(&w.as_str())) {
                    j -= 1;
                }
                j
            })
            .collect();
        items
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let end = starts.get(k + 1).copied().unwrap_or(t.len()).max(m.end);
                (starts.get(k).copied().unwrap_or(m.start), end)
            })
            .collect()
    }

    fn is_ref(t: &[String], m: &Mention) -> bool {
        m.start > 0
            && t.get(m.start - 1)
                .is_some_and(|w| DEFINITE.contains(&w.as_str()))
    }

    fn lines_of_item(&self, idx: usize) -> Vec<CartLine> {
        let Some(item) = self.lex.item(idx) else {
            return Vec::new();
        };
        self.cart_lines()
            .into_iter()
            .filter(|l| l.item_id == item.id)
            .collect()
    }

    fn lines_of_section(&self, section: usize) -> Vec<CartLine> {
        let Some(sec) = self.lex.menu.sections.get(section) else {
            return Vec::new();
        };
        self.cart_lines()
            .into_iter()
            .filter(|l| {
                self.lex
                    .menu
                    .item(&l.item_id)
                    .is_some_and(|i| i.section_id == sec.id)
            })
            .collect()
    }

    /// Lines matching what a region says about them ("the margherita without basil").
    fn filter_by_modifiers(
        &self,
        lines: Vec<CartLine>,
        item: usize,
        p: &ModParse,
    ) -> Vec<CartLine> {
        if p.ops.is_empty() {
            return lines;
        }
        let narrowed: Vec<CartLine> = lines
            .iter()
            .filter(|l| self.line_satisfies(l, item, &p.ops))
            .cloned()
            .collect();
        if narrowed.is_empty() { lines } else { narrowed }
    }

    fn line_satisfies(&self, line: &CartLine, item: usize, ops: &[ModOp]) -> bool {
        ops.iter().all(|op| match *op {
            ModOp::Add { group, modifier } => line
                .modifiers
                .iter()
                .any(|m| m.name == self.lex.modifier_name(item, group, modifier)),
            ModOp::Remove { group, modifier } => !line
                .modifiers
                .iter()
                .any(|m| m.name == self.lex.modifier_name(item, group, modifier)),
        })
    }

    /// The line a singular reference means: the last one touched if it is among them.
    fn pick_line(&self, lines: &[CartLine]) -> Option<CartLine> {
        let last = self.sim.cart().and_then(|c| c.last_line.clone());
        lines
            .iter()
            .find(|l| Some(&l.line_id) == last.as_ref())
            .or_else(|| lines.last())
            .cloned()
    }

    fn pre_quantity(t: &[String], from: usize, to: usize, plural: bool) -> Option<Quantity> {
        let mut found = None;
        let mut i = from;
        while i < to {
            match quantity_at(t, i) {
                Some(q) if i + q.len <= to => {
                    found = Some(q);
                    i += q.len;
                }
                _ => i += 1,
            }
        }
        if found.is_none()
            && plural
            && to > from
            && let Some(v) = t.get(to - 1).and_then(|w| homophone(w))
        {
            found = Some(Quantity {
                value: v,
                len: 1,
                article: false,
                more: false,
            });
        }
        found
    }

    /// The explicit count in a clause outside the dish names ("make that three").
    fn explicit_quantity(t: &[String], items: &[Mention]) -> Option<(usize, Quantity)> {
        let mut i = 0;
        while i < t.len() {
            if items.iter().any(|m| (m.start..m.end).contains(&i)) {
                i += 1;
                continue;
            }
            if let Some(q) = quantity_at(t, i) {
                if !q.article {
                    return Some((i, q));
                }
                i += q.len;
            } else {
                i += 1;
            }
        }
        None
    }

    fn modifier_names(&self, item: usize, chosen: &[(usize, usize)]) -> Vec<String> {
        chosen
            .iter()
            .map(|(g, m)| self.lex.modifier_name(item, *g, *m))
            .collect()
    }

    /// Applies `ops` to a choice, one pick per group where the group allows only one.
    /// Applies `ops` to a choice of modifiers (see [`Mode`]); a group that allows one
    /// pick keeps the last one named.
    fn apply_ops(&self, item: usize, chosen: &mut Vec<(usize, usize)>, ops: &[ModOp], mode: Mode) {
        let mut cleared: Vec<usize> = Vec::new();
        let Some(it) = self.lex.item(item) else {
            return;
        };
        for op in ops {
            match *op {
                ModOp::Add { group, modifier } => {
                    if let Some(g) = it.modifier_groups.get(group) {
                        let only_defaults = chosen
                            .iter()
                            .filter(|(gi, _)| *gi == group)
                            .all(|(_, mi)| g.modifiers.get(*mi).is_some_and(|m| m.default));
                        let replace = mode == Mode::Replace && !cleared.contains(&group);
                        if g.max == 1 || replace || (mode != Mode::New && only_defaults) {
                            chosen.retain(|(gi, _)| *gi != group);
                            cleared.push(group);
                        }
                        let in_group = chosen.iter().filter(|(gi, _)| *gi == group).count();
                        if mode != Mode::New
                            && u32::try_from(in_group).unwrap_or(u32::MAX) >= g.max
                            && let Some(pos) = chosen.iter().position(|(gi, _)| *gi == group)
                        {
                            // Full group: the newest pick pushes out the oldest.
                            chosen.remove(pos);
                        }
                    }
                    if !chosen.contains(&(group, modifier)) {
                        chosen.push((group, modifier));
                    }
                }
                ModOp::Remove { group, modifier } => chosen.retain(|c| *c != (group, modifier)),
            }
        }
    }

    fn line_choice(&self, line: &CartLine, item: usize) -> Vec<(usize, usize)> {
        let Some(it) = self.lex.item(item) else {
            return Vec::new();
        };
        line.modifiers
            .iter()
            .filter_map(|c| {
                it.modifier_groups.iter().enumerate().find_map(|(gi, g)| {
                    g.modifiers
                        .iter()
                        .position(|m| m.id == c.id)
                        .map(|mi| (gi, mi))
                })
            })
            .collect()
    }

    fn add(&mut self, item: usize, quantity: u32, modifiers: Vec<String>) {
        let Some(it) = self.lex.item(item) else {
            return;
        };
        let shown: Vec<String> = modifiers
            .iter()
            .filter(|n| {
                !it.modifier_groups
                    .iter()
                    .any(|g| g.modifiers.iter().any(|m| m.name == **n && m.default))
            })
            .cloned()
            .collect();
        self.call(
            "add_to_cart",
            json!({ "item": it.id, "quantity": quantity, "modifiers": modifiers }),
            Purpose::Add {
                item: it.name.clone(),
                quantity,
                modifiers: shown,
            },
        );
    }

    fn remove_line(&mut self, line: &CartLine) {
        self.call(
            "remove_from_cart",
            json!({ "line_id": line.line_id }),
            Purpose::Remove {
                item: line.name.clone(),
            },
        );
    }

    fn set_quantity(&mut self, line: &CartLine, quantity: u32) {
        self.call(
            "update_cart_line",
            json!({ "line_id": line.line_id, "quantity": quantity }),
            Purpose::SetQuantity {
                item: line.name.clone(),
                quantity,
            },
        );
    }

    fn change_options(&mut self, line: &CartLine, modifiers: Vec<String>) {
        self.call(
            "update_cart_line",
            json!({ "line_id": line.line_id, "modifiers": modifiers }),
            Purpose::ChangeOptions {
                item: line.name.clone(),
            },
        );
    }

    fn item_of_line(&self, line: &CartLine) -> Option<usize> {
        self.lex.item_index(&line.item_id)
    }

    /// "swap the salad for a lasagna", "make that a caprese", "the carbonara instead".
    fn try_swap(&mut self, t: &[String], items: &[Mention], sections: &[SectionMention]) -> bool {
        let cue = has_any(
            t,
            &[
                "swap",
                "switch",
                "replace",
                "change",
                "exchange",
                "substitute",
                "make",
                "turn",
                "instead",
            ],
        );
        if !cue {
            return false;
        }
        let fresh: Vec<&Mention> = items
            .iter()
            .filter(|m| self.lines_of_item(m.item).is_empty())
            .collect();
        let [y] = fresh.as_slice() else {
            return false;
        };
        let y = **y;
        let old = items
            .iter()
            .find(|m| m.item != y.item && !self.lines_of_item(m.item).is_empty());
        let x_lines: Vec<CartLine> = if let Some(o) = old {
            self.lines_of_item(o.item)
        } else if let Some(s) = sections
            .iter()
            .find(|s| !self.lines_of_section(s.section).is_empty())
        {
            self.lines_of_section(s.section)
        } else if find(t, &["instead", "of"]).is_some() {
            Vec::new()
        } else {
            self.last_line().into_iter().collect()
        };
        if x_lines.is_empty() {
            return false;
        }
        let regions = Self::regions(t, items);
        let (from, to) = items
            .iter()
            .position(|m| *m == y)
            .and_then(|k| regions.get(k).copied())
            .unwrap_or((y.start, y.end));
        let q = Self::pre_quantity(t, from, y.start, y.plural)
            .filter(|q| !q.article)
            .map(|q| q.value)
            .unwrap_or_else(|| x_lines.iter().map(|l| l.quantity).sum::<u32>().max(1));
        let mut parse = self.lex.modifiers(y.item, t, from, y.start, false);
        let post = self.lex.modifiers(y.item, t, y.end, to, false);
        parse.ops.extend(post.ops);
        let mut chosen = Vec::new();
        self.apply_ops(y.item, &mut chosen, &parse.ops, Mode::New);
        for l in &x_lines {
            self.remove_line(l);
        }
        let names = self.modifier_names(y.item, &chosen);
        self.add(y.item, q, names);
        true
    }

    fn try_remove(&mut self, t: &[String], items: &[Mention], sections: &[SectionMention]) -> bool {
        let verb = has_any(t, REMOVE_VERBS)
            || (has(t, "take") && has_any(t, &["off", "away", "out"]))
            || find(t, &["get", "rid"]).is_some()
            || find(t, &["do", "not", "want"]).is_some()
            || find(t, &["no", "more"]).is_some();
        let negated = |start: usize| {
            let mut j = start;
            while j > 0
                && t.get(j - 1)
                    .is_some_and(|w| ["the", "more", "any", "a"].contains(&w.as_str()))
            {
                j -= 1;
            }
            j > 0 && t.get(j - 1).is_some_and(|w| w == "no" || w == "not")
        };
        let neg_items: Vec<Mention> = items
            .iter()
            .filter(|m| negated(m.start) && !self.lines_of_item(m.item).is_empty())
            .copied()
            .collect();
        let neg_sections: Vec<SectionMention> = sections
            .iter()
            .filter(|s| negated(s.start) && !self.lines_of_section(s.section).is_empty())
            .copied()
            .collect();
        if !verb && neg_items.is_empty() && neg_sections.is_empty() {
            return false;
        }
        let (target_items, target_sections): (Vec<Mention>, Vec<SectionMention>) = if verb {
            (items.to_vec(), sections.to_vec())
        } else {
            (neg_items, neg_sections)
        };
        // "less garlic bread": one fewer, unless a count says otherwise.
        let less = has_any(t, &["less", "fewer"]).then_some(Quantity {
            value: 1,
            len: 0,
            article: false,
            more: false,
        });
        let regions = Self::regions(t, &target_items);
        let mut handled = false;
        for (k, m) in target_items.iter().enumerate() {
            handled = true;
            let (from, to) = regions.get(k).copied().unwrap_or((m.start, m.end));
            let lines = self.lines_of_item(m.item);
            if lines.is_empty() {
                self.plan.note(Note::NotInCart(self.item_name(m.item)));
                continue;
            }
            let post = self.lex.modifiers(m.item, t, m.end, to, false);
            let lines = self.filter_by_modifiers(lines, m.item, &post);
            let q = Self::pre_quantity(t, from, m.start, false).or(less);
            self.remove_lines(&lines, q, m.plural);
        }
        for s in &target_sections {
            handled = true;
            let lines = self.lines_of_section(s.section);
            if lines.is_empty() {
                let name = self
                    .lex
                    .menu
                    .sections
                    .get(s.section)
                    .map(|x| x.name.to_lowercase())
                    .unwrap_or_default();
                self.plan.note(Note::NotInCart(name));
                continue;
            }
            let q = Self::pre_quantity(t, 0, s.start, false);
            self.remove_lines(&lines, q, s.plural);
        }
        if handled {
            return true;
        }
        // Nothing named: "the one without basil", "take the olives off", "two of them".
        let q = Self::explicit_quantity(t, items).map(|(_, q)| q);
        if has(t, "one") && q.is_none_or(|q| q.value == 1) {
            let picked: Vec<CartLine> = self
                .cart_lines()
                .into_iter()
                .filter(|l| {
                    self.item_of_line(l).is_some_and(|idx| {
                        let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                        !p.ops.is_empty() && self.line_satisfies(l, idx, &p.ops)
                    })
                })
                .collect();
            if !picked.is_empty() {
                for l in &picked {
                    self.remove_line(l);
                }
                return true;
            }
        }
        if self.lex.mentions_modifier(t, 0, t.len()) {
            return self.change_modifiers_of(t, items, true);
        }
        match self.last_line() {
            Some(line) => {
                if let Some(q) = q {
                    self.decrease(&line, q.value);
                } else {
                    self.remove_line(&line);
                }
            }
            None => self.plan.note(Note::NothingToChange),
        }
        true
    }

    fn decrease(&mut self, line: &CartLine, by: u32) {
        if line.quantity > by {
            self.set_quantity(line, line.quantity - by);
        } else {
            self.remove_line(line);
        }
    }

    fn remove_lines(&mut self, lines: &[CartLine], q: Option<Quantity>, plural: bool) {
        match q {
            Some(q) if !(q.article && plural) => {
                if let Some(line) = self.pick_line(lines) {
                    self.decrease(&line, q.value);
                }
            }
            _ if plural || lines.len() == 1 => {
                for l in lines {
                    self.remove_line(l);
                }
            }
            _ => {
                let names = lines.iter().map(|l| self.describe_line(l)).collect();
                self.plan.note(Note::WhichOne(names));
            }
        }
    }

    fn describe_line(&self, line: &CartLine) -> String {
        let extras: Vec<String> = line
            .modifiers
            .iter()
            .filter(|c| {
                !self.lex.menu.item(&line.item_id).is_some_and(|i| {
                    i.modifier_groups
                        .iter()
                        .any(|g| g.modifiers.iter().any(|m| m.id == c.id && m.default))
                })
            })
            .map(|c| c.name.clone())
            .collect();
        if extras.is_empty() {
            line.name.clone()
        } else {
            format!("{} ({})", line.name, extras.join(", "))
        }
    }

    /// Quantity changes, option changes, "another one", "one of them large".
    fn try_change(
        &mut self,
        t: &[String],
        items: &[Mention],
        sections: &[SectionMention],
        actually: bool,
    ) -> bool {
        let make = has_any(
            t,
            &[
                "make", "change", "switch", "turn", "update", "instead", "just", "only",
            ],
        ) || actually;
        let refs: Vec<Mention> = items
            .iter()
            .filter(|m| !self.lines_of_item(m.item).is_empty() && (Self::is_ref(t, m) || make))
            .copied()
            .collect();
        let fresh = items.len() > refs.len();
        let qty = Self::explicit_quantity(t, items);

        // "can one of them be large": split one off the line.
        let leading = qty.is_some_and(|(i, q)| {
            i == 0 && items.is_empty() && t.get(i + q.len).is_none_or(|w| w != "more")
        });
        if let Some((i, q)) = qty
            && !fresh
            && (leading
                || ["them", "those", "these", "the"]
                    .iter()
                    .any(|w| starts_with(t, i + q.len, &["of", w])))
            && !has(t, "remove")
            && !has(t, "another")
        {
            let target = match refs.first() {
                Some(m) => self.pick_line(&self.lines_of_item(m.item)),
                None => self.last_line(),
            };
            if let Some(line) = target
                && let Some(idx) = self.item_of_line(&line)
            {
                let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                if !p.ops.is_empty() {
                    let mut chosen = self.line_choice(&line, idx);
                    self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
                    let names = self.modifier_names(idx, &chosen);
                    if line.quantity > q.value {
                        self.set_quantity(&line, line.quantity - q.value);
                        self.add(idx, q.value, names);
                    } else {
                        self.change_options(&line, names);
                    }
                    return true;
                }
            }
        }

        // "another one", "two more", "same again", "a small one".
        if items.is_empty() && sections.is_empty() {
            let more = has(t, "another")
                || find(t, &["one", "more"]).is_some()
                || qty.is_some_and(|(i, q)| t.get(i + q.len).is_some_and(|w| w == "more"))
                || find(t, &["same", "again"]).is_some()
                || find(t, &["the", "same"]).is_some();
            let pronoun_one = t.iter().enumerate().any(|(i, w)| {
                (w == "one" || w == "ones")
                    && i > 0
                    && t.get(i + 1).is_none_or(|n| n != "of")
                    && self.lex.mentions_modifier(t, 0, i)
            });
            if (more || pronoun_one)
                && let Some(line) = self.last_line()
                && let Some(idx) = self.item_of_line(&line)
            {
                let n = qty.map(|(_, q)| q.value).unwrap_or(1);
                let p = self.lex.modifiers(idx, t, 0, t.len(), false);
                let mut chosen = self.line_choice(&line, idx);
                self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
                let names = self.modifier_names(idx, &chosen);
                self.add(idx, n, names);
                return true;
            }
        }

        // "make that three", "actually two espressos", "and the tiramisu, make it two".
        if let Some((_, q)) = qty
            && make
            && !fresh
        {
            let target = if let Some(m) = refs.first() {
                self.pick_line(&self.lines_of_item(m.item))
            } else if let Some(s) = sections
                .iter()
                .find(|s| !self.lines_of_section(s.section).is_empty())
            {
                self.pick_line(&self.lines_of_section(s.section))
            } else {
                self.last_line()
            };
            if let Some(line) = target {
                self.set_quantity(&line, q.value);
                return true;
            }
        }

        if fresh {
            return false;
        }
        self.change_modifiers_of(t, &refs, false)
    }

    /// Applies the options named in the clause to the lines it refers to (or the last
    /// line touched). Returns whether anything was planned.
    fn change_modifiers_of(&mut self, t: &[String], refs: &[Mention], removing: bool) -> bool {
        let sections = self.lex.sections(t, refs);
        let mut targets: Vec<CartLine> = Vec::new();
        for m in refs {
            let lines = self.lines_of_item(m.item);
            if m.plural {
                targets.extend(lines);
            } else {
                targets.extend(self.pick_line(&lines));
            }
        }
        for s in &sections {
            let lines = self.lines_of_section(s.section);
            if s.plural {
                targets.extend(lines);
            } else {
                targets.extend(self.pick_line(&lines));
            }
        }
        if targets.is_empty() {
            targets.extend(self.last_line());
        }
        let mut any = false;
        for line in targets {
            let Some(idx) = self.item_of_line(&line) else {
                continue;
            };
            // The option words, outside the dish names themselves.
            let masked: Vec<String> = t
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if refs.iter().any(|m| (m.start..m.end).contains(&i)) {
                        ",".to_string()
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let p = self.lex.modifiers(idx, &masked, 0, masked.len(), removing);
            if p.ops.is_empty() && p.foreign.is_empty() && p.unknown.is_empty() {
                continue;
            }
            let mut chosen = self.line_choice(&line, idx);
            self.apply_ops(idx, &mut chosen, &p.ops, change_mode(t));
            let mut names = self.modifier_names(idx, &chosen);
            names.extend(p.foreign.iter().cloned());
            names.extend(p.unknown.iter().cloned());
            self.change_options(&line, names);
            any = true;
        }
        any
    }

    fn add_items(&mut self, t: &[String], items: &[Mention]) {
        let regions = Self::regions(t, items);
        // Options said for all of them at the end ("…, both large").
        let mut shared: Vec<(usize, usize)> = Vec::new();
        let mut planned: Vec<(usize, Vec<(u32, ModParse)>)> = Vec::new();
        for (k, m) in items.iter().enumerate() {
            let (from, to) = regions.get(k).copied().unwrap_or((m.start, m.end));
            let q = Self::pre_quantity(t, from, m.start, m.plural);
            let mut main = self.lex.modifiers(m.item, t, from, m.start, false);
            let mut subs: Vec<(Option<u32>, ModParse)> = Vec::new();
            for (a, b) in chunks(t, m.end, to) {
                let w = |i: usize| t.get(i).map(String::as_str).unwrap_or("");
                let (kind, body) = if ["both", "all", "each", "every"].contains(&w(a)) {
                    shared.push((a, b));
                    (Sub::All, a + 1)
                } else if w(a) == "the" && ["other", "rest", "others"].contains(&w(a + 1)) {
                    (Sub::Rest, a + 2)
                } else if let Some(sq) = quantity_at(t, a).filter(|sq| !sq.article) {
                    (Sub::Count(sq.value), a + sq.len)
                } else {
                    (Sub::Main, a)
                };
                let p = self.lex.modifiers(m.item, t, body, b, false);
                match kind {
                    Sub::Main | Sub::All => {
                        main.ops.extend(p.ops);
                        main.unknown.extend(p.unknown);
                    }
                    Sub::Rest => subs.push((None, p)),
                    Sub::Count(n) => {
                        // "two cokes": a count and a word that is no option (reported
                        // by `report_unknown`), not a share of this dish.
                        let unknown_dish = p.ops.is_empty()
                            && t.get(body..b)
                                .is_some_and(|ws| ws.iter().any(|x| !is_stop(x)));
                        if !unknown_dish {
                            subs.push((Some(n), p));
                        }
                    }
                }
            }
            let mut lines: Vec<(u32, ModParse)> = Vec::new();
            if subs.is_empty() {
                lines.push((q.map_or(1, |q| q.value), main));
            } else {
                let explicit: u32 = subs.iter().filter_map(|(n, _)| *n).sum();
                let total = match q {
                    Some(q) if !q.article => q.value,
                    _ => explicit.max(1),
                };
                let mut rest = total.saturating_sub(explicit);
                // The plain share first ("1 margherita, and 1 without basil").
                if rest > 0 && subs.iter().all(|(n, _)| n.is_some()) {
                    lines.push((std::mem::take(&mut rest), main.clone()));
                }
                for (n, p) in subs {
                    let mut ops = main.ops.clone();
                    ops.extend(p.ops);
                    let mut unknown = main.unknown.clone();
                    unknown.extend(p.unknown);
                    let count = match n {
                        Some(n) => n,
                        None => std::mem::take(&mut rest),
                    };
                    if count > 0 {
                        lines.push((
                            count,
                            ModParse {
                                ops,
                                unknown,
                                ..ModParse::default()
                            },
                        ));
                    }
                }
                if rest > 0 {
                    lines.push((rest, main));
                }
            }
            planned.push((m.item, lines));
        }
        for (item, lines) in planned {
            for (count, mut p) in lines {
                for (a, b) in &shared {
                    let extra = self.lex.modifiers(item, t, a + 1, *b, false);
                    p.ops.extend(extra.ops);
                }
                let mut chosen = Vec::new();
                self.apply_ops(item, &mut chosen, &p.ops, Mode::New);
                let mut names = self.modifier_names(item, &chosen);
                names.extend(p.unknown);
                self.add(item, count, names);
            }
        }
    }
}

/// How named options combine with what a line already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A new line: every option named counts ("chocolate and pistachio").
    New,
    /// Adding to a line ("add olives"): a pick replaces the group's defaults, and a full
    /// group drops its oldest pick.
    Keep,
    /// Changing a line ("change it to chocolate"): the picks replace the group's.
    Replace,
}

fn change_mode(t: &[String]) -> Mode {
    if has_any(
        t,
        &[
            "change", "switch", "swap", "instead", "replace", "make", "rather",
        ],
    ) {
        Mode::Replace
    } else {
        Mode::Keep
    }
}

enum Sub {
    Main,
    All,
    Rest,
    Count(u32),
}

/// Splits `t[from..to]` at commas and "and".
fn chunks(t: &[String], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut a = from;
    for i in from..to {
        if t.get(i)
            .is_some_and(|w| [",", "and", "but", "plus"].contains(&w.as_str()))
        {
            if i > a {
                out.push((a, i));
            }
            a = i + 1;
        } else if i > a
            && quantity_at(t, i).is_some_and(|q| !q.article)
            && quantity_at(t, i - 1).is_none()
        {
            // Speech comes without commas: "three lemonades two large one regular".
            out.push((a, i));
            a = i;
        }
    }
    if to > a {
        out.push((a, to));
    }
    out
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
