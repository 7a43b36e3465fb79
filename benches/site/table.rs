//! The final table of the site benchmark: one row per figure.

use std::time::Duration;

/// One figure: what it should be, what it was, and Drydock's.
pub struct Row {
    pub figure: String,
    pub target: String,
    pub measured: String,
    /// `None` when the figure has no target.
    pub met: Option<bool>,
    pub drydock: String,
    pub speedup: String,
}

impl Row {
    /// A time, with an optional limit in seconds and Drydock's time in seconds.
    pub fn time(figure: String, limit: Option<f64>, took: Duration, drydock: Option<f64>) -> Row {
        let took_s = took.as_secs_f64();
        Row {
            figure,
            target: limit.map_or("—".into(), |l| format!("< {}", seconds(l))),
            measured: secs(took),
            met: limit.map(|l| took_s < l),
            drydock: drydock.map_or("—".into(), seconds),
            speedup: drydock.map_or("—".into(), |d| times(d / took_s)),
        }
    }
}

/// Rows in the order they were measured.
#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Prints the rows as a Markdown table (pasted into docs/benchmarks.md as is).
    pub fn print(&self) {
        let header = ["figure", "target", "measured", "met", "Drydock", "speed-up"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let met = match r.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "—",
                };
                [
                    r.figure.clone(),
                    r.target.clone(),
                    r.measured.clone(),
                    met.into(),
                    r.drydock.clone(),
                    r.speedup.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            println!("| {} |", padded.join(" | "));
        };
        line(&header.map(String::from));
        line(&widths.map(|w| "-".repeat(w)));
        for row in &cells {
            line(row);
        }
    }
}

/// A duration as ms below one second, else seconds.
pub fn secs(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

/// Seconds as ms below one second, else seconds, to about three digits.
pub fn seconds(s: f64) -> String {
    match s {
        s if s < 0.1 => format!("{:.1} ms", s * 1000.0),
        s if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        s if s < 10.0 => format!("{s:.2} s"),
        s if s < 100.0 => format!("{s:.1} s"),
        s => format!("{s:.0} s"),
    }
}

/// A factor: `86×`, `2.3×`.
pub fn times(f: f64) -> String {
    if f >= 10.0 {
        format!("{}×", count(f.round() as usize))
    } else {
        format!("{f:.1}×")
    }
}

/// How much less of something we use than Drydock: `2.3× less`, or `1.9× more`.
pub fn less(drydock: f64, ours: f64) -> String {
    if ours <= drydock {
        format!("{} less", times(drydock / ours))
    } else {
        format!("{} more", times(ours / drydock))
    }
}

/// A count with thousands separators: `10,000`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
