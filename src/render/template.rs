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
        // Asset content is not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
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
        let tpl = self.env.get_template(name)?;
        Ok(tpl.render(&ctx.0)?)
    }
}

/// A [`TemplateContext`] converted once for any number of renders.
#[derive(Debug, Clone)]
pub struct RenderContext(Value);

impl RenderContext {
    /// Converts a node's context and an action's values.
    pub fn new(ctx: &TemplateContext) -> Self {
        Self::from_parts(&ctx.node, &ctx.action)
    }

    /// Like [`RenderContext::new`], without building a [`TemplateContext`].
    pub fn from_parts(node: &NodeContext, action: &ActionValues) -> Self {
        let mut top = BTreeMap::new();
        top.insert("node".to_string(), node_value(node));
        top.insert("action".to_string(), action_value(action));
        RenderContext(Value::from(top))
    }
}

fn action_value(a: &ActionValues) -> Value {
    let mut m = BTreeMap::new();
    m.insert("action_id".to_string(), Value::from(a.action_id.as_str()));
    m.insert("action_key".to_string(), Value::from(a.action_key.as_str()));
    m.insert("report_url".to_string(), Value::from(a.report_url.as_str()));
    m.insert("design_ref".to_string(), Value::from(a.design_ref.as_str()));
    Value::from(m)
}

fn network_value(n: &NetworkContext) -> Value {
    let mut m = BTreeMap::new();
    m.insert("ip".to_string(), Value::from(n.ip.as_str()));
    m.insert("cidr".to_string(), Value::from(n.cidr.as_deref()));
    m.insert(
        "dns_suffix".to_string(),
        Value::from(n.dns_suffix.as_deref()),
    );
    Value::from(m)
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

fn node_value(n: &NodeContext) -> Value {
    let mut m = BTreeMap::new();
    m.insert("hostname".to_string(), Value::from(n.hostname.as_str()));
    m.insert("domain".to_string(), Value::from(n.domain.as_str()));
    m.insert(
        "tags".to_string(),
        Value::from_iter(n.tags.iter().map(|t| Value::from(t.as_str()))),
    );
    let labels: BTreeMap<String, Value> = n
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    m.insert("labels".to_string(), Value::from(labels));
    let network: BTreeMap<String, Value> = n
        .network
        .iter()
        .map(|(k, v)| (k.clone(), network_value(v)))
        .collect();
    m.insert("network".to_string(), Value::from(network));
    let interfaces: BTreeMap<String, Value> = n
        .interfaces
        .iter()
        .map(|(k, v)| (k.clone(), interface_value(v)))
        .collect();
    m.insert("interfaces".to_string(), Value::from(interfaces));
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
        RenderContext::from_parts(&node, &ActionValues::placeholder())
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
    fn syntax_error_is_reported_at_compile() {
        let mut t = Templates::new();
        let e = t.add("a", "line\n{% if %}").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
