//! Field readers shared by every kind: [`Obj`] reads a JSON object under validation,
//! [`Out`] builds the normalized one, and the helpers below read strings, ids, URLs and
//! plain numbers (money is in `amounts`).

use super::amounts::{Sign, money_value};
use super::{ComponentError, ID_MAX, NAME_MAX, STRINGS_MAX, URL_MAX};
use crate::Currency;
use serde_json::{Map, Number, Value};

pub(super) fn err(field: impl Into<String>, problem: impl Into<String>) -> ComponentError {
    ComponentError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A JSON object under validation: its path and declared keys.
pub(super) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// Checks that `value` is an object whose keys are all declared (in camelCase or
    /// its snake_case spelling, not both).
    pub(super) fn new(value: &'a Value, path: &str, keys: &[&str]) -> Result<Self, ComponentError> {
        let Value::Object(map) = value else {
            return Err(err(path, "must be a JSON object"));
        };
        for k in map.keys() {
            if !keys.iter().any(|d| *d == k || snake(d) == *k) {
                return Err(err(
                    format!("{path}.{}", clip(k)),
                    format!("unknown field (expected one of: {})", keys.join(", ")),
                ));
            }
        }
        for d in keys {
            let s = snake(d);
            if s != *d && map.contains_key(*d) && map.contains_key(&s) {
                return Err(err(
                    format!("{path}.{d}"),
                    format!("given twice, as '{d}' and '{s}'"),
                ));
            }
        }
        Ok(Obj {
            path: path.to_string(),
            map,
        })
    }

    /// The value of a declared key under either spelling; `null` counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        let v = match self.map.get(key) {
            Some(v) => v,
            None => self.map.get(&snake(key))?,
        };
        (!v.is_null()).then_some(v)
    }

    /// The path of a key, spelled as the input spelled it.
    pub(super) fn at(&self, key: &str) -> String {
        let s = snake(key);
        if !self.map.contains_key(key) && self.map.contains_key(&s) {
            format!("{}.{s}", self.path)
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn missing(&self, key: &str) -> ComponentError {
        err(self.at(key), "is required")
    }

    /// An optional string read by `read`; empty counts as absent.
    fn optional(
        &self,
        key: &str,
        read: impl FnOnce(&Value, &str) -> Result<String, ComponentError>,
    ) -> Result<Option<String>, ComponentError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let s = read(v, &self.at(key))?;
                Ok((!s.is_empty()).then_some(s))
            }
        }
    }

    /// A required, non-empty string read by `read`.
    fn required(
        &self,
        key: &str,
        read: impl FnOnce(&Value, &str) -> Result<String, ComponentError>,
    ) -> Result<String, ComponentError> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        nonempty(read(v, &self.at(key))?, &self.at(key))
    }

    /// An optional string; empty counts as absent.
    pub(super) fn text(&self, key: &str, max: usize) -> Result<Option<String>, ComponentError> {
        self.optional(key, |v, field| str_field(v, field, max))
    }

    pub(super) fn req_text(&self, key: &str, max: usize) -> Result<String, ComponentError> {
        self.required(key, |v, field| str_field(v, field, max))
    }

    /// An optional id: a string, or a non-negative whole number stored as a string.
    pub(super) fn id(&self, key: &str) -> Result<Option<String>, ComponentError> {
        self.optional(key, id_field)
    }

    pub(super) fn req_id(&self, key: &str) -> Result<String, ComponentError> {
        self.required(key, id_field)
    }

    /// A required plain number or non-empty string (see [`text_or_number`]).
    pub(super) fn req_text_or_number(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Value, ComponentError> {
        let v = self.get(key).ok_or_else(|| self.missing(key))?;
        match text_or_number(v, &self.at(key), max)? {
            Value::String(s) => nonempty(s, &self.at(key)).map(Value::String),
            number => Ok(number),
        }
    }

    pub(super) fn url(&self, key: &str) -> Result<Option<String>, ComponentError> {
        let Some(s) = self.text(key, URL_MAX)? else {
            return Ok(None);
        };
        check_url(&s).map_err(|problem| err(self.at(key), problem))?;
        Ok(Some(s))
    }

    pub(super) fn flag(&self, key: &str) -> Result<Option<bool>, ComponentError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(self.at(key), "must be true or false")),
        }
    }

    /// An optional whole number in `min..=max`.
    pub(super) fn int(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ComponentError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ if max == u64::MAX => Err(err(
                self.at(key),
                format!("must be a whole number of at least {min}"),
            )),
            _ => Err(err(
                self.at(key),
                format!("must be a whole number from {min} to {max}"),
            )),
        }
    }

    /// An optional value from `options`, matched leniently (see the module docs).
    pub(super) fn choice(
        &self,
        key: &str,
        options: &'static [&'static str],
    ) -> Result<Option<&'static str>, ComponentError> {
        let Some(s) = self.text(key, NAME_MAX)? else {
            return Ok(None);
        };
        let c = canon(&s);
        match options.iter().copied().find(|o| *o == c) {
            Some(o) => Ok(Some(o)),
            None => Err(err(
                self.at(key),
                format!(
                    "must be one of: {} (got '{}')",
                    options.join(", "),
                    clip(&s)
                ),
            )),
        }
    }

    /// A list of tags from `allowed`, canonical and without duplicates.
    pub(super) fn tags(
        &self,
        key: &str,
        allowed: &'static [&'static str],
    ) -> Result<Vec<Value>, ComponentError> {
        let mut out: Vec<&'static str> = Vec::new();
        for (path, v) in self.array(key, STRINGS_MAX)?.unwrap_or_default() {
            let s = str_field(v, &path, NAME_MAX)?;
            let c = canon(&s);
            let Some(tag) = allowed.iter().copied().find(|t| *t == c) else {
                return Err(err(
                    path,
                    format!(
                        "unknown tag '{}' (expected one of: {})",
                        clip(&s),
                        allowed.join(", ")
                    ),
                ));
            };
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        Ok(out.into_iter().map(Value::from).collect())
    }

    /// An optional list of non-empty strings.
    pub(super) fn strings(
        &self,
        key: &str,
        max_items: usize,
        max_len: usize,
    ) -> Result<Option<Vec<Value>>, ComponentError> {
        let Some(items) = self.array(key, max_items)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(path, v)| {
                Ok(Value::String(nonempty(
                    str_field(v, &path, max_len)?,
                    &path,
                )?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional array of at most `max` entries, each with its path.
    pub(super) fn array(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Option<Vec<(String, &'a Value)>>, ComponentError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let field = self.at(key);
        let Value::Array(items) = v else {
            return Err(err(field, "must be an array"));
        };
        if items.len() > max {
            return Err(err(field, format!("must have at most {max} entries")));
        }
        Ok(Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{field}[{i}]"), v))
                .collect(),
        ))
    }

    /// An optional array of at most `max` objects with the declared `keys`, each read
    /// by `read` in order; the first refusal is returned.
    pub(super) fn objects<T>(
        &self,
        key: &str,
        max: usize,
        keys: &[&str],
        mut read: impl FnMut(Obj<'a>) -> Result<T, ComponentError>,
    ) -> Result<Option<Vec<T>>, ComponentError> {
        let Some(items) = self.array(key, max)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(path, v)| read(Obj::new(v, &path, keys)?))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub(super) fn money(
        &self,
        key: &str,
        cur: Currency,
        sign: Sign,
    ) -> Result<Option<i64>, ComponentError> {
        self.get(key)
            .map(|v| money_value(v, &self.at(key), cur, sign))
            .transpose()
    }

    pub(super) fn req_money(
        &self,
        key: &str,
        cur: Currency,
        sign: Sign,
    ) -> Result<i64, ComponentError> {
        self.money(key, cur, sign)?.ok_or_else(|| self.missing(key))
    }

    /// A non-negative amount that, when given, must equal `computed`; returns `computed`.
    pub(super) fn must_equal(
        &self,
        key: &str,
        computed: i64,
        what: &str,
        cur: Currency,
    ) -> Result<i64, ComponentError> {
        match self.money(key, cur, Sign::NonNegative)? {
            Some(given) if given != computed => Err(err(
                self.at(key),
                format!(
                    "must equal {what} = {} (got {})",
                    cur.format_minor(computed),
                    cur.format_minor(given)
                ),
            )),
            _ => Ok(computed),
        }
    }
}

/// A string field, trimmed, of at most `max` characters (possibly empty).
pub(super) fn str_field(v: &Value, field: &str, max: usize) -> Result<String, ComponentError> {
    let Value::String(s) = v else {
        return Err(err(field, "must be a string"));
    };
    let t = s.trim();
    if t.chars().count() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    Ok(t.to_string())
}

fn id_field(v: &Value, field: &str) -> Result<String, ComponentError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .ok_or_else(|| err(field, "must be a string or a non-negative whole number")),
        _ => str_field(v, field, ID_MAX),
    }
}

fn nonempty(s: String, field: &str) -> Result<String, ComponentError> {
    if s.is_empty() {
        Err(err(field, "must not be empty"))
    } else {
        Ok(s)
    }
}

/// A finite plain number, kept as written.
pub(super) fn plain_number(n: &Number, field: &str) -> Result<Number, ComponentError> {
    if n.as_f64().is_some_and(f64::is_finite) {
        Ok(n.clone())
    } else {
        Err(err(field, "must be a finite number"))
    }
}

/// A finite plain number kept as written, or a string trimmed to at most `max`
/// characters (possibly empty).
pub(super) fn text_or_number(v: &Value, field: &str, max: usize) -> Result<Value, ComponentError> {
    match v {
        Value::Number(n) => Ok(Value::Number(plain_number(n, field)?)),
        Value::String(_) => Ok(Value::String(str_field(v, field, max)?)),
        _ => Err(err(field, "must be a string or a number")),
    }
}

fn check_url(s: &str) -> Result<(), &'static str> {
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("must not contain spaces, backslashes or control characters");
    }
    let absolute = ["https://", "http://"].iter().any(|scheme| {
        s.len() > scheme.len()
            && s.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    if absolute || (s.starts_with('/') && !s.starts_with("//")) {
        Ok(())
    } else {
        Err("must start with https://, http:// or / (a path on this site)")
    }
}

/// camelCase to snake_case (`imageUrl` → `image_url`).
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Canonical spelling for matching enums and tags: lowercase, `-` and spaces as `_`.
fn canon(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Shortens user text quoted in an error.
pub(super) fn clip(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Builds a normalized object.
#[derive(Default)]
pub(super) struct Out(Map<String, Value>);

impl Out {
    pub(super) fn set(&mut self, key: &str, v: impl Into<Value>) {
        self.0.insert(key.to_string(), v.into());
    }

    pub(super) fn opt(&mut self, key: &str, v: Option<impl Into<Value>>) {
        if let Some(v) = v {
            self.set(key, v);
        }
    }

    pub(super) fn money(&mut self, key: &str, minor: i64, cur: Currency) {
        let mut m = Map::new();
        m.insert("minor".to_string(), Value::from(minor));
        m.insert("currency".to_string(), Value::from(cur.code()));
        self.set(key, Value::Object(m));
    }

    pub(super) fn opt_money(&mut self, key: &str, minor: Option<i64>, cur: Currency) {
        if let Some(minor) = minor {
            self.money(key, minor, cur);
        }
    }

    pub(super) fn done(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::display::tests::{R, ok, refused};
    use serde_json::{Value, json};

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "colour": "red"}),
        );
        assert_eq!(e.field, "data.colour");
        assert!(e.problem.starts_with("unknown field"), "{e}");
        let e = refused(
            R,
            "cart",
            json!({"lines": [{"name": "a", "quantity": 1, "unitPrice": 1}, {"name": "b", "quantity": 1, "unitPrice": 1, "note": "x"}]}),
        );
        assert_eq!(e.field, "data.lines[1].note");
        let e = refused(R, "message", json!("hello"));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data", "must be a JSON object")
        );
        let e = refused(R, "message", Value::Null);
        assert!(e.to_string().starts_with("data"), "{e}");
    }

    #[test]
    fn snake_case_spellings_are_accepted_and_normalized() {
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "image_url": "https://img.example/p.jpg", "item_id": 42}),
        );
        assert_eq!(v["imageUrl"], "https://img.example/p.jpg");
        assert_eq!(v["itemId"], "42");
        assert!(v.get("image_url").is_none());
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "imageUrl": "/static/p.jpg"}),
        );
        assert_eq!(v["imageUrl"], "/static/p.jpg");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "imageUrl": "/a", "image_url": "/a"}),
        );
        assert_eq!(e.field, "data.imageUrl");
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "image_url": "javascript:alert(1)"}),
        );
        assert_eq!(e.field, "data.image_url");
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            let e = refused(
                R,
                "dish_card",
                json!({"name": "x", "price": 1, "imageUrl": bad}),
            );
            assert_eq!(e.field, "data.imageUrl", "{bad}");
        }
        let v = ok(
            R,
            "order_status",
            json!({"order_id": "A-1", "status": "ready", "eta_minutes": 5}),
        );
        assert_eq!(
            v,
            json!({"orderId": "A-1", "status": "ready", "etaMinutes": 5})
        );
    }

    #[test]
    fn strings_are_trimmed_and_bounded() {
        let v = ok(
            R,
            "dish_card",
            json!({"name": "  Soup ", "price": 1, "description": "  "}),
        );
        assert_eq!(v["name"], "Soup");
        assert!(v.get("description").is_none());
        let e = refused(R, "dish_card", json!({"name": "   ", "price": 1}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.name", "must not be empty")
        );
        let e = refused(R, "dish_card", json!({"price": 1}));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("data.name", "is required")
        );
        let e = refused(R, "dish_card", json!({"name": "é".repeat(201), "price": 1}));
        assert_eq!(e.field, "data.name");
        ok(R, "dish_card", json!({"name": "é".repeat(200), "price": 1}));
        let e = refused(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "description": "d".repeat(2001)}),
        );
        assert_eq!(e.field, "data.description");
        let e = refused(R, "dish_card", json!({"name": 5, "price": 1}));
        assert_eq!(e.problem, "must be a string");
        let v = ok(
            R,
            "dish_card",
            json!({"name": "x", "price": 1, "description": null}),
        );
        assert!(v.get("description").is_none());
    }
}
