//! What a collector's durable history holds, by redb's own count: bytes stored (keys and
//! values), B-tree overhead, free pages, against the file's size. Run on a stopped
//! collector's data directory.
//!
//!   cargo run --release -p xcbench-collector --example history_usage -- DATA_DIR

use xcbench_collector::db::History;
use xcbench_collector::store::history::Tiers;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: history_usage DATA_DIR");
    let dir = std::path::Path::new(&dir);
    let file = std::fs::metadata(dir.join("history.redb"))
        .expect("DATA_DIR/history.redb")
        .len();
    let u = History::open(dir, Tiers::default())
        .and_then(|h| h.usage())
        .expect("a collector's history");
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "stored {:.1} MB, B-tree pages {:.1} MB, free {:.1} MB, file {:.1} MB",
        mb(u.stored_bytes),
        mb(u.metadata_bytes),
        mb(u.fragmented_bytes),
        mb(file)
    );
}
