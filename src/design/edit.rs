//! Design edits on design files (pure): a document upserted, created,
//! changed, deleted, cloned or renamed, written back into the YAML files
//! that hold the design while the rest of each file keeps its bytes.
//!
//! Each document is found by kind and name ([`parse::parse_file`]) and its
//! text by the chunks the parser splits a file into at `---` lines
//! ([`parse::document_chunks`]):
//!
//! - an **edited** document's text is replaced by the document emitted again
//!   ([`yaml::emit_document`]: its envelope keeps its keys and their order,
//!   its `data` is the new one); the comment and blank lines before it (and
//!   its `---`) and the column-0 comment lines after it (and its `...` end
//!   line) stay; comments inside it, its quoting style and its anchors
//!   (aliases are written out) are lost;
//! - a **deleted** document's text is removed with its `---` line and the
//!   comments between that line and the document; comment lines before its
//!   `---` (a file header) and after its last line stay; a file left with no
//!   document is deleted;
//! - a **new** document (created, or cloned) is appended, after a `---`, to
//!   the file of the document it was cloned from, or else to the last file
//!   (path order) holding a document of its kind, or else to a new
//!   `<kind>.yaml` (lower case) in the design root. A created document copies
//!   the envelope (`schema`, `metadata` but its `name` and `labels`) of the
//!   last document of its kind, or gets Deckhand's usual one.
//!
//! Every other document of every file keeps its bytes, comments and order.
//! A chunk holding several documents (a `...` end marker, `%` directives) is
//! not edited: [`EditError::Unsupported`] names it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::parse::{self, DesignFile};
use super::yaml;
use super::Kind;

/// What a change may touch: a document's `data` and its `metadata.labels`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    /// The document's `data` (`spec` in the legacy format).
    pub data: Value,
    /// `metadata.labels` (empty: none).
    pub labels: Map<String, Value>,
}

/// A change of a document's fields, applied to the document as the head
/// being edited holds it (again on each retry). `Err` refuses the edit with
/// a message for the client.
pub type Change = Arc<dyn Fn(&mut Fields) -> Result<(), String> + Send + Sync>;

/// One edit, in design terms.
#[derive(Clone)]
pub enum Edit {
    /// The document's `data` becomes `data`; created (as [`Edit::Create`],
    /// without labels) when missing.
    Put {
        kind: Kind,
        name: String,
        data: Value,
    },
    /// A new document; [`EditError::Exists`] when the name is taken.
    Create {
        kind: Kind,
        name: String,
        fields: Fields,
    },
    /// A change of an existing document.
    Update {
        kind: Kind,
        name: String,
        change: Change,
    },
    /// The document removed.
    Delete { kind: Kind, name: String },
    /// A copy of `from` (envelope, labels, data) named `to`, changed by
    /// `change` when given, beside `from`.
    Clone {
        kind: Kind,
        from: String,
        to: String,
        change: Option<Change>,
    },
    /// `from`'s `metadata.name` becomes `to` (references to it are not
    /// followed: validation reports what still names `from`).
    Rename {
        kind: Kind,
        from: String,
        to: String,
    },
}

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Edit {
    /// One line naming the edit, for commit messages and logs.
    pub fn describe(&self) -> String {
        match self {
            Edit::Put { kind, name, .. } => format!("put {}/{name}", kind.name()),
            Edit::Create { kind, name, .. } => format!("create {}/{name}", kind.name()),
            Edit::Update { kind, name, .. } => format!("update {}/{name}", kind.name()),
            Edit::Delete { kind, name } => format!("delete {}/{name}", kind.name()),
            Edit::Clone { kind, from, to, .. } => {
                format!("clone {}/{from} as {to}", kind.name())
            }
            Edit::Rename { kind, from, to } => format!("rename {}/{from} to {to}", kind.name()),
        }
    }
}

/// What an edit did to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new document.
    Created,
    /// An existing document changed (or renamed).
    Updated,
    /// A document removed.
    Deleted,
    /// The edit left the document as it was.
    Unchanged,
}

/// Why edits cannot be applied (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The document to change does not exist.
    #[error("{} `{name}` not found in the design", kind.name())]
    NotFound { kind: Kind, name: String },
    /// The name a new document would take exists.
    #[error("{} `{name}` already exists ({file}:{line})", kind.name())]
    Exists {
        kind: Kind,
        name: String,
        file: String,
        line: u32,
    },
    /// The name appears on several documents of the kind.
    #[error("{} `{name}` is defined more than once ({})", kind.name(), places.join(", "))]
    Ambiguous {
        kind: Kind,
        name: String,
        places: Vec<String>,
    },
    /// A name or value a document cannot take, or a change refused.
    #[error("{0}")]
    Refused(String),
    /// The document's text cannot be rewritten in place.
    #[error("{0}")]
    Unsupported(String),
}

/// The design after edits.
#[derive(Debug, Clone)]
pub struct Edited {
    /// Every file of the design, edited or not, sorted by path.
    pub files: Vec<DesignFile>,
    /// The files changed: path and new bytes (`None`: deleted), sorted.
    pub changes: Vec<(String, Option<Vec<u8>>)>,
    /// What each edit did, in order.
    pub outcomes: Vec<Outcome>,
}

/// Applies `edits` in order to the design `files` (paths relative to the
/// design root). See the module docs.
pub fn apply(files: &[DesignFile], edits: &[Edit]) -> Result<Edited, EditError> {
    let mut w = Work::new(files);
    let mut outcomes = Vec::with_capacity(edits.len());
    for e in edits {
        outcomes.push(w.apply(e)?);
    }
    Ok(w.finish(outcomes))
}

/// A document found: its file, its chunk and its parsed tree.
struct Found {
    path: String,
    /// Byte range of the document's chunk in the file's text.
    chunk: std::ops::Range<usize>,
    /// The chunk's index in its file.
    index: usize,
    line: u32,
    legacy: bool,
    root: yaml::Node,
}

struct Work {
    /// Current bytes of every file (`None`: deleted).
    files: BTreeMap<String, Option<Vec<u8>>>,
    original: BTreeMap<String, Vec<u8>>,
    /// (kind, name) → the files holding such a document.
    index: BTreeMap<(Kind, String), Vec<String>>,
}

impl Work {
    fn new(files: &[DesignFile]) -> Work {
        let mut w = Work {
            files: BTreeMap::new(),
            original: BTreeMap::new(),
            index: BTreeMap::new(),
        };
        for f in files {
            w.files.insert(f.path.clone(), Some(f.bytes.clone()));
            w.original.insert(f.path.clone(), f.bytes.clone());
        }
        let parsed = parse::parse_files(files);
        for d in parsed.documents {
            w.index.entry((d.kind, d.name)).or_default().push(d.file);
        }
        for paths in w.index.values_mut() {
            paths.dedup();
        }
        w
    }

    fn text(&self, path: &str) -> Option<&str> {
        self.files
            .get(path)?
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Re-indexes one file after it changed.
    fn reindex(&mut self, path: &str) {
        for paths in self.index.values_mut() {
            paths.retain(|p| p != path);
        }
        self.index.retain(|_, v| !v.is_empty());
        if let Some(Some(bytes)) = self.files.get(path) {
            let f = DesignFile {
                path: path.to_string(),
                bytes: bytes.clone(),
            };
            for d in parse::parse_file(&f).documents {
                let e = self.index.entry((d.kind, d.name)).or_default();
                if !e.iter().any(|p| p == path) {
                    e.push(d.file);
                }
            }
        }
    }

    /// The one document of `kind` named `name`, or `None`.
    fn find(&self, kind: Kind, name: &str) -> Result<Option<Found>, EditError> {
        let Some(paths) = self.index.get(&(kind, name.to_string())) else {
            return Ok(None);
        };
        let mut found = Vec::new();
        for path in paths {
            let Some(text) = self.text(path) else {
                continue;
            };
            let f = DesignFile {
                path: path.clone(),
                bytes: text.as_bytes().to_vec(),
            };
            for d in parse::parse_file(&f).documents {
                if d.kind == kind && d.name == name {
                    found.push((path.clone(), d.line, d.legacy));
                }
            }
        }
        if found.len() > 1 {
            return Err(EditError::Ambiguous {
                kind,
                name: name.to_string(),
                places: found.iter().map(|(p, l, _)| format!("{p}:{l}")).collect(),
            });
        }
        let Some((path, line, legacy)) = found.pop() else {
            return Ok(None);
        };
        let text = self.text(&path).unwrap_or_default();
        let chunks = parse::document_chunks(text);
        let index = chunks
            .iter()
            .rposition(|(l, _)| *l <= line)
            .unwrap_or_default();
        let (chunk_line, chunk) = chunks[index].clone();
        let unsupported = || {
            EditError::Unsupported(format!(
                "{path}:{line}: {}/{name} shares its text with other documents (a `...` end \
                 marker or `%` directives); write each document after its own `---` line for \
                 it to be edited",
                kind.name()
            ))
        };
        let docs = yaml::parse_stream_at(&text[chunk.clone()], chunk_line - 1)
            .map_err(|_| unsupported())?;
        let mut docs: Vec<yaml::YamlDocument> = docs
            .into_iter()
            .filter(|d| d.root.value != yaml::Value::Null)
            .collect();
        if docs.len() != 1 {
            return Err(unsupported());
        }
        let root = docs.remove(0).root;
        Ok(Some(Found {
            path,
            chunk,
            index,
            line,
            legacy,
            root,
        }))
    }

    fn must_find(&self, kind: Kind, name: &str) -> Result<Found, EditError> {
        self.find(kind, name)?.ok_or_else(|| EditError::NotFound {
            kind,
            name: name.to_string(),
        })
    }

    fn must_be_free(&self, kind: Kind, name: &str) -> Result<(), EditError> {
        check_name(name)?;
        match self.find(kind, name)? {
            Some(f) => Err(EditError::Exists {
                kind,
                name: name.to_string(),
                file: f.path,
                line: f.line,
            }),
            None => Ok(()),
        }
    }

    fn apply(&mut self, e: &Edit) -> Result<Outcome, EditError> {
        match e {
            Edit::Put { kind, name, data } => match self.find(*kind, name)? {
                Some(found) => self.rewrite(&found, |doc| {
                    set_data(doc, found.legacy, data.clone());
                    Ok(())
                }),
                None => {
                    let fields = Fields {
                        data: data.clone(),
                        labels: Map::new(),
                    };
                    self.create(*kind, name, &fields)
                }
            },
            Edit::Create { kind, name, fields } => self.create(*kind, name, fields),
            Edit::Update { kind, name, change } => {
                let found = self.must_find(*kind, name)?;
                self.rewrite(&found, |doc| change_fields(doc, found.legacy, change))
            }
            Edit::Delete { kind, name } => {
                let found = self.must_find(*kind, name)?;
                self.delete(&found);
                Ok(Outcome::Deleted)
            }
            Edit::Clone {
                kind,
                from,
                to,
                change,
            } => {
                let found = self.must_find(*kind, from)?;
                self.must_be_free(*kind, to)?;
                let mut doc = found.root.to_json(&mut Vec::new());
                set_name(&mut doc, to);
                if let Some(c) = change {
                    change_fields(&mut doc, found.legacy, c)?;
                }
                self.append(&found.path, &doc, Some(&found.root))?;
                Ok(Outcome::Created)
            }
            Edit::Rename { kind, from, to } => {
                let found = self.must_find(*kind, from)?;
                if from == to {
                    return Ok(Outcome::Unchanged);
                }
                self.must_be_free(*kind, to)?;
                self.rewrite(&found, |doc| {
                    set_name(doc, to);
                    Ok(())
                })
            }
        }
    }

    /// Replaces a document's text by the document `f` makes of it.
    fn rewrite(
        &mut self,
        found: &Found,
        f: impl FnOnce(&mut Value) -> Result<(), EditError>,
    ) -> Result<Outcome, EditError> {
        let before = found.root.to_json(&mut Vec::new());
        let mut doc = before.clone();
        f(&mut doc)?;
        if doc == before {
            return Ok(Outcome::Unchanged);
        }
        let emitted = emit(&doc, Some(&found.root), &found.path, found.line)?;
        let text = self.text(&found.path).unwrap_or_default().to_string();
        let chunk = &text[found.chunk.clone()];
        let parts = ChunkParts::of(chunk);
        let mut out = String::with_capacity(text.len() + emitted.len());
        out.push_str(&text[..found.chunk.start]);
        out.push_str(&chunk[..parts.body_start]);
        if !parts.has_marker && found.index > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emitted);
        out.push_str(&chunk[parts.tail_start..]);
        out.push_str(&text[found.chunk.end..]);
        self.put(&found.path, Some(out.into_bytes()));
        Ok(Outcome::Updated)
    }

    fn delete(&mut self, found: &Found) {
        let text = self.text(&found.path).unwrap_or_default().to_string();
        let chunk = &text[found.chunk.clone()];
        let parts = ChunkParts::of(chunk);
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..found.chunk.start]);
        out.push_str(&chunk[..parts.marker_start]);
        for l in chunk[parts.tail_start..].split_inclusive('\n') {
            if !is_end_marker(l) {
                out.push_str(l);
            }
        }
        out.push_str(&text[found.chunk.end..]);
        let empty = out.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || is_marker(l) || is_end_marker(l)
        });
        self.put(&found.path, (!empty).then(|| out.into_bytes()));
    }

    fn create(&mut self, kind: Kind, name: &str, fields: &Fields) -> Result<Outcome, EditError> {
        self.must_be_free(kind, name)?;
        // The last document of the kind gives the file and the envelope.
        let sibling = self
            .index
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .flat_map(|((_, n), paths)| paths.iter().map(move |p| (p.clone(), n.clone())))
            .max();
        let (path, mut doc, hint) = match sibling {
            Some((path, sib)) => {
                let found = self.must_find(kind, &sib)?;
                let mut doc = found.root.to_json(&mut Vec::new());
                if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("labels");
                }
                set_name(&mut doc, name);
                set_data(&mut doc, found.legacy, Value::Null);
                (path, doc, Some(found.root))
            }
            None => (
                format!("{}.yaml", kind.name().to_lowercase()),
                serde_json::json!({
                    "schema": kind.schema(),
                    "metadata": {
                        "schema": "metadata/Document/v1",
                        "name": name,
                        "layeringDefinition": {"abstract": false, "layer": "site"},
                        "storagePolicy": "cleartext",
                    },
                    "data": null,
                }),
                None,
            ),
        };
        let legacy = doc.get("spec").is_some() && doc.get("data").is_none();
        set_data(&mut doc, legacy, fields.data.clone());
        set_labels(&mut doc, &fields.labels);
        self.append(&path, &doc, hint.as_ref())?;
        Ok(Outcome::Created)
    }

    fn append(
        &mut self,
        path: &str,
        doc: &Value,
        hint: Option<&yaml::Node>,
    ) -> Result<(), EditError> {
        let mut text = self.text(path).unwrap_or_default().to_string();
        let line = text.lines().count() as u32 + 1;
        let emitted = emit(doc, hint, path, line)?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("---\n");
        text.push_str(&emitted);
        self.put(path, Some(text.into_bytes()));
        Ok(())
    }

    fn put(&mut self, path: &str, bytes: Option<Vec<u8>>) {
        self.files.insert(path.to_string(), bytes);
        self.reindex(path);
    }

    fn finish(self, outcomes: Vec<Outcome>) -> Edited {
        let mut files = Vec::new();
        let mut changes = Vec::new();
        for (path, bytes) in self.files {
            let same = match (&bytes, self.original.get(&path)) {
                (Some(b), Some(o)) => b == o,
                (None, None) => true,
                _ => false,
            };
            if !same {
                changes.push((path.clone(), bytes.clone()));
            }
            if let Some(b) = bytes {
                files.push(DesignFile { path, bytes: b });
            }
        }
        Edited {
            files,
            changes,
            outcomes,
        }
    }
}

/// Where a chunk's parts start: the `---` line (or the body when none),
/// the document's first line, and the trailing comment lines.
struct ChunkParts {
    marker_start: usize,
    has_marker: bool,
    body_start: usize,
    tail_start: usize,
}

impl ChunkParts {
    fn of(chunk: &str) -> ChunkParts {
        let mut lines = Vec::new();
        let mut pos = 0;
        for l in chunk.split_inclusive('\n') {
            lines.push((pos, l));
            pos += l.len();
        }
        let mut marker_start = None;
        let mut body_start = chunk.len();
        for (at, l) in &lines {
            let t = l.trim();
            if marker_start.is_none() && is_bare_marker(l) {
                marker_start = Some(*at);
                continue;
            }
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            body_start = *at;
            break;
        }
        let mut tail_start = chunk.len();
        for (at, l) in lines.iter().rev() {
            if *at < body_start {
                break;
            }
            let blank = l.trim().is_empty();
            if blank || l.starts_with('#') || is_end_marker(l) {
                tail_start = *at;
            } else {
                break;
            }
        }
        let tail_start = tail_start.max(body_start);
        ChunkParts {
            marker_start: marker_start.unwrap_or(body_start),
            has_marker: marker_start.is_some(),
            body_start,
            tail_start,
        }
    }
}

/// A `...` document end line (kept after an edited document; removed with a
/// deleted one).
fn is_end_marker(line: &str) -> bool {
    line.strip_prefix("...").is_some_and(|r| {
        let r = r.trim();
        r.is_empty() || r.starts_with('#')
    })
}

/// A `---` line (with nothing after it but spaces or a comment).
fn is_bare_marker(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---") else {
        return false;
    };
    let rest = rest.trim();
    rest.is_empty() || (rest.starts_with('#') && line[3..].starts_with([' ', '\t']))
}

/// A line starting a document (`---` then space, tab or end of line).
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']))
}

fn emit(
    doc: &Value,
    hint: Option<&yaml::Node>,
    path: &str,
    line: u32,
) -> Result<String, EditError> {
    yaml::emit_document(doc, hint).map_err(|e| {
        EditError::Unsupported(format!(
            "{path}:{line}: cannot write the document back: {e}"
        ))
    })
}

/// A document name slipway writes: printable, no leading or trailing space.
fn check_name(name: &str) -> Result<(), EditError> {
    if name.is_empty()
        || name.len() > 253
        || name.trim() != name
        || name.chars().any(|c| c.is_control())
    {
        return Err(EditError::Refused(format!(
            "`{}` is not a document name: expected 1 to 253 printable characters without \
             leading or trailing spaces",
            name.escape_debug()
        )));
    }
    Ok(())
}

fn data_key(legacy: bool) -> &'static str {
    if legacy {
        "spec"
    } else {
        "data"
    }
}

fn set_name(doc: &mut Value, name: &str) {
    if let Some(m) = doc.as_object_mut() {
        let meta = m
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("name".into(), Value::String(name.into()));
        }
    }
}

fn set_data(doc: &mut Value, legacy: bool, data: Value) {
    if let Some(m) = doc.as_object_mut() {
        m.insert(data_key(legacy).into(), data);
    }
}

fn set_labels(doc: &mut Value, labels: &Map<String, Value>) {
    let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if labels.is_empty() {
        if meta
            .get("labels")
            .is_some_and(|l| l.as_object().is_some_and(|o| !o.is_empty()))
        {
            meta.insert("labels".into(), Value::Object(Map::new()));
        }
    } else {
        meta.insert("labels".into(), Value::Object(labels.clone()));
    }
}

/// Runs a change on a document's fields and writes them back.
fn change_fields(doc: &mut Value, legacy: bool, change: &Change) -> Result<(), EditError> {
    let mut fields = Fields {
        data: doc.get(data_key(legacy)).cloned().unwrap_or(Value::Null),
        labels: doc
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    };
    let before = fields.clone();
    change(&mut fields).map_err(EditError::Refused)?;
    if fields.data != before.data {
        set_data(doc, legacy, fields.data);
    }
    if fields.labels != before.labels {
        set_labels(doc, &fields.labels);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(path: &str, text: &str) -> DesignFile {
        DesignFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    const RACKS: &str = "# racks of the site\n---\n# the first rack\nschema: 'drydock/Rack/v1'\nmetadata:\n  name: r1  # keep?\n  labels: {a: b}\ndata:\n  tor_switches: {}\n# between\n---\nschema: drydock/Rack/v1\nmetadata:\n  name: r2\ndata: {location: {room: x}}  # r2 stays byte for byte\n";

    fn text(e: &Edited, path: &str) -> String {
        String::from_utf8(
            e.files
                .iter()
                .find(|f| f.path == path)
                .unwrap()
                .bytes
                .clone(),
        )
        .unwrap()
    }

    #[test]
    fn an_update_replaces_only_its_document_text() {
        let change: Change = Arc::new(|f: &mut Fields| {
            f.data["location"] = json!({"room": "y"});
            Ok(())
        });
        let e = apply(
            &[file("racks.yaml", RACKS)],
            &[Edit::Update {
                kind: Kind::Rack,
                name: "r1".into(),
                change,
            }],
        )
        .unwrap();
        let t = text(&e, "racks.yaml");
        assert!(t.starts_with("# racks of the site\n---\n# the first rack\nschema: drydock/Rack/v1\nmetadata:\n  name: r1\n  labels:\n    a: b\ndata:\n"), "{t}");
        assert!(t.contains("\n# between\n---\nschema: drydock/Rack/v1\nmetadata:\n  name: r2\ndata: {location: {room: x}}  # r2 stays byte for byte\n"), "{t}");
        assert_eq!(e.outcomes, [Outcome::Updated]);
        let p = parse::parse_files(&e.files);
        assert!(p.messages.is_empty(), "{:?}", p.messages);
        assert_eq!(p.documents[0].data["location"]["room"], "y");
    }

    #[test]
    fn a_delete_removes_the_span_and_its_separator() {
        let e = apply(
            &[file("racks.yaml", RACKS)],
            &[Edit::Delete {
                kind: Kind::Rack,
                name: "r1".into(),
            }],
        )
        .unwrap();
        let t = text(&e, "racks.yaml");
        assert_eq!(t, "# racks of the site\n# between\n---\nschema: drydock/Rack/v1\nmetadata:\n  name: r2\ndata: {location: {room: x}}  # r2 stays byte for byte\n");
        let e = apply(
            &[file(
                "one.yaml",
                "---\nschema: drydock/Rack/v1\nmetadata: {name: r}\ndata: {}\n",
            )],
            &[Edit::Delete {
                kind: Kind::Rack,
                name: "r".into(),
            }],
        )
        .unwrap();
        assert!(e.files.is_empty());
        assert_eq!(e.changes, [("one.yaml".to_string(), None)]);
    }

    #[test]
    fn clone_and_create_append_beside_their_kind() {
        let e = apply(
            &[
                file("racks.yaml", RACKS),
                file(
                    "other.yaml",
                    "schema: drydock/Region/v1\nmetadata: {name: g}\ndata: {}\n",
                ),
            ],
            &[
                Edit::Clone {
                    kind: Kind::Rack,
                    from: "r1".into(),
                    to: "r3".into(),
                    change: None,
                },
                Edit::Create {
                    kind: Kind::Rack,
                    name: "r4".into(),
                    fields: Fields {
                        data: json!({}),
                        labels: Map::new(),
                    },
                },
                Edit::Create {
                    kind: Kind::Network,
                    name: "n".into(),
                    fields: Fields {
                        data: json!({"cidr": "10.0.0.0/24"}),
                        labels: Map::new(),
                    },
                },
            ],
        )
        .unwrap();
        let t = text(&e, "racks.yaml");
        assert!(t.starts_with(RACKS), "{t}");
        assert!(
            t.ends_with("---\nschema: drydock/Rack/v1\nmetadata:\n  name: r4\ndata: {}\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "---\nschema: drydock/Rack/v1\nmetadata:\n  name: r3\n  labels:\n    a: b\n"
            ),
            "{t}"
        );
        assert!(text(&e, "network.yaml").contains("cidr: 10.0.0.0/24"));
        assert_eq!(
            text(&e, "other.yaml"),
            "schema: drydock/Region/v1\nmetadata: {name: g}\ndata: {}\n"
        );
        assert!(matches!(
            apply(
                &[file("racks.yaml", RACKS)],
                &[Edit::Rename {
                    kind: Kind::Rack,
                    from: "r1".into(),
                    to: "r2".into()
                }]
            ),
            Err(EditError::Exists { .. })
        ));
        assert!(matches!(
            apply(
                &[file("racks.yaml", RACKS)],
                &[Edit::Delete {
                    kind: Kind::Rack,
                    name: "nope".into()
                }]
            ),
            Err(EditError::NotFound { .. })
        ));
    }
}
