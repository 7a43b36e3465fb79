//! Boot-action templates: the only user of `minijinja`.
//!
//! Templates are compiled once per revision into a [`Templates`] set and then
//! rendered many times, in parallel if the caller wishes (the set is `Sync`).
//! Undefined variables are errors (`UndefinedBehavior::Strict`): a template
//! that would print an empty string or `None` on some node in Drydock fails
//! validation in slipway instead. Like Jinja2's default, the template's final
//! newline is dropped, so output matches Drydock's.

use std::collections::BTreeMap;
use std::fmt;

use std::sync::Arc;

use minijinja::value::{Enumerator, Object};
use minijinja::{Environment, UndefinedBehavior, Value};

use super::context::{
    ActionValues, InterfaceContext, NetworkContext, NodeContext, TemplateContext,
};

/// A compile or render failure, with the template line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What went wrong, in minijinja's words.
    pub message: String,
    /// 1-based line in the template source.
    pub line: Option<usize>,
    /// True when the failure is an undefined variable or attribute.
    pub undefined: bool,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} (template line {l})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        let undefined = matches!(e.kind(), minijinja::ErrorKind::UndefinedError);
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        TemplateError {
            message,
            line: e.line(),
            undefined,
        }
    }
}

/// A variable a template reads, as its dotted path (`node.network.mgmt.ip`).
pub type VarPath = Vec<String>;

/// Filters that succeed on any defined value of a given type, so a template
/// using only them fails or not by the types of what it reads alone.
const TOTAL_FILTERS: &[&str] = &[
    "join",
    "lower",
    "upper",
    "trim",
    "string",
    "length",
    "title",
    "capitalize",
];

/// The variables of a *simple* template, or `None` when it is not simple.
///
/// Simple: no statements (`{% ... %}`), and every expression is a dotted
/// variable path, optionally piped through [`TOTAL_FILTERS`] with
/// string-literal arguments. Whether such a template renders under strict
/// undefined depends only on which of its paths are defined and of which type,
/// so callers can render it once per distinct answer instead of once per node.
pub fn simple_paths(source: &str) -> Option<Vec<VarPath>> {
    let mut paths: Vec<VarPath> = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.as_bytes().first() {
            Some(b'%') => return None,
            Some(b'#') => {
                let end = after.find("#}")?;
                rest = &after[end + 2..];
            }
            Some(b'{') => {
                let end = after.find("}}")?;
                let expr = after[1..end].trim_start_matches('-').trim_end_matches('-');
                let path = simple_expression(expr.trim())?;
                if !paths.contains(&path) {
                    paths.push(path);
                }
                rest = &after[end + 2..];
            }
            _ => rest = after,
        }
    }
    Some(paths)
}

/// The path of `a.b.c | filter("x") | filter`, if the expression has that shape.
fn simple_expression(expr: &str) -> Option<VarPath> {
    let mut parts = expr.split('|');
    let path: VarPath = parts
        .next()?
        .trim()
        .split('.')
        .map(|seg| is_ident(seg).then(|| seg.to_string()))
        .collect::<Option<_>>()?;
    for filter in parts {
        let filter = filter.trim();
        let (name, args) = match filter.split_once('(') {
            Some((n, a)) => (n.trim(), Some(a.strip_suffix(')')?)),
            None => (filter, None),
        };
        if !TOTAL_FILTERS.contains(&name) {
            return None;
        }
        if let Some(args) = args {
            if !string_literals(args) {
                return None;
            }
        }
    }
    Some(path)
}

/// True for a comma-separated list of plain `"..."` / `'...'` literals.
fn string_literals(args: &str) -> bool {
    let mut rest = args.trim();
    while !rest.is_empty() {
        let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return false;
        };
        let Some(end) = rest[1..].find(q) else {
            return false;
        };
        if rest[1..1 + end].contains('\\') {
            return false;
        }
        rest = rest[end + 2..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return false,
        }
    }
    true
}

fn is_ident(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Instructions one render may execute before it is stopped.
pub const FUEL: u64 = 1_000_000;

/// A set of compiled templates, addressed by name.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// An empty set with slipway's settings (strict undefined).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Drydock renders with Jinja2, so templates call Python methods (`labels.items()`).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Asset content is not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // A design is untrusted input: a template with nested loops must not
        // stall validation. Real boot-action templates use a few hundred
        // instructions; this allows a thousand times that.
        env.set_fuel(Some(FUEL));
        // Name the undefined variable in errors in release builds too.
        env.set_debug(true);
        Templates { env }
    }

    /// Compiles `source` under `name`; a syntax error is returned, not stored.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), TemplateError> {
        self.env
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(TemplateError::from)
    }

    /// Renders a compiled template with a prepared context.
    pub fn render(&self, name: &str, ctx: &RenderContext) -> Result<String, TemplateError> {
        self.get(name)?.render(ctx)
    }

    /// A compiled template, to render many times without looking it up again.
    pub fn get(&self, name: &str) -> Result<Compiled<'_>, TemplateError> {
        Ok(Compiled(self.env.get_template(name)?))
    }
}

/// One compiled template of a [`Templates`] set.
pub struct Compiled<'t>(minijinja::Template<'t, 't>);

impl Compiled<'_> {
    /// Renders with a prepared context.
    pub fn render(&self, ctx: &RenderContext) -> Result<String, TemplateError> {
        Ok(self.0.render(&ctx.0)?)
    }
}

/// The `action` half of a context, converted once and shared by every render.
#[derive(Debug, Clone)]
pub struct PreparedAction(Value);

impl PreparedAction {
    /// Converts an action's values.
    pub fn new(action: &ActionValues) -> Self {
        let mut m = BTreeMap::new();
        m.insert(
            "action_id".to_string(),
            Value::from(action.action_id.as_str()),
        );
        m.insert(
            "action_key".to_string(),
            Value::from(action.action_key.as_str()),
        );
        m.insert(
            "report_url".to_string(),
            Value::from(action.report_url.as_str()),
        );
        m.insert(
            "design_ref".to_string(),
            Value::from(action.design_ref.as_str()),
        );
        PreparedAction(Value::from(m))
    }
}

/// A [`TemplateContext`] ready for any number of renders. The node half is
/// exposed lazily (only the fields a template reads are converted), which
/// keeps rendering every template for 10,000 nodes cheap.
#[derive(Debug, Clone)]
pub struct RenderContext(Value);

impl RenderContext {
    /// Prepares a node's context and an action's values.
    pub fn new(ctx: &TemplateContext) -> Self {
        Self::for_node(ctx.node.clone(), &PreparedAction::new(&ctx.action))
    }

    /// Prepares a node's context with an already converted action.
    pub fn for_node(node: NodeContext, action: &PreparedAction) -> Self {
        let mut top = BTreeMap::new();
        top.insert(
            "node".to_string(),
            Value::from_object(NodeObject(Arc::new(node))),
        );
        top.insert("action".to_string(), action.0.clone());
        RenderContext(Value::from(top))
    }
}

/// `node`, backed by the context it was made from.
#[derive(Debug)]
struct NodeObject(Arc<NodeContext>);

const NODE_FIELDS: &[&str] = &[
    "hostname",
    "domain",
    "tags",
    "labels",
    "network",
    "interfaces",
];

impl Object for NodeObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let n = &self.0;
        Some(match key {
            "hostname" => Value::from(n.hostname.as_str()),
            "domain" => Value::from(n.domain.as_str()),
            "tags" => Value::from_iter(n.tags.iter().map(|t| Value::from(t.as_str()))),
            "labels" => Value::from_object(NodeMap(n.clone(), Part::Labels)),
            "network" => Value::from_object(NodeMap(n.clone(), Part::Network)),
            "interfaces" => Value::from_object(NodeMap(n.clone(), Part::Interfaces)),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(NODE_FIELDS)
    }
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Labels,
    Network,
    Interfaces,
}

/// `node.labels`, `node.network` or `node.interfaces`.
#[derive(Debug)]
struct NodeMap(Arc<NodeContext>, Part);

impl Object for NodeMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let n = &self.0;
        match self.1 {
            Part::Labels => n.labels.get(key).map(|v| Value::from(v.as_str())),
            Part::Network => n
                .network
                .keys()
                .position(|k| k == key)
                .map(|i| Value::from_object(NetworkEntry(n.clone(), i))),
            Part::Interfaces => n.interfaces.get(key).map(interface_value),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let n = &self.0;
        let keys: Vec<Value> = match self.1 {
            Part::Labels => n.labels.keys().map(|k| Value::from(k.as_str())).collect(),
            Part::Network => n.network.keys().map(|k| Value::from(k.as_str())).collect(),
            Part::Interfaces => n
                .interfaces
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        };
        Enumerator::Values(keys)
    }
}

/// `node.network.<net>`: the `i`-th entry of the node's network map.
#[derive(Debug)]
struct NetworkEntry(Arc<NodeContext>, usize);

impl NetworkEntry {
    fn entry(&self) -> Option<&NetworkContext> {
        self.0.network.values().nth(self.1)
    }
}

impl Object for NetworkEntry {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let e = self.entry()?;
        Some(match key {
            "ip" => Value::from(e.ip.as_str()),
            "cidr" => Value::from(e.cidr.as_deref()),
            "dns_suffix" => Value::from(e.dns_suffix.as_deref()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["ip", "cidr", "dns_suffix"])
    }
}

fn interface_value(i: &InterfaceContext) -> Value {
    let mut m = BTreeMap::new();
    m.insert("sriov".to_string(), Value::from(i.sriov));
    if let Some(v) = i.vf_count {
        m.insert("vf_count".to_string(), Value::from(v));
    }
    if let Some(t) = i.trustedmode {
        m.insert("trustedmode".to_string(), Value::from(t));
    }
    Value::from(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RenderContext {
        let node = NodeContext {
            hostname: "n1".into(),
            domain: "example.com".into(),
            tags: vec!["a".into(), "b".into()],
            labels: [("role".to_string(), "compute".to_string())].into(),
            network: BTreeMap::new(),
            interfaces: BTreeMap::new(),
        };
        RenderContext::for_node(node, &PreparedAction::new(&ActionValues::placeholder()))
    }

    #[test]
    fn renders_and_drops_final_newline_like_jinja2() {
        let mut t = Templates::new();
        t.add(
            "a",
            "{{ node.hostname }}.{{ node.domain }} {{ node.tags | join(',') }}\n",
        )
        .unwrap();
        assert_eq!(t.render("a", &ctx()).unwrap(), "n1.example.com a,b");
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let mut t = Templates::new();
        t.add("a", "{{ node.labels.zone }}").unwrap();
        let e = t.render("a", &ctx()).unwrap_err();
        assert!(e.undefined, "{e}");
    }

    #[test]
    fn maps_iterate_like_dicts() {
        let mut t = Templates::new();
        t.add("a", "{% for k in node.labels %}{{ k }}={{ node.labels[k] }}{% endfor %} {{ node.labels | length }}")
            .unwrap();
        assert_eq!(t.render("a", &ctx()).unwrap(), "role=compute 1");
    }

    #[test]
    fn runaway_template_is_stopped() {
        let mut t = Templates::new();
        t.add(
            "a",
            "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
        assert!(t.render("a", &ctx()).is_err());
    }

    #[test]
    fn simple_templates_are_recognised() {
        let p = simple_paths("a {{ node.hostname }} {{- node.tags | join(\",\") -}} {# c #} {{ action.action_id }}\n")
            .unwrap();
        assert_eq!(
            p,
            vec![
                vec!["node".to_string(), "hostname".to_string()],
                vec!["node".to_string(), "tags".to_string()],
                vec!["action".to_string(), "action_id".to_string()],
            ]
        );
        assert_eq!(simple_paths("GENSITE_LITERAL='{ not }'"), Some(vec![]));
        for not_simple in [
            "{% if x %}{% endif %}",
            "{{ node.labels['role'] }}",
            "{{ node.tags | map('upper') }}",
            "{{ node.tags.0 }}",
            "{{ x + 1 }}",
            "{{ node.hostname",
        ] {
            assert_eq!(simple_paths(not_simple), None, "{not_simple}");
        }
    }

    #[test]
    fn syntax_error_is_reported_at_compile() {
        let mut t = Templates::new();
        let e = t.add("a", "line\n{% if %}").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
