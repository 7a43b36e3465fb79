//! YAML streams to a tree that remembers where each node came from.
//!
//! The only user of `yaml-rust2`. Plain scalars are resolved the way PyYAML's
//! YAML 1.1 resolver does it (`yes`/`on` are booleans, `0755` is octal,
//! `52:54:00:12:34:56` is a base-60 integer), because Drydock — whose verdicts
//! operators compare ours with — reads designs with PyYAML.

mod emit;
mod fast;

pub use emit::emit_document;

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML node and the 1-based line and column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: u32,
    pub col: u32,
}

/// The value of a node after tag resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are kept (see [`Node::to_json`]).
    Map(Vec<(Node, Node)>),
}

/// One document of a stream.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    /// 1-based line of the document's first line (its `---`, or its first token).
    pub line: u32,
    pub root: Node,
}

/// Why a parse stopped: bad syntax, or input past one of the parser's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not well-formed YAML (SW101).
    Syntax,
    /// Collections nested deeper than [`MAX_DEPTH`] (SW115).
    TooDeep,
    /// Aliases repeating more than the document's alias budget (SW116).
    AliasBudget,
    /// A merge key (`<<`) whose value is not a mapping or a list of mappings (SW117).
    Merge,
}

/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub kind: ErrorKind,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// A mapping key that JSON cannot represent, or a key given twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    NotAString { line: u32, key: String },
    Duplicate { line: u32, key: String },
}

/// Deepest nesting of collections accepted (an alias counts with what it
/// repeats). Real designs nest fewer than 15 levels; deeper input is refused
/// before it can exhaust a thread's stack (parsing, dropping and converting a
/// tree all recurse). Below yaml-rust2's own limit of 255 flow levels, so one
/// rule and one message cover block and flow nesting.
pub const MAX_DEPTH: usize = 200;

/// What an alias may add to a document, at least: 1 MiB of tree.
pub const ALIAS_BUDGET_MIN: usize = 1 << 20;

/// What an alias may add to a document, as a multiple of the document's text:
/// a "billion laughs" or one large anchor aliased many times is refused once
/// its copies would outweigh the text this many times.
pub const ALIAS_BUDGET_RATIO: usize = 8;

/// The weight of one node in an alias budget, besides its scalar's bytes
/// (about the size of a [`Node`], so the budget tracks memory).
pub const NODE_WEIGHT: usize = 64;

/// The alias budget of a text of `len` bytes (see [`ALIAS_BUDGET_RATIO`]).
pub fn alias_budget(len: usize) -> usize {
    ALIAS_BUDGET_MIN.max(len.saturating_mul(ALIAS_BUDGET_RATIO))
}

/// Parses a multi-document stream. Documents before a syntax error are not
/// returned: a file is used whole or not at all.
pub fn parse_stream(text: &str) -> Result<Vec<YamlDocument>, SyntaxError> {
    parse_stream_at(text, 0)
}

/// Like [`parse_stream`], for text that starts after `line_offset` lines of its file.
pub fn parse_stream_at(text: &str, line_offset: u32) -> Result<Vec<YamlDocument>, SyntaxError> {
    check_printable(text, line_offset)?;
    match fast::parse(text, line_offset) {
        fast::Outcome::Parsed(docs) => Ok(docs),
        fast::Outcome::TooDeep(e) => Err(e),
        fast::Outcome::Declined => general(text, line_offset),
    }
}

/// Refuses the characters YAML does not allow in a stream, as PyYAML's reader
/// does ("unacceptable character"): yaml-rust2 would read a NUL as the end of
/// the stream and silently drop every document after it.
pub fn check_printable(text: &str, line_offset: u32) -> Result<(), SyntaxError> {
    let b = text.as_bytes();
    // Plain printable ASCII, the common case, in one vectorisable pass.
    if b.iter()
        .all(|&c| (0x20..0x7f).contains(&c) || matches!(c, b'\n' | b'\t' | b'\r'))
    {
        return Ok(());
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let bad = if c < 0x80 {
            (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            let bad =
                matches!(ch, '\u{80}'..='\u{84}' | '\u{86}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}');
            if !bad {
                i += ch.len_utf8();
                continue;
            }
            true
        };
        if bad {
            let before = &text[..i];
            let line = before.bytes().filter(|x| *x == b'\n').count() as u32 + 1 + line_offset;
            let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            return Err(SyntaxError {
                kind: ErrorKind::Syntax,
                line,
                col,
                message: format!(
                    "unacceptable character #x{:04x}: special characters are not allowed in YAML (expected printable text; quote it as an escape such as \"\\x{:02x}\" in a double-quoted string)",
                    ch as u32,
                    ch as u32 & 0xff
                ),
            });
        }
        i += 1;
    }
    Ok(())
}

/// The general YAML parser (`yaml-rust2`), for everything the fast path declines.
///
/// Events are pulled one at a time (not through `Parser::load`, which
/// recurses once per nesting level), so a limit stops the parse at the first
/// event past it: deep or expanding input costs neither stack nor memory.
pub fn parse_general(text: &str, line_offset: u32) -> Result<Vec<YamlDocument>, SyntaxError> {
    check_printable(text, line_offset)?;
    general(text, line_offset)
}

/// [`parse_general`] on text already checked by [`check_printable`].
fn general(text: &str, line_offset: u32) -> Result<Vec<YamlDocument>, SyntaxError> {
    let mut builder = Builder {
        line_offset,
        budget: alias_budget(text.len()),
        budget_total: alias_budget(text.len()),
        ..Builder::default()
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => builder.on_event(ev, mark)?,
            Err(e) => {
                let m = e.marker();
                let (line, col) = (m.line() as u32 + line_offset, m.col() as u32 + 1);
                // yaml-rust2 counts flow levels in a byte and looks ahead
                // through a flow collection: past 255 is our depth problem.
                if e.info() == "recursion limit exceeded" {
                    return Err(too_deep(line, col));
                }
                return Err(SyntaxError {
                    kind: ErrorKind::Syntax,
                    line,
                    col,
                    message: e.info().to_string(),
                });
            }
        }
    }
    Ok(builder.docs)
}

/// The error for a collection opened past [`MAX_DEPTH`].
pub(crate) fn too_deep(line: u32, col: u32) -> SyntaxError {
    SyntaxError {
        kind: ErrorKind::TooDeep,
        line,
        col,
        message: format!(
            "mappings and lists nested more than {MAX_DEPTH} levels deep; expected at most {MAX_DEPTH}"
        ),
    }
}

/// A node under construction with what the limits need to know of it.
struct Built {
    node: Node,
    /// Its weight in the alias budget (see [`NODE_WEIGHT`]).
    weight: usize,
    /// Levels of collections in it, its own included (a scalar: 0).
    height: usize,
}

/// An open collection.
struct Open {
    built: Built,
    /// For a mapping: the key waiting for its value, and whether it is a merge key.
    pending_key: Option<(Node, bool)>,
    /// Indices (into the mapping's entries) of the `<<` entries.
    merges: Vec<usize>,
    anchor: usize,
}

#[derive(Default)]
struct Builder {
    docs: Vec<YamlDocument>,
    doc_line: u32,
    stack: Vec<Open>,
    /// Anchored nodes, with their weight and height.
    anchors: HashMap<usize, (Node, usize, usize)>,
    line_offset: u32,
    /// What aliases (and the copies anchors keep) may still add to the text.
    budget: usize,
    /// The whole budget, for the message.
    budget_total: usize,
}

impl Builder {
    fn error(&self, kind: ErrorKind, line: u32, col: u32, message: String) -> SyntaxError {
        SyntaxError {
            kind,
            line,
            col,
            message,
        }
    }

    /// Spends `weight` of the alias budget for a copy made at `line`/`col`.
    fn spend(&mut self, weight: usize, line: u32, col: u32) -> Result<(), SyntaxError> {
        if weight > self.budget {
            return Err(self.error(
                ErrorKind::AliasBudget,
                line,
                col,
                format!(
                    "aliases here repeat more than {} bytes of tree; expected at most {ALIAS_BUDGET_RATIO} times the document's size (at least {} MiB)",
                    self.budget_total,
                    ALIAS_BUDGET_MIN >> 20
                ),
            ));
        }
        self.budget -= weight;
        Ok(())
    }

    fn push_value(
        &mut self,
        b: Built,
        anchor: usize,
        is_merge_key: bool,
    ) -> Result<(), SyntaxError> {
        if anchor > 0 {
            // The anchor keeps a copy for its aliases: that copy is memory too.
            self.spend(b.weight, b.node.line, b.node.col)?;
            self.anchors
                .insert(anchor, (b.node.clone(), b.weight, b.height));
        }
        match self.stack.last_mut() {
            None => self.docs.push(YamlDocument {
                line: self.doc_line,
                root: b.node,
            }),
            Some(open) => {
                open.built.weight = open.built.weight.saturating_add(b.weight);
                open.built.height = open.built.height.max(b.height + 1);
                match &mut open.built.node.value {
                    Value::Seq(items) => items.push(b.node),
                    Value::Map(entries) => match open.pending_key.take() {
                        None => open.pending_key = Some((b.node, is_merge_key)),
                        Some((key, merge)) => {
                            if merge {
                                open.merges.push(entries.len());
                            }
                            entries.push((key, b.node));
                        }
                    },
                    _ => unreachable!("only collections are pushed on the stack"),
                }
            }
        }
        Ok(())
    }

    /// True when the next scalar is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Open {
                built: Built {
                    node: Node {
                        value: Value::Map(_),
                        ..
                    },
                    ..
                },
                pending_key: None,
                ..
            })
        )
    }

    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), SyntaxError> {
        let line = mark.line() as u32 + self.line_offset;
        let col = mark.col() as u32 + 1;
        match ev {
            Event::DocumentStart => {
                self.doc_line = line;
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain;
                // PyYAML refuses a `: value` line with no key; so do we.
                if text.is_empty() && plain && tag.is_none() && self.expecting_key() {
                    return Err(self.error(
                        ErrorKind::Syntax,
                        line,
                        col,
                        "expected a key before ':' (a mapping value with no key)".into(),
                    ));
                }
                let yaml_tag = tag
                    .as_ref()
                    .filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!")
                    .map(|t| t.suffix.as_str());
                // PyYAML's merge key: a plain `<<`, or one tagged `!!merge`.
                let is_merge_key = self.expecting_key()
                    && ((plain && tag.is_none() && text == "<<") || yaml_tag == Some("merge"));
                let value = if plain && tag.is_none() {
                    resolve_plain(text)
                } else {
                    match yaml_tag {
                        Some(suffix) => resolve_tagged(suffix, text),
                        None => Value::Str(text),
                    }
                };
                let weight = NODE_WEIGHT + scalar_len(&value);
                let built = Built {
                    node: Node { value, line, col },
                    weight,
                    height: 0,
                };
                self.push_value(built, anchor, is_merge_key)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(too_deep(line, col));
                }
                let value = if matches!(ev, Event::SequenceStart(..)) {
                    Value::Seq(Vec::new())
                } else {
                    Value::Map(Vec::new())
                };
                self.stack.push(Open {
                    built: Built {
                        node: Node { value, line, col },
                        weight: NODE_WEIGHT,
                        height: 1,
                    },
                    pending_key: None,
                    merges: Vec::new(),
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(open) = self.stack.pop() {
                    let mut built = open.built;
                    if !open.merges.is_empty() {
                        merge_keys(&mut built.node, &open.merges)?;
                    }
                    self.push_value(built, open.anchor, false)?;
                }
            }
            Event::Alias(id) => {
                let Some(&(_, weight, height)) = self.anchors.get(&id) else {
                    return Err(self.error(
                        ErrorKind::Syntax,
                        line,
                        col,
                        "alias to an unknown anchor".into(),
                    ));
                };
                if height > 0 && self.stack.len() + height > MAX_DEPTH {
                    return Err(too_deep(line, col));
                }
                // Checked before the copy is made: a refused alias costs nothing.
                self.spend(weight, line, col)?;
                let mut node = self.anchors[&id].0.clone();
                node.line = line;
                node.col = col;
                let built = Built {
                    node,
                    weight,
                    height,
                };
                self.push_value(built, 0, false)?;
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }
}

/// The bytes of a scalar's text (0 for collections).
fn scalar_len(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        _ => 0,
    }
}

/// Resolves the merge keys (`<<`) of a mapping the way PyYAML's
/// `flatten_mapping` does: the merged entries come first and the mapping's own
/// keys win over them; of a list of mappings, an earlier one wins over a later
/// one; of two `<<` keys, the later wins. Entries a winner hides are dropped,
/// so they are not reported as duplicate keys.
fn merge_keys(map: &mut Node, merges: &[usize]) -> Result<(), SyntaxError> {
    let Value::Map(entries) = &mut map.value else {
        return Ok(());
    };
    let mut merged: Vec<(Node, Node)> = Vec::new();
    let mut own: Vec<(Node, Node)> = Vec::new();
    // `merges` is in ascending order: one pass, even with thousands of `<<`.
    let mut next_merge = merges.iter().copied().peekable();
    for (i, (k, v)) in std::mem::take(entries).into_iter().enumerate() {
        if next_merge.peek() != Some(&i) {
            own.push((k, v));
            continue;
        }
        next_merge.next();
        match v.value {
            // Its own merge keys were resolved when it ended.
            Value::Map(e) => merged.extend(e),
            Value::Seq(items) => {
                let mut maps = Vec::with_capacity(items.len());
                for item in items {
                    match item.value {
                        Value::Map(e) => maps.push(e),
                        other => {
                            return Err(merge_error(&other, item.line, item.col, true));
                        }
                    }
                }
                for e in maps.into_iter().rev() {
                    merged.extend(e);
                }
            }
            other => return Err(merge_error(&other, v.line, v.col, false)),
        }
    }
    // Later entries win: keep a merged entry only if no later merged entry
    // and no own entry has its key.
    let mut seen: std::collections::HashSet<String> =
        own.iter().map(|(k, _)| key_text(k)).collect();
    let mut kept: Vec<(Node, Node)> = Vec::with_capacity(merged.len() + own.len());
    for (k, v) in merged.into_iter().rev() {
        if seen.insert(key_text(&k)) {
            kept.push((k, v));
        }
    }
    kept.reverse();
    kept.extend(own);
    *entries = kept;
    Ok(())
}

fn merge_error(found: &Value, line: u32, col: u32, in_list: bool) -> SyntaxError {
    let what = match found {
        Value::Seq(_) => "a sequence",
        Value::Map(_) => "a mapping",
        _ => "a scalar",
    };
    let expected = if in_list {
        "a mapping in the list of a merge key (<<)"
    } else {
        "a mapping or a list of mappings as the value of a merge key (<<)"
    };
    SyntaxError {
        kind: ErrorKind::Merge,
        line,
        col,
        message: format!("expected {expected}, found {what}"),
    }
}

fn resolve_tagged(suffix: &str, text: String) -> Value {
    match suffix {
        "str" => Value::Str(text),
        "null" => Value::Null,
        "bool" | "int" | "float" => match resolve_plain(text.clone()) {
            v @ (Value::Bool(_) | Value::Int(_) | Value::Float(_)) => v,
            _ => Value::Str(text),
        },
        _ => Value::Str(text),
    }
}

/// PyYAML's implicit resolvers (YAML 1.1) for a plain scalar.
pub fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if let Some(v) = resolve_int(&text) {
        return v;
    }
    if let Some(f) = resolve_float(&text) {
        return Value::Float(f);
    }
    Value::Str(text)
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn int_value(neg: bool, digits: &str, radix: u32) -> Option<Value> {
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return Some(Value::Int(0));
    }
    match i128::from_str_radix(&clean, radix) {
        Ok(v) => {
            let v = if neg { -v } else { v };
            Some(match i64::try_from(v) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(v as f64),
            })
        }
        // Longer than i128: still a number to PyYAML.
        Err(_) => Some(Value::Float(f64::INFINITY)),
    }
}

fn resolve_int(text: &str) -> Option<Value> {
    let (neg, body) = split_sign(text);
    let b = body.as_bytes();
    if b.is_empty() {
        return None;
    }
    let all = |s: &str, f: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| f(c) || c == '_');
    if let Some(rest) = body.strip_prefix("0b") {
        return all(rest, |c| c == '0' || c == '1').then(|| int_value(neg, rest, 2))?;
    }
    if let Some(rest) = body.strip_prefix("0x") {
        return all(rest, |c| c.is_ascii_hexdigit()).then(|| int_value(neg, rest, 16))?;
    }
    if body == "0" {
        return Some(Value::Int(0));
    }
    if b[0] == b'0' {
        return all(&body[1..], |c| ('0'..='7').contains(&c))
            .then(|| int_value(neg, &body[1..], 8))?;
    }
    if b[0].is_ascii_digit() && all(body, |c| c.is_ascii_digit()) {
        return int_value(neg, body, 10);
    }
    // Base 60: [1-9][0-9_]*(:[0-5]?[0-9])+
    if b[0] != b'0' && b[0].is_ascii_digit() && body.contains(':') {
        let mut parts = body.split(':');
        let head = parts.next()?;
        if !all(head, |c| c.is_ascii_digit()) {
            return None;
        }
        let mut acc: i128 = head.replace('_', "").parse().ok()?;
        for p in parts {
            let pb = p.as_bytes();
            let ok = match pb.len() {
                1 => pb[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&pb[0]) && pb[1].is_ascii_digit(),
                _ => false,
            };
            if !ok {
                return None;
            }
            acc = acc.checked_mul(60)?.checked_add(p.parse::<i128>().ok()?)?;
        }
        let acc = if neg { -acc } else { acc };
        return Some(match i64::try_from(acc) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(acc as f64),
        });
    }
    None
}

/// PyYAML's float resolver:
/// `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` | `\.[0-9_]+([eE][-+][0-9]+)?`
/// (no sign) | `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*` (base 60) | `[-+]?\.inf` | `\.nan`.
fn resolve_float(text: &str) -> Option<f64> {
    let (neg, body) = split_sign(text);
    let signed = body.len() != text.len();
    let sign = if neg { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    if body.contains(':') {
        return sexagesimal_float(body).map(|f| sign * f);
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let dot = mantissa.find('.')?;
    let (int_part, frac) = (&mantissa[..dot], &mantissa[dot + 1..]);
    let digits_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !digits_ok(int_part) || !digits_ok(frac) {
        return None;
    }
    if int_part.is_empty() {
        // `.5` is a float, `-.5` is not (the second form takes no sign), and
        // `._` has no digit at all (PyYAML fails on it).
        if signed || !frac.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
    } else if !int_part.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Some(e) = exp {
        let eb = e.as_bytes();
        if eb.len() < 2
            || !(eb[0] == b'-' || eb[0] == b'+')
            || !e[1..].chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let clean = if clean.starts_with('.') {
        format!("0{clean}")
    } else {
        clean
    };
    clean.parse::<f64>().ok().map(|f| sign * f)
}

/// A base-60 float (`1:30.5` is 90.5), unsigned: `[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`,
/// valued as PyYAML values it (underscores dropped, each part a float).
fn sexagesimal_float(body: &str) -> Option<f64> {
    let parts: Vec<&str> = body.split(':').collect();
    let (head, rest) = parts.split_first()?;
    let (last, middle) = rest.split_last()?;
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit() || c == '_');
    let sixty = |s: &str| {
        let b = s.as_bytes();
        match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
            _ => false,
        }
    };
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !digits(head) {
        return None;
    }
    if !middle.iter().all(|p| sixty(p)) {
        return None;
    }
    let (whole, frac) = last.split_once('.')?;
    if !sixty(whole) || !digits(frac) {
        return None;
    }
    let mut value = 0.0;
    let mut base = 1.0;
    for p in parts.iter().rev() {
        let p: String = p.chars().filter(|c| *c != '_').collect();
        value += p.parse::<f64>().ok()? * base;
        base *= 60.0;
    }
    Some(value)
}

impl Node {
    /// The value at a mapping key, if this node is a mapping holding it (last one wins).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of this node, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The line of the node a JSON pointer (RFC 6901) names, or of its deepest
    /// existing ancestor. For a mapping entry, the line of its key.
    pub fn line_of_pointer(&self, pointer: &str) -> u32 {
        let mut node = self;
        let mut line = self.line;
        for raw in pointer.split('/').skip(1) {
            let token = raw.replace("~1", "/").replace("~0", "~");
            let next = match &node.value {
                Value::Map(entries) => entries
                    .iter()
                    .rev()
                    .find(|(k, _)| key_text(k) == token)
                    .map(|(k, v)| (k.line, v)),
                Value::Seq(items) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (v.line, v)),
                _ => None,
            };
            match next {
                Some((l, n)) => {
                    line = l;
                    node = n;
                }
                None => break,
            }
        }
        line
    }

    /// Converts to JSON, collecting keys JSON cannot hold faithfully.
    pub fn to_json(&self, problems: &mut Vec<KeyProblem>) -> serde_json::Value {
        self.clone().into_json(problems)
    }

    /// Converts to JSON, moving the strings out of the tree.
    pub fn into_json(self, problems: &mut Vec<KeyProblem>) -> serde_json::Value {
        use serde_json::Value as J;
        match self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(i) => J::from(i),
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map(J::Number)
                // NaN and infinities have no JSON form; keep their YAML spelling.
                .unwrap_or_else(|| J::String(format!("{f}"))),
            Value::Str(s) => J::String(s),
            Value::Seq(items) => {
                J::Array(items.into_iter().map(|n| n.into_json(problems)).collect())
            }
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let line = k.line;
                    let is_str = matches!(k.value, Value::Str(_));
                    let key = match k.value {
                        Value::Str(s) => s,
                        _ => key_text(&k),
                    };
                    if !is_str {
                        problems.push(KeyProblem::NotAString {
                            line,
                            key: key.clone(),
                        });
                    }
                    let value = v.into_json(problems);
                    if map.contains_key(&key) {
                        problems.push(KeyProblem::Duplicate {
                            line,
                            key: key.clone(),
                        });
                    }
                    map.insert(key, value);
                }
                J::Object(map)
            }
        }
    }
}

/// The text a key is known by in JSON and in messages.
fn key_text(k: &Node) -> String {
    match &k.value {
        Value::Str(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => "<collection>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values and key lines, the parts of a tree the rest of slipway reads.
    fn shape(n: &Node, out: &mut Vec<String>) {
        match &n.value {
            Value::Map(entries) => {
                out.push("{".into());
                for (k, v) in entries {
                    out.push(format!("{:?}@{}", k.value, k.line));
                    shape(v, out);
                }
                out.push("}".into());
            }
            Value::Seq(items) => {
                out.push(format!("[@{}", n.line));
                items.iter().for_each(|i| shape(i, out));
                out.push("]".into());
            }
            // Block scalars: the general parser marks the first content line,
            // the fast path the header line; both are fine in a message (and
            // mapping values are located by their key's line).
            Value::Str(s) => out.push(format!("{s:?}")),
            // An empty value: the general parser marks where the next token starts.
            Value::Null => out.push("Null".into()),
            v => out.push(format!("{v:?}@{}", n.line)),
        }
    }

    fn doc_shapes(docs: &[YamlDocument]) -> Vec<String> {
        let mut out = Vec::new();
        for d in docs {
            out.push(format!("doc@{}", d.line));
            shape(&d.root, &mut out);
        }
        out
    }

    /// Asserts the fast path, when it accepts `text`, agrees with the general parser.
    pub(crate) fn assert_same(name: &str, text: &str) -> bool {
        // Text with a forbidden character never reaches the fast path.
        if check_printable(text, 0).is_err() {
            return false;
        }
        let Some(fast) = fast::parse(text, 0).parsed() else {
            return false;
        };
        let general = parse_general(text, 0)
            .unwrap_or_else(|e| panic!("{name}: fast path accepted invalid YAML: {e:?}"));
        let (a, b) = (doc_shapes(&fast), doc_shapes(&general));
        if a != b {
            let i = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "{name}: fast path differs at item {i}: fast {:?} vs general {:?}",
                a.get(i),
                b.get(i)
            );
        }
        true
    }

    #[test]
    fn fast_path_agrees_with_the_general_parser_on_every_yaml_file_we_have() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![
            root.join("designs"),
            root.join("tests/data"),
            root.join("../shared/reference"),
        ];
        let (mut seen, mut fast) = (0, 0);
        while let Some(d) = dirs.pop() {
            let rd = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    // The SW102 fixture is deliberately not UTF-8.
                    let Ok(text) = std::fs::read_to_string(&p) else {
                        continue;
                    };
                    seen += 1;
                    // Whole files and each `---` chunk, as the parse stage feeds them.
                    if assert_same(&p.display().to_string(), &text) {
                        fast += 1;
                    }
                    for (i, chunk) in text.split_inclusive("\n---").enumerate() {
                        let chunk = if i == 0 {
                            chunk.to_string()
                        } else {
                            format!("---{chunk}")
                        };
                        let chunk = chunk.strip_suffix("---").unwrap_or(&chunk);
                        assert_same(&format!("{}#{i}", p.display()), chunk);
                    }
                }
            }
        }
        assert!(
            seen > 50 && fast * 2 > seen,
            "fast path used for {fast} of {seen} files"
        );
    }

    #[test]
    fn fast_path_handles_literal_block_scalars_like_the_general_parser() {
        for text in [
            "a: |\n  x\n  y\n",
            "a: 1\n...\n---\nb: {}\nc: [] # e\n...\n",
            "a: |\n  x\n...\n",
            "a: |-\n  x\n\n",
            "a: |+\n  x\n\n\n",
            "a: |\n\n  x\n   y\n\n  z\nb: 1\n",
            "- |\n  k1\n- |\n  k2\n",
            "a:\n- x\n- y: 1\n  z: 2\nb: 3\n",
            "a: 'it''s' # c\nb: \"q\\u00e9\\n\"\n",
            "---\n---\na: 1\n",
            "# only\n",
            "---\n",
        ] {
            let docs = fast::parse(text, 0).parsed();
            assert!(docs.is_some(), "fast path declined {text:?}");
            assert_same(text, text);
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_read() {
        for text in [
            "a: [1, 2]\n",
            "a: &x 1\nb: *x\n",
            "a: >\n  folded\n",
            "a: multi\n  line\n",
            "a: !!str 1\n",
            "a:\tb\n",
            "a: 1\n  b: 2\n",
            "%YAML 1.1\n---\na: 1\n",
            "a: b: c\n",
            "? complex\n: key\n",
            ": x\n",
            "a: |\n   \n  x\n",
            "a: |\n  x",
            "a: |\nb: 2\n",
        ] {
            assert!(
                fast::parse(text, 0).parsed().is_none(),
                "fast path accepted {text:?}"
            );
        }
    }

    fn plain(s: &str) -> Value {
        resolve_plain(s.to_string())
    }

    #[test]
    fn plain_scalars_resolve_like_pyyaml() {
        assert_eq!(plain("yes"), Value::Bool(true));
        assert_eq!(plain("Off"), Value::Bool(false));
        assert_eq!(plain("y"), Value::Str("y".into()));
        assert_eq!(plain("0755"), Value::Int(0o755));
        assert_eq!(plain("600"), Value::Int(600));
        assert_eq!(plain("0xffff"), Value::Int(0xffff));
        assert_eq!(plain("1_000"), Value::Int(1000));
        assert_eq!(
            plain("52:54:00:12:34:56"),
            Value::Int(((((52 * 60 + 54) * 60) * 60 + 12) * 60 + 34) * 60 + 56)
        );
        assert_eq!(
            plain("02:00:00:00:00:01"),
            Value::Str("02:00:00:00:00:01".into())
        );
        assert_eq!(
            plain("aa:bb:cc:dd:ee:ff"),
            Value::Str("aa:bb:cc:dd:ee:ff".into())
        );
        assert_eq!(plain("1.5"), Value::Float(1.5));
        assert_eq!(plain(".5"), Value::Float(0.5));
        assert_eq!(plain("-.5"), Value::Str("-.5".into()));
        assert_eq!(plain("7:7."), Value::Float(427.0));
        assert_eq!(plain("-1:30.5"), Value::Float(-90.5));
        assert_eq!(plain("1:60.5"), Value::Str("1:60.5".into()));
        assert_eq!(plain("1e5"), Value::Str("1e5".into()));
        assert_eq!(plain("802.3ad"), Value::Str("802.3ad".into()));
        assert_eq!(plain("172.16.1.0/24"), Value::Str("172.16.1.0/24".into()));
        assert_eq!(plain("~"), Value::Null);
        assert_eq!(plain("20g"), Value::Str("20g".into()));
        assert_eq!(plain("-77%"), Value::Str("-77%".into()));
    }

    #[test]
    fn documents_keep_their_first_line_and_keys_their_lines() {
        let text = "# c\n---\na: 1\nb:\n  c: [1, 2]\n---\nx: y\n";
        let docs = parse_stream(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 6);
        assert_eq!(docs[0].root.line_of_pointer("/b/c"), 5);
        assert_eq!(docs[0].root.line_of_pointer("/b/nope"), 4);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse_stream("a: 1\n: Network\n  - x\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
    }

    #[test]
    fn aliases_expand_and_unknown_ones_fail() {
        let docs = parse_stream("a: &x {k: v}\nb: *x\n").unwrap();
        let mut p = Vec::new();
        let j = docs[0].root.to_json(&mut p);
        assert_eq!(j["b"]["k"], "v");
    }

    #[test]
    fn non_string_and_duplicate_keys_are_reported() {
        let docs = parse_stream("0xffff: a\nk: 1\nk: 2\n").unwrap();
        let mut p = Vec::new();
        let j = docs[0].root.to_json(&mut p);
        assert_eq!(j["k"], 2);
        assert_eq!(p.len(), 2);
    }

    fn json(text: &str) -> (serde_json::Value, Vec<KeyProblem>) {
        let docs = parse_stream(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        let mut p = Vec::new();
        let j = docs[0].root.to_json(&mut p);
        (j, p)
    }

    #[test]
    fn merge_keys_resolve_as_pyyaml_resolves_them() {
        // Each expected value is what PyYAML 6's safe_load gives for the text.
        let cases = [
            // The mapping's own keys win over merged ones, wherever `<<` stands.
            (
                "base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\n",
                r#"{"a":1,"b":3}"#,
            ),
            ("x: &x {a: 1}\nm:\n  a: 5\n  <<: *x\n", r#"{"a":5}"#),
            // In the list form, an earlier mapping wins over a later one.
            (
                "x: &x {a: 1}\ny: &y {a: 2, c: 3}\nm: {<<: [*x, *y]}\n",
                r#"{"a":1,"c":3}"#,
            ),
            // Of two merge keys, the later wins.
            (
                "x: &x {a: 1}\ny: &y {a: 2, c: 3}\nm:\n  <<: *x\n  <<: *y\n",
                r#"{"a":2,"c":3}"#,
            ),
            // A merged mapping's own merges are resolved first.
            (
                "x: &x {a: 1, d: 0}\ny: &y {<<: *x, a: 2}\nm: {<<: *y, c: 3}\n",
                r#"{"a":2,"c":3,"d":0}"#,
            ),
            // An inline block mapping, and the `!!merge` tag.
            ("m:\n  <<:\n    a: 1\n  b: 2\n", r#"{"a":1,"b":2}"#),
            ("x: &x {a: 1}\nm: {!!merge foo: *x}\n", r#"{"a":1}"#),
            // A quoted `<<` is an ordinary key.
            ("m: {'<<': 1}\n", r#"{"<<":1}"#),
        ];
        for (text, want) in cases {
            let (j, problems) = json(text);
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(j["m"], want, "{text:?}");
            // Keys a merge hides are not duplicates of the mapping's own.
            assert!(problems.is_empty(), "{text:?}: {problems:?}");
        }
    }

    /// Found by `cargo fuzz run yaml`: yaml-rust2 ends the stream at a NUL,
    /// so the general parser returned the documents before it and dropped the
    /// rest without a word, while the fast path read them all.
    #[test]
    fn a_nul_or_other_control_character_is_a_syntax_error_not_the_end_of_the_stream() {
        for (text, line, col) in [
            ("a: 1\n---\nb: x\0y\n---\nc: 3\n", 3, 5),
            ("a: 1\nb: \u{1b}[2J\n", 2, 4),
            ("a: \u{7f}\n", 1, 4),
            ("a: '\u{85}ok\u{9f}'\n", 1, 8),
        ] {
            for r in [parse_stream(text), parse_general(text, 0)] {
                let e = r.unwrap_err();
                assert_eq!(
                    (e.kind, e.line, e.col),
                    (ErrorKind::Syntax, line, col),
                    "{text:?}: {e:?}"
                );
                assert!(e.message.contains("unacceptable character"), "{e:?}");
            }
        }
        // Tabs, line ends, NEL and the rest of Unicode are fine.
        assert!(parse_stream("a: \"x\ty\"\r\nb: caf\u{e9} \u{85} \u{1F600}\n").is_ok());
    }

    #[test]
    fn many_merge_keys_in_one_mapping_cost_linear_time() {
        // 200,000 `<<` entries: a quadratic resolution would not finish.
        let mut text = String::from("x: &x {a: 1}\nm:\n");
        for i in 0..200_000 {
            text.push_str(&format!("  <<: {{k{i}: 1}}\n"));
        }
        let (j, _) = json(&text);
        assert_eq!(j["m"].as_object().unwrap().len(), 200_000);
    }

    #[test]
    fn merging_a_non_mapping_is_an_error_at_the_value() {
        for (text, line, col) in [
            ("m: {<<: 1}\n", 1, 9),
            ("x: &x {a: 1}\nm: {<<: [*x, 1]}\n", 2, 14),
            ("m:\n  <<: [a, b]\n", 2, 8),
            ("m:\n  <<: [[]]\n", 2, 8),
        ] {
            let e = parse_stream(text).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Merge, "{text:?}: {e:?}");
            // PyYAML's positions (1-based) for the same texts.
            assert_eq!((e.line, e.col), (line, col), "{text:?}: {e:?}");
            assert!(e.message.contains("expected a mapping"), "{e:?}");
        }
    }

    /// Nested block YAML: one level per entry of `kinds` (`m` a mapping key,
    /// `s` a sequence entry on its own line, `c` a compact `- ` entry), then `leaf`.
    fn nested(kinds: &[u8], leaf: &str) -> String {
        let mut out = String::new();
        let mut indent = 0;
        let mut line = String::new();
        for (i, k) in kinds.iter().enumerate() {
            match k {
                b'm' => {
                    out.push_str(&format!("{}{line}k{i}:\n", " ".repeat(indent)));
                    indent += line.len() + 1;
                    line.clear();
                }
                b's' => {
                    out.push_str(&format!("{}{line}-\n", " ".repeat(indent)));
                    indent += line.len() + 2;
                    line.clear();
                }
                _ => line.push_str("- "),
            }
        }
        out.push_str(&format!("{}{line}{leaf}\n", " ".repeat(indent)));
        out
    }

    /// Both parsers on `text`: the same documents, or the same limit error.
    fn assert_same_limits(text: &str) {
        let general = parse_general(text, 0);
        match fast::parse(text, 0) {
            fast::Outcome::Parsed(_) => {
                assert!(
                    general.is_ok(),
                    "general refused what fast read: {general:?}"
                );
                assert_same("nested", text);
            }
            fast::Outcome::TooDeep(e) => {
                assert_eq!(e.kind, ErrorKind::TooDeep);
                assert_eq!(
                    general.as_ref().err(),
                    Some(&e),
                    "general vs fast on {} bytes",
                    text.len()
                );
            }
            fast::Outcome::Declined => {}
        }
    }

    #[test]
    fn both_parsers_refuse_nesting_past_the_limit_with_the_same_error() {
        for depth in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 1000] {
            for pattern in ["m", "s", "ms", "msc", "mcc"] {
                let kinds: Vec<u8> = pattern.bytes().cycle().take(depth).collect();
                for leaf in ["x", "a: 1", "a: {}", "[]"] {
                    let text = nested(&kinds, leaf);
                    assert_same_limits(&text);
                    let deeper = depth
                        + usize::from(leaf.contains(':'))
                        + usize::from(leaf.contains('{') || leaf == "[]");
                    let r = parse_stream(&text);
                    if deeper > MAX_DEPTH {
                        assert_eq!(
                            r.unwrap_err().kind,
                            ErrorKind::TooDeep,
                            "{pattern} {depth} {leaf}"
                        );
                    } else {
                        assert!(r.is_ok(), "{pattern} {depth} {leaf}: {r:?}");
                    }
                }
            }
        }
        // Flow nesting, which only the general parser reads.
        let flow = format!("a: {}{}\n", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_stream(&flow).unwrap_err().kind, ErrorKind::TooDeep);
        let ok = format!(
            "a: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_stream(&ok).is_ok());
    }

    #[test]
    fn an_alias_counts_with_the_depth_of_what_it_repeats() {
        let inner = format!("{}{}", "[".repeat(150), "]".repeat(150));
        let text = format!("a: &x {inner}\nb: {}*x{}\n", "[".repeat(60), "]".repeat(60));
        assert_eq!(parse_stream(&text).unwrap_err().kind, ErrorKind::TooDeep);
    }

    #[test]
    fn a_billion_laughs_is_refused_before_it_is_expanded() {
        let mut text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        let mut prev = 'a';
        for c in "bcdefghi".chars() {
            text.push_str(&format!(
                "{c}: &{c} [{}]\n",
                vec![format!("*{prev}"); 9].join(", ")
            ));
            prev = c;
        }
        let e = parse_stream(&text).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AliasBudget, "{e:?}");
        // Refused at an alias of the first levels that outgrow the budget, not at the end.
        assert!(e.line < 9, "{e:?}");
    }

    #[test]
    fn a_large_anchor_aliased_many_times_is_refused_and_a_few_aliases_are_not() {
        let big = "x".repeat(100_000);
        let few: String = (0..5).map(|i| format!("b{i}: *a\n")).collect();
        assert!(parse_stream(&format!("a: &a {big}\n{few}")).is_ok());
        let many: String = (0..100).map(|i| format!("b{i}: *a\n")).collect();
        let e = parse_stream(&format!("a: &a {big}\n{many}")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AliasBudget, "{e:?}");
        // The budget scales with the text: 8 copies of a 100 kB anchor fit
        // into a 900 kB text's budget, whatever its floor.
        assert!(alias_budget(900_000) >= 9 * (100_000 + NODE_WEIGHT));
    }

    mod differential {
        use proptest::prelude::*;

        /// Lines of block YAML, indented 0-6 spaces, mixing the constructs the
        /// fast path reads with some it must decline.
        fn block_yaml() -> impl Strategy<Value = String> {
            let body = prop::sample::select(vec![
                "a:",
                "a: 1",
                "b: x y",
                "- x",
                "- a: 1",
                "-",
                "c: |",
                "c: |-",
                "c: |+",
                "text line",
                "d: 'q''s'",
                "e: \"d\\n\"",
                "# c",
                "",
                "f: {}",
                "g: []",
                "---",
                "...",
                "h: 0755",
                "i: yes",
                "k: 52:54:00:12:34:56",
                "l: a #c",
                "m: a#b",
                "n: - x",
                "o: [1]",
                "p: &x 1",
                "q: >",
                "'r': 1",
                "s:  ",
                "- - x",
                "t: \"a",
                "<<:",
                "<<: {}",
                "- <<: 1",
                "'<<': 1",
                "u: <<",
            ]);
            prop::collection::vec((0usize..7, body), 0..25).prop_map(|lines| {
                lines
                    .into_iter()
                    .map(|(i, b)| format!("{}{b}\n", " ".repeat(i)))
                    .collect::<String>()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn fast_path_output_equals_the_general_parser_whenever_it_accepts(text in block_yaml()) {
                super::assert_same("generated", &text);
            }
        }
    }
}
