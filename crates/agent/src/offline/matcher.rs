//! Finds the menu in an utterance: dish names and aliases (tolerant of misspellings and
//! speech-recognition slips), section words ("the pizzas"), and each dish's modifiers
//! with the guest's intent ("without basil", "extra cheese", "large").

use super::text::{allowed, close, is_punct, is_stop, key, quantity_at};
use std::sync::{Arc, Weak};
use stonepot_domain::menu::{Item, Menu};

/// How a phrase names an item; full names and aliases outrank a single word of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Name,
    Alias,
    Partial,
}

#[derive(Debug, Clone)]
struct Phrase {
    item: usize,
    key: String,
    last_word: String,
    kind: Kind,
}

/// A dish named in the utterance: tokens `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mention {
    pub item: usize,
    pub start: usize,
    pub end: usize,
    /// "pizzas", "lemonades".
    pub plural: bool,
}

/// A section named in the utterance ("the salad", "pizzas").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SectionMention {
    pub section: usize,
    pub start: usize,
    pub plural: bool,
}

/// How a modifier's name reads: "No basil", "Extra cheese", or a plain choice ("Large").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Polarity {
    Neg,
    Extra,
    Plain,
}

#[derive(Debug, Clone)]
struct ModWord {
    group: usize,
    modifier: usize,
    polarity: Polarity,
    /// Keys of the words that name it ("basil"; "chicken", "grilled"; "mozzarella", "cheese").
    anchors: Vec<String>,
    /// "Gluten-free pasta": saying "no gluten" asks for it rather than against it.
    inverted: bool,
}

/// What the guest asked of one modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModOp {
    Add { group: usize, modifier: usize },
    Remove { group: usize, modifier: usize },
}

/// The modifiers found in a stretch of text for one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ModParse {
    pub ops: Vec<ModOp>,
    /// Words after "with"/"extra"/"add" that name no option of the item ("pineapple").
    pub unknown: Vec<String>,
    /// Option words of other dishes ("large" for a drink without sizes).
    pub foreign: Vec<String>,
    /// Token positions the modifiers used.
    pub used: Vec<usize>,
}

/// Generic words a section may be called by, mapped to a section name's key.
const SECTION_SYNONYMS: &[(&str, &str)] = &[
    ("appetizer", "starter"),
    ("appetiser", "starter"),
    ("antipasti", "starter"),
    ("antipasto", "starter"),
    ("beverage", "drink"),
    ("soda", "drink"),
    ("sweet", "dessert"),
    ("pudding", "dessert"),
    ("pie", "pizza"),
];

/// Everyday words for modifier names.
const MODIFIER_SYNONYMS: &[(&str, &[&str])] = &[
    ("mozzarella", &["cheese", "cheesy"]),
    ("chili", &["chilli", "chile", "chillies", "chilies"]),
    ("shrimp", &["prawn", "prawns", "shrimps"]),
    ("large", &["big", "bigger", "larger"]),
    ("regular", &["small", "smaller", "normal", "standard"]),
    ("gluten", &["celiac", "coeliac"]),
    ("chocolate", &["choc"]),
];

/// Words that read as generic on a menu and so never name a dish on their own.
const GENERIC: &[&str] = &[
    "house", "fried", "grilled", "fresh", "classic", "special", "homemade", "pizza", "salad",
    "pasta", "dessert", "drink", "starter", "the", "with", "and",
];

/// Words in a modifier name that do not identify it on their own.
const WEAK: &[&str] = &[
    "free", "pasta", "with", "side", "of", "and", "add", "flakes",
];

const NEG_MARKERS: &[&str] = &[
    "no", "without", "hold", "minus", "skip", "not", "nothing", "leave", "none",
    // "chicken instead of shrimp", "olives rather than mushrooms"
    "instead", "than",
];
const EXTRA_MARKERS: &[&str] = &[
    "extra",
    "more",
    "double",
    "additional",
    "plenty",
    "lots",
    "loads",
    "heavy",
];
/// Words that are not options even after "with" ("with that", "no rush").
const NOT_OPTIONS: &[&str] = &[
    "rush",
    "hurry",
    "problem",
    "worries",
    "worry",
    "pressure",
    "me",
    "us",
    "that",
    "this",
    "it",
    "them",
    "everything",
    "anything",
    "something",
    "care",
];

/// The menu, prepared for matching.
pub(crate) struct Lexicon<'m> {
    pub menu: &'m Menu,
    index: Arc<Index>,
}

/// What matching needs from a menu: its phrases, section words and modifier words.
pub(crate) struct Index {
    phrases: Vec<Phrase>,
    sections: Vec<(String, usize)>,
    mods: Vec<Vec<ModWord>>,
    /// Keys of every modifier word on the menu, with a display name.
    all_mod_words: Vec<(String, String)>,
}

impl std::ops::Deref for Lexicon<'_> {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

/// Indexes of the menus in use, by menu: building one costs more than the rest of a
/// turn's matching, and a menu version is one shared `Arc` for as long as it is current
/// (the store's menu cache), so each is built once. An entry's `Weak` keeps its menu's
/// allocation from being reused, so a pointer match is that same menu; entries whose
/// menu is gone are dropped when another is added.
static INDEXES: std::sync::Mutex<Vec<(Weak<Menu>, Arc<Index>)>> = std::sync::Mutex::new(Vec::new());

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn joined_key(ws: &[String]) -> String {
    let mut out = String::new();
    for w in ws {
        for c in key(w).chars() {
            if !out.ends_with(c) {
                out.push(c);
            }
        }
    }
    out
}

impl Index {
    fn new(menu: &Menu) -> Self {
        let mut phrases = Vec::new();
        let name_words: Vec<Vec<String>> = menu.items.iter().map(|i| words(&i.name)).collect();
        for (idx, item) in menu.items.iter().enumerate() {
            let mut push = |ws: Vec<String>, kind: Kind| {
                if ws.is_empty() {
                    return;
                }
                let last_word = ws.last().cloned().unwrap_or_default();
                phrases.push(Phrase {
                    item: idx,
                    key: joined_key(&ws),
                    last_word,
                    kind,
                });
            };
            let nw = name_words.get(idx).cloned().unwrap_or_default();
            push(nw.clone(), Kind::Name);
            push(words(&item.id), Kind::Alias);
            for a in &item.aliases {
                push(words(a), Kind::Alias);
            }
            for w in &nw {
                let shared = name_words
                    .iter()
                    .enumerate()
                    .any(|(j, other)| j != idx && other.contains(w));
                let generic = GENERIC.contains(&key(w).as_str()) || GENERIC.contains(&w.as_str());
                if nw.len() > 1 && w.len() >= 4 && !shared && !generic {
                    push(vec![w.clone()], Kind::Partial);
                }
            }
        }
        let mut sections = Vec::new();
        for (i, s) in menu.sections.iter().enumerate() {
            for w in words(&s.name).iter().chain(words(&s.id).iter()) {
                let k = key(w);
                if !sections.iter().any(|(x, _)| *x == k) {
                    sections.push((k.clone(), i));
                }
                for (syn, target) in SECTION_SYNONYMS {
                    if k == *target {
                        sections.push((key(syn), i));
                    }
                }
            }
        }
        let mut all_mod_words = Vec::new();
        let mods = menu
            .items
            .iter()
            .map(|item| {
                let list = mod_words(item);
                for m in &list {
                    let name = item
                        .modifier_groups
                        .get(m.group)
                        .and_then(|g| g.modifiers.get(m.modifier))
                        .map(|x| x.name.clone())
                        .unwrap_or_default();
                    for a in &m.anchors {
                        all_mod_words.push((a.clone(), name.clone()));
                    }
                }
                list
            })
            .collect();
        Index {
            phrases,
            sections,
            mods,
            all_mod_words,
        }
    }
}

impl<'m> Lexicon<'m> {
    /// The lexicon of a shared menu, its index built once per menu (see [`INDEXES`]).
    pub(crate) fn shared(menu: &'m Arc<Menu>) -> Self {
        let mut cache = INDEXES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, index)) = cache.iter().find(|(w, _)| w.as_ptr() == Arc::as_ptr(menu)) {
            return Lexicon {
                menu,
                index: Arc::clone(index),
            };
        }
        let index = Arc::new(Index::new(menu));
        cache.retain(|(w, _)| w.strong_count() > 0);
        cache.push((Arc::downgrade(menu), Arc::clone(&index)));
        Lexicon { menu, index }
    }

    /// The lexicon of a menu, indexed afresh.
    #[cfg(test)]
    pub(crate) fn new(menu: &'m Menu) -> Self {
        Lexicon {
            menu,
            index: Arc::new(Index::new(menu)),
        }
    }

    pub(crate) fn item(&self, idx: usize) -> Option<&'m Item> {
        self.menu.items.get(idx)
    }

    pub(crate) fn item_index(&self, id: &str) -> Option<usize> {
        self.menu.items.iter().position(|i| i.id == id)
    }

    /// Every dish named in `toks`, left to right, none overlapping.
    pub(crate) fn items(&self, toks: &[String]) -> Vec<Mention> {
        // (score, dist, tokens, kind, mention)
        let mut cands: Vec<(i64, Kind, Mention)> = Vec::new();
        for start in 0..toks.len() {
            for len in 1..=4 {
                let end = start + len;
                let Some(window) = toks.get(start..end) else {
                    break;
                };
                if window.iter().any(|t| is_stop(t)) {
                    break;
                }
                let starts_with_number = quantity_at(toks, start).is_some();
                let wkey = joined_key(window);
                let last_raw = window.last().map(String::as_str).unwrap_or("");
                for p in &self.phrases {
                    let mut max = match p.kind {
                        Kind::Partial if p.key.len() < 6 => 0,
                        Kind::Partial => 1,
                        _ => allowed(p.key.len()),
                    };
                    if starts_with_number {
                        max = 0;
                    }
                    if let Some(d) = close(&wkey, &p.key, max) {
                        let plural = last_raw.len() > 3
                            && last_raw.ends_with('s')
                            && !last_raw.ends_with("ss")
                            && !p.last_word.ends_with('s');
                        let score = i64::try_from(wkey.len()).unwrap_or(0)
                            - 3 * i64::try_from(d).unwrap_or(9);
                        cands.push((
                            score,
                            p.kind,
                            Mention {
                                item: p.item,
                                start,
                                end,
                                plural,
                            },
                        ));
                    }
                }
            }
        }
        cands.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.start.cmp(&b.2.start))
        });
        let mut chosen: Vec<Mention> = Vec::new();
        for (_, _, m) in cands {
            if chosen.iter().all(|c| m.end <= c.start || m.start >= c.end) {
                chosen.push(m);
            }
        }
        chosen.sort_by_key(|m| m.start);
        for m in &mut chosen {
            m.plural |= heard_plural(toks, m.end);
        }
        chosen
    }

    /// Section words outside the dish mentions.
    pub(crate) fn sections(&self, toks: &[String], items: &[Mention]) -> Vec<SectionMention> {
        let mut out = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            if is_punct(t) || items.iter().any(|m| (m.start..m.end).contains(&i)) {
                continue;
            }
            let k = key(t);
            if let Some((_, s)) = self.sections.iter().find(|(x, _)| *x == k) {
                out.push(SectionMention {
                    section: *s,
                    start: i,
                    plural: t.ends_with('s') && k != *t,
                });
            }
        }
        out
    }

    /// The modifiers of `item` asked for in `toks[from..to]`. `removing` reads a bare
    /// option word as "take it off" ("take the olives off").
    pub(crate) fn modifiers(
        &self,
        item: usize,
        toks: &[String],
        from: usize,
        to: usize,
        removing: bool,
    ) -> ModParse {
        let mut out = ModParse::default();
        let list = self.mods.get(item).map(Vec::as_slice).unwrap_or(&[]);
        let to = to.min(toks.len());
        let mut i = from;
        while i < to {
            let Some(t) = toks.get(i) else { break };
            if is_punct(t) {
                i += 1;
                continue;
            }
            let k = key(t);
            let hits: Vec<&ModWord> = list
                .iter()
                .filter(|m| m.anchors.iter().any(|a| anchor_match(&k, a)))
                .collect();
            let marker = marker_before(toks, i, from);
            if hits.is_empty() {
                let after_with = matches!(marker, Marker::With | Marker::Extra | Marker::Add);
                if after_with && !is_stop(t) && quantity_at(toks, i).is_none() {
                    if let Some((_, name)) =
                        self.all_mod_words.iter().find(|(a, _)| anchor_match(&k, a))
                    {
                        out.foreign.push(name.clone());
                    } else if !NOT_OPTIONS.contains(&t.as_str()) {
                        out.unknown.push(t.clone());
                    }
                    out.used.push(i);
                } else if let Some((_, name)) = is_size_word(t)
                    .then(|| self.all_mod_words.iter().find(|(a, _)| *a == k))
                    .flatten()
                {
                    out.foreign.push(name.clone());
                    out.used.push(i);
                }
                i += 1;
                continue;
            }
            out.used.push(i);
            let pick = |p: Polarity| hits.iter().find(|m| m.polarity == p).copied();
            let op = match marker {
                Marker::Neg => {
                    if let Some(m) = pick(Polarity::Neg) {
                        Some(add(m))
                    } else if let Some(m) = hits.iter().find(|m| m.inverted) {
                        Some(add(m))
                    } else {
                        pick(Polarity::Extra)
                            .or_else(|| pick(Polarity::Plain))
                            .map(remove)
                    }
                }
                Marker::Extra => pick(Polarity::Extra)
                    .or_else(|| pick(Polarity::Plain))
                    .map(add),
                Marker::Add => pick(Polarity::Plain)
                    .or_else(|| pick(Polarity::Extra))
                    .map(add),
                Marker::With | Marker::None => {
                    if removing {
                        pick(Polarity::Plain)
                            .or_else(|| pick(Polarity::Extra))
                            .map(remove)
                    } else {
                        pick(Polarity::Plain).map(add)
                    }
                }
            };
            if let Some(op) = op
                && !out.ops.contains(&op)
            {
                out.ops.push(op);
            }
            // A two-word option ("grilled chicken", "chili flakes") counts once.
            let same = |j: usize| {
                toks.get(j).is_some_and(|n| {
                    let nk = key(n);
                    hits.iter()
                        .any(|m| m.anchors.iter().any(|a| anchor_match(&nk, a)))
                })
            };
            i += 1;
            while i < to && same(i) {
                out.used.push(i);
                i += 1;
            }
            if toks.get(i).is_some_and(|n| n == "flakes") {
                out.used.push(i);
                i += 1;
            }
        }
        out
    }

    /// The modifier's name.
    pub(crate) fn modifier_name(&self, item: usize, group: usize, modifier: usize) -> String {
        self.item(item)
            .and_then(|i| i.modifier_groups.get(group))
            .and_then(|g| g.modifiers.get(modifier))
            .map(|m| m.name.clone())
            .unwrap_or_default()
    }

    /// Whether any word in `toks[from..to]` names an option of some dish.
    pub(crate) fn mentions_modifier(&self, toks: &[String], from: usize, to: usize) -> bool {
        toks.get(from..to.min(toks.len())).is_some_and(|ws| {
            ws.iter().any(|t| {
                let k = key(t);
                !is_stop(t) && self.all_mod_words.iter().any(|(a, _)| anchor_match(&k, a))
            })
        })
    }
}

fn is_size_word(w: &str) -> bool {
    matches!(w, "large" | "regular" | "big" | "small")
}

fn add(m: &ModWord) -> ModOp {
    ModOp::Add {
        group: m.group,
        modifier: m.modifier,
    }
}

fn remove(m: &ModWord) -> ModOp {
    ModOp::Remove {
        group: m.group,
        modifier: m.modifier,
    }
}

fn anchor_match(k: &str, anchor: &str) -> bool {
    let max = if anchor.len() >= 6 { 1 } else { 0 };
    close(k, anchor, max).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Neg,
    Extra,
    Add,
    With,
}

/// The word before an option that says what the guest wants done with it.
fn marker_before(toks: &[String], i: usize, floor: usize) -> Marker {
    let mut j = i;
    let mut steps = 0;
    while j > floor && steps < 4 {
        j -= 1;
        steps += 1;
        let Some(t) = toks.get(j).map(String::as_str) else {
            break;
        };
        if NEG_MARKERS.contains(&t) {
            return Marker::Neg;
        }
        if EXTRA_MARKERS.contains(&t) {
            return Marker::Extra;
        }
        match t {
            "with" => return Marker::With,
            "add" | "plus" | "put" => return Marker::Add,
            "the" | "some" | "a" | "any" | "of" | "on" | "it" | "lot" | "or" | "them" => {}
            _ => return Marker::None,
        }
    }
    Marker::None
}

fn mod_words(item: &Item) -> Vec<ModWord> {
    let mut out = Vec::new();
    for (gi, g) in item.modifier_groups.iter().enumerate() {
        for (mi, m) in g.modifiers.iter().enumerate() {
            let ws = words(&m.name);
            let (polarity, core): (Polarity, &[String]) = match ws.split_first() {
                Some((f, rest)) if (f == "no" || f == "without") && !rest.is_empty() => {
                    (Polarity::Neg, rest)
                }
                Some((f, rest)) if (f == "extra" || f == "double") && !rest.is_empty() => {
                    (Polarity::Extra, rest)
                }
                Some((f, rest)) if (f == "with" || f == "add") && !rest.is_empty() => {
                    (Polarity::Plain, rest)
                }
                _ => (Polarity::Plain, ws.as_slice()),
            };
            let mut anchors: Vec<String> = Vec::new();
            for w in core {
                if WEAK.contains(&w.as_str()) || w.len() < 3 {
                    continue;
                }
                let k = key(w);
                anchors.push(k.clone());
                for (base, syns) in MODIFIER_SYNONYMS {
                    if key(base) == k {
                        anchors.extend(syns.iter().map(|s| key(s)));
                    }
                }
            }
            if anchors.is_empty() {
                anchors.extend(core.iter().map(|w| key(w)));
            }
            out.push(ModWord {
                group: gi,
                modifier: mi,
                polarity,
                anchors,
                inverted: core.iter().any(|w| w == "free"),
            });
        }
    }
    out
}

/// Words after which a dish's trailing "is" ends the phrase.
const AFTER_PLURAL_IS: &[&str] = &["and", "please", "thanks", "thank", "plus", "also"];

/// Whether a dish ending before `end` is a plural as a speech recognizer writes it:
/// "pizza is" for "pizzas" when nothing follows the "is" but the end of the clause,
/// "and" or "please" ("two pizza is please"). A typed "the pizza is good" is not: a
/// word that completes the "is" follows it.
pub(crate) fn heard_plural(toks: &[String], end: usize) -> bool {
    toks.get(end).is_some_and(|w| w == "is")
        && toks
            .get(end + 1)
            .is_none_or(|w| is_punct(w) || AFTER_PLURAL_IS.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::text::tokenize;
    use stonepot_domain::demo;

    fn ids(menu: &Menu, s: &str) -> Vec<String> {
        let lex = Lexicon::new(menu);
        let toks = tokenize(s);
        lex.items(&toks)
            .iter()
            .filter_map(|m| lex.item(m.item).map(|i| i.id.clone()))
            .collect()
    }

    #[test]
    fn a_shared_menu_is_indexed_once_and_a_changed_one_again() {
        let menu = Arc::new(demo::restaurant_menu());
        let a = Lexicon::shared(&menu);
        let b = Lexicon::shared(&menu);
        assert!(Arc::ptr_eq(&a.index, &b.index));
        // A new version of the menu (another Arc) gets its own index, which knows
        // the dish the old one did not.
        let mut changed = demo::restaurant_menu();
        let mut dish = changed.items[0].clone();
        dish.id = "zucchini-fritti".into();
        dish.name = "Zucchini Fritti".into();
        dish.aliases.clear();
        changed.items.push(dish);
        let changed = Arc::new(changed);
        let c = Lexicon::shared(&changed);
        assert!(!Arc::ptr_eq(&a.index, &c.index));
        let toks = tokenize("zucchini fritti please");
        assert!(a.items(&toks).is_empty());
        assert_eq!(c.items(&toks).len(), 1);
    }

    #[test]
    fn fuzzy_names_aliases_and_speech_slips() {
        let menu = demo::restaurant_menu();
        let cases = [
            ("a margarita", "margherita"),
            ("two peperoni pizzas", "pepperoni"),
            ("a cesar salad", "caesar-salad"),
            ("one tiramisoo", "tiramisu"),
            ("a tira misu", "tiramisu"),
            ("a panna cota", "panna-cotta"),
            ("a pannacotta", "panna-cotta"),
            ("an expresso", "espresso"),
            ("penne arabiata", "penne-arrabbiata"),
            ("spagetti carbonara", "spaghetti-carbonara"),
            ("a quatro formagi", "quattro-formaggi"),
            ("a glass of lemon aid", "lemonade"),
            ("a pepper only pizza", "pepperoni"),
            ("some rice balls", "arancini"),
            ("a four cheese pizza", "quattro-formaggi"),
            ("the lasagne", "lasagna"),
            ("a coffee", "espresso"),
            ("a bottle of pellegrino", "sparkling-water"),
        ];
        for (said, want) in cases {
            assert_eq!(ids(&menu, said), vec![want.to_string()], "{said}");
        }
        assert!(ids(&menu, "I'll order later").is_empty());
        assert!(ids(&menu, "two cokes").is_empty());
        assert_eq!(
            ids(&menu, "a margherita pizza and a lemonade"),
            vec!["margherita".to_string(), "lemonade".to_string()]
        );
    }

    #[test]
    fn modifiers_read_the_guests_intent() {
        let menu = demo::restaurant_menu();
        let lex = Lexicon::new(&menu);
        let m = lex.item_index("margherita").unwrap_or(usize::MAX);
        let names = |s: &str, removing: bool| {
            let toks = tokenize(s);
            let p = lex.modifiers(m, &toks, 0, toks.len(), removing);
            p.ops
                .iter()
                .map(|op| match *op {
                    ModOp::Add { group, modifier } => {
                        format!("+{}", lex.modifier_name(m, group, modifier))
                    }
                    ModOp::Remove { group, modifier } => {
                        format!("-{}", lex.modifier_name(m, group, modifier))
                    }
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names("without basil", false), ["+No basil"]);
        assert_eq!(names("hold the basil", false), ["+No basil"]);
        assert_eq!(names("with extra basil", false), ["+Extra basil"]);
        assert_eq!(names("with basil", false), Vec::<String>::new());
        assert_eq!(
            names("large, extra cheese and mushrooms", false),
            ["+Large", "+Extra cheese", "+Mushrooms"]
        );
        assert_eq!(names("no olives", false), ["-Olives"]);
        assert_eq!(names("take the olives off", true), ["-Olives"]);
        assert_eq!(names("with chilli flakes", false), ["+Chili flakes"]);
        let toks = tokenize("with pineapple");
        assert_eq!(lex.modifiers(m, &toks, 0, 2, false).unknown, ["pineapple"]);
    }
}
