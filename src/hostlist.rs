//! Hostlist expressions as Luna2 reads them (`node[001-004,007],gpu[1-2]`),
//! with python-hostlist's semantics (`hostlist.expand_hostlist`, which the
//! Luna2 daemon and CLI call): top-level commas separate parts; in a part each
//! `[…]` is a comma list of numbers and `low-high` ranges, padded to the width
//! of `low` (`n[8-11]` → n8 … n11, `n[001-010]` → n001 … n010); several
//! bracket groups in one part multiply (`r[1-2]-n[1-2]` → r1-n1, r1-n2,
//! r2-n1, r2-n2); duplicates are dropped, the first kept, order otherwise
//! kept. Errors as python-hostlist's `BadHostlist`: nested or unbalanced
//! brackets, a bad range, start > stop, a range or a result over
//! [`MAX_SIZE`]. slipway also caps the whole expansion at [`MAX_SIZE`]
//! (python-hostlist caps each part) and refuses characters no host name has.
//!
//! Pure; no crate fits (docs/luna2.md says why), so this is slipway's own.

/// The largest expansion (python-hostlist's `MAX_SIZE`).
pub const MAX_SIZE: usize = 100_000;

/// Why an expression does not expand (python-hostlist's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostlistError {
    /// `[` inside `[…]`.
    #[error("bad hostlist: nested brackets")]
    Nested,
    /// A `]` without its `[`, or a `[` never closed.
    #[error("bad hostlist: unbalanced brackets")]
    Unbalanced,
    /// An element of `[…]` that is neither a number nor `low-high`.
    #[error("bad hostlist: bad range `{0}`")]
    BadRange(String),
    /// `high < low`.
    #[error("bad hostlist: start > stop in `{0}`")]
    StartAfterStop(String),
    /// A range, a part or the whole list over [`MAX_SIZE`] names.
    #[error("bad hostlist: more than {MAX_SIZE} names")]
    TooLarge,
    /// A character no host name has (only `A-Z a-z 0-9 . _ -` outside the brackets).
    #[error("bad hostlist: forbidden character {0:?}")]
    Forbidden(char),
    /// No name at all.
    #[error("bad hostlist: empty")]
    Empty,
}

/// Whether `s` uses hostlist syntax (a bracket or a comma), as opposed to one name.
pub fn is_hostlist(s: &str) -> bool {
    s.contains(['[', ']', ','])
}

/// The names of hostlist expression `expr`, in order, without duplicates.
pub fn expand(expr: &str) -> Result<Vec<String>, HostlistError> {
    // Split at top-level commas, checking the brackets as python-hostlist does.
    let mut parts = Vec::new();
    let mut level = 0i32;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '[' => level += 1,
            ']' => level -= 1,
            ',' if level == 0 => {
                parts.push(&expr[start..i]);
                start = i + 1;
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ',') => {}
            c => return Err(HostlistError::Forbidden(c)),
        }
        if level > 1 {
            return Err(HostlistError::Nested);
        }
        if level < 0 {
            return Err(HostlistError::Unbalanced);
        }
    }
    if level > 0 {
        return Err(HostlistError::Unbalanced);
    }
    parts.push(&expr[start..]);
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        for name in expand_part(part)? {
            if seen.insert(name.clone()) {
                if out.len() == MAX_SIZE {
                    return Err(HostlistError::TooLarge);
                }
                out.push(name);
            }
        }
    }
    if out.is_empty() {
        return Err(HostlistError::Empty);
    }
    Ok(out)
}

/// One part (no top-level comma): text and `[…]` groups, multiplied out.
fn expand_part(part: &str) -> Result<Vec<String>, HostlistError> {
    let mut acc = vec![String::new()];
    let mut rest = part;
    while !rest.is_empty() {
        let (text, group, after) = match rest.find('[') {
            None => (rest, None, ""),
            Some(open) => {
                let close = rest[open..]
                    .find(']')
                    .map(|c| open + c)
                    .ok_or(HostlistError::Unbalanced)?;
                (
                    &rest[..open],
                    Some(&rest[open + 1..close]),
                    &rest[close + 1..],
                )
            }
        };
        let choices = match group {
            None => vec![text.to_string()],
            Some(g) => expand_rangelist(text, g)?,
        };
        if acc.len().saturating_mul(choices.len()) > MAX_SIZE {
            return Err(HostlistError::TooLarge);
        }
        acc = acc
            .iter()
            .flat_map(|a| choices.iter().map(move |c| format!("{a}{c}")))
            .collect();
        rest = after;
    }
    Ok(acc)
}

/// `1-3,7` with `prefix` before each.
fn expand_rangelist(prefix: &str, list: &str) -> Result<Vec<String>, HostlistError> {
    let mut out = Vec::new();
    for range in list.split(',') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(range) {
            out.push(format!("{prefix}{range}"));
        } else {
            let bad = || HostlistError::BadRange(range.to_string());
            let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
            if !digits(lo) || !digits(hi) {
                return Err(bad());
            }
            let (low, high): (u128, u128) = (
                lo.parse().map_err(|_| bad())?,
                hi.parse().map_err(|_| bad())?,
            );
            if high < low {
                return Err(HostlistError::StartAfterStop(range.to_string()));
            }
            if high - low > MAX_SIZE as u128 || out.len() as u128 + (high - low) >= MAX_SIZE as u128
            {
                return Err(HostlistError::TooLarge);
            }
            let width = lo.len();
            out.extend((low..=high).map(|i| format!("{prefix}{i:0width$}")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        expand(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ranges_pad_from_the_low_bound_and_groups_multiply() {
        assert_eq!(
            ok("node[001-004]"),
            ["node001", "node002", "node003", "node004"]
        );
        assert_eq!(ok("n[8-11]"), ["n8", "n9", "n10", "n11"]);
        assert_eq!(
            ok("n[1-3,7],gpu[01-02]"),
            ["n1", "n2", "n3", "n7", "gpu01", "gpu02"]
        );
        assert_eq!(
            ok("rack[1-2]-n[1-2]"),
            ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]
        );
        assert_eq!(ok("n[1-2]x"), ["n1x", "n2x"]);
        assert_eq!(ok("[1-2]"), ["1", "2"]);
        assert_eq!(ok("node001"), ["node001"]);
        assert_eq!(ok("a,b,,a"), ["a", "b"]);
        assert_eq!(ok("n[1-2],n[2-3]"), ["n1", "n2", "n3"]);
        assert_eq!(ok("n[9-10]"), ["n9", "n10"]);
        assert_eq!(ok("n[09-10]"), ["n09", "n10"]);
        assert_eq!(ok("n[1-001]"), ["n1"]);
    }

    #[test]
    fn bad_expressions_are_errors_like_python_hostlists() {
        use HostlistError::*;
        let cases: &[(&str, HostlistError)] = &[
            ("n[[1]]", Nested),
            ("n[1", Unbalanced),
            ("n]1[", Unbalanced),
            ("n[1-2", Unbalanced),
            ("n[]", BadRange("".into())),
            ("n[1,]", BadRange("".into())),
            ("n[a-b]", BadRange("a-b".into())),
            ("n[1-2-3]", BadRange("1-2-3".into())),
            ("n[3-1]", StartAfterStop("3-1".into())),
            ("n[0-100000]", TooLarge),
            ("a[1-1000]b[1-1000]", TooLarge),
            ("n'1", Forbidden('\'')),
            ("n;1", Forbidden(';')),
            ("../n", Forbidden('/')),
            ("n 1", Forbidden(' ')),
            ("", Empty),
            (",", Empty),
        ];
        for (s, e) in cases {
            assert_eq!(expand(s).as_ref(), Err(e), "{s}");
        }
        assert_eq!(ok("n[0-99999]").len(), MAX_SIZE);
        assert_eq!(expand("n[0-99999],x"), Err(TooLarge));
    }
}
