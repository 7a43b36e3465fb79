//! Test tool of `tests/plan.rs` (`killing_the_process_mid_apply_leaves_a_whole_state`),
//! not a product command: applies the design in `FIRST` to the SQLite database `DB` as
//! revision 1, prints `applying`, applies the design in `SECOND` as revision 2 and
//! prints `applied`. The test kills it with SIGKILL somewhere in the second apply.
//!
//! Usage: `apply_child DB FIRST SECOND` (each design a directory of `.yaml` files).

use std::io::Write;
use std::path::Path;

use slipway::design::DesignFile;
use slipway::plan::plan;
use slipway::revision::Revision;
use slipway::state::Store;

fn files(dir: &Path) -> Vec<DesignFile> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| DesignFile {
            path: p.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&p).unwrap(),
        })
        .collect()
}

/// Revision `n` as the test builds it: commit `n` in 40 hex digits.
fn rev(n: u32) -> Revision {
    Revision {
        commit: format!("{n:040x}"),
        tree: String::new(),
        author: "a".into(),
        committer: "c".into(),
        signed_by: None,
        summary: String::new(),
        committed_at: 0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, first, second] = args.as_slice() else {
        eprintln!("usage: apply_child DB FIRST SECOND");
        std::process::exit(2);
    };
    let mut store = Store::open(Path::new(db)).unwrap();
    for (n, dir) in [(1, first), (2, second)] {
        let v = slipway::validate(&files(Path::new(dir)));
        let d = v.design.expect("the test hands over valid designs");
        let p = plan(&d, &store.snapshot().unwrap());
        if n == 2 {
            println!("applying");
            std::io::stdout().flush().unwrap();
        }
        store.apply(&p, &rev(n)).unwrap();
    }
    println!("applied");
}
