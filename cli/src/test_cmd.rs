//! `taglock test`: which tags of an image a policy protects, and why.

use crate::args::TestArgs;
use crate::engine::{self, Engine, EngineKind};
use crate::input::{self, PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output::{self, plural};
use crate::style::Style;
use anyhow::anyhow;
use policy_core::{PolicyDocument, RuleMatch, TagTest, TagVerdict, names, selector};

/// Tests every tag and prints a table (or JSON) on stdout.
pub fn run(args: &TestArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    let policy_source = Source::new(&args.policy);
    let reads_stdin = args.tags.iter().any(|tag| tag == "-");
    if reads_stdin {
        input::one_stdin(&[&policy_source, &Source::Stdin])?;
    }
    names::check_image_name(&args.image).map_err(|err| anyhow!("{err}"))?;
    let input = PolicyInput::read(&policy_source)?;
    let tags = expand_tags(&args.tags)?;
    let Some(policy) = Engine::load_valid(engine, &input)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    let document = engine::document(&input.text)?;
    let tests = tags
        .iter()
        .map(|tag| policy.test_tag(&args.image, tag))
        .collect::<anyhow::Result<Vec<TagTest>>>()?;
    if args.json {
        output::stdout(&output::json(&tests, false)?)?;
    } else {
        output::stdout(&table(&document, &args.image, &tests, Style::stdout()))?;
        let lints = policy.lints().len();
        if lints > 0 {
            let style = Style::stderr();
            output::stderr(&format!(
                "{}: the policy has {}; `taglock check {}` lists them\n",
                style.note("note"),
                plural(lints, "warning"),
                input.label
            ));
        }
        if tests.is_empty() {
            output::stderr("no tags to test (standard input was empty)\n");
        }
    }
    Ok(Outcome::Success)
}

/// The tags in command-line order, with `-` replaced by the lines of standard input.
fn expand_tags(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut tags = Vec::with_capacity(args.len());
    let mut stdin_read = false;
    for arg in args {
        if arg == "-" {
            if !stdin_read {
                tags.extend(input::tags_from_stdin()?);
                stdin_read = true;
            }
        } else {
            tags.push(arg.clone());
        }
    }
    Ok(tags)
}

/// An aligned table: TAG, PROTECTED, WHY.
fn table(document: &PolicyDocument, image: &str, tests: &[TagTest], style: Style) -> String {
    let rows: Vec<(&str, &str, String)> = tests
        .iter()
        .map(|test| {
            let protected = match (test.because, test.protected) {
                (TagVerdict::Invalid, _) => "invalid",
                (_, true) => "yes",
                (_, false) => "no",
            };
            (test.tag.as_str(), protected, why(document, test))
        })
        .collect();
    let tag_width = rows
        .iter()
        .map(|(tag, _, _)| tag.chars().count())
        .chain(std::iter::once("TAG".len()))
        .max()
        .unwrap_or(0);
    let protected_width = "PROTECTED".len();
    let mut out = format!("{} {}\n", style.dim("image"), style.bold(image));
    out.push_str(&style.bold(&format!(
        "{:tag_width$}  {:protected_width$}  WHY",
        "TAG", "PROTECTED"
    )));
    out.push('\n');
    for (tag, protected, why) in rows {
        let cell = format!("{protected:protected_width$}");
        let cell = match protected {
            "yes" => style.bold(&cell),
            "no" => style.dim(&cell),
            _ => style.error(&cell),
        };
        out.push_str(&format!("{tag:tag_width$}  {cell}  {why}\n"));
    }
    out
}

/// Why a tag is (not) protected, in words.
fn why(document: &PolicyDocument, test: &TagTest) -> String {
    explain(
        document,
        &Verdict {
            because: test.because,
            rule: test.rule.as_deref(),
            matches: &test.matches,
            exception: test.exception,
            error: test.error.as_deref(),
        },
    )
}

/// What [`explain`] says a verdict from: a whole [`TagTest`] (`taglock test`), or
/// the part of it a preview report keeps.
pub struct Verdict<'a> {
    /// Why the tag is (not) protected.
    pub because: TagVerdict,
    /// The protecting rule.
    pub rule: Option<&'a str>,
    /// Every rule that matches (empty when unknown).
    pub matches: &'a [RuleMatch],
    /// The exempting exception's index.
    pub exception: Option<usize>,
    /// Why the tag is malformed.
    pub error: Option<&'a str>,
}

/// A verdict in words, naming rules and exceptions with their patterns.
pub fn explain(document: &PolicyDocument, test: &Verdict<'_>) -> String {
    let first_match = test.matches.first().map(|m| &*m.rule);
    match test.because {
        TagVerdict::Rule => {
            let rule = test.rule.or(first_match).unwrap_or_default();
            let others: Vec<String> = test
                .matches
                .iter()
                .filter(|m| &*m.rule != rule)
                .map(|m| format!("\"{}\"", m.rule))
                .collect();
            let pattern = document
                .immutability
                .rules
                .iter()
                .find(|r| r.name == rule)
                .map(|r| format!(" ({})", selector::display(&r.tags)))
                .unwrap_or_default();
            if others.is_empty() {
                format!("rule \"{rule}\"{pattern}")
            } else {
                format!(
                    "rule \"{rule}\"{pattern}; also matched by {}",
                    others.join(", ")
                )
            }
        }
        TagVerdict::All => "all tags are protected (protect: all)".to_owned(),
        TagVerdict::Exception => {
            let exception = test.exception.map(|index| {
                let pattern = document
                    .immutability
                    .exceptions
                    .get(index)
                    .map(selector::display)
                    .unwrap_or_default();
                format!("exception {} ({pattern})", index + 1)
            });
            let mut text = format!(
                "exempted by {}",
                exception.unwrap_or_else(|| "an exception".to_owned())
            );
            if let Some(rule) = first_match {
                text.push_str(&format!("; rule \"{rule}\" would protect it"));
            }
            text
        }
        TagVerdict::Referrer => {
            "referrer tag (sha256-…): stays mutable while referrer_tags is mutable".to_owned()
        }
        TagVerdict::NoRule => "no rule matches".to_owned(),
        TagVerdict::ModeNone => "protect: none, every tag stays mutable".to_owned(),
        TagVerdict::Invalid => test.error.unwrap_or("not a valid tag").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"version": 1, "immutability": {"protect": "some",
        "rules": [
          {"name": "semver", "tags": {"regex": "^v\\d+\\.\\d+\\.\\d+$"}},
          {"name": "any-v", "tags": {"regex": "^v"}}
        ],
        "exceptions": [{"matching": ["v0.*"]}]}}"#;

    fn rows(tags: &[&str]) -> String {
        let policy = policy_core::Policy::from_json(POLICY).unwrap();
        let tests: Vec<TagTest> = tags
            .iter()
            .map(|tag| policy.test_tag("acme/web", tag))
            .collect();
        table(policy.document(), "acme/web", &tests, Style::plain())
    }

    #[test]
    fn the_table_is_aligned_and_explains_each_tag() {
        let shown = rows(&["v1.2.3", "latest", "v0.1.0", "-bad"]);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "image acme/web");
        assert_eq!(lines[1], "TAG     PROTECTED  WHY");
        assert_eq!(
            lines[2],
            "v1.2.3  yes        rule \"semver\" (^v\\d+\\.\\d+\\.\\d+$); also matched by \"any-v\""
        );
        assert_eq!(lines[3], "latest  no         no rule matches");
        assert_eq!(
            lines[4],
            "v0.1.0  no         exempted by exception 1 (v0.*); rule \"semver\" would protect it"
        );
        assert!(
            lines[5].starts_with("-bad    invalid    invalid tag `-bad`"),
            "{}",
            lines[5]
        );
    }
}
