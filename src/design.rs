//! Design documents: parse, schema check, typed model, effective nodes and
//! semantic rules. Pure: no I/O beyond the bytes handed in.

pub mod edit;
pub mod effective;
pub mod filter;
pub mod message;
pub mod model;
pub mod oob;
pub mod parse;
pub mod pipeline;
pub mod rules;
pub mod schema;
pub mod yaml;

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

pub use effective::EffectiveNode;
pub use message::{DocRef, Level, Message, SourceRef, Status};
pub use parse::{DesignFile, Document};

use model::*;

/// The eight Drydock document kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Region,
    Rack,
    NetworkLink,
    Network,
    HardwareProfile,
    HostProfile,
    BaremetalNode,
    BootAction,
}

impl Kind {
    /// Every kind, in the order a design is usually written.
    pub const ALL: [Kind; 8] = [
        Kind::Region,
        Kind::Rack,
        Kind::NetworkLink,
        Kind::Network,
        Kind::HardwareProfile,
        Kind::HostProfile,
        Kind::BaremetalNode,
        Kind::BootAction,
    ];

    /// The kind's name as written in `schema:`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Region => "Region",
            Kind::Rack => "Rack",
            Kind::NetworkLink => "NetworkLink",
            Kind::Network => "Network",
            Kind::HardwareProfile => "HardwareProfile",
            Kind::HostProfile => "HostProfile",
            Kind::BaremetalNode => "BaremetalNode",
            Kind::BootAction => "BootAction",
        }
    }

    /// `drydock/<Kind>/v1`.
    pub fn schema(self) -> &'static str {
        match self {
            Kind::Region => "drydock/Region/v1",
            Kind::Rack => "drydock/Rack/v1",
            Kind::NetworkLink => "drydock/NetworkLink/v1",
            Kind::Network => "drydock/Network/v1",
            Kind::HardwareProfile => "drydock/HardwareProfile/v1",
            Kind::HostProfile => "drydock/HostProfile/v1",
            Kind::BaremetalNode => "drydock/BaremetalNode/v1",
            Kind::BootAction => "drydock/BootAction/v1",
        }
    }

    /// The kind of a name from `schema:` or legacy `kind:`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A typed document: its name, index into [`Design::documents`] and data.
#[derive(Debug, Clone)]
pub struct Entity<T> {
    pub name: String,
    pub doc: usize,
    pub data: Arc<T>,
}

/// A design whose documents passed the parse and schema stages.
#[derive(Debug, Default)]
pub struct Design {
    pub documents: Vec<Document>,
    pub regions: Vec<Entity<RegionData>>,
    pub racks: Vec<Entity<RackData>>,
    pub links: Vec<Entity<NetworkLinkData>>,
    pub networks: Vec<Entity<NetworkData>>,
    pub hardware_profiles: Vec<Entity<HardwareProfileData>>,
    pub host_profiles: Vec<Entity<HostData>>,
    pub nodes: Vec<Entity<HostData>>,
    pub boot_actions: Vec<Entity<BootActionData>>,
    index: HashMap<(Kind, String), usize>,
    /// The nodes with their profiles applied, compiled on first use and kept:
    /// the rules, planning and boot data all read the same ones.
    effective: std::sync::OnceLock<Vec<Arc<EffectiveNode>>>,
    /// Which nodes each BootAction targets, and the reverse, computed once
    /// from the effective nodes: the rules, rendering and planning all read it.
    targets: std::sync::OnceLock<Targets>,
}

/// The BootAction ↔ node targeting of a design (see [`Design::boot_action_targets`]).
#[derive(Debug, Default)]
struct Targets {
    by_action: Vec<Vec<usize>>,
    by_node: Vec<Vec<usize>>,
}

impl Design {
    /// Index (into the kind's list) of the first document of a kind and name.
    fn find(&self, kind: Kind, name: &str) -> Option<usize> {
        self.index.get(&(kind, name.to_string())).copied()
    }

    /// The NetworkLink of that name.
    pub fn link(&self, name: &str) -> Option<&Entity<NetworkLinkData>> {
        self.find(Kind::NetworkLink, name).map(|i| &self.links[i])
    }

    /// The Network of that name.
    pub fn network(&self, name: &str) -> Option<&Entity<NetworkData>> {
        self.find(Kind::Network, name).map(|i| &self.networks[i])
    }

    /// The Rack of that name.
    pub fn rack(&self, name: &str) -> Option<&Entity<RackData>> {
        self.find(Kind::Rack, name).map(|i| &self.racks[i])
    }

    /// The HardwareProfile of that name.
    pub fn hardware_profile(&self, name: &str) -> Option<&Entity<HardwareProfileData>> {
        self.find(Kind::HardwareProfile, name)
            .map(|i| &self.hardware_profiles[i])
    }

    /// The HostProfile of that name.
    pub fn host_profile(&self, name: &str) -> Option<&Entity<HostData>> {
        self.find(Kind::HostProfile, name)
            .map(|i| &self.host_profiles[i])
    }

    /// The BaremetalNode of that name.
    pub fn node(&self, name: &str) -> Option<&Entity<HostData>> {
        self.find(Kind::BaremetalNode, name).map(|i| &self.nodes[i])
    }

    /// The BootAction of that name.
    pub fn boot_action(&self, name: &str) -> Option<&Entity<BootActionData>> {
        self.find(Kind::BootAction, name)
            .map(|i| &self.boot_actions[i])
    }

    /// A message about a document, pointing at the field `pointer` (into `data`).
    pub fn msg_at(&self, mut m: Message, doc: usize, pointer: &str) -> Message {
        let d = &self.documents[doc];
        m = m.about(d.schema(), &d.name);
        let line = d.line_of(pointer);
        m.at(&d.file, line)
    }

    /// Frees each document's canonical text (`Document::canonical`, emptied)
    /// once it is stored: a served design needs its typed data, not the text.
    pub fn release_canonical(&mut self) {
        for d in &mut self.documents {
            d.release_canonical();
        }
    }

    /// Every node with its profiles applied, in document order; each
    /// host-profile chain is compiled once and shared by its nodes.
    pub fn effective_nodes(&self) -> &[Arc<EffectiveNode>] {
        self.effective
            .get_or_init(|| effective::compile_all(self, None))
    }

    /// For each BootAction (in [`Design::boot_actions`] order), the indices
    /// into [`Design::effective_nodes`] of the nodes its `node_filter`
    /// selects, ascending. The one place targeting is computed.
    pub fn boot_action_targets(&self) -> &[Vec<usize>] {
        &self.targets().by_action
    }

    /// For each node (in [`Design::effective_nodes`] order), the indices of
    /// the BootActions that target it, ascending.
    pub fn node_boot_actions(&self) -> &[Vec<usize>] {
        &self.targets().by_node
    }

    fn targets(&self) -> &Targets {
        self.targets.get_or_init(|| {
            let nodes = self.effective_nodes();
            let by_action: Vec<Vec<usize>> = self
                .boot_actions
                .iter()
                .map(|ba| filter::select(self, nodes, ba.data.node_filter.as_ref()))
                .collect();
            let mut by_node = vec![Vec::new(); nodes.len()];
            for (bi, t) in by_action.iter().enumerate() {
                for &n in t {
                    by_node[n].push(bi);
                }
            }
            Targets { by_action, by_node }
        })
    }
}

/// The outcome of validating a set of design files.
#[derive(Debug)]
pub struct Validation {
    /// The design, when parse and schema stages left documents to type.
    pub design: Option<Design>,
    pub messages: Vec<Message>,
}

impl Validation {
    /// True when no message is an error.
    pub fn is_valid(&self) -> bool {
        !self.messages.iter().any(|m| m.error)
    }

    /// The number of error messages.
    pub fn error_count(&self) -> usize {
        self.messages.iter().filter(|m| m.error).count()
    }

    /// Drydock's Status object for this validation.
    pub fn status(&self) -> Status {
        Status::from_messages(&self.messages)
    }
}

/// Byte caps on a design's files, checked by the parse stage and, before a
/// file is read at all, by [`crate::source`]. Nesting depth and alias
/// expansion have fixed limits in [`yaml`] ([`yaml::MAX_DEPTH`],
/// [`yaml::alias_budget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest design file, in bytes (SW113).
    pub max_file_bytes: u64,
    /// Largest design, all its files together, in bytes (SW114).
    pub max_design_bytes: u64,
}

/// Default of [`Limits::max_file_bytes`]: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// Default of [`Limits::max_design_bytes`]: 256 MiB.
pub const DEFAULT_MAX_DESIGN_BYTES: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_design_bytes: DEFAULT_MAX_DESIGN_BYTES,
        }
    }
}

impl Limits {
    /// SW113: the file at `path` holds `size` bytes, more than the cap.
    pub fn file_too_large(&self, path: &str, size: u64) -> Message {
        Message::error(
            "SW113",
            format!(
                "design file is {size} bytes; expected at most {} bytes (the per-file cap)",
                self.max_file_bytes
            ),
            "Split the file, remove what is not design, or raise the cap (--max-file-size).",
        )
        .at(path, 1)
    }

    /// SW114: the files up to `path` hold `total` bytes together, more than the cap.
    pub fn design_too_large(&self, path: &str, total: u64) -> Message {
        Message::error(
            "SW114",
            format!(
                "the design's files reach {total} bytes at this file; expected at most {} bytes in all (the per-design cap)",
                self.max_design_bytes
            ),
            "Remove files that are not design from the design directory, or raise the cap (--max-design-size).",
        )
        .at(path, 1)
    }

    /// The cap the first file over it breaks, in path order, given each
    /// file's path and size; `None` when all fit.
    pub fn check_sizes<'a>(
        &self,
        sizes: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Option<Message> {
        let mut total = 0u64;
        for (path, size) in sizes {
            if size > self.max_file_bytes {
                return Some(self.file_too_large(path, size));
            }
            total = total.saturating_add(size);
            if total > self.max_design_bytes {
                return Some(self.design_too_large(path, total));
            }
        }
        None
    }
}

/// Parse, schema and typing results of documents kept from one validation to
/// the next (see [`crate::validate_cached`]).
pub struct ValidationCache {
    chunks: parse::ChunkCache<Result<Typed, Vec<Message>>>,
    /// The compiled nodes of the last design the rules ran on.
    previous: Option<effective::Previous>,
    /// The byte caps every validation through this cache applies.
    limits: Limits,
}

impl Default for ValidationCache {
    fn default() -> Self {
        ValidationCache::with_limits(Limits::default())
    }
}

impl std::fmt::Debug for ValidationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, misses) = self.chunks.last_counts();
        f.debug_struct("ValidationCache")
            .field("last_hits", &hits)
            .field("last_misses", &misses)
            .finish()
    }
}

impl ValidationCache {
    /// An empty cache whose validations apply `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        ValidationCache {
            chunks: parse::ChunkCache::new(Result::is_ok),
            previous: None,
            limits,
        }
    }

    /// The byte caps its validations apply.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Document chunks the last validation reused, and chunks it parsed.
    pub fn last_counts(&self) -> (usize, usize) {
        self.chunks.last_counts()
    }
}

/// Runs the design's stages over its files (byte caps, parse, schema, typing,
/// the semantic rules), reusing through `cache` the parse, schema and typing
/// results of every document whose text is unchanged since the validation
/// that filled it (and refreshing it): a commit that changes one document
/// parses and types that document alone, and compiles again only the nodes
/// whose document (or host profiles) changed. The cross-document rules still
/// run over the whole design. Never panics.
///
/// Templates are not checked here (the template engine is `render`'s): this
/// is the first part of [`crate::validate`], which every caller uses. The
/// flag says whether the semantic rules ran (no earlier error), and so
/// whether the template checks should.
pub fn validate_documents(
    files: &[DesignFile],
    cache: Option<&mut ValidationCache>,
    limits: &Limits,
) -> (Validation, bool) {
    validate_with(files, cache, limits)
}

fn validate_with(
    files: &[DesignFile],
    mut cache: Option<&mut ValidationCache>,
    limits: &Limits,
) -> (Validation, bool) {
    // Over a cap, nothing is parsed: the size alone makes the design invalid.
    let mut order: Vec<&DesignFile> = files.iter().collect();
    order.sort_by(|a, b| a.path.cmp(&b.path));
    let sizes = order
        .iter()
        .map(|f| (f.path.as_str(), f.bytes.len() as u64));
    if let Some(m) = limits.check_sizes(sizes) {
        let v = Validation {
            design: Some(Design::default()),
            messages: vec![m, rules_not_run(1).at("-", 0)],
        };
        return (v, false);
    }
    // Each document is schema-checked and typed right after it is parsed, and
    // its JSON freed: a large design never holds every document's JSON at once.
    let parsed = parse::parse_files_cached(
        files,
        &check_and_type,
        cache.as_deref_mut().map(|c| &mut c.chunks),
    );
    let mut messages = parsed.messages;
    if parsed.documents.is_empty() && !messages.iter().any(|m| m.error) {
        messages.push(no_drydock_document(files));
    }
    let (design, typed_msgs) = assemble(parsed.documents);
    if let Some(c) = cache {
        let nodes = effective::compile_all(&design, c.previous.as_ref());
        let _ = design.effective.set(nodes);
        c.previous = Some(effective::Previous::of(&design));
    }
    messages.extend(typed_msgs);
    let blocking = messages.iter().filter(|m| m.error).count();
    let rules_ran = blocking == 0;
    if !rules_ran {
        messages.push(rules_not_run(blocking));
    } else {
        messages.extend(rules::check(&design));
    }
    // Every message has a source; one about the design as a whole (no networks,
    // semantic stage skipped) points at "-", line 0.
    for m in messages.iter_mut().filter(|m| m.source.is_none()) {
        m.source = Some(SourceRef {
            file: "-".to_string(),
            line: 0,
        });
    }
    sort_messages(&mut messages);
    let v = Validation {
        design: Some(design),
        messages,
    };
    (v, rules_ran)
}

/// SW300: the semantic stage was skipped because of earlier errors.
fn rules_not_run(blocking: usize) -> Message {
    Message::info(
        "SW300",
        format!("semantic rules not run: the parse and schema stages found {blocking} error(s)"),
        "Fix the errors above; the cross-document rules run once every document is well-formed.",
    )
}

/// SW112: the files hold no Drydock document, which would empty the site.
fn no_drydock_document(files: &[DesignFile]) -> Message {
    let mut names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    names.sort_unstable();
    let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    let more = names.len().saturating_sub(5);
    let read = match (names.len(), more) {
        (0, _) => "no design files".to_string(),
        (n, 0) => format!("{n} file(s): {shown}"),
        (n, m) => format!("{n} file(s): {shown} and {m} more"),
    };
    Message::error(
        "SW112",
        format!("the design holds no Drydock document (expected at least one `schema: drydock/<Kind>/v1` document; read {read})"),
        "Commit the Drydock documents under the design root, or point --design-dir at them: applying a design without any would delete every node.",
    )
}

/// Orders messages by file, line, then code, so output is stable.
pub fn sort_messages(messages: &mut [Message]) {
    messages.sort_by(|a, b| {
        let ka = (
            a.source.as_ref().map(|s| (s.file.as_str(), s.line)),
            &a.code,
        );
        let kb = (
            b.source.as_ref().map(|s| (s.file.as_str(), s.line)),
            &b.code,
        );
        ka.cmp(&kb)
    });
}

/// Schema-checks each document and types the valid ones.
pub fn build(documents: Vec<Document>) -> (Design, Vec<Message>) {
    use rayon::prelude::*;
    let mut documents = documents;
    let typed: Vec<Result<Typed, Vec<Message>>> =
        documents.par_iter_mut().map(check_and_type).collect();
    assemble(documents.into_iter().zip(typed).collect())
}

/// Schema-checks one document and types it when valid; frees its JSON (the
/// typed data and the canonical text carry everything after this).
fn check_and_type(doc: &mut Document) -> Result<Typed, Vec<Message>> {
    let errs = schema::check(doc);
    let t = if !errs.is_empty() {
        Err(errs)
    } else {
        Typed::read(doc).map_err(|e| {
            vec![Message::error(
                "SW202",
                format!("{} cannot be read: {e}", doc.kind.name()),
                "Give the field a value of the type Drydock expects.",
            )
            .about(doc.schema(), &doc.name)
            .at(&doc.file, doc.line)]
        })
    };
    doc.data = serde_json::Value::Null;
    t
}

/// Builds the design from typed documents, in document order.
fn assemble(documents: Vec<(Document, Result<Typed, Vec<Message>>)>) -> (Design, Vec<Message>) {
    let mut design = Design::default();
    let mut messages = Vec::new();
    let mut docs = Vec::with_capacity(documents.len());
    for (i, (doc, t)) in documents.into_iter().enumerate() {
        let t = match t {
            Ok(t) => t,
            Err(errs) => {
                messages.extend(errs);
                docs.push(doc);
                continue;
            }
        };
        let name = doc.name.clone();
        let pos = match t {
            Typed::Region(d) => push(&mut design.regions, name, i, d),
            Typed::Rack(d) => push(&mut design.racks, name, i, d),
            Typed::NetworkLink(d) => push(&mut design.links, name, i, d),
            Typed::Network(d) => push(&mut design.networks, name, i, d),
            Typed::HardwareProfile(d) => push(&mut design.hardware_profiles, name, i, d),
            Typed::HostProfile(d) => push(&mut design.host_profiles, name, i, d),
            Typed::BaremetalNode(d) => push(&mut design.nodes, name, i, d),
            Typed::BootAction(d) => push(&mut design.boot_actions, name, i, d),
        };
        design
            .index
            .entry((doc.kind, doc.name.clone()))
            .or_insert(pos);
        docs.push(doc);
    }
    design.documents = docs;
    (design, messages)
}

/// A document's data, typed by its kind (shared: a cached document's typed
/// data is reused, not copied, by the next design).
#[derive(Clone)]
enum Typed {
    Region(Arc<RegionData>),
    Rack(Arc<RackData>),
    NetworkLink(Arc<NetworkLinkData>),
    Network(Arc<NetworkData>),
    HardwareProfile(Arc<HardwareProfileData>),
    HostProfile(Arc<HostData>),
    BaremetalNode(Arc<HostData>),
    BootAction(Arc<BootActionData>),
}

impl Typed {
    fn read(doc: &Document) -> Result<Typed, serde_json::Error> {
        fn de<T: DeserializeOwned>(v: &serde_json::Value) -> Result<Arc<T>, serde_json::Error> {
            // `data: ~` reads as an empty mapping (the schema stage has already
            // rejected it where that matters).
            if v.is_null() {
                T::deserialize(&serde_json::Value::Object(Default::default())).map(Arc::new)
            } else {
                T::deserialize(v).map(Arc::new)
            }
        }
        let d = &doc.data;
        Ok(match doc.kind {
            Kind::Region => Typed::Region(de(d)?),
            Kind::Rack => Typed::Rack(de(d)?),
            Kind::NetworkLink => Typed::NetworkLink(de(d)?),
            Kind::Network => Typed::Network(de(d)?),
            Kind::HardwareProfile => Typed::HardwareProfile(de(d)?),
            Kind::HostProfile => Typed::HostProfile(de(d)?),
            Kind::BaremetalNode => Typed::BaremetalNode(de(d)?),
            Kind::BootAction => Typed::BootAction(de(d)?),
        })
    }
}

fn push<T>(list: &mut Vec<Entity<T>>, name: String, doc: usize, data: Arc<T>) -> usize {
    list.push(Entity { name, doc, data });
    list.len() - 1
}
