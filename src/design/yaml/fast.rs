//! A fast path for the block-style YAML that design documents are written in.
//!
//! It reads the common subset — block mappings and sequences, plain and quoted
//! one-line scalars, literal block scalars (`|`, `|-`, `|+`), comments — and
//! builds the same [`Node`] tree as the general parser, several times faster.
//! On anything else (flow collections, anchors, tags, merge keys, folded or
//! multi-line scalars, tabs in indentation, odd indentation) it declines and
//! the caller uses the general parser, which also owns every syntax error
//! message. It enforces the depth limit itself ([`MAX_DEPTH`], with the very
//! error the general parser gives), so its recursion is bounded too; aliases
//! it never expands. A differential test holds the two parsers to the same
//! output and the same limit errors.

use super::{resolve_plain, too_deep, Node, SyntaxError, Value, YamlDocument, MAX_DEPTH};

#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based line number in the file.
    no: u32,
    indent: usize,
    /// The line after its indentation.
    text: &'a str,
    raw: &'a str,
}

struct P<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
    /// Collections open around the current line.
    depth: usize,
}

/// Why the fast path stopped early.
enum Stop {
    /// Not in the subset: fall back to the general parser.
    Bail,
    /// Nested past [`MAX_DEPTH`]: the same error the general parser gives.
    TooDeep(SyntaxError),
}

type R<T> = Result<T, Stop>;

/// What the fast path made of a text.
pub enum Outcome {
    /// The documents, as the general parser reads them.
    Parsed(Vec<YamlDocument>),
    /// Nested deeper than [`MAX_DEPTH`] (the general parser agrees).
    TooDeep(SyntaxError),
    /// Outside the subset: the general parser must read it.
    Declined,
}

impl Outcome {
    /// The documents, when the fast path read them.
    #[cfg(test)]
    pub fn parsed(self) -> Option<Vec<YamlDocument>> {
        match self {
            Outcome::Parsed(d) => Some(d),
            _ => None,
        }
    }
}

/// Parses `text` (starting after `line_offset` lines of its file), declining
/// when it uses YAML outside the subset.
pub fn parse(text: &str, line_offset: u32) -> Outcome {
    if text.contains('\r') || text.starts_with('\u{feff}') {
        return Outcome::Declined;
    }
    let mut lines = Vec::with_capacity(text.len() / 24);
    for (i, raw) in text.split('\n').enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        let indent = raw.len() - trimmed.len();
        if trimmed.starts_with('\t') {
            // A tab before content: only harmless on a blank line.
            if !trimmed.trim().is_empty() {
                return Outcome::Declined;
            }
        }
        lines.push(Line {
            no: line_offset + i as u32 + 1,
            indent,
            text: trimmed,
            raw,
        });
    }
    let mut p = P {
        lines,
        pos: 0,
        depth: 0,
    };
    match p.documents() {
        Ok(docs) => Outcome::Parsed(docs),
        Err(Stop::TooDeep(e)) => Outcome::TooDeep(e),
        Err(Stop::Bail) => Outcome::Declined,
    }
}

fn is_blank_or_comment(t: &str) -> bool {
    let t = t.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

fn is_doc_end(l: &Line) -> bool {
    l.indent == 0
        && l.text.starts_with("...")
        && is_blank_or_comment(&l.text[3..])
        && (l.text.len() == 3 || l.text.as_bytes()[3] == b' ')
}

fn is_doc_start(l: &Line) -> bool {
    l.indent == 0
        && l.text.starts_with("---")
        && matches!(l.text.as_bytes().get(3), None | Some(b' ' | b'\t'))
}

impl<'a> P<'a> {
    fn documents(&mut self) -> R<Vec<YamlDocument>> {
        let mut docs = Vec::new();
        let mut explicit_line: Option<u32> = None;
        loop {
            self.skip_blank();
            let Some(l) = self.peek() else {
                if let Some(line) = explicit_line {
                    docs.push(YamlDocument {
                        line,
                        root: Node {
                            value: Value::Null,
                            line,
                            col: 1,
                        },
                    });
                }
                return Ok(docs);
            };
            if l.indent == 0 && l.text.starts_with('%') {
                return Err(Stop::Bail);
            }
            if is_doc_end(&l) {
                if let Some(line) = explicit_line.take() {
                    docs.push(YamlDocument {
                        line,
                        root: Node {
                            value: Value::Null,
                            line: l.no,
                            col: 1,
                        },
                    });
                }
                self.pos += 1;
                continue;
            }
            if is_doc_start(&l) {
                if !is_blank_or_comment(&l.text[3..]) {
                    return Err(Stop::Bail);
                }
                if let Some(line) = explicit_line {
                    docs.push(YamlDocument {
                        line,
                        root: Node {
                            value: Value::Null,
                            line: l.no,
                            col: 1,
                        },
                    });
                }
                explicit_line = Some(l.no);
                self.pos += 1;
                continue;
            }
            let root = self.node(l.indent, l.indent)?;
            docs.push(YamlDocument {
                line: explicit_line.unwrap_or(l.no),
                root,
            });
            explicit_line = None;
            self.skip_blank();
            if let Some(l) = self.peek() {
                if !is_doc_start(&l) && !is_doc_end(&l) {
                    return Err(Stop::Bail);
                }
            }
        }
    }

    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    fn skip_blank(&mut self) {
        while let Some(l) = self.lines.get(self.pos) {
            if is_blank_or_comment(l.text) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next content line, if it is indented at least `min`.
    fn next_at_least(&mut self, min: usize) -> Option<Line<'a>> {
        self.skip_blank();
        self.peek()
            .filter(|l| l.indent >= min && !is_doc_start(l) && !is_doc_end(l))
    }

    /// A block node whose first line is the current one, at `indent`.
    fn node(&mut self, indent: usize, parent: usize) -> R<Node> {
        let l = self.peek().ok_or(Stop::Bail)?;
        if is_seq_entry(l.text) {
            return self.sequence(indent);
        }
        if split_key(l.text)?.is_some() {
            return self.mapping(indent);
        }
        // A lone scalar on its own line.
        let node = self.inline(l.text, l.no, l.indent as u32 + 1, parent)?;
        Ok(node)
    }

    /// Opens a collection starting at `line`/`col`, refusing one past [`MAX_DEPTH`].
    fn enter(&mut self, line: u32, col: u32) -> R<()> {
        if self.depth >= MAX_DEPTH {
            return Err(Stop::TooDeep(too_deep(line, col)));
        }
        self.depth += 1;
        Ok(())
    }

    fn mapping(&mut self, indent: usize) -> R<Node> {
        let first = self.peek().ok_or(Stop::Bail)?;
        // The general parser places a block mapping at its first key's colon.
        let (_, rest) = split_key(first.text)?.ok_or(Stop::Bail)?;
        self.enter(first.no, (first.raw.len() - rest.len()) as u32)?;
        let mut entries = Vec::new();
        loop {
            self.skip_blank();
            let Some(l) = self.peek() else { break };
            if l.indent < indent || is_doc_start(&l) || is_doc_end(&l) {
                break;
            }
            if l.indent > indent {
                return Err(Stop::Bail);
            }
            let Some((key_text, rest)) = split_key(l.text)? else {
                return Err(Stop::Bail);
            };
            let key = Node {
                value: scalar_key(key_text)?,
                line: l.no,
                col: indent as u32 + 1,
            };
            self.pos += 1;
            let value_col = (l.raw.len() - rest.len()) as u32 + 1;
            let rest_t = rest.trim_start_matches(' ');
            let value = if is_blank_or_comment(rest_t) {
                self.block_value(indent, l.no, true)?
            } else {
                let col = value_col + (rest.len() - rest_t.len()) as u32;
                self.inline(rest_t, l.no, col, indent)?
            };
            entries.push((key, value));
        }
        self.depth -= 1;
        Ok(Node {
            value: Value::Map(entries),
            line: first.no,
            col: indent as u32 + 1,
        })
    }

    /// The value of `key:` with nothing after the colon: a nested block, an
    /// indentless sequence (in a mapping), or null.
    fn block_value(&mut self, indent: usize, line: u32, in_mapping: bool) -> R<Node> {
        match self.next_at_least(indent) {
            Some(n) if n.indent > indent => self.node(n.indent, indent),
            Some(n) if in_mapping && n.indent == indent && is_seq_entry(n.text) => {
                self.sequence(indent)
            }
            _ => Ok(Node {
                value: Value::Null,
                line,
                col: indent as u32 + 1,
            }),
        }
    }

    fn sequence(&mut self, indent: usize) -> R<Node> {
        let first = self.peek().ok_or(Stop::Bail)?;
        self.enter(first.no, indent as u32 + 1)?;
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            let Some(l) = self.peek() else { break };
            if l.indent < indent || is_doc_start(&l) || is_doc_end(&l) || !is_seq_entry(l.text) {
                if l.indent > indent {
                    return Err(Stop::Bail);
                }
                break;
            }
            if l.indent > indent {
                return Err(Stop::Bail);
            }
            let after = &l.text[1..];
            let rest = after.trim_start_matches(' ');
            if rest.starts_with('\t') {
                return Err(Stop::Bail);
            }
            let col = indent + 1 + (after.len() - rest.len());
            if is_blank_or_comment(rest) {
                self.pos += 1;
                let item = self.block_value(indent, l.no, false)?;
                items.push(item);
                continue;
            }
            if is_seq_entry(rest) || split_key(rest)?.is_some() {
                // Compact nested node: re-read this line as starting at `col`.
                self.lines[self.pos] = Line {
                    no: l.no,
                    indent: col,
                    text: rest,
                    raw: l.raw,
                };
                items.push(self.node(col, indent)?);
                continue;
            }
            self.pos += 1;
            items.push(self.inline(rest, l.no, col as u32 + 1, indent)?);
        }
        self.depth -= 1;
        Ok(Node {
            value: Value::Seq(items),
            line: first.no,
            col: indent as u32 + 1,
        })
    }

    /// A scalar written after `key: ` or `- ` on line `no` (already consumed
    /// unless it is a lone scalar line); `parent` is the enclosing indentation.
    fn inline(&mut self, text: &str, no: u32, col: u32, parent: usize) -> R<Node> {
        let lone = self.peek().map(|l| l.no == no).unwrap_or(false);
        if lone {
            self.pos += 1;
        }
        let value = match text.as_bytes()[0] {
            b'|' => return self.literal(text, no, col, parent),
            b'{' | b'[' => {
                let v = empty_flow(text)?;
                // An empty collection is a level too.
                if self.depth >= MAX_DEPTH {
                    return Err(Stop::TooDeep(too_deep(no, col)));
                }
                v
            }
            b'\'' => single_quoted(text)?,
            b'"' => double_quoted(text)?,
            _ => Value::from_plain(plain(text)?),
        };
        // A following, more indented line would continue the scalar: not ours.
        if let Some(n) = self.next_at_least(parent + 1) {
            if n.indent > parent {
                return Err(Stop::Bail);
            }
        }
        Ok(Node {
            value,
            line: no,
            col,
        })
    }

    /// A literal block scalar (`|`, `|-`, `|+`) whose header is `header`.
    fn literal(&mut self, header: &str, no: u32, col: u32, parent: usize) -> R<Node> {
        let h = header[1..].trim_end_matches(' ');
        let (chomp, rest) = match h.as_bytes().first() {
            Some(b'-') => ('-', &h[1..]),
            Some(b'+') => ('+', &h[1..]),
            _ => (' ', h),
        };
        if !is_blank_or_comment(rest) || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Stop::Bail);
        }
        if !rest.is_empty() && !rest.starts_with(' ') && !rest.starts_with('#') {
            return Err(Stop::Bail);
        }
        if rest.starts_with('#') {
            return Err(Stop::Bail);
        }
        // Content indentation: that of the first non-empty line.
        let mut content_indent = None;
        let mut longest_leading_blank = 0;
        let mut i = self.pos;
        while let Some(l) = self.lines.get(i) {
            if !l.raw.trim_matches(' ').is_empty() {
                if l.indent > parent && !is_doc_start(l) && !is_doc_end(l) {
                    content_indent = Some(l.indent);
                }
                break;
            }
            longest_leading_blank = longest_leading_blank.max(l.raw.len());
            i += 1;
        }
        // A leading blank line longer than the content's indentation is an error.
        if content_indent.is_some_and(|ci| longest_leading_blank > ci) {
            return Err(Stop::Bail);
        }
        let mut body: Vec<&str> = Vec::new();
        let mut trailing_blank = 0usize;
        if let Some(ci) = content_indent {
            while let Some(l) = self.lines.get(self.pos) {
                let blank = l.raw.trim_matches(' ').is_empty();
                if blank {
                    if l.raw.len() > ci {
                        // Spaces beyond the indentation are content.
                        body.resize(body.len() + trailing_blank, "");
                        trailing_blank = 0;
                        body.push(&l.raw[ci..]);
                    } else {
                        trailing_blank += 1;
                    }
                    self.pos += 1;
                    continue;
                }
                if l.indent < ci || is_doc_start(l) || is_doc_end(l) {
                    break;
                }
                if l.raw[..ci].contains('\t') {
                    return Err(Stop::Bail);
                }
                body.resize(body.len() + trailing_blank, "");
                trailing_blank = 0;
                body.push(&l.raw[ci..]);
                self.pos += 1;
            }
        } else {
            // Only blank lines (or none) follow: they belong to the scalar.
            while let Some(l) = self.lines.get(self.pos) {
                if l.raw.trim_matches(' ').is_empty() && self.pos + 1 < self.lines.len() {
                    if l.raw.len() > parent + 1 {
                        return Err(Stop::Bail);
                    }
                    trailing_blank += 1;
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        // The last line of the text has no newline after it.
        let at_eof = self.pos >= self.lines.len();
        if at_eof && trailing_blank > 0 {
            trailing_blank -= 1;
        } else if at_eof && trailing_blank == 0 && !body.is_empty() {
            // Content runs to the end of the text without a final line break:
            // YAML readers disagree on the last newline; leave it to the general one.
            return Err(Stop::Bail);
        }
        if body.is_empty() {
            // An empty block scalar: readers disagree (PyYAML '', yaml-rust2 "\n").
            return Err(Stop::Bail);
        }
        let mut s = body.join("\n");
        match chomp {
            '-' => {
                while s.ends_with('\n') {
                    s.pop();
                }
            }
            '+' => {
                if !body.is_empty() {
                    s.push('\n');
                }
                for _ in 0..trailing_blank {
                    s.push('\n');
                }
            }
            _ => {
                if !body.is_empty() {
                    s.push('\n');
                }
            }
        }
        Ok(Node {
            value: Value::Str(s),
            line: no,
            col,
        })
    }
}

impl Value {
    fn from_plain(s: &str) -> Value {
        resolve_plain(s.to_string())
    }
}

/// `{}` or `[]` (with an optional comment): the only flow collections read here.
fn empty_flow(t: &str) -> R<Value> {
    let (v, rest) = if let Some(r) = t.strip_prefix("{}") {
        (Value::Map(Vec::new()), r)
    } else if let Some(r) = t.strip_prefix("[]") {
        (Value::Seq(Vec::new()), r)
    } else {
        return Err(Stop::Bail);
    };
    if rest.is_empty() || (rest.starts_with(' ') && is_blank_or_comment(rest)) {
        Ok(v)
    } else {
        Err(Stop::Bail)
    }
}

fn is_seq_entry(t: &str) -> bool {
    t.starts_with('-') && matches!(t.as_bytes().get(1), None | Some(b' '))
}

/// A plain scalar's text (comment and trailing spaces removed), if the subset
/// reads it the way YAML does.
fn plain(t: &str) -> R<&str> {
    // One pass: cut at a ` #` comment, bail on `: ` or an inner tab.
    let b = t.as_bytes();
    let mut end = b.len();
    let mut first_tab = usize::MAX;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' if i > 0 && b[i - 1] == b' ' => {
                end = i - 1;
                break;
            }
            b':' if b.get(i + 1) == Some(&b' ') => return Err(Stop::Bail),
            b'\t' if first_tab == usize::MAX => first_tab = i,
            _ => {}
        }
        i += 1;
    }
    while end > 0 && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end == 0 || first_tab < end || b[end - 1] == b':' {
        return Err(Stop::Bail);
    }
    match b[0] {
        b'[' | b']' | b'{' | b'}' | b',' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => return Err(Stop::Bail),
        b'-' | b'?' | b':' if end == 1 || b[1] == b' ' => return Err(Stop::Bail),
        _ => {}
    }
    Ok(&t[..end])
}

/// Splits `key: rest` (or `key:` at the end of the line); `None` when the line is
/// not a mapping entry. Bails on keys outside the subset.
fn split_key(t: &str) -> R<Option<(&str, &str)>> {
    let b = t.as_bytes();
    match b.first() {
        None => return Ok(None),
        Some(b'\'') | Some(b'"') => {
            let end = quoted_end(t).ok_or(Stop::Bail)?;
            let after = &t[end..];
            return if let Some(rest) = after.strip_prefix(':') {
                if rest.is_empty() || rest.starts_with(' ') {
                    Ok(Some((&t[..end], rest)))
                } else {
                    Err(Stop::Bail)
                }
            } else {
                Ok(None)
            };
        }
        Some(b'?') | Some(b'[') | Some(b'{') | Some(b'&') | Some(b'*') | Some(b'!')
        | Some(b'|') | Some(b'>') => {
            return if t.contains(':') {
                Err(Stop::Bail)
            } else {
                Ok(None)
            }
        }
        _ => {}
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'#' && i > 0 && b[i - 1] == b' ' {
            return Ok(None);
        }
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ') {
            if i == 0 {
                return Err(Stop::Bail);
            }
            let key = t[..i].trim_end_matches(' ');
            return Ok(Some((key, &t[i + 1..])));
        }
        i += 1;
    }
    Ok(None)
}

fn scalar_key(k: &str) -> R<Value> {
    // A merge key (`<<`) is resolved by the general parser.
    if k == "<<" {
        return Err(Stop::Bail);
    }
    match k.as_bytes()[0] {
        b'\'' => single_quoted(k),
        b'"' => double_quoted(k),
        _ => Ok(Value::from_plain(plain(k)?)),
    }
}

/// Byte index just past the closing quote of a quoted scalar at the start of `t`.
fn quoted_end(t: &str) -> Option<usize> {
    let b = t.as_bytes();
    let q = b[0];
    let mut i = 1;
    while i < b.len() {
        if q == b'\'' && b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        if q == b'"' {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// After a quoted scalar: only spaces and an optional comment.
fn check_tail(t: &str, end: usize) -> R<()> {
    let tail = t[end..].trim_start_matches(' ');
    if tail.is_empty() || (tail.starts_with('#') && t[end..].starts_with(' ')) {
        Ok(())
    } else {
        Err(Stop::Bail)
    }
}

fn single_quoted(t: &str) -> R<Value> {
    let end = quoted_end(t).ok_or(Stop::Bail)?;
    check_tail(t, end)?;
    Ok(Value::Str(t[1..end - 1].replace("''", "'")))
}

fn double_quoted(t: &str) -> R<Value> {
    let end = quoted_end(t).ok_or(Stop::Bail)?;
    check_tail(t, end)?;
    let inner = &t[1..end - 1];
    if !inner.contains('\\') {
        return Ok(Value::Str(inner.to_string()));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or(Stop::Bail)?;
        let hex = |n: usize, chars: &mut std::str::Chars| -> R<char> {
            let s: String = chars.take(n).collect();
            if s.len() != n {
                return Err(Stop::Bail);
            }
            let v = u32::from_str_radix(&s, 16).map_err(|_| Stop::Bail)?;
            char::from_u32(v).ok_or(Stop::Bail)
        };
        out.push(match e {
            '0' => '\0',
            'a' => '\x07',
            'b' => '\x08',
            't' | '\t' => '\t',
            'n' => '\n',
            'v' => '\x0b',
            'f' => '\x0c',
            'r' => '\r',
            'e' => '\x1b',
            ' ' => ' ',
            '"' => '"',
            '/' => '/',
            '\\' => '\\',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'x' => hex(2, &mut chars)?,
            'u' => hex(4, &mut chars)?,
            'U' => hex(8, &mut chars)?,
            _ => return Err(Stop::Bail),
        });
    }
    Ok(Value::Str(out))
}
