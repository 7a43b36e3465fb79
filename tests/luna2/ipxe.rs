//! A strict line grammar of the iPXE commands slipway's boot scripts use (no
//! iPXE script parser is packaged on PyPI, npm or Debian: Debian's `ipxe`
//! ships firmware images only). Every line is the `#!ipxe` header, blank, a
//! comment, a `:label`, or statements joined by `&&` / `||`, each a known
//! command with well-formed options and arguments; `${…}` references are
//! balanced; URLs are absolute http(s) without spaces; every `goto` to a
//! literal label resolves, and every item of a menu whose `choose` jumps to
//! `${var}` names a label of the script.
#![allow(dead_code)]

use std::collections::HashSet;

/// What is wrong with a script, with its line number (1-based).
pub type Problem = (usize, String);

fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn var_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b':'))
}

/// `${…}` references in `word`, each with a well-formed (possibly nested) name.
fn refs_ok(word: &str) -> Result<(), String> {
    let b = word.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) != Some(&b'{') {
                return Err(format!(
                    "a `$` not starting a `${{…}}` reference in `{word}`"
                ));
            }
            depth += 1;
            i += 2;
            continue;
        }
        if b[i] == b'}' {
            if depth == 0 {
                return Err(format!("an unbalanced `}}` in `{word}`"));
            }
            depth -= 1;
        } else if depth > 0 && !(b[i].is_ascii_alphanumeric() || b"_-./:".contains(&b[i])) {
            return Err(format!("a bad character inside a reference in `{word}`"));
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("an unclosed `${{` in `{word}`"));
    }
    Ok(())
}

fn is_ref(word: &str) -> bool {
    word.starts_with("${") && word.ends_with('}')
}

fn url_ok(word: &str) -> bool {
    (word.starts_with("http://") || word.starts_with("https://"))
        && word.len() > "http://".len()
        && refs_ok(word).is_ok()
        && !word.contains(['"', '\'', ' ', '\\'])
}

/// Options of a command: `--name value`, `--flag`, `-n value`.
struct Spec {
    /// Options taking a value.
    valued: &'static [&'static str],
    /// Options without one.
    flags: &'static [&'static str],
    /// Positional arguments: at least, at most (`usize::MAX`: any).
    min: usize,
    max: usize,
}

fn spec(cmd: &str) -> Option<Spec> {
    let s = |valued, flags, min, max| {
        Some(Spec {
            valued,
            flags,
            min,
            max,
        })
    };
    match cmd {
        "set" => s(&[], &[], 1, usize::MAX),
        "isset" => s(&[], &[], 1, 1),
        "iseq" => s(&[], &[], 2, 2),
        "goto" => s(&[], &[], 1, 1),
        "chain" => s(&[], &["--replace", "--autofree"], 1, usize::MAX),
        "imgfetch" => s(&["--name", "-n"], &[], 1, 1),
        "imgload" | "imgexec" => s(&[], &[], 1, 1),
        "imgargs" => s(&[], &[], 1, usize::MAX),
        "menu" => s(&[], &[], 0, usize::MAX),
        "item" => s(&["--key"], &["--gap"], 0, usize::MAX),
        "choose" => s(&["--default", "--timeout"], &[], 1, 1),
        "echo" => s(&[], &["-n"], 0, usize::MAX),
        "sleep" => s(&[], &[], 1, 1),
        "shell" | "reboot" | "exit" | "dhcp" => s(&[], &[], 0, 0),
        "ifconf" => s(&["--timeout", "--configurator"], &[], 1, 1),
        "ifclose" | "inc" | "read" => s(&[], &[], 1, 1),
        "sanboot" => s(&["--drive"], &["--no-describe"], 0, 1),
        _ => None,
    }
}

/// One command's words checked; its `goto` target (literal) and `item`
/// label, if any.
fn command(words: &[&str], gotos: &mut Vec<String>, items: &mut Vec<String>) -> Result<(), String> {
    let Some((&cmd, rest)) = words.split_first() else {
        return Err("an empty command".into());
    };
    let sp = spec(cmd).ok_or_else(|| format!("unknown command `{cmd}`"))?;
    let mut args = Vec::new();
    let mut gap = false;
    let mut i = 0;
    // Options come first; `echo` and `item` texts may hold anything after.
    while i < rest.len() {
        let w = rest[i];
        if args.is_empty() && w.starts_with('-') && w != "--" {
            if sp.flags.contains(&w) {
                gap |= w == "--gap";
                i += 1;
                continue;
            }
            if sp.valued.contains(&w) {
                let v = rest
                    .get(i + 1)
                    .ok_or_else(|| format!("`{cmd} {w}` without its value"))?;
                refs_ok(v)?;
                i += 2;
                continue;
            }
            return Err(format!("unknown option `{w}` of `{cmd}`"));
        }
        refs_ok(w)?;
        args.push(w);
        i += 1;
    }
    if args.len() < sp.min || args.len() > sp.max {
        return Err(format!(
            "`{cmd}` takes {}..{} arguments, found {}",
            sp.min,
            sp.max,
            args.len()
        ));
    }
    match cmd {
        "goto" => {
            let t = args[0];
            if !is_ref(t) {
                if !label_ok(t) {
                    return Err(format!("a bad label `{t}`"));
                }
                gotos.push(t.to_string());
            }
        }
        "chain" if !url_ok(args[0]) => {
            return Err(format!("`chain` to a bad URL `{}`", args[0]));
        }
        "imgfetch" if !url_ok(args[0]) => {
            return Err(format!("`imgfetch` of a bad URL `{}`", args[0]));
        }
        "sleep" if args[0].parse::<u32>().is_err() => {
            return Err(format!("`sleep {}`: not a number", args[0]));
        }
        "set" | "isset" | "inc" | "read" | "choose" => {
            let name = args[0];
            if cmd == "isset" {
                if !is_ref(name) {
                    return Err(format!("`isset {name}`: not a reference"));
                }
            } else if !var_name_ok(name) {
                return Err(format!("`{cmd} {name}`: a bad variable name"));
            }
        }
        "item" if !gap => {
            if let Some(l) = args.first() {
                if !label_ok(l) {
                    return Err(format!("an item with a bad label `{l}`"));
                }
                items.push(l.to_string());
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every problem of `script` under the grammar (empty: it is well-formed).
pub fn check(script: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut labels = HashSet::new();
    let mut gotos: Vec<(usize, String)> = Vec::new();
    // (line of the choose, items of its menu) for `choose … VAR && goto ${VAR}`.
    let mut menus: Vec<(usize, Vec<String>)> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let mut lines = script.lines().enumerate();
    match lines.next() {
        Some((_, "#!ipxe")) => {}
        other => problems.push((1, format!("no `#!ipxe` header: {other:?}"))),
    }
    for (i, line) in lines {
        let n = i + 1;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            problems.push((n, "a control character".into()));
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(l) = t.strip_prefix(':') {
            if !label_ok(l) {
                problems.push((n, format!("a bad label `{l}`")));
            } else if !labels.insert(l.to_string()) {
                problems.push((n, format!("label `{l}` defined twice")));
            }
            continue;
        }
        if t.contains(['"', '\'', '\\', ';', '`']) {
            problems.push((n, "a quote, backslash, `;` or backtick".into()));
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        if words.first() == Some(&"menu") {
            items.clear();
        }
        let mut cmd: Vec<&str> = Vec::new();
        let mut line_gotos = Vec::new();
        let mut ok = true;
        let mut idx = 0;
        while idx <= words.len() {
            let w = words.get(idx).copied();
            match w {
                Some("&&") | Some("||") | None => {
                    if cmd.is_empty() {
                        // A trailing `||` (do nothing on failure) is iPXE's idiom.
                        if !(w.is_none() && words.last() == Some(&"||")) {
                            problems.push((n, "an empty command around `&&`/`||`".into()));
                            ok = false;
                        }
                    } else if let Err(e) = command(&cmd, &mut line_gotos, &mut items) {
                        problems.push((n, e));
                        ok = false;
                    }
                    cmd.clear();
                }
                Some(w) => cmd.push(w),
            }
            idx += 1;
        }
        if ok && words.first() == Some(&"choose") {
            // `choose [opts] VAR && goto ${VAR}`: the menu's items are labels.
            let var = words
                .iter()
                .take_while(|w| **w != "&&" && **w != "||")
                .last()
                .copied()
                .unwrap_or("");
            let jumps = words
                .windows(2)
                .any(|p| p[0] == "goto" && p[1] == format!("${{{var}}}"));
            if jumps {
                menus.push((n, items.clone()));
            }
        }
        gotos.extend(line_gotos.into_iter().map(|g| (n, g)));
    }
    for (n, g) in gotos {
        if !labels.contains(&g) {
            problems.push((n, format!("`goto {g}`: no such label")));
        }
    }
    for (n, items) in menus {
        for it in items {
            if !labels.contains(&it) {
                problems.push((
                    n,
                    format!("menu item `{it}` chosen into a goto: no such label"),
                ));
            }
        }
    }
    problems
}

/// Panics with every problem of `script` (and the script) unless it is well-formed.
pub fn assert_well_formed(what: &str, script: &str) {
    let p = check(script);
    assert!(p.is_empty(), "{what}: {p:?}\n---\n{script}");
}

/// The grammar refuses what it must (checked once per test binary).
pub fn self_test() {
    assert!(check("#!ipxe\n:a\ngoto a\n").is_empty());
    for bad in [
        "echo hi\n",
        "#!ipxe\ngoto nowhere\n",
        "#!ipxe\nfrobnicate x\n",
        "#!ipxe\nchain ftp://x\n",
        "#!ipxe\nchain http://h/${x\n",
        "#!ipxe\necho 'x\n",
        "#!ipxe\nsleep soon\n",
        "#!ipxe\nimgfetch --nope http://h/k\n",
        "#!ipxe\nmenu m\nitem lost Lost\nchoose t && goto ${t}\n",
        "#!ipxe\n:a\n:a\n",
        "#!ipxe\necho a && && echo b\n",
    ] {
        assert!(!check(bad).is_empty(), "the grammar took {bad:?}");
    }
}
