//! Theme generation: ask the model for a theme through a `set_theme` tool whose schema
//! is the theme's, validate what comes back, and derive one from the description's
//! brand color when there is no model or its answer does not validate.

use futures::StreamExt;
use serde_json::json;
use stonepot_agent::turn::Model;
use stonepot_domain::palette::theme_from_description;
use stonepot_domain::{Category, Theme};
use stonepot_llm::{ChatRequest, Collected, Message, ToolSpec};

/// Where a generated theme came from.
pub struct Generated {
    pub theme: Theme,
    /// `model` or `derived`.
    pub source: &'static str,
    /// Why the model's theme was not used, when it was not.
    pub note: Option<String>,
}

fn schema() -> serde_json::Value {
    let color = json!({"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"});
    json!({"type": "object", "properties": {
        "primary": color, "secondary": color, "background": color, "surface": color,
        "text": color, "muted": color, "accent": color,
        "fontHeading": {"type": "string", "description": "a CSS font stack of installed fonts"},
        "fontBody": {"type": "string"},
        "radius": {"type": "integer", "minimum": 0, "maximum": 48},
        "layout": {"type": "string", "enum": ["grid", "list"]}
    }, "required": ["primary", "secondary", "background", "surface", "text", "muted", "accent",
                    "fontHeading", "fontBody", "radius", "layout"]})
}

async fn ask(model: &dyn Model, description: &str) -> Result<Theme, String> {
    let req = ChatRequest {
        model: String::new(),
        messages: vec![
            Message::system(
                "You design themes for a business's live customer display. Call set_theme \
                 exactly once with a readable palette (text on background at least 7:1).",
            ),
            Message::user(description.to_string()),
        ],
        tools: vec![ToolSpec {
            name: "set_theme".into(),
            description: "Set the display theme.".into(),
            parameters: schema(),
        }],
        max_tokens: Some(600),
        temperature: Some(0.4),
    };
    let stream = model
        .stream("theme-generation", req)
        .await
        .map_err(|e| e.to_string())?;
    let mut got = Collected::default();
    let mut open = Vec::new();
    let mut events = stream.events;
    while let Some(ev) = events.next().await {
        got.push(&ev.map_err(|e| e.to_string())?, &mut open);
    }
    let args = got
        .tool_calls
        .iter()
        .find(|c| c.name == "set_theme")
        .map(|c| c.arguments.clone())
        .or_else(|| {
            // Some models answer with the JSON as text instead of a call.
            let t = got.text.trim();
            let start = t.find('{')?;
            let end = t.rfind('}')?;
            t.get(start..=end).map(str::to_string)
        })
        .ok_or("the model did not call set_theme")?;
    let theme: Theme = serde_json::from_str(&args).map_err(|e| format!("theme JSON: {e}"))?;
    theme.validate().map_err(|e| e.to_string())?;
    Ok(theme)
}

/// A theme for `description`, from the model when one is configured and its answer is
/// valid, otherwise derived.
pub async fn generate(
    model: Option<&dyn Model>,
    description: &str,
    category: Category,
) -> Generated {
    let list = category == Category::Financial;
    let note = match model {
        Some(m) => match ask(m, description).await {
            Ok(theme) => {
                return Generated {
                    theme,
                    source: "model",
                    note: None,
                };
            }
            Err(e) => Some(format!("the model's theme was not used: {e}")),
        },
        None => None,
    };
    Generated {
        theme: theme_from_description(description, list),
        source: "derived",
        note,
    }
}
