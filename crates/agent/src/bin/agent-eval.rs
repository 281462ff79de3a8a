//! `agent-eval [PATH]`: runs an evaluation set (default: the shipped
//! `eval/restaurant.jsonl`) through the offline agent against the demo menu, prints the
//! accuracy and every failure, and exits non-zero below 95%.

use std::io::Write;
use std::process::ExitCode;
use stonepot_agent::offline::eval::evaluate;
use stonepot_domain::demo;

const DEFAULT_SET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/restaurant.jsonl");
const THRESHOLD: f64 = 0.95;

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_SET.into());
    let mut out = std::io::stdout().lock();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "agent-eval: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let report = evaluate(&text, &demo::restaurant_menu());
    for f in &report.failures {
        let _ = writeln!(
            out,
            "FAIL line {} ({}): {:?}\n  {}\n  expected: {:?}\n  got:      {:?}\n  tools:    {:?}\n  reply:    {}\n",
            f.line, f.conversation, f.utterance, f.problem, f.expected, f.got, f.tools, f.reply
        );
    }
    let _ = writeln!(
        out,
        "{} of {} turns correct in {} conversations: accuracy {:.1}% (threshold {:.0}%)",
        report.correct,
        report.turns,
        report.conversations,
        report.accuracy * 100.0,
        THRESHOLD * 100.0
    );
    if report.accuracy >= THRESHOLD {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
