//! `taglock test`: which tags of an image a policy protects, and why.

use crate::args::TestArgs;
use crate::engine::{Engine, EngineKind};
use crate::input::{self, PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output::{self, plural};
use crate::style::{self, Style};
use anyhow::{Context, anyhow};
use policy_core::{TagTest, TagVerdict, names};

/// How many rows the table's TAG column is sized from: the first rows are held
/// back until this many are known (or the tags end), then every row is printed as
/// soon as it is tested, in that width. Memory stays bounded whatever the number
/// of tags.
pub const TABLE_SIZING_ROWS: usize = 1024;

/// The longest line of standard input kept as a tag, in bytes; the rest of a
/// longer line is read and dropped (such a tag is invalid either way: tags have at
/// most 128 characters).
pub const MAX_TAG_LINE_BYTES: usize = 1024 * 1024;

/// Tests every tag and prints a table (or JSON) on stdout, one row at a time.
pub fn run(args: &TestArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    let policy_source = Source::new(&args.policy);
    let reads_stdin = args.tags.iter().any(|tag| tag == "-");
    if reads_stdin {
        input::one_stdin(&[&policy_source, &Source::Stdin])?;
    }
    names::check_image_name(&args.image).map_err(|err| anyhow!("{err}"))?;
    let input = PolicyInput::read(&policy_source)?;
    let Some(policy) = Engine::load_valid(engine, &input)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    let style = Style::stdout();
    let mut sink = if args.json {
        Sink::Json { first: true }
    } else {
        Sink::Table {
            held: Vec::new(),
            width: None,
        }
    };
    let mut out = output::Stream::stdout();
    let mut count = 0usize;
    let mut each = |tag: &str| -> anyhow::Result<()> {
        let test = policy.test_tag(&args.image, tag)?;
        count += 1;
        sink.row(&mut out, &args.image, test, style)
    };
    let mut stdin_read = false;
    for arg in &args.tags {
        if arg != "-" {
            each(arg)?;
        } else if !stdin_read {
            stdin_read = true;
            input::each_stdin_tag(MAX_TAG_LINE_BYTES, &mut each)
                .context("tags are read from standard input, one per line, when TAG is `-`")?;
        }
    }
    sink.finish(&mut out, &args.image, style)?;
    out.flush()?;
    if !args.json {
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
        if count == 0 {
            output::stderr("no tags to test (standard input was empty)\n");
        }
    }
    Ok(Outcome::Success)
}

/// Where tested tags go: the table (rows held back only until its width is
/// known) or the JSON array (each element written as it comes).
enum Sink {
    Json {
        first: bool,
    },
    Table {
        held: Vec<(String, &'static str, String)>,
        width: Option<usize>,
    },
}

impl Sink {
    fn row(
        &mut self,
        out: &mut output::Stream,
        image: &str,
        test: TagTest,
        style: Style,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Json { first } => {
                // The same text as the whole array pretty-printed at once.
                let element = serde_json::to_string_pretty(&test)?.replace('\n', "\n  ");
                let lead = if *first { "[\n  " } else { ",\n  " };
                *first = false;
                out.write(&format!("{lead}{element}"))
            }
            Sink::Table { held, width } => {
                let row = row(&test);
                match width {
                    Some(width) => out.write(&table_row(&row, *width, style)),
                    None => {
                        held.push(row);
                        if held.len() >= TABLE_SIZING_ROWS {
                            self.release(out, image, style)?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    /// Sizes the table from the rows held back, prints its header and them.
    fn release(
        &mut self,
        out: &mut output::Stream,
        image: &str,
        style: Style,
    ) -> anyhow::Result<()> {
        if let Sink::Table { held, width } = self
            && width.is_none()
        {
            let rows = std::mem::take(held);
            let tag_width = column_width(&rows);
            *width = Some(tag_width);
            out.write(&table_header(image, tag_width, style))?;
            for row in &rows {
                out.write(&table_row(row, tag_width, style))?;
            }
        }
        Ok(())
    }

    fn finish(
        &mut self,
        out: &mut output::Stream,
        image: &str,
        style: Style,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Json { first: true } => out.write("[]\n"),
            Sink::Json { first: false } => out.write("\n]\n"),
            Sink::Table { .. } => self.release(out, image, style),
        }
    }
}

/// One row of the table: the tag and the core's explanation as shown (escaped and
/// cut, see [`style::shown`], so neither a hostile tag nor a long one can break it).
fn row(test: &TagTest) -> (String, &'static str, String) {
    let protected = match (test.because, test.protected) {
        (TagVerdict::Invalid, _) => "invalid",
        (_, true) => "yes",
        (_, false) => "no",
    };
    (
        style::shown(&test.tag),
        protected,
        style::escaped(&test.why),
    )
}

/// The TAG column's width for these rows.
fn column_width(rows: &[(String, &str, String)]) -> usize {
    rows.iter()
        .map(|(tag, _, _)| tag.chars().count())
        .chain(std::iter::once("TAG".len()))
        .max()
        .unwrap_or(0)
}

const PROTECTED_WIDTH: usize = "PROTECTED".len();

fn table_header(image: &str, tag_width: usize, style: Style) -> String {
    let mut out = format!(
        "{} {}\n",
        style.dim("image"),
        style.bold(&style::shown(image))
    );
    out.push_str(&style.bold(&format!(
        "{}  {}  WHY",
        style::pad("TAG", tag_width),
        style::pad("PROTECTED", PROTECTED_WIDTH)
    )));
    out.push('\n');
    out
}

fn table_row(
    (tag, protected, why): &(String, &str, String),
    tag_width: usize,
    style: Style,
) -> String {
    let cell = style::pad(protected, PROTECTED_WIDTH);
    let cell = match *protected {
        "yes" => style.bold(&cell),
        "no" => style.dim(&cell),
        _ => style.error(&cell),
    };
    format!("{}  {cell}  {why}\n", style::pad(tag, tag_width))
}

/// An aligned table: TAG, PROTECTED, WHY (all rows at once; the command streams
/// the same text with [`Sink`]).
#[cfg(test)]
fn table(image: &str, tests: &[TagTest], style: Style) -> String {
    let rows: Vec<_> = tests.iter().map(row).collect();
    let width = column_width(&rows);
    let mut out = table_header(image, width, style);
    for row in &rows {
        out.push_str(&table_row(row, width, style));
    }
    out
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
        table("acme/web", &tests, Style::plain())
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
