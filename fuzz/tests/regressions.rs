//! Replays every committed fuzz input (`fuzz/regressions/<target>/*`) through
//! its target's checks: an input that once found a bug stays a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

#[test]
fn every_committed_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for target in taglock_fuzz::TARGETS {
        let dir = root.join(target);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        assert!(!entries.is_empty(), "{} holds no input", dir.display());
        for path in entries {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| taglock_fuzz::run(target, &data));
            assert!(
                matches!(outcome, Ok(true)),
                "{} fails its target `{target}`",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= taglock_fuzz::TARGETS.len());
}
