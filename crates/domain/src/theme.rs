//! A tenant's visual theme, rendered as CSS custom properties on display pages.

use serde::{Deserialize, Serialize};

/// Colors, fonts, radius, logo and layout of a tenant's pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Theme {
    pub primary: String,
    pub secondary: String,
    pub background: String,
    pub surface: String,
    pub text: String,
    pub muted: String,
    pub accent: String,
    pub font_heading: String,
    pub font_body: String,
    /// Corner radius in pixels.
    pub radius: u16,
    pub logo_url: Option<String>,
    /// `grid` or `list`.
    pub layout: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            primary: "#1f6feb".into(),
            secondary: "#0d1117".into(),
            background: "#f6f8fa".into(),
            surface: "#ffffff".into(),
            text: "#1f2328".into(),
            muted: "#59636e".into(),
            accent: "#bf8700".into(),
            font_heading: "Georgia, 'Times New Roman', serif".into(),
            font_body: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif".into(),
            radius: 12,
            logo_url: None,
            layout: "grid".into(),
        }
    }
}

/// Why a theme was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("theme field '{field}': {problem}")]
pub struct ThemeError {
    pub field: &'static str,
    pub problem: String,
}

fn is_color(s: &str) -> bool {
    let hex = s.strip_prefix('#').unwrap_or("");
    matches!(hex.len(), 3 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_safe_font(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ,'-_".contains(c))
}

impl Theme {
    /// Checks every field so the theme can be placed into CSS without escaping tricks.
    pub fn validate(&self) -> Result<(), ThemeError> {
        let colors = [
            ("primary", &self.primary),
            ("secondary", &self.secondary),
            ("background", &self.background),
            ("surface", &self.surface),
            ("text", &self.text),
            ("muted", &self.muted),
            ("accent", &self.accent),
        ];
        for (field, value) in colors {
            if !is_color(value) {
                return Err(ThemeError {
                    field,
                    problem: format!("'{value}' is not a hex color like #1f6feb"),
                });
            }
        }
        for (field, value) in [
            ("fontHeading", &self.font_heading),
            ("fontBody", &self.font_body),
        ] {
            if !is_safe_font(value) {
                return Err(ThemeError {
                    field,
                    problem:
                        "must be a font list of letters, digits, spaces, commas, quotes and dashes"
                            .into(),
                });
            }
        }
        if self.radius > 64 {
            return Err(ThemeError {
                field: "radius",
                problem: "must be between 0 and 64".into(),
            });
        }
        if let Some(url) = &self.logo_url {
            let ok = (url.starts_with("https://") || url.starts_with('/'))
                && url.len() <= 2048
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || "\"'<>()\\".contains(c));
            if !ok {
                return Err(ThemeError {
                    field: "logoUrl",
                    problem: "must be an https:// or site-relative URL without quotes".into(),
                });
            }
        }
        if !matches!(self.layout.as_str(), "grid" | "list") {
            return Err(ThemeError {
                field: "layout",
                problem: "must be 'grid' or 'list'".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_theme_is_valid() {
        assert_eq!(Theme::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_css_injection() {
        let t = Theme {
            primary: "red;}body{display:none".into(),
            ..Theme::default()
        };
        assert_eq!(t.validate().map_err(|e| e.field), Err("primary"));
        let t = Theme {
            logo_url: Some("javascript:alert(1)".into()),
            ..Theme::default()
        };
        assert_eq!(t.validate().map_err(|e| e.field), Err("logoUrl"));
    }
}
