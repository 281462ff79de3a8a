//! Words as the offline agent sees them: lower-cased tokens with contractions spelled
//! out and fillers dropped, number words, a phonetic-ish key for fuzzy matching and an
//! edit distance. Everything here is menu-agnostic.

/// Punctuation kept as tokens because it separates clauses or marks a question.
pub(crate) const PUNCT: &[&str] = &[",", ".", "?", "!", ";", ":"];

/// Sounds a speaker makes while thinking; never meaningful.
const FILLERS: &[&str] = &[
    "um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "mm", "ah",
];

/// Words that never name a dish, a modifier or a quantity on their own.
pub(crate) const STOPWORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "and",
    "or",
    "but",
    "with",
    "without",
    "no",
    "not",
    "of",
    "for",
    "to",
    "too",
    "on",
    "in",
    "at",
    "from",
    "off",
    "out",
    "please",
    "thanks",
    "thank",
    "you",
    "i",
    "me",
    "my",
    "we",
    "us",
    "our",
    "it",
    "its",
    "that",
    "this",
    "those",
    "these",
    "them",
    "they",
    "is",
    "are",
    "am",
    "be",
    "was",
    "will",
    "would",
    "can",
    "could",
    "may",
    "might",
    "should",
    "do",
    "does",
    "did",
    "have",
    "has",
    "had",
    "get",
    "got",
    "give",
    "want",
    "wants",
    "like",
    "take",
    "let",
    "just",
    "also",
    "then",
    "so",
    "ok",
    "okay",
    "yeah",
    "yes",
    "some",
    "any",
    "more",
    "another",
    "each",
    "both",
    "all",
    "as",
    "well",
    "actually",
    "sorry",
    "oh",
    "hey",
    "hi",
    "hello",
    "there",
    "here",
    "what",
    "which",
    "how",
    "much",
    "now",
    "really",
    "maybe",
    "think",
    "go",
    "going",
    "order",
    "instead",
    "again",
    "same",
    "other",
    "others",
    "rest",
    "else",
    "anything",
    "something",
    "need",
    "love",
    "gonna",
    "wanna",
    "glass",
    "bottle",
    "cup",
    "plate",
    "portion",
    "serving",
    "piece",
    "slice",
    "bowl",
    "one",
    "ones",
    "kids",
    "kid",
    "wife",
    "husband",
    "friend",
    "son",
    "daughter",
    "table",
    "everyone",
    "start",
    "main",
    "dessert",
    "also",
    "plus",
    "add",
    "make",
    "change",
    "put",
    "be",
    "if",
    "he",
    "she",
    "his",
    "her",
    "their",
    "your",
    "who",
    "whose",
    "try",
    "share",
    "have",
    "lets",
    "great",
    "good",
    "sounds",
    "right",
    "sure",
    "cool",
    "alright",
    "perfect",
    "extra",
    "more",
    "double",
    "back",
    "either",
    "up",
    "down",
    "over",
    "him",
    "guess",
    "course",
    "definitely",
    "probably",
    "kind",
    "sort",
];

/// Splits an utterance into tokens: words (lower case, contractions spelled out, fillers
/// dropped), numbers, and the punctuation in [`PUNCT`].
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, raw: &mut Vec<String>| {
        if !cur.is_empty() {
            raw.push(std::mem::take(cur));
        }
    };
    for ch in text.chars() {
        let c = fold_char(ch);
        if c.is_ascii_alphabetic() {
            if cur.chars().last().is_some_and(|p| p.is_ascii_digit()) {
                flush(&mut cur, &mut raw);
            }
            cur.push(c.to_ascii_lowercase());
        } else if c.is_ascii_digit() {
            if cur.chars().last().is_some_and(|p| p.is_ascii_alphabetic()) {
                flush(&mut cur, &mut raw);
            }
            cur.push(c);
        } else if c == '\'' && !cur.is_empty() {
            cur.push('\'');
        } else {
            flush(&mut cur, &mut raw);
            let s = c.to_string();
            if PUNCT.contains(&s.as_str()) {
                raw.push(s);
            }
        }
    }
    flush(&mut cur, &mut raw);

    let mut out: Vec<String> = Vec::new();
    for w in raw {
        for piece in expand(w.trim_end_matches('\'')) {
            if FILLERS.contains(&piece.as_str()) {
                continue;
            }
            // "like" as a filler ("but like no basil"), not as a verb ("I'd like").
            if piece == "like"
                && !out.last().is_some_and(|p| {
                    matches!(
                        p.as_str(),
                        "would" | "i" | "we" | "you" | "they" | "he" | "she" | "really" | "do"
                    )
                })
            {
                continue;
            }
            out.push(piece);
        }
    }
    out
}

fn fold_char(c: char) -> char {
    match c {
        '’' | '‘' | '`' | '´' => '\'',
        'à' | 'á' | 'â' | 'ä' | 'ã' | 'À' | 'Á' | 'Â' | 'Ä' => 'a',
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        other => other,
    }
}

/// Spells out contractions and possessives ("what's" → "what is", "ada's" → "ada").
fn expand(w: &str) -> Vec<String> {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    match w {
        "won't" => return v(&["will", "not"]),
        "can't" | "cant" => return v(&["can", "not"]),
        "let's" | "lets" => return v(&["let", "us"]),
        "i'm" | "im" => return v(&["i", "am"]),
        "thats" => return v(&["that", "is"]),
        "whats" => return v(&["what", "is"]),
        "its" => return v(&["it", "is"]),
        "dont" => return v(&["do", "not"]),
        "doesnt" => return v(&["does", "not"]),
        "ill" => return v(&["i", "will"]),
        "id" => return v(&["i", "would"]),
        "ive" => return v(&["i", "have"]),
        "thatll" => return v(&["that", "will"]),
        "gimme" => return v(&["give", "me"]),
        "gonna" => return v(&["going", "to"]),
        "wanna" => return v(&["want", "to"]),
        "okay" => return v(&["ok"]),
        _ => {}
    }
    if let Some((stem, tail)) = w.split_once('\'') {
        let stem = stem.to_string();
        let rest: Option<&str> = match tail {
            "ll" => Some("will"),
            "d" => Some("would"),
            "m" => Some("am"),
            "re" => Some("are"),
            "ve" => Some("have"),
            "s" => match stem.as_str() {
                "what" | "that" | "it" | "there" | "here" | "who" | "how" | "where" | "he"
                | "she" | "this" => Some("is"),
                "let" => Some("us"),
                _ => None,
            },
            "t" => {
                return match stem.strip_suffix('n') {
                    Some(s) => vec![s.to_string(), "not".into()],
                    None => vec![stem],
                };
            }
            _ => None,
        };
        let mut out = vec![stem];
        out.extend(rest.map(str::to_string));
        return out;
    }
    vec![w.to_string()]
}

pub(crate) fn is_punct(t: &str) -> bool {
    PUNCT.contains(&t)
}

pub(crate) fn is_stop(t: &str) -> bool {
    STOPWORDS.contains(&t) || is_punct(t)
}

const UNITS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: &[&str] = &[
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// A quantity found in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantity {
    pub value: u32,
    /// Tokens it spans.
    pub len: usize,
    /// "a", "an", "another": one, but not an explicit count ("remove a lemonade" vs
    /// "remove one lemonade" behave the same; "the" is no quantity at all).
    pub article: bool,
    /// "another", "one more": on top of what is there.
    pub more: bool,
}

fn unit(w: &str) -> Option<u32> {
    UNITS
        .iter()
        .position(|u| *u == w)
        .and_then(|i| u32::try_from(i).ok())
}

/// Reads a quantity starting at `i` ("two", "2", "a couple of", "half a dozen",
/// "twenty two", "an", "another"). Sound-alikes ("to", "for") are the caller's call.
pub(crate) fn quantity_at(toks: &[String], i: usize) -> Option<Quantity> {
    let w = |k: usize| toks.get(i + k).map(String::as_str).unwrap_or("");
    let q = |value: u32, len: usize| Quantity {
        value,
        len,
        article: false,
        more: false,
    };
    match (w(0), w(1), w(2)) {
        ("half", "a", "dozen") => return Some(q(6, 3)),
        ("a", "couple", "of") | ("a", "pair", "of") => return Some(q(2, 3)),
        ("a", "couple" | "pair", _) | ("couple" | "pair", "of", _) => return Some(q(2, 2)),
        ("a", "dozen", _) => return Some(q(12, 2)),
        ("dozen", _, _) => return Some(q(12, 1)),
        ("another", _, _) => {
            return Some(Quantity {
                value: 1,
                len: 1,
                article: true,
                more: true,
            });
        }
        ("a" | "an", _, _) => {
            return Some(Quantity {
                value: 1,
                len: 1,
                article: true,
                more: false,
            });
        }
        _ => {}
    }
    let first = w(0);
    if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
        return first.parse::<u32>().ok().map(|v| q(v, 1));
    }
    if let Some(t) = TENS.iter().position(|x| !x.is_empty() && *x == first) {
        let tens = u32::try_from(t).unwrap_or(0) * 10;
        return Some(match unit(w(1)) {
            Some(u) if (1..10).contains(&u) => q(tens + u, 2),
            _ => q(tens, 1),
        });
    }
    unit(first).map(|u| q(u, 1))
}

/// "to", "too", "for", "won", "tree": number words as a speech recogniser may write them.
pub(crate) fn homophone(w: &str) -> Option<u32> {
    match w {
        "to" | "too" => Some(2),
        "for" => Some(4),
        "won" => Some(1),
        "tree" => Some(3),
        _ => None,
    }
}

/// A phonetic-ish key: spelling variants that sound alike get the same key
/// ("caesar"/"cesar", "tiramisoo"/"tiramisu", "espresso"/"expresso" are close).
pub(crate) fn key(word: &str) -> String {
    let mut w: String = word.chars().filter(char::is_ascii_alphanumeric).collect();
    if w.len() > 3 && !w.ends_with("ss") && !w.ends_with("us") {
        if let Some(s) = w.strip_suffix("ies") {
            w = format!("{s}y");
        } else if let Some(s) = w.strip_suffix('s') {
            w = s.to_string();
        }
    }
    // "ae" is one sound ("caesar" = "cesar"); fold it before "c" decides k or s.
    let w = w.replace("ae", "e");
    let c: Vec<char> = w.chars().collect();
    let mut out = String::with_capacity(c.len());
    let mut i = 0;
    while i < c.len() {
        let a = c.get(i).copied().unwrap_or(' ');
        let b = c.get(i + 1).copied().unwrap_or(' ');
        let (s, step) = match (a, b) {
            ('p', 'h') => ("f", 2),
            ('c', 'k') | ('c', 'h') | ('q', 'u') => ("k", 2),
            ('g', 'h') => ("g", 2),
            ('g', 'n') => ("n", 2),
            ('s', 'h') => ("s", 2),
            ('e', 'e') => ("i", 2),
            ('o', 'o') | ('o', 'u') => ("u", 2),
            ('c', 'e' | 'i' | 'y') => ("s", 1),
            ('c', _) | ('q', _) => ("k", 1),
            ('x', _) => ("ks", 1),
            ('z', _) => ("s", 1),
            ('y', _) => ("i", 1),
            ('w', 'h') => ("w", 2),
            _ => ("", 1),
        };
        if s.is_empty() {
            out.push(a);
        } else {
            out.push_str(s);
        }
        i += step;
    }
    // Doubled letters sound single.
    let mut dedup = String::with_capacity(out.len());
    for ch in out.chars() {
        if !dedup.ends_with(ch) {
            dedup.push(ch);
        }
    }
    dedup
}

/// Edit distance with adjacent transpositions (optimal string alignment).
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    let at = |i: usize, j: usize| i * w + j;
    for i in 0..=a.len() {
        if let Some(x) = d.get_mut(at(i, 0)) {
            *x = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(x) = d.get_mut(at(0, j)) {
            *x = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let ai = a.get(i - 1);
            let bj = b.get(j - 1);
            let cost = usize::from(ai != bj);
            let get = |i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
            let mut v = (get(i - 1, j) + 1)
                .min(get(i, j - 1) + 1)
                .min(get(i - 1, j - 1) + cost);
            if i > 1 && j > 1 && ai == b.get(j - 2) && a.get(i - 2) == bj {
                v = v.min(get(i - 2, j - 2) + 1);
            }
            if let Some(x) = d.get_mut(at(i, j)) {
                *x = v;
            }
        }
    }
    d.get(at(a.len(), b.len())).copied().unwrap_or(usize::MAX)
}

/// How many edits a key of this length may absorb and still match.
pub(crate) fn allowed(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=5 => 1,
        6..=11 => 2,
        _ => 3,
    }
}

/// Whether two keys match within the tolerance for their length (first sound kept).
pub(crate) fn close(a: &str, b: &str, max: usize) -> Option<usize> {
    if a == b {
        return Some(0);
    }
    if max == 0 || a.chars().next() != b.chars().next() || a.len().abs_diff(b.len()) > max {
        return None;
    }
    let d = distance(a, b);
    (d <= max).then_some(d)
}

/// Whether the phrase `words` occurs at `i`.
pub(crate) fn starts_with(toks: &[String], i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| toks.get(i + k).is_some_and(|t| t == w))
}

/// The first position where `words` occurs.
pub(crate) fn find(toks: &[String], words: &[&str]) -> Option<usize> {
    (0..toks.len()).find(|&i| starts_with(toks, i, words))
}

pub(crate) fn has(toks: &[String], w: &str) -> bool {
    toks.iter().any(|t| t == w)
}

pub(crate) fn has_any(toks: &[String], ws: &[&str]) -> bool {
    toks.iter().any(|t| ws.contains(&t.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn contractions_fillers_and_punctuation() {
        assert_eq!(
            t("What's in my cart?"),
            ["what", "is", "in", "my", "cart", "?"]
        );
        assert_eq!(
            t("um I'd like uh a lemonade, but like no basil"),
            [
                "i", "would", "like", "a", "lemonade", ",", "but", "no", "basil"
            ]
        );
        assert_eq!(t("don't"), ["do", "not"]);
        assert_eq!(t("Ada's accounts"), ["ada", "accounts"]);
        assert_eq!(t("2x gluten-free"), ["2", "x", "gluten", "free"]);
        assert_eq!(t("That’ll be all."), ["that", "will", "be", "all", "."]);
    }

    #[test]
    fn number_words() {
        let q = |s: &str| quantity_at(&t(s), 0).map(|q| (q.value, q.len));
        assert_eq!(q("two pizzas"), Some((2, 1)));
        assert_eq!(q("12 garlic"), Some((12, 1)));
        assert_eq!(q("a couple of lemonades"), Some((2, 3)));
        assert_eq!(q("a dozen"), Some((12, 2)));
        assert_eq!(q("half a dozen"), Some((6, 3)));
        assert_eq!(q("twenty two"), Some((22, 2)));
        assert_eq!(q("fifteen"), Some((15, 1)));
        assert_eq!(q("an espresso"), Some((1, 1)));
        assert_eq!(q("the espresso"), None);
        let another = quantity_at(&t("another one"), 0);
        assert!(another.is_some_and(|q| q.more && q.value == 1));
        assert_eq!(homophone("for"), Some(4));
    }

    #[test]
    fn keys_bring_sound_alikes_together() {
        assert_eq!(key("caesar"), key("cesar"));
        assert_eq!(key("tiramisoo"), key("tiramisu"));
        assert_eq!(key("pepperoni"), key("peperoni"));
        assert_eq!(key("lemonades"), key("lemonade"));
        assert!(distance(&key("margarita"), &key("margherita")) <= 1);
        assert!(distance(&key("expresso"), &key("espresso")) <= 1);
        assert_eq!(distance("abcd", "abdc"), 1);
        assert_eq!(
            close("later", "water", 1),
            None,
            "the first sound must agree"
        );
    }
}
