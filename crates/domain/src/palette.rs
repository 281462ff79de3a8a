//! Deriving a whole theme from a brand color and a few words, with no model: the
//! palette keeps the brand's hue, and every text/background pair is checked against
//! WCAG contrast so the result is readable whatever color comes in.

use crate::Theme;

/// Named colors a description may use instead of a hex code.
const NAMED: &[(&str, &str)] = &[
    ("burgundy", "#800020"),
    ("maroon", "#7b1e1e"),
    ("crimson", "#b3122e"),
    ("red", "#c62828"),
    ("terracotta", "#c65d3b"),
    ("orange", "#e46c0a"),
    ("amber", "#c98a00"),
    ("gold", "#b8860b"),
    ("yellow", "#c9a400"),
    ("olive", "#6b7a1e"),
    ("lime", "#5c9e1f"),
    ("forest", "#22663a"),
    ("green", "#2e7d32"),
    ("sage", "#6f8f72"),
    ("mint", "#3aa17e"),
    ("teal", "#00796b"),
    ("turquoise", "#138d90"),
    ("cyan", "#0e7c9b"),
    ("sky", "#2b7bb9"),
    ("blue", "#1f5fbf"),
    ("navy", "#0b2a5b"),
    ("indigo", "#3f3d9e"),
    ("violet", "#6a3fb5"),
    ("purple", "#6b2d8f"),
    ("plum", "#6e2a5e"),
    ("magenta", "#b0236f"),
    ("pink", "#c2407a"),
    ("rose", "#b23a55"),
    ("brown", "#6d4c41"),
    ("chocolate", "#5b3a29"),
    ("coffee", "#6f4e37"),
    ("charcoal", "#333a40"),
    ("slate", "#4a5a6a"),
    ("black", "#1d1d1f"),
    ("gray", "#5f6b73"),
    ("grey", "#5f6b73"),
];

#[derive(Debug, Clone, Copy, PartialEq)]
struct Hsl {
    h: f64,
    s: f64,
    l: f64,
}

fn parse_hex(s: &str) -> Option<(f64, f64, f64)> {
    let hex = s.strip_prefix('#')?;
    let full: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_string(),
        _ => return None,
    };
    let n = u32::from_str_radix(&full, 16).ok()?;
    let c = |shift: u32| f64::from((n >> shift) & 0xff) / 255.0;
    Some((c(16), c(8), c(0)))
}

fn to_hex((r, g, b): (f64, f64, f64)) -> String {
    // Clamped to 0..=255 before the cast, so it cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let c = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(r), c(g), c(b))
}

fn to_hsl((r, g, b): (f64, f64, f64)) -> Hsl {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let l = f64::midpoint(max, min);
    let d = max - min;
    if d.abs() < f64::EPSILON {
        return Hsl { h: 0.0, s: 0.0, l };
    }
    let s = d / (1.0 - (2.0 * l - 1.0).abs());
    let h = if (max - r).abs() < f64::EPSILON {
        60.0 * (((g - b) / d).rem_euclid(6.0))
    } else if (max - g).abs() < f64::EPSILON {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    Hsl { h, s, l }
}

fn from_hsl(c: Hsl) -> (f64, f64, f64) {
    let s = c.s.clamp(0.0, 1.0);
    let l = c.l.clamp(0.0, 1.0);
    let chroma = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = c.h.rem_euclid(360.0) / 60.0;
    let x = chroma * (1.0 - (hp.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match hp {
        h if h < 1.0 => (chroma, x, 0.0),
        h if h < 2.0 => (x, chroma, 0.0),
        h if h < 3.0 => (0.0, chroma, x),
        h if h < 4.0 => (0.0, x, chroma),
        h if h < 5.0 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = l - chroma / 2.0;
    (r + m, g + m, b + m)
}

fn luminance((r, g, b): (f64, f64, f64)) -> f64 {
    let lin = |c: f64| {
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// The WCAG contrast ratio of two hex colors (1.0 when either does not parse).
pub fn contrast(a: &str, b: &str) -> f64 {
    match (parse_hex(a), parse_hex(b)) {
        (Some(x), Some(y)) => {
            let (la, lb) = (luminance(x), luminance(y));
            (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
        }
        _ => 1.0,
    }
}

/// Darkens (or lightens) `c` until it reaches `ratio` against `against`.
fn with_contrast(mut c: Hsl, against: &str, ratio: f64, darken: bool) -> String {
    for _ in 0..100 {
        let hex = to_hex(from_hsl(c));
        if contrast(&hex, against) >= ratio {
            return hex;
        }
        c.l = if darken { c.l - 0.01 } else { c.l + 0.01 };
        if !(0.0..=1.0).contains(&c.l) {
            break;
        }
    }
    if darken {
        "#000000".into()
    } else {
        "#ffffff".into()
    }
}

/// The brand color a description names: a hex code, a color word, or (failing both) a
/// hue derived from the words themselves, so the same description always gives the
/// same theme.
pub fn brand_color(description: &str) -> String {
    let lower = description.to_lowercase();
    for word in lower.split(|c: char| c.is_whitespace() || ",;()".contains(c)) {
        if word.starts_with('#') && parse_hex(word).is_some() {
            return word.to_string();
        }
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for (name, hex) in NAMED {
        if words.contains(name) {
            return (*hex).to_string();
        }
    }
    let hash = lower.bytes().fold(2_166_136_261_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    });
    to_hex(from_hsl(Hsl {
        h: f64::from(hash % 360),
        s: 0.55,
        l: 0.38,
    }))
}

fn fonts(description: &str) -> (&'static str, &'static str) {
    let d = description.to_lowercase();
    let has = |ws: &[&str]| ws.iter().any(|w| d.contains(w));
    if has(&[
        "elegant",
        "fine dining",
        "classic",
        "trattoria",
        "bistro",
        "wine",
        "luxury",
    ]) {
        (
            "Georgia, 'Palatino Linotype', serif",
            "'Trebuchet MS', system-ui, sans-serif",
        )
    } else if has(&["playful", "fun", "kids", "candy", "bubble", "ice cream"]) {
        (
            "'Trebuchet MS', 'Comic Sans MS', sans-serif",
            "'Trebuchet MS', system-ui, sans-serif",
        )
    } else if has(&["bank", "finance", "advis", "wealth", "insurance", "law"]) {
        (
            "'Helvetica Neue', Arial, sans-serif",
            "'Helvetica Neue', Arial, sans-serif",
        )
    } else if has(&["rustic", "farm", "bakery", "coffee", "cafe"]) {
        (
            "Rockwell, 'Courier New', serif",
            "Verdana, system-ui, sans-serif",
        )
    } else {
        (
            "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "system-ui, -apple-system, 'Segoe UI', sans-serif",
        )
    }
}

/// A complete, valid theme from a description such as "a cosy trattoria in deep
/// burgundy" or "modern bank, #0b3d91". `list_layout` suits text-heavy desks.
pub fn theme_from_description(description: &str, list_layout: bool) -> Theme {
    let brand = brand_color(description);
    let base = to_hsl(parse_hex(&brand).unwrap_or((0.12, 0.44, 0.92)));
    let background = to_hex(from_hsl(Hsl {
        h: base.h,
        s: (base.s * 0.35).min(0.3),
        l: 0.97,
    }));
    let surface = "#ffffff".to_string();
    // Buttons put white text on the primary color: keep at least AA (4.5:1).
    let primary = with_contrast(base, "#ffffff", 4.5, true);
    let secondary = with_contrast(
        Hsl {
            h: base.h,
            s: (base.s * 0.6).min(0.5),
            l: 0.2,
        },
        "#ffffff",
        10.0,
        true,
    );
    let text = with_contrast(
        Hsl {
            h: base.h,
            s: 0.25,
            l: 0.15,
        },
        &background,
        12.0,
        true,
    );
    let muted = with_contrast(
        Hsl {
            h: base.h,
            s: 0.1,
            l: 0.45,
        },
        &background,
        4.5,
        true,
    );
    let accent = with_contrast(
        Hsl {
            h: base.h + 150.0,
            s: base.s.clamp(0.45, 0.75),
            l: 0.4,
        },
        &background,
        4.5,
        true,
    );
    let (font_heading, font_body) = fonts(description);
    let d = description.to_lowercase();
    let radius = if d.contains("sharp") || d.contains("bank") || d.contains("minimal") {
        4
    } else if d.contains("playful")
        || d.contains("soft")
        || d.contains("cosy")
        || d.contains("cozy")
    {
        20
    } else {
        12
    };
    Theme {
        primary,
        secondary,
        background,
        surface,
        text,
        muted,
        accent,
        font_heading: font_heading.into(),
        font_body: font_body.into(),
        radius,
        logo_url: None,
        layout: if list_layout { "list" } else { "grid" }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_colors_come_from_hex_names_or_the_words() {
        assert_eq!(brand_color("modern bank, #0B3D91 please"), "#0b3d91");
        assert_eq!(brand_color("a cosy trattoria in deep burgundy"), "#800020");
        let a = brand_color("Sunny Tacos");
        assert_eq!(a, brand_color("sunny tacos"), "deterministic");
        assert!(parse_hex(&a).is_some());
    }

    #[test]
    fn every_derived_theme_is_valid_and_readable() {
        for d in [
            "a cosy trattoria in deep burgundy",
            "modern bank #0b3d91",
            "playful ice cream parlour in pink",
            "yellow",
            "#ffffff minimal",
            "#000",
            "a sushi bar",
            "",
        ] {
            let t = theme_from_description(d, false);
            t.validate().unwrap_or_else(|e| panic!("{d}: {e}"));
            assert!(contrast(&t.text, &t.background) >= 12.0, "{d}: text");
            assert!(contrast(&t.muted, &t.background) >= 4.5, "{d}: muted");
            assert!(contrast(&t.primary, "#ffffff") >= 4.5, "{d}: primary");
            assert!(contrast(&t.accent, &t.background) >= 4.5, "{d}: accent");
            assert!(contrast("#ffffff", &t.secondary) >= 10.0, "{d}: header");
        }
    }

    #[test]
    fn hsl_round_trips() {
        for hex in ["#b3261e", "#0b3d91", "#2e7d32", "#777777"] {
            let back = to_hex(from_hsl(to_hsl(parse_hex(hex).unwrap())));
            assert_eq!(back, hex);
        }
    }
}
