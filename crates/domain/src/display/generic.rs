//! Kinds both categories may show: `message` and `card`.

use super::fields::{Obj, Out};
use super::{ComponentError, FIELDS_MAX, MESSAGE_ROLES, MESSAGE_TONES, NAME_MAX, TEXT_MAX};
use serde_json::Value;

pub(super) fn message(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["text", "role", "tone"])?;
    let mut out = Out::default();
    out.set("text", o.req_text("text", TEXT_MAX)?);
    out.set(
        "role",
        o.choice("role", MESSAGE_ROLES)?.unwrap_or("assistant"),
    );
    out.set("tone", o.choice("tone", MESSAGE_TONES)?.unwrap_or("info"));
    Ok(out.done())
}

pub(super) fn card(data: &Value) -> Result<Value, ComponentError> {
    let o = Obj::new(data, "data", &["title", "body", "imageUrl", "fields"])?;
    let mut out = Out::default();
    out.set("title", o.req_text("title", NAME_MAX)?);
    out.opt("body", o.text("body", TEXT_MAX)?);
    out.opt("imageUrl", o.url("imageUrl")?);
    let fields = o.objects("fields", FIELDS_MAX, &["label", "value"], |f| {
        let label = f.req_text("label", NAME_MAX)?;
        let value = f.req_text_or_number("value", TEXT_MAX)?;
        let mut field = Out::default();
        field.set("label", label);
        field.set("value", value);
        Ok(field.done())
    })?;
    out.set("fields", fields.unwrap_or_default());
    Ok(out.done())
}

#[cfg(test)]
mod tests {
    use crate::display::tests::{F, R, ok, refused};
    use serde_json::{Value, json};

    #[test]
    fn message() {
        let v = ok(R, "message", json!({"text": "Anything to drink?"}));
        assert_eq!(
            v,
            json!({"text": "Anything to drink?", "role": "assistant", "tone": "info"})
        );
        let v = ok(
            F,
            "message",
            json!({"text": "Saved", "role": "system", "tone": "SUCCESS"}),
        );
        assert_eq!(
            (v["role"].as_str(), v["tone"].as_str()),
            (Some("system"), Some("success"))
        );
        let e = refused(R, "message", json!({"text": "y".repeat(2001)}));
        assert_eq!(e.field, "data.text");
        let e = refused(R, "message", json!({"text": "hi", "tone": "loud"}));
        assert_eq!(e.field, "data.tone");
        let e = refused(R, "message", json!({"text": "hi", "role": "bot"}));
        assert_eq!(e.field, "data.role");
    }

    #[test]
    fn card() {
        let v = ok(
            F,
            "card",
            json!({"title": "Your adviser", "body": "Meet Sam", "image_url": "https://x.example/a.png",
                   "fields": [{"label": "Phone", "value": "555-0100"}, {"label": "Years", "value": 12}]}),
        );
        assert_eq!(v["imageUrl"], "https://x.example/a.png");
        assert_eq!(v["fields"][1]["value"], 12);
        let e = refused(R, "card", json!({"title": "t", "fields": [{"label": "a"}]}));
        assert_eq!(e.field, "data.fields[0].value");
        let fields: Vec<Value> = (0..51).map(|i| json!({"label": "l", "value": i})).collect();
        let e = refused(R, "card", json!({"title": "t", "fields": fields}));
        assert_eq!(e.field, "data.fields");
        let e = refused(R, "card", json!({"body": "no title"}));
        assert_eq!(e.field, "data.title");
    }
}
