//! Config fuzzing (issue 21): random mutations of the sample files and of the seed corpus in
//! `tests/fuzz-config/` (types, ranges, duplicates, truncation, nesting, junk) through the
//! real loaders of agent.toml, collector.toml, the mesh file and the SLO file. Every one must
//! end within a second in a configuration or a one-line error that names the file and a
//! field (or, when the text does not parse, a line), never a panic. A fixed seed: the same
//! mutations on every run, so CI cannot fail at random; a failure prints its case number and
//! the mutated text. A few of them also go through the binary, which must exit 0 or 2.

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use xcbench_snapshot::config_text::ConfigError;

use crate::support::machine;
use crate::support::proc::{bin, TempDir};
use crate::support::repo_path;

/// Mutated files run in-process, and through the binary.
const RUNS: usize = 4_000;
const BINARY_RUNS: usize = 24;
const SEED: u64 = 0x5eed_2100_c0f1_9f22;
/// The longest a load may take, on a busy machine, in the debug profile.
const LIMIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agent,
    Collector,
    Mesh,
    Slo,
}

struct Seed {
    kind: Kind,
    name: String,
    text: String,
}

/// The sample files and the seed corpus.
fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut add = |kind, path: &str| {
        let text =
            std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        seeds.push(Seed { kind, name, text });
    };
    add(Kind::Agent, "agent/agent.sample.toml");
    add(Kind::Collector, "collector/collector.sample.toml");
    add(Kind::Collector, "deploy/etc/collector.toml");
    add(Kind::Mesh, "deploy/mesh.sample.toml");
    add(Kind::Slo, "slo/slo.sample.yaml");
    add(Kind::Slo, "slo/openslo.sample.yaml");
    add(Kind::Slo, "slo/demo.slo.yaml");
    let dir = repo_path("tests/fuzz-config");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let kind = match name.split('-').next() {
            Some("agent") => Kind::Agent,
            Some("collector") => Kind::Collector,
            Some("mesh") => Kind::Mesh,
            Some("slo") => Kind::Slo,
            _ => continue,
        };
        add(kind, &format!("tests/fuzz-config/{name}"));
    }
    seeds
}

/// xorshift64*: small, fixed, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values of every type and range a field might be given.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "63",
    "64",
    "65535",
    "70000",
    "4294967296",
    "99999999999999999999",
    "1e400",
    "nan",
    "inf",
    "0.0",
    "true",
    "false",
    "\"\"",
    "\"x\"",
    "\"0ms\"",
    "\"0s\"",
    "\"-1s\"",
    "\"1h\"",
    "\"7d\"",
    "\"9999999d\"",
    "\"5x\"",
    "\"1G\"",
    "\"0\"",
    "\"10.20.0.5:0\"",
    "\"127.0.0.1:70000\"",
    "\"fd00::5:862\"",
    "\"[fd00::5]:862\"",
    "\"0.0.0.0:862\"",
    "\"http://10.0.0.1\"",
    "\"https://127.0.0.1:9862\"",
    "\"sha256:00\"",
    "\"auto\"",
    "\"quic\"",
    "[]",
    "[\"quic\"]",
    "[\"udp\", \"udp\"]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "\"az-eastus-app1\"",
    "\"oci-1\"",
    "'literal'",
    "\"\\u0000\"",
    "1979-05-27T07:32:00Z",
];

/// YAML spellings of the same.
const YAML_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "65536",
    "99999999999999999999",
    "1e400",
    ".nan",
    "true",
    "null",
    "~",
    "\"\"",
    "x",
    "0ms",
    "-1s",
    "9999999d",
    "5x",
    "101%",
    "0%",
    "p0",
    "p100",
    "p99.99999",
    "1G",
    "[]",
    "{}",
    "[a, b]",
    "{ a: 1 }",
    "*a",
    "&a x",
    "!!binary aGk=",
    "|\n  x",
    "'",
    "\"",
    ":",
    "- x",
    "2026-13-45T99:00:00Z",
    "rtt",
    "loss",
    "goodput",
    "azure",
    "forward",
];

/// One random change of `text`.
fn mutate(rng: &mut Rng, kind: Kind, text: &str, others: &[&str]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len().max(1);
    let line = rng.below(n);
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if out.is_empty() {
        out.push(String::new());
    }
    let yaml = kind == Kind::Slo;
    let sep = if yaml { ": " } else { " = " };
    match rng.below(14) {
        // A value of another type or range.
        0 | 1 => {
            let l = &out[line];
            if let Some(at) = l.find(sep.trim()) {
                let value = if yaml {
                    *rng.pick(YAML_VALUES)
                } else {
                    *rng.pick(VALUES)
                };
                let key = &l[..at];
                out[line] = format!("{key}{sep}{value}");
            }
        }
        // A number at an extreme.
        2 => {
            let l = &out[line];
            if let Some(at) = l.find(|c: char| c.is_ascii_digit()) {
                let end = l[at..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(l.len(), |e| at + e);
                let long = "9".repeat(400);
                let extremes = [
                    "0",
                    "-1",
                    "65533",
                    "65536",
                    "70000",
                    "18446744073709551616",
                    &long,
                ];
                let to = rng.pick(&extremes);
                out[line] = format!("{}{to}{}", &l[..at], &l[end..]);
            }
        }
        // A line or a block twice.
        3 => {
            let copy = out[line].clone();
            out.insert(line, copy);
        }
        4 => {
            let end = (line + 1 + rng.below(12)).min(out.len());
            let block: Vec<String> = out[line..end].to_vec();
            let at = rng.below(out.len() + 1);
            for (i, l) in block.into_iter().enumerate() {
                out.insert(at + i, l);
            }
        }
        // Cut short.
        5 => {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return text[..at].to_owned();
        }
        // Nested deep, closed or not.
        6 | 7 => {
            let depth = *rng.pick(&[8, 40, 200, 5_000, 100_000]);
            let (open, close) = match (yaml, rng.below(3)) {
                (false, 0) => ("[", "]"),
                (false, 1) => ("{ a = ", " }"),
                (false, _) => ("[[", "]]"),
                (true, 0) => ("[", "]"),
                (true, 1) => ("{a: ", "}"),
                (true, _) => ("- ", ""),
            };
            let closed = rng.below(2) == 0;
            let nest = format!(
                "{}1{}",
                open.repeat(depth),
                if closed {
                    close.repeat(depth)
                } else {
                    String::new()
                }
            );
            let l = &out[line];
            out[line] = match l.find(sep.trim()) {
                Some(at) => format!("{}{sep}{nest}", &l[..at]),
                None => format!("x{sep}{nest}"),
            };
        }
        // A line gone.
        8 => {
            out.remove(line);
        }
        // A key misspelt.
        9 => {
            let l = &out[line];
            if let Some(at) = l.find(|c: char| c.is_ascii_alphabetic()) {
                out[line] = format!("{}{}", &l[..at], &l[at + 1..]);
            }
        }
        // A line of another file.
        10 => {
            let other = rng.pick(others);
            let ls: Vec<&str> = other.lines().collect();
            if !ls.is_empty() {
                out.insert(line, ls[rng.below(ls.len())].to_owned());
            }
        }
        // Junk bytes.
        11 => {
            let junk = rng.pick(&[
                "\0", "\u{7f}", "\"", "'", "[", "]]", "{", "=", ":", "#", "\t", "\r", "\u{feff}",
                "é", "\u{202e}", "\\", "- ", "---", "&a", "*b",
            ]);
            let l = &out[line];
            let mut at = rng.below(l.len() + 1);
            while !l.is_char_boundary(at) {
                at -= 1;
            }
            out[line] = format!("{}{junk}{}", &l[..at], &l[at..]);
        }
        // A huge value.
        12 => {
            let l = &out[line];
            if let Some(at) = l.find(sep.trim()) {
                let big = "x".repeat(200_000);
                let value = if yaml { big } else { format!("\"{big}\"") };
                out[line] = format!("{}{sep}{value}", &l[..at]);
            }
        }
        // An option the sample shows commented out, turned on.
        _ => {
            if let Some(i) = out
                .iter()
                .position(|l| l.starts_with("# ") && l.contains(sep.trim()))
            {
                out[i] = out[i][2..].to_owned();
            }
        }
    }
    out.join("\n") + "\n"
}

/// Runs `text` through `kind`'s loader; `Ok` when it is a valid configuration.
fn load(kind: Kind, file: &str, text: &str) -> Result<(), ConfigError> {
    match kind {
        Kind::Agent => xcbench_agent::AgentConfig::parse(file, text).map(drop),
        Kind::Collector => xcbench_collector::CollectorConfig::parse(file, text).map(drop),
        Kind::Mesh => xcbench_agent::config::mesh::MeshFile::parse(file, text).map(drop),
        Kind::Slo => xcbench_slo::SloFile::parse(file, text).map(drop),
    }
}

/// What is wrong with how `e` reads, if anything: one line, the file first, and a field (or
/// where a text that does not parse stops: a line), at most a few hundred characters of the
/// input.
fn check_error(file: &str, e: &ConfigError) -> Result<(), String> {
    let text = e.to_string();
    if text.contains('\n') || text.contains('\r') {
        return Err("more than one line".into());
    }
    if !text.starts_with(&format!("{file}: ")) {
        return Err("does not start with the file".into());
    }
    if text.len() > 1_500 {
        return Err(format!("{} bytes long", text.len()));
    }
    let placed = match e {
        ConfigError::Field { field, .. } => !field.is_empty(),
        ConfigError::Syntax { message, .. } => {
            message.contains("line ")
                // Whole-file refusals of the SLO file.
                || message.starts_with("empty:")
                || message.contains("YAML documents")
                || message.contains("bytes: larger than")
                || message.starts_with("no OpenSLO SLO here")
        }
        ConfigError::Read { .. } => true,
    };
    match placed {
        true => Ok(()),
        false => Err("names no field and no line".into()),
    }
}

#[test]
fn config_mutations_load_or_fail_on_one_line_naming_the_field() {
    let _turn = machine::shared();
    let seeds = seeds();
    let texts: Vec<&str> = seeds.iter().map(|s| s.text.as_str()).collect();
    let mut rng = Rng(SEED);
    let (mut ok, mut refused, mut slowest) = (0, 0, Duration::ZERO);
    let started = Instant::now();
    for case in 0..RUNS {
        let seed = &seeds[case % seeds.len()];
        let mut text = seed.text.clone();
        for _ in 0..1 + rng.below(3) {
            text = mutate(&mut rng, seed.kind, &text, &texts);
        }
        let t = Instant::now();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| load(seed.kind, &seed.name, &text)));
        let took = t.elapsed();
        let show = || text.chars().take(2_000).collect::<String>();
        slowest = slowest.max(took);
        let outcome = outcome.unwrap_or_else(|_| {
            panic!(
                "case {case} of {}: the loader panicked on:\n{}",
                seed.name,
                show()
            )
        });
        assert!(
            took < LIMIT,
            "case {case} of {}: took {took:?} on:\n{}",
            seed.name,
            show()
        );
        match outcome {
            Ok(()) => ok += 1,
            Err(e) => {
                refused += 1;
                if let Err(why) = check_error(&seed.name, &e) {
                    panic!(
                        "case {case} of {}: the error {why}:\n{}\non:\n{}",
                        seed.name,
                        e.to_string().chars().take(2_000).collect::<String>(),
                        show()
                    );
                }
            }
        }
    }
    eprintln!(
        "config fuzz: {RUNS} mutations of {} seeds in {:?} ({ok} loaded, {refused} refused, the slowest {slowest:?})",
        seeds.len(),
        started.elapsed()
    );
    assert!(
        ok > RUNS / 50 && refused > RUNS / 2,
        "{ok} loaded, {refused} refused"
    );
}

/// A few mutations through the binary: `mesh check` and `slo rules` read the file and exit
/// 0 (valid) or 2 (a configuration error, on one line naming the file) within seconds.
#[test]
fn config_mutations_through_the_binary_exit_0_or_2() {
    let _turn = machine::shared();
    let dir = TempDir::new("config-fuzz");
    let seeds: Vec<Seed> = seeds()
        .into_iter()
        .filter(|s| matches!(s.kind, Kind::Mesh | Kind::Slo))
        .collect();
    let texts: Vec<&str> = seeds.iter().map(|s| s.text.as_str()).collect();
    let mut rng = Rng(SEED ^ 0xb1);
    for case in 0..BINARY_RUNS {
        let seed = &seeds[case % seeds.len()];
        let text = mutate(&mut rng, seed.kind, &seed.text, &texts);
        let path = dir.write(&seed.name, &text);
        let mut cmd = Command::new(bin());
        match seed.kind {
            Kind::Mesh => cmd.args(["mesh", "check"]),
            _ => cmd.args(["slo", "rules"]),
        };
        let t = Instant::now();
        let out = cmd.arg(&path).output().unwrap();
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(took < Duration::from_secs(5), "case {case}: {took:?}");
        match code {
            Some(0) => {}
            Some(2) => {
                let first = err.lines().next().unwrap_or_default();
                assert!(
                    first.starts_with(&format!("error: {}: ", path.display()))
                        && err.lines().count() == 1,
                    "case {case}: {err}"
                );
            }
            _ => panic!(
                "case {case}: exit {code:?}: {err}\non:\n{}",
                text.chars().take(2_000).collect::<String>()
            ),
        }
    }
}
