//! What a clause is: where one clause ends and the next begins, the greetings, thanks
//! and acknowledgements around it, "that's all", "start over", and whether it asks a
//! question.

use crate::offline::text::{find, is_punct};

/// Words that start a new clause after "and" or a comma ("… and add a lemonade").
const SPLIT_VERBS: &[&str] = &[
    "add", "remove", "take", "drop", "make", "change", "swap", "switch", "replace", "cancel",
    "delete", "scratch", "forget", "put", "start", "clear",
];

pub(super) const QUESTION_START: &[&str] = &[
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

pub(super) struct Clause {
    pub(super) t: Vec<String>,
}

pub(super) fn split_clauses(toks: &[String]) -> Vec<Clause> {
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

/// What the start of a clause said besides its content.
#[derive(Default)]
pub(super) struct Lead {
    pub(super) greeted: bool,
    pub(super) thanked: bool,
    pub(super) ack: bool,
    pub(super) actually: bool,
}

fn strip_phrase(t: &mut Vec<String>, phrase: &[&str]) -> bool {
    if let Some(i) = find(t, phrase) {
        t.drain(i..i + phrase.len());
        true
    } else {
        false
    }
}

pub(super) fn words_only(t: &[String]) -> bool {
    t.iter().any(|w| !is_punct(w))
}

pub(super) fn strip_lead(t: &mut Vec<String>) -> Lead {
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
pub(super) fn strip_done(t: &mut Vec<String>) -> bool {
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

/// "place the order", "confirm it", "check out": the guest wants the order placed.
pub(super) fn strip_place(t: &mut Vec<String>) -> bool {
    const PLACE: &[&[&str]] = &[
        &["place", "the", "order"],
        &["place", "my", "order"],
        &["place", "our", "order"],
        &["place", "it"],
        &["confirm", "the", "order"],
        &["confirm", "my", "order"],
        &["confirm", "our", "order"],
        &["confirm", "it"],
        &["go", "ahead"],
        &["check", "out"],
        &["checkout"],
        &["i", "confirm"],
        &["confirm"],
        &["send", "it"],
    ];
    let mut place = false;
    for phrase in PLACE {
        if strip_phrase(t, phrase) {
            place = true;
        }
    }
    if place {
        let leftovers = [
            "please", "yes", "ok", "and", "you", "can", "now", "let", "us", "lets", "i", "want",
            "to", "would", "like", "please", ",",
        ];
        if t.iter().all(|w| leftovers.contains(&w.as_str())) {
            t.clear();
        }
    }
    place
}

pub(super) fn strip_ack(t: &mut Vec<String>) -> bool {
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
pub(super) fn clear_span(t: &[String]) -> Option<(usize, usize)> {
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

pub(super) fn is_clear(t: &[String]) -> bool {
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

pub(super) fn is_question(t: &[String]) -> bool {
    t.split(|w| w == ",").any(part_is_question)
}
