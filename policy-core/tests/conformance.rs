//! Runs the engine-independent conformance corpus (`tests/conformance/` at the
//! repository root) against the native core, through the shared runner
//! (`taglock-conformance`): every expectation and decision invariant of
//! `tests/conformance/README.md`, every failure reported before the test fails.
#![allow(clippy::panic, missing_docs)]

use taglock_conformance::{Corpus, Native, run};

#[test]
fn conformance_corpus() {
    let corpus = Corpus::load_default().unwrap_or_else(|err| panic!("{err}"));
    run(&corpus, &mut Native).assert_passed();
}
