//! The conversation as the relay saw it: final guest and model utterances and every tool
//! call with its output, in order. Re-injected into a fresh OpenAI session on rollover
//! (and into a fresh Gemini session when no resumption handle is left), so a two-hour
//! conversation survives its provider's connection limits.

use serde_json::Value;

/// One thing that happened in the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    User(String),
    /// The model's words, cut to what the guest heard when interrupted.
    Assistant(String),
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
    Output {
        call_id: String,
        output: Value,
    },
}

impl Turn {
    fn chars(&self) -> usize {
        match self {
            Turn::User(t) | Turn::Assistant(t) => t.len(),
            Turn::Call {
                arguments, name, ..
            } => arguments.len() + name.len(),
            Turn::Output { output, .. } => output.to_string().len(),
        }
    }
}

/// The ordered turns of one conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    turns: Vec<Turn>,
}

impl History {
    pub fn push(&mut self, turn: Turn) {
        if let Turn::User(t) | Turn::Assistant(t) = &turn
            && t.trim().is_empty()
        {
            return;
        }
        self.turns.push(turn);
    }

    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Cuts the model's last reply to what the guest heard (`played_ms` of `total_ms`),
    /// when the last reply is still the newest thing the guest or model said.
    pub fn cut_last_reply(&mut self, played_ms: u64, total_ms: u64) {
        let last = self
            .turns
            .iter()
            .rposition(|t| matches!(t, Turn::User(_) | Turn::Assistant(_)));
        if let Some(i) = last
            && let Some(Turn::Assistant(text)) = self.turns.get_mut(i)
        {
            *text = heard_prefix(text, played_ms, total_ms);
            if text.trim().is_empty() {
                self.turns.remove(i);
            }
        }
    }

    /// The newest turns that fit in `max_chars`, oldest first, never starting with a
    /// tool output whose call was cut off (a provider refuses an output with no call).
    pub fn tail(&self, max_chars: usize) -> &[Turn] {
        let mut used = 0;
        let mut start = self.turns.len();
        while start > 0 {
            let c = self.turns[start - 1].chars();
            if used + c > max_chars {
                break;
            }
            used += c;
            start -= 1;
        }
        while let Some(Turn::Output { .. }) = self.turns.get(start) {
            start += 1;
        }
        &self.turns[start..]
    }
}

/// The part of `text` said in the first `played_ms` of `total_ms` of speech: providers
/// send no word timings, so the cut is proportional, at a word boundary.
pub fn heard_prefix(text: &str, played_ms: u64, total_ms: u64) -> String {
    if total_ms == 0 || played_ms >= total_ms {
        return text.to_string();
    }
    let keep = (text.len() as u64 * played_ms / total_ms) as usize;
    let mut cut = keep.min(text.len());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = &text[..cut];
    if text[cut..].starts_with(char::is_whitespace) {
        return prefix.trim_end().to_string();
    }
    // Drop the word the cut fell inside.
    match prefix.rfind(char::is_whitespace) {
        Some(i) => prefix[..i].trim_end().to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tail_keeps_the_newest_turns_and_never_an_orphan_output() {
        let mut h = History::default();
        h.push(Turn::User("a".repeat(50)));
        h.push(Turn::Call {
            call_id: "c1".into(),
            name: "add".into(),
            arguments: "x".repeat(40),
        });
        h.push(Turn::Output {
            call_id: "c1".into(),
            output: json!({"ok": true}),
        });
        h.push(Turn::Assistant("done".into()));
        h.push(Turn::User("   ".into()));
        assert_eq!(h.turns().len(), 4);
        let t = h.tail(30);
        assert_eq!(t, &h.turns()[3..]);
        assert_eq!(h.tail(10_000).len(), 4);
    }

    #[test]
    fn the_last_reply_is_cut_to_what_was_heard() {
        let mut h = History::default();
        h.push(Turn::User("what did I order".into()));
        h.push(Turn::Assistant("one two three four".into()));
        h.cut_last_reply(500, 1000);
        assert_eq!(h.turns().last(), Some(&Turn::Assistant("one two".into())));
        // Nothing heard: the reply is gone from what the model remembers.
        h.cut_last_reply(0, 1000);
        assert_eq!(
            h.turns().last(),
            Some(&Turn::User("what did I order".into()))
        );
        // The guest's own words are never cut.
        h.cut_last_reply(0, 1000);
        assert_eq!(h.turns().len(), 1);
    }

    #[test]
    fn heard_prefix_cuts_at_a_word() {
        assert_eq!(heard_prefix("one two three four", 500, 1000), "one two");
        assert_eq!(heard_prefix("one two", 2000, 1000), "one two");
        assert_eq!(heard_prefix("héllo wörld", 300, 1000), "");
    }
}
