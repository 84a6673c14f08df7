//! A short bounded run of every fuzz target (see fuzz/README.md): the targets are built with
//! `cargo afl`, each is fuzzed for a few seconds from its corpus in the repository, and any
//! crash fails the test with the input that caused it (a broken invariant is a panic, which
//! AFL records as a crash). Where cargo-afl is not installed it says `skipped:` and passes;
//! `.ci/run` installs it.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TARGETS: [&str; 9] = [
    "head",
    "target",
    "range",
    "conditional",
    "host",
    "accept_encoding",
    "config",
    "proxy",
    "x509",
];
/// Seconds each target is fuzzed for.
const SECONDS_EACH: u32 = 3;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The crashes AFL saved under `out`, with their inputs.
fn crashes(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = out.join("default").join("crashes");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

/// `execs_done` from AFL's fuzzer_stats.
fn execs_done(out: &Path) -> u64 {
    let stats =
        std::fs::read_to_string(out.join("default").join("fuzzer_stats")).unwrap_or_default();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("execs_done"))
        .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_fuzz_target_runs_briefly_without_a_crash() {
    let version = run(
        Command::new(cargo()).args(["afl", "--version"]),
        Duration::from_secs(60),
    );
    if !version.ok() {
        eprintln!(
            "skipped: every_fuzz_target_runs_briefly_without_a_crash: cargo-afl is not installed \
             (cargo install cargo-afl; .ci/run does)"
        );
        return;
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-smoke");
    let target_dir = work.join("target");
    let build = run(
        Command::new(cargo())
            .args(["afl", "build", "--bins"])
            .current_dir(fuzz_dir())
            .env("CARGO_TARGET_DIR", &target_dir),
        Duration::from_secs(1200),
    );
    assert!(build.ok(), "cargo afl build failed: {}", build.describe());

    let mut report = Vec::new();
    for t in TARGETS {
        let out = work.join(format!("out-{t}"));
        let _ = std::fs::remove_dir_all(&out);
        let fuzz = run(
            Command::new(cargo())
                .args(["afl", "fuzz", "-V", &SECONDS_EACH.to_string(), "-i"])
                .arg(fuzz_dir().join("corpus").join(t))
                .arg("-o")
                .arg(&out)
                .arg(target_dir.join("debug").join(t))
                .env("AFL_NO_UI", "1")
                .env("AFL_NO_AFFINITY", "1")
                .env("AFL_SKIP_CPUFREQ", "1")
                .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
                .env("AFL_FAST_CAL", "1"),
            Duration::from_secs(u64::from(SECONDS_EACH) + 120),
        );
        let found = crashes(&out);
        assert!(
            found.is_empty(),
            "fuzz target {t} crashed on {} input(s); the first, {:?}: {:?}\n{}",
            found.len(),
            found[0].0,
            String::from_utf8_lossy(&found[0].1),
            fuzz.describe()
        );
        assert!(fuzz.ok(), "cargo afl fuzz {t} failed: {}", fuzz.describe());
        let execs = execs_done(&out);
        assert!(
            execs > 0,
            "fuzz target {t} ran nothing: {}",
            fuzz.describe()
        );
        report.push(format!("{t}: {execs} executions"));
    }
    eprintln!("fuzz smoke ({SECONDS_EACH} s each): {}", report.join(", "));
}
