//! Design files to documents with provenance (parse stage, codes `SW1nn`).

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::message::Message;
use super::yaml::{self, KeyProblem, Value};
use super::Kind;

/// One file of a design: its path relative to the design root and its bytes.
#[derive(Debug, Clone)]
pub struct DesignFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// A Drydock document with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: Kind,
    pub name: String,
    /// File path relative to the design root.
    pub file: String,
    /// 1-based line of the document's first line.
    pub line: u32,
    /// sha256 (hex) of the document's canonical JSON (keys sorted, no spaces).
    pub hash: String,
    /// The canonical JSON of the whole document, as stored in state.
    pub canonical: Arc<str>,
    /// The document's `data` (or legacy `spec`) as JSON, for the schema stage and
    /// typing; `design::build` empties it afterwards (the typed data and
    /// `canonical` carry everything).
    pub data: serde_json::Value,
    /// Where the document's text is, to find the line of a field when a
    /// message needs it (re-parsed on demand: keeping every tree would double
    /// the memory of a large site for the rare invalid field).
    origin: Origin,
    /// Written in the legacy `apiVersion`/`kind`/`spec` format.
    pub legacy: bool,
}

impl Document {
    /// The line of the field a JSON pointer into `data` names (or its nearest parent).
    pub fn line_of(&self, pointer: &str) -> u32 {
        let o = &self.origin;
        let Ok(docs) = yaml::parse_stream_at(&o.text[o.span.clone()], o.chunk_line - 1) else {
            return self.line;
        };
        match docs.into_iter().nth(o.index) {
            Some(d) => match d.root.get(o.data_key) {
                Some(data) => data.line_of_pointer(pointer),
                None => self.line,
            },
            None => self.line,
        }
    }

    /// `drydock/<Kind>/v1`.
    pub fn schema(&self) -> &'static str {
        self.kind.schema()
    }

    /// The canonical JSON of the whole document: `canonical`, or, once that
    /// was released ([`Document::release_canonical`]), made again from the
    /// document's text.
    pub fn canonical_text(&self) -> Arc<str> {
        if !self.canonical.is_empty() {
            return self.canonical.clone();
        }
        let o = &self.origin;
        let again = yaml::parse_stream_at(&o.text[o.span.clone()], o.chunk_line - 1)
            .ok()
            .and_then(|docs| docs.into_iter().nth(o.index))
            .map(|d| serde_json::to_string(&d.root.into_json(&mut Vec::new())).unwrap_or_default());
        Arc::from(again.unwrap_or_default())
    }

    /// Frees the canonical text (it can be made again from the document's
    /// text by [`Document::canonical_text`]).
    pub fn release_canonical(&mut self) {
        if !self.canonical.is_empty() {
            self.canonical = Arc::from("");
        }
    }

    /// This document as parsed from a chunk that started at `old_start` and
    /// now sits at `span` of `text`, starting at `start_line`.
    fn relocated(
        &self,
        text: &Arc<str>,
        span: std::ops::Range<usize>,
        start_line: u32,
        old_start: u32,
    ) -> Document {
        let mut d = self.clone();
        d.line = self.line - old_start + start_line;
        d.origin.text = text.clone();
        d.origin.span = span;
        d.origin.chunk_line = start_line;
        d
    }
}

/// The text a document was read from: its file's text, the byte range of the
/// chunk it was parsed in, the chunk's first line, its index in the chunk.
#[derive(Debug, Clone)]
struct Origin {
    text: Arc<str>,
    span: std::ops::Range<usize>,
    chunk_line: u32,
    index: usize,
    data_key: &'static str,
}

/// The documents and parse-stage messages of a set of files.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub messages: Vec<Message>,
}

/// Documents, each with what a per-document step made of it, and the
/// parse-stage messages (see [`parse_files_then`]).
#[derive(Debug)]
pub struct ParsedThen<T> {
    pub documents: Vec<(Document, T)>,
    pub messages: Vec<Message>,
}

impl<T> Default for ParsedThen<T> {
    fn default() -> Self {
        ParsedThen {
            documents: Vec::new(),
            messages: Vec::new(),
        }
    }
}

/// Parses every file, in path order. Never panics on any input.
pub fn parse_files(files: &[DesignFile]) -> Parsed {
    let p = parse_files_then(files, &|_: &mut Document| ());
    Parsed {
        documents: p.documents.into_iter().map(|(d, ())| d).collect(),
        messages: p.messages,
    }
}

/// Parses every file, in path order, running `then` on each document as soon
/// as it is parsed, on the same thread: a step that consumes the document's
/// JSON (schema check, typing) frees it while the rest is still parsing, so
/// the JSON of a whole large design is never held at once.
pub fn parse_files_then<T: Send + Sync + Clone>(
    files: &[DesignFile],
    then: &(dyn Fn(&mut Document) -> T + Sync),
) -> ParsedThen<T> {
    parse_files_cached(files, then, None)
}

/// What a parse keeps of each chunk of text (the documents between two
/// `---` lines) for the next parse: its documents and the results of the
/// per-document step, reused when a chunk of the same file has the same text
/// (sha256), wherever it now starts. Only chunks that parsed without a message
/// and whose step result `keep` accepts are kept. Each parse replaces the
/// entries with the chunks it saw, so the cache holds one design's worth.
pub struct ChunkCache<T> {
    entries: HashMap<ChunkKey, Arc<CachedChunk<T>>>,
    keep: fn(&T) -> bool,
    hits: usize,
    misses: usize,
}

struct CachedChunk<T> {
    start_line: u32,
    documents: Vec<(Document, T)>,
}

impl<T> ChunkCache<T> {
    /// An empty cache keeping the chunks whose every step result passes `keep`.
    pub fn new(keep: fn(&T) -> bool) -> Self {
        ChunkCache {
            entries: HashMap::new(),
            keep,
            hits: 0,
            misses: 0,
        }
    }

    /// Chunks the last parse took from the cache, and chunks it parsed.
    pub fn last_counts(&self) -> (usize, usize) {
        (self.hits, self.misses)
    }
}

/// [`parse_files_then`], reusing (and refreshing) `cache` when given.
pub fn parse_files_cached<T: Send + Sync + Clone>(
    files: &[DesignFile],
    then: &(dyn Fn(&mut Document) -> T + Sync),
    cache: Option<&mut ChunkCache<T>>,
) -> ParsedThen<T> {
    let mut order: Vec<&DesignFile> = files.iter().collect();
    order.sort_by(|a, b| a.path.cmp(&b.path));
    let old = cache.as_deref().map(|c| (&c.entries, c.keep));
    let per_file: Vec<(ParsedThen<T>, Vec<ChunkOutcome<T>>)> = order
        .par_iter()
        .map(|f| parse_file_then(f, then, old))
        .collect();
    let mut out = ParsedThen::default();
    let (mut hits, mut misses) = (0, 0);
    let mut entries = HashMap::new();
    for (p, outcomes) in per_file {
        out.documents.extend(p.documents);
        out.messages.extend(p.messages);
        for o in outcomes {
            match o {
                ChunkOutcome::Hit(key, c) => {
                    hits += 1;
                    entries.insert(key, c);
                }
                ChunkOutcome::Parsed(Some((key, c))) => {
                    misses += 1;
                    entries.insert(key, c);
                }
                ChunkOutcome::Parsed(None) => misses += 1,
            }
        }
    }
    if let Some(c) = cache {
        c.entries = entries;
        c.hits = hits;
        c.misses = misses;
    }
    out
}

/// What became of one chunk: taken from the cache, or parsed (and worth
/// keeping, or not).
enum ChunkOutcome<T> {
    Hit(ChunkKey, Arc<CachedChunk<T>>),
    Parsed(Option<(ChunkKey, Arc<CachedChunk<T>>)>),
}

/// A chunk's file and the sha256 of its text.
type ChunkKey = (String, [u8; 32]);

type CacheView<'a, T> = Option<(&'a HashMap<ChunkKey, Arc<CachedChunk<T>>>, fn(&T) -> bool)>;

/// Parses one file: every document of its YAML stream.
pub fn parse_file(file: &DesignFile) -> Parsed {
    let (p, _) = parse_file_then(file, &|_: &mut Document| (), None);
    Parsed {
        documents: p.documents.into_iter().map(|(d, ())| d).collect(),
        messages: p.messages,
    }
}

fn parse_file_then<T: Send + Sync + Clone>(
    file: &DesignFile,
    then: &(dyn Fn(&mut Document) -> T + Sync),
    cache: CacheView<'_, T>,
) -> (ParsedThen<T>, Vec<ChunkOutcome<T>>) {
    let mut out = ParsedThen::default();
    let text = match std::str::from_utf8(&file.bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + file.bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u32;
            out.messages.push(
                Message::error(
                    "SW102",
                    format!("file is not valid UTF-8 (byte {})", e.valid_up_to()),
                    "Save the file as UTF-8.",
                )
                .at(&file.path, line),
            );
            return (out, Vec::new());
        }
    };
    let shared: Arc<str> = Arc::from(text);
    let base = shared.as_ptr() as usize;
    let chunks: Vec<(u32, std::ops::Range<usize>)> = split_documents(&shared)
        .into_iter()
        .map(|(l, c)| {
            let start = c.as_ptr() as usize - base;
            (l, start..start + c.len())
        })
        .collect();
    let parse = |(l, r): &(u32, std::ops::Range<usize>)| {
        let Some((entries, keep)) = cache else {
            return (parse_chunk(&file.path, &shared, r.clone(), *l, then), None);
        };
        let key = (
            file.path.clone(),
            <[u8; 32]>::from(Sha256::digest(shared[r.clone()].as_bytes())),
        );
        if let Some(c) = entries.get(&key) {
            let docs = c
                .documents
                .iter()
                .map(|(d, t)| (d.relocated(&shared, r.clone(), *l, c.start_line), t.clone()))
                .collect();
            let p = ParsedThen {
                documents: docs,
                messages: Vec::new(),
            };
            return (p, Some(ChunkOutcome::Hit(key, c.clone())));
        }
        let p = parse_chunk(&file.path, &shared, r.clone(), *l, then);
        let worth = p.messages.is_empty() && p.documents.iter().all(|(_, t)| keep(t));
        let kept = worth.then(|| {
            // The cache keeps no canonical text: a document that must be
            // written again makes it from its text (`canonical_text`).
            let mut documents = p.documents.clone();
            for (d, _) in &mut documents {
                d.release_canonical();
            }
            let c = CachedChunk {
                start_line: *l,
                documents,
            };
            (key, Arc::new(c))
        });
        (p, Some(ChunkOutcome::Parsed(kept)))
    };
    let per_chunk: Vec<(ParsedThen<T>, Option<ChunkOutcome<T>>)> = if chunks.len() > 8 {
        chunks.par_iter().map(parse).collect()
    } else {
        chunks.iter().map(parse).collect()
    };
    let mut outcomes = Vec::new();
    for (p, o) in per_chunk {
        out.documents.extend(p.documents);
        out.messages.extend(p.messages);
        outcomes.extend(o);
    }
    (out, outcomes)
}

/// Parses one chunk of a stream (one or more documents) starting at `start_line`.
fn parse_chunk<T>(
    path: &str,
    text: &Arc<str>,
    span: std::ops::Range<usize>,
    start_line: u32,
    then: &(dyn Fn(&mut Document) -> T + Sync),
) -> ParsedThen<T> {
    let mut out = ParsedThen::default();
    let chunk = &text[span.clone()];
    let docs = match yaml::parse_stream_at(chunk, start_line - 1) {
        Ok(d) => d,
        Err(e) => {
            out.messages.push(parse_error_message(&e).at(path, e.line));
            return out;
        }
    };
    for (index, d) in docs.into_iter().enumerate() {
        let origin = Origin {
            text: text.clone(),
            span: span.clone(),
            chunk_line: start_line,
            index,
            data_key: "data",
        };
        let (doc, msgs) = envelope(path, d, origin);
        out.messages.extend(msgs);
        out.documents.extend(doc.map(|mut doc| {
            let t = then(&mut doc);
            (doc, t)
        }));
    }
    out
}

/// The message for a parse that stopped: a syntax error or a parser limit.
fn parse_error_message(e: &yaml::SyntaxError) -> Message {
    use yaml::ErrorKind;
    match e.kind {
        ErrorKind::Syntax => Message::error(
            "SW101",
            format!("YAML syntax error at column {}: {}", e.col, e.message),
            "Fix the YAML syntax at this line; `yamllint` shows the same position.",
        ),
        ErrorKind::TooDeep => Message::error(
            "SW115",
            format!("at column {}: {}", e.col, e.message),
            "Flatten the structure: no Drydock document nests more than a few levels.",
        ),
        ErrorKind::AliasBudget => Message::error(
            "SW116",
            format!(
                "at column {}: {} (a \"billion laughs\", or a large anchor aliased many times)",
                e.col, e.message
            ),
            "Write the repeated content out, or alias it fewer times.",
        ),
        ErrorKind::Merge => Message::error(
            "SW117",
            format!("at column {}: {}", e.col, e.message),
            "Give `<<` an alias of a mapping (`<<: *base`) or a list of them (`<<: [*a, *b]`).",
        ),
    }
}

/// The chunks a file's text is parsed in (see [`split_documents`]): each
/// chunk's first line (1-based) and its byte range. Design edits
/// (`design::edit`) replace and remove documents by these spans.
pub fn document_chunks(text: &str) -> Vec<(u32, std::ops::Range<usize>)> {
    let base = text.as_ptr() as usize;
    split_documents(text)
        .into_iter()
        .map(|(l, c)| {
            let start = c.as_ptr() as usize - base;
            (l, start..start + c.len())
        })
        .collect()
}

/// Splits a stream at the `---` lines that start documents, so that large files
/// parse in parallel and a syntax error costs only its own document. A line
/// starting with `---` (then space, tab or end of line) at column 0 always starts a
/// document in YAML (it ends any block scalar), so splitting there is exact. A file
/// with directives (`%YAML`, `%TAG`) is parsed whole.
fn split_documents(text: &str) -> Vec<(u32, &str)> {
    if text.starts_with('%') || text.contains("\n%") {
        return vec![(1, text)];
    }
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut line = 1u32;
    let mut pos = 0usize;
    let bytes = text.as_bytes();
    while pos < bytes.len() {
        let is_marker = bytes[pos..].starts_with(b"---")
            && matches!(
                bytes.get(pos + 3),
                None | Some(b' ' | b'\t' | b'\n' | b'\r')
            );
        if is_marker && pos > start && !only_comments(&text[start..pos]) {
            chunks.push((start_line, &text[start..pos]));
            start = pos;
            start_line = line;
        }
        match memchr_newline(&bytes[pos..]) {
            Some(i) => {
                pos += i + 1;
                line += 1;
            }
            None => break,
        }
    }
    chunks.push((start_line, &text[start..]));
    chunks
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

fn only_comments(s: &str) -> bool {
    s.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Reads a document's envelope; returns the Drydock document, if it is one.
fn envelope(
    file: &str,
    doc: yaml::YamlDocument,
    mut origin: Origin,
) -> (Option<Document>, Vec<Message>) {
    let mut msgs = Vec::new();
    let root = doc.root;
    let line = doc.line.max(1);
    let at = |m: Message| m.at(file, line);
    match &root.value {
        Value::Null => return (None, msgs),
        Value::Map(_) => {}
        _ => {
            msgs.push(at(Message::error(
                "SW103",
                "document is not a mapping",
                "A design document is a mapping with `schema`, `metadata` and `data`.",
            )));
            return (None, msgs);
        }
    }

    // Deckhand format: schema: <ns>/<Kind>/<version>.
    let (kind_name, version, data_key, legacy, schema_text) = if let Some(schema) =
        root.get("schema")
    {
        let Some(s) = schema.as_str() else {
            msgs.push(at(Message::error(
                "SW103",
                "`schema` is not a string",
                "Write `schema: drydock/<Kind>/v1`.",
            )));
            return (None, msgs);
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 3 || parts[0] != "drydock" {
            msgs.push(at(Message::info(
                "SW108",
                format!("document of schema `{s}` is not a Drydock document; skipped"),
                "Nothing to do: slipway reads only drydock/* documents.",
            )));
            return (None, msgs);
        }
        (
            parts[1].to_string(),
            parts[2].to_string(),
            "data",
            false,
            s.to_string(),
        )
    } else if let (Some(api), Some(kind)) = (root.get("apiVersion"), root.get("kind")) {
        let api = api.as_str().unwrap_or_default().to_string();
        let kind = kind.as_str().unwrap_or_default().to_string();
        // Drydock's legacy format used `drydock/v1` and `v1.0`; other apiVersions
        // (Kubernetes manifests, say) are not ours.
        let drydock_api = api.starts_with("drydock/") || api == "v1.0";
        if Kind::from_name(&kind).is_none() && !drydock_api {
            msgs.push(at(Message::info(
                "SW108",
                format!("document of apiVersion `{api}` kind `{kind}` is not a Drydock document; skipped"),
                "Nothing to do: slipway reads only Drydock documents.",
            )));
            return (None, msgs);
        }
        let schema_text = format!("drydock/{kind}/v1");
        (kind, "v1".to_string(), "spec", true, schema_text)
    } else {
        msgs.push(at(Message::warning(
            "SW110",
            "document has no `schema`; skipped",
            "Add `schema: drydock/<Kind>/v1`, or move the file out of the design directory.",
        )));
        return (None, msgs);
    };

    let Some(kind) = Kind::from_name(&kind_name).filter(|_| version == "v1") else {
        msgs.push(at(Message::error(
            "SW104",
            format!("unknown Drydock kind or version `{schema_text}`"),
            "Use one of drydock/{Region,Rack,NetworkLink,Network,HardwareProfile,HostProfile,BaremetalNode,BootAction}/v1.",
        )));
        return (None, msgs);
    };

    let metadata = root.get("metadata");
    let name = match metadata.and_then(|m| m.get("name")).map(|n| &n.value) {
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        _ => {
            msgs.push(at(Message::error(
                "SW105",
                format!("{} document has no `metadata.name` string", kind.name()),
                "Give the document a name under `metadata.name`.",
            )
            .about(kind.schema(), "Unknown")));
            return (None, msgs);
        }
    };

    if let Some(abstract_flag) = metadata
        .and_then(|m| m.get("layeringDefinition"))
        .and_then(|l| l.get("abstract"))
    {
        if abstract_flag.value == Value::Bool(true) {
            msgs.push(at(Message::info(
                "SW109",
                format!("abstract Deckhand document {}/{name} skipped", kind.name()),
                "Abstract documents are layering templates; slipway reads rendered (concrete) documents.",
            )
            .about(kind.schema(), &name)));
            return (None, msgs);
        }
    }
    if metadata.and_then(|m| m.get("substitutions")).is_some() {
        msgs.push(at(Message::info(
            "SW111",
            format!("{}/{name} declares Deckhand substitutions, which slipway does not resolve", kind.name()),
            "Render the site with Deckhand (or commit the substituted values) for these fields to be set.",
        )
        .about(kind.schema(), &name)));
    }

    let mut problems = Vec::new();
    let whole = root.into_json(&mut problems);
    for p in problems {
        match p {
            KeyProblem::NotAString { line, key } => msgs.push(
                Message::error(
                    "SW106",
                    format!("mapping key `{key}` is not a string (YAML reads it as a number, boolean or null)"),
                    "Quote the key, e.g. '0xffff': ...",
                )
                .about(kind.schema(), &name)
                .at(file, line),
            ),
            KeyProblem::Duplicate { line, key } => msgs.push(
                Message::warning(
                    "SW107",
                    format!("key `{key}` appears twice in one mapping; the last one is used"),
                    "Remove the duplicate key.",
                )
                .about(kind.schema(), &name)
                .at(file, line),
            ),
        }
    }
    let canonical = serde_json::to_string(&whole).unwrap_or_default();
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    let mut whole = whole;
    let data = whole
        .as_object_mut()
        .and_then(|m| m.remove(data_key))
        .unwrap_or(serde_json::Value::Null);
    origin.data_key = data_key;
    let doc = Document {
        kind,
        name,
        file: file.to_string(),
        line,
        hash,
        canonical: Arc::from(canonical),
        data,
        origin,
        legacy,
    };
    (Some(doc), msgs)
}

#[cfg(test)]
mod tests {

    #[test]
    fn canonical_text_is_made_again_the_same_once_released() {
        let p = parse_files(&[file(
            "# c\n---\ndata:\n  labels:\n    b: '2'\n    a: 1\nmetadata:\n  name: r\nschema: drydock/Rack/v1\n---\nschema: drydock/Rack/v1\nmetadata: {name: s}\ndata: {x: [1, two, ~]}\n",
        )]);
        assert_eq!(p.documents.len(), 2);
        for mut d in p.documents {
            let before = d.canonical.clone();
            assert!(!before.is_empty());
            d.release_canonical();
            assert!(d.canonical.is_empty());
            assert_eq!(d.canonical_text(), before);
        }
    }

    use super::*;

    fn file(text: &str) -> DesignFile {
        DesignFile {
            path: "site.yaml".into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn documents_keep_file_line_and_hash() {
        let p = parse_files(&[file(
            "# header\n---\nschema: drydock/Rack/v1\nmetadata:\n  name: r1\ndata:\n  labels: {a: b}\n---\nschema: deckhand/Passphrase/v1\nmetadata: {name: x}\ndata: y\n---\nschema: drydock/Rack/v1\nmetadata:\n  name: r2\ndata: {}\n",
        )]);
        assert_eq!(p.documents.len(), 2);
        assert_eq!(p.documents[0].line, 2);
        assert_eq!(p.documents[1].line, 12);
        assert_eq!(p.documents[0].line_of("/labels/a"), 7);
        assert_eq!(p.documents[0].hash.len(), 64);
        assert_ne!(p.documents[0].hash, p.documents[1].hash);
        assert!(p.messages.iter().any(|m| m.code == "SW108"));
    }

    #[test]
    fn hash_ignores_key_order_and_formatting() {
        let a = parse_files(&[file(
            "schema: drydock/Rack/v1\nmetadata: {name: r}\ndata: {labels: {a: '1', b: '2'}}\n",
        )]);
        let b = parse_files(&[file("data:\n  labels:\n    b: '2'\n    a: '1'\nmetadata:\n  name: r\nschema: drydock/Rack/v1\n")]);
        assert_eq!(a.documents[0].hash, b.documents[0].hash);
    }

    #[test]
    fn a_syntax_error_costs_only_its_document() {
        let p = parse_files(&[file(
            "schema: drydock/Rack/v1\nmetadata: {name: r1}\ndata: {}\n---\nschema: [\n---\nschema: drydock/Rack/v1\nmetadata: {name: r2}\ndata: {}\n",
        )]);
        assert_eq!(p.documents.len(), 2);
        let err = p.messages.iter().find(|m| m.code == "SW101").unwrap();
        assert!(err.source.as_ref().unwrap().line >= 5);
    }

    #[test]
    fn legacy_documents_are_read_from_spec() {
        let p = parse_files(&[file(
            "apiVersion: 'drydock/v1'\nkind: Rack\nmetadata:\n  name: r1\nspec:\n  labels: {}\n",
        )]);
        assert_eq!(p.documents.len(), 1);
        assert!(p.documents[0].legacy);
    }

    #[test]
    fn unknown_kinds_and_missing_names_are_errors() {
        let p = parse_files(&[file("schema: drydock/FooBar/v1\nmetadata: {name: x}\ndata: {}\n---\nschema: drydock/Rack/v1\ndata: {}\n")]);
        let codes: Vec<_> = p.messages.iter().map(|m| m.code.as_str()).collect();
        assert_eq!(codes, ["SW104", "SW105"]);
    }
}
