//! JSON back to block-style YAML, for the documents a design edit rewrites
//! (`design::edit`). Written here, beside the reader, so that what is
//! written is checked against how it is read: [`emit_document`] parses its
//! own output again and refuses to return text that does not read back as
//! the value it was given (PyYAML's YAML 1.1 resolution included: `yes`,
//! `0755` or `1:20` are quoted when they are strings).
//!
//! Mapping keys keep the order of a layout hint (the document as it was
//! parsed) where they existed; keys the hint lacks follow, sorted. Comments
//! and quoting styles are not kept (the tree does not hold them).

use super::{resolve_plain, Node, Value};
use serde_json::Value as J;

/// The YAML text (block style, two-space indent, ending in a newline) of
/// the mapping `value`, keys ordered after `hint`. `Err` names why the text
/// would not read back as `value` (it never returns such a text).
pub fn emit_document(value: &J, hint: Option<&Node>) -> Result<String, String> {
    let J::Object(map) = value else {
        return Err("a design document is a mapping".into());
    };
    let mut out = String::new();
    if map.is_empty() {
        out.push_str("{}\n");
    } else {
        map_entries(&mut out, map, hint, 0, false);
    }
    let back = super::parse_stream(&out).map_err(|e| {
        format!(
            "the emitted YAML does not parse at line {}: {}",
            e.line, e.message
        )
    })?;
    let mut problems = Vec::new();
    let read = match back.into_iter().next() {
        Some(d) => d.root.into_json(&mut problems),
        None => J::Null,
    };
    if &read != value || !problems.is_empty() {
        return Err("the emitted YAML does not read back as the document".into());
    }
    Ok(out)
}

/// The entries of a hint mapping, by key.
fn hint_entry<'a>(hint: Option<&'a Node>, key: &str) -> Option<&'a Node> {
    hint.and_then(|h| h.get(key))
}

/// The keys of `map` in the hint's order, then the others (sorted).
fn ordered<'a>(map: &'a serde_json::Map<String, J>, hint: Option<&Node>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::with_capacity(map.len());
    if let Some(Value::Map(entries)) = hint.map(|h| &h.value) {
        for (k, _) in entries {
            if let Value::Str(s) = &k.value {
                if let Some((key, _)) = map.get_key_value(s.as_str()) {
                    if !keys.contains(&key.as_str()) {
                        keys.push(key.as_str());
                    }
                }
            }
        }
    }
    for k in map.keys() {
        if !keys.contains(&k.as_str()) {
            keys.push(k.as_str());
        }
    }
    keys
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a mapping's entries at `ind`; the first entry's indent is already
/// written when `first_inline` (a mapping inside a sequence item).
fn map_entries(
    out: &mut String,
    map: &serde_json::Map<String, J>,
    hint: Option<&Node>,
    ind: usize,
    first_inline: bool,
) {
    for (i, key) in ordered(map, hint).into_iter().enumerate() {
        if !(first_inline && i == 0) {
            indent(out, ind);
        }
        out.push_str(&scalar_str(key));
        out.push(':');
        let v = &map[key];
        let h = hint_entry(hint, key);
        match v {
            J::Object(m) if !m.is_empty() => {
                out.push('\n');
                map_entries(out, m, h, ind + 2, false);
            }
            J::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq_items(out, a, h, ind + 2);
            }
            _ => {
                out.push(' ');
                out.push_str(&inline(v));
                out.push('\n');
            }
        }
    }
}

fn seq_items(out: &mut String, items: &[J], hint: Option<&Node>, ind: usize) {
    let hints: &[Node] = match hint.map(|h| &h.value) {
        Some(Value::Seq(s)) => s,
        _ => &[],
    };
    for (i, v) in items.iter().enumerate() {
        indent(out, ind);
        out.push('-');
        let h = hints.get(i);
        match v {
            J::Object(m) if !m.is_empty() => {
                out.push(' ');
                map_entries(out, m, h, ind + 2, true);
            }
            J::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq_items(out, a, h, ind + 2);
            }
            _ => {
                out.push(' ');
                out.push_str(&inline(v));
                out.push('\n');
            }
        }
    }
}

/// A scalar or an empty collection on one line.
fn inline(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => number(n),
        J::String(s) => scalar_str(s),
        J::Array(_) => "[]".into(),
        J::Object(_) => "{}".into(),
    }
}

/// A JSON number as YAML 1.1 reads it back: a float always has a `.`, and
/// an exponent a sign (PyYAML reads `1e5` as a string).
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    if f == 0.0 || (1e-4..1e15).contains(&f.abs()) {
        // Debug writes the shortest form that reads back, with a `.`.
        return format!("{f:?}");
    }
    let text = format!("{f:e}");
    // `{:e}` writes `1.5e3`, `1e-7`: make the mantissa hold a dot and the
    // exponent a sign.
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    let exp = if exp.starts_with('-') {
        exp.to_string()
    } else {
        format!("+{exp}")
    };
    format!("{mantissa}e{exp}")
}

/// A string: plain when PyYAML reads it back as that very string, else
/// single-quoted, else (control characters, line breaks) double-quoted.
fn scalar_str(s: &str) -> String {
    if plain_ok(s) {
        return s.to_string();
    }
    if !s.chars().any(needs_escape) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters a quoted scalar cannot hold as they are: controls, and what
/// YAML 1.1 reads as a line break or a byte-order mark.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || matches!(first, '/' | '.' | '_')) {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '.' | '_' | '/' | ':' | '=' | '@' | '+' | '-' | ',')
    }) {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    resolve_plain(s.to_string()) == Value::Str(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_yaml_1_1_reads_otherwise_are_quoted() {
        let v = json!({"a": "yes", "b": "0755", "c": "1:20", "d": "02:bd:50:00:00:01",
            "e": "", "f": "it's", "g": "two\nlines", "h": "- x", "i": "null", "j": "a: b",
            "k": 1.5, "l": 1e20, "m": -3, "n": true, "o": null, "p": [], "q": {}, "r": "#x",
            "s": "10.0.0.1", "t": "~", "u": " lead"});
        let text = emit_document(&v, None).unwrap();
        assert!(text.contains("a: 'yes'\n"), "{text}");
        assert!(text.contains("b: '0755'\n"), "{text}");
        assert!(text.contains("s: 10.0.0.1\n"), "{text}");
    }

    #[test]
    fn nested_collections_read_back_and_keep_the_hint_order() {
        let hint =
            super::super::parse_stream("schema: x\nmetadata:\n  name: n\ndata:\n  z: 1\n  a: 2\n")
                .unwrap()
                .remove(0)
                .root;
        let v = json!({"data": {"a": 3, "z": [{"k": 1, "j": [1, [2, 3]]}, []], "new": {"x": "y"}},
            "metadata": {"name": "n"}, "schema": "x"});
        let text = emit_document(&v, Some(&hint)).unwrap();
        assert!(
            text.starts_with("schema: x\nmetadata:\n  name: n\ndata:\n  z:\n"),
            "{text}"
        );
        assert!(text.contains("\n  a: 3\n"), "{text}");
    }

    mod props {
        use super::super::emit_document;
        use proptest::prelude::*;
        use serde_json::Value as J;

        /// Strings YAML 1.1 is tricky about, and any strings.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "yes",
                    "No",
                    "on",
                    "OFF",
                    "~",
                    "null",
                    "0755",
                    "0x1f",
                    "1:20",
                    "1_000",
                    ".inf",
                    "-.NaN",
                    "1e5",
                    "1.5",
                    "-",
                    "- a",
                    "? x",
                    ": y",
                    "a: b",
                    "a #b",
                    "#c",
                    "'q'",
                    "\"d\"",
                    "*alias",
                    "&anchor",
                    "!tag",
                    "%dir",
                    "@at",
                    "`bt",
                    "|",
                    ">",
                    "[",
                    "]",
                    "{",
                    "}",
                    ",",
                    "<<",
                    "---",
                    "...",
                    " lead",
                    "trail ",
                    "tab\tin",
                    "line\nbreak",
                    "\u{85}nel",
                    "\u{2028}ls",
                    "\u{feff}bom",
                    "02:bd:50:00:00:01",
                    "52:54:00:12:34:56",
                    "10.0.0.1",
                    "",
                    "=",
                    "2001:db8::1",
                ])
                .prop_map(str::to_string),
                any::<String>(),
            ]
        }

        fn value() -> impl Strategy<Value = J> {
            let leaf = prop_oneof![
                Just(J::Null),
                any::<bool>().prop_map(J::Bool),
                any::<i64>().prop_map(J::from),
                (-1e12f64..1e12).prop_map(J::from),
                text().prop_map(J::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
                    prop::collection::btree_map(text(), inner, 0..5)
                        .prop_map(|m| J::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
            #[test]
            fn every_json_document_is_written_so_that_it_reads_back(
                m in prop::collection::btree_map(text(), value(), 0..6)
            ) {
                let v = J::Object(m.into_iter().collect());
                // emit_document checks the read-back itself: Ok means it read back equal.
                prop_assert!(emit_document(&v, None).is_ok(), "{:?}", emit_document(&v, None));
            }
        }
    }
}
