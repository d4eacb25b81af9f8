//! `taglock preview`: walk a live registry's tags and show which ones the policy
//! would protect, and by which rule, before it is switched on. The walking is
//! `taglock_proxy::preview`; every verdict comes from the engine (`--engine`).

use crate::args::PreviewArgs;
use crate::engine::{self, Engine, EngineKind};
use crate::input::{PolicyInput, Source};
use crate::outcome::Outcome;
use crate::output::{self, plural};
use crate::style::{self, Style};
use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use policy_core::{PolicyDocument, TagVerdict, names};
use std::io::IsTerminal;
use std::time::Duration;
use taglock_proxy::config::read_password;
use taglock_proxy::preview::{self, ImageReport, Images, Progress, Report, TestedImage};
use taglock_proxy::upstream::{Upstream, UpstreamConfig};

/// Walks the registry, tests every tag, prints the report (table or JSON).
pub fn run(args: &PreviewArgs, engine: EngineKind) -> anyhow::Result<Outcome> {
    for image in &args.images {
        names::check_image_name(image).map_err(|err| anyhow!("--image {image}: {err}"))?;
    }
    let input = PolicyInput::read(&Source::new(&args.policy))?;
    let Some(policy) = Engine::load_valid(engine, &input)? else {
        return Ok(Outcome::InvalidPolicy);
    };
    let document = engine::document(&input.text)?;
    let password = match (&args.user, &args.password_file) {
        (Some(_), Some(path)) => Some(read_password(path)?),
        _ => None,
    };
    let timeout = Duration::from_secs(args.timeout);
    let registry = Upstream::new(&UpstreamConfig {
        url: args.registry.clone(),
        credentials: args.user.clone().zip(password),
        token_realm: None,
        token_request: taglock_proxy::bearer::TokenRequest::Get,
        timeout,
        forward_timeout: timeout,
    })?;
    let images = if args.images.is_empty() {
        Images::Catalog
    } else {
        Images::Named(args.images.clone())
    };
    let bar = progress_bar();
    let on_progress = |step: Progress<'_>| match step {
        Progress::Catalog { images } => {
            bar.set_message(format!("reading the catalog: {images} images"));
        }
        Progress::Image { done, total, .. } => {
            if done == 1 {
                bar.set_style(bar_style("{spinner} {msg} {wide_bar} {pos}/{len}"));
                bar.set_message("listing tags");
            }
            bar.set_length(u64::try_from(total).unwrap_or(u64::MAX));
            bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the HTTP client")?;
    let walked = runtime.block_on(preview::walk(
        &registry,
        images,
        usize::from(args.concurrency),
        &on_progress,
    ));
    bar.finish_and_clear();
    let walked = walked.with_context(|| format!("cannot preview {}", args.registry))?;
    let tested = walked
        .into_iter()
        .map(|walked| {
            let tests = walked
                .tags
                .iter()
                .map(|tag| policy.test_tag(&walked.image, tag))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(TestedImage { walked, tests })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rules: Vec<String> = document
        .immutability
        .rules
        .iter()
        .map(|rule| rule.name.clone())
        .collect();
    let report = Report::build(&rules, tested);
    if args.json {
        output::stdout(&output::json(&report, false)?)?;
    } else {
        output::stdout(&render(&document, &args.registry, &report, Style::stdout()))?;
    }
    Ok(Outcome::Success)
}

/// A bar on stderr when it is a terminal; hidden otherwise (pipes, CI logs).
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(bar_style("{spinner} {msg}"));
    bar.set_message("reading the catalog");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A progress style from an indicatif template (the templates here are constant
/// and valid; a plain bar stands in should one ever not be).
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The registry password: the first line of the file, without its line break.
/// A summary line, a table per image, and the rules with what they protect.
fn render(document: &PolicyDocument, registry: &str, report: &Report, style: Style) -> String {
    let mut out = format!(
        "{} {}: {}, {}, {} protected\n",
        style.dim("registry"),
        style.bold(&style::shown(registry)),
        plural(report.images.len(), "image"),
        plural(report.tag_count(), "tag"),
        report.protected_count()
    );
    for image in &report.images {
        out.push('\n');
        out.push_str(&image_table(image, style));
    }
    out.push('\n');
    out.push_str(&rules_table(document, report, style));
    out
}

/// `image NAME`, then TAG, PROTECTED, WHY for each of its tags.
fn image_table(image: &ImageReport, style: Style) -> String {
    let protected = image.tags.iter().filter(|tag| tag.protected).count();
    let mut out = format!(
        "{} {} ({}, {protected} protected)\n",
        style.dim("image"),
        style.bold(&style::shown(&image.image)),
        plural(image.tags.len(), "tag")
    );
    if let Some(error) = &image.error {
        out.push_str(&format!(
            "{}: {}\n",
            style.error("not listed"),
            style::shown(error)
        ));
        return out;
    }
    if image.tags.is_empty() {
        out.push_str(&style.dim("no tags"));
        out.push('\n');
        return out;
    }
    let tags: Vec<String> = image
        .tags
        .iter()
        .map(|tag| style::shown(&tag.tag))
        .collect();
    let tag_width = tags
        .iter()
        .map(|tag| tag.chars().count())
        .chain(std::iter::once("TAG".len()))
        .max()
        .unwrap_or(0);
    let protected_width = "PROTECTED".len();
    out.push_str(&style.bold(&format!(
        "{}  {}  WHY",
        style::pad("TAG", tag_width),
        style::pad("PROTECTED", protected_width)
    )));
    out.push('\n');
    for (tag, shown) in image.tags.iter().zip(&tags) {
        let (word, paint): (&str, fn(Style, &str) -> String) = match (tag.because, tag.protected) {
            (TagVerdict::Invalid, _) => ("invalid", Style::error),
            (_, true) => ("yes", Style::bold),
            (_, false) => ("no", Style::dim),
        };
        let cell = paint(style, &style::pad(word, protected_width));
        out.push_str(&format!(
            "{}  {cell}  {}\n",
            style::pad(shown, tag_width),
            style::escaped(&tag.why)
        ));
    }
    out
}

/// RULE, PROTECTS for every rule, then the rules that protect nothing.
fn rules_table(document: &PolicyDocument, report: &Report, style: Style) -> String {
    if report.rules.is_empty() {
        return format!("{}\n", style.dim("the policy has no rules"));
    }
    let names: Vec<String> = report
        .rules
        .iter()
        .map(|rule| style::shown(&rule.name))
        .collect();
    let width = names
        .iter()
        .map(|name| name.chars().count())
        .chain(std::iter::once("RULE".len()))
        .max()
        .unwrap_or(0);
    let mut out = style.bold(&format!("{}  PROTECTS", style::pad("RULE", width)));
    out.push('\n');
    for (rule, name) in report.rules.iter().zip(&names) {
        let count = plural(rule.protected, "tag");
        let count = if rule.protected == 0 {
            style.warning(&count)
        } else {
            count
        };
        out.push_str(&format!("{}  {count}\n", style::pad(name, width)));
    }
    if !report.unused_rules.is_empty() {
        let names: Vec<String> = report
            .unused_rules
            .iter()
            .map(|name| format!("\"{}\"", style::shown(name)))
            .collect();
        out.push_str(&format!(
            "{}: {} no existing tag: {}\n",
            style.warning("unused"),
            if names.len() == 1 {
                "this rule protects"
            } else {
                "these rules protect"
            },
            names.join(", ")
        ));
    }
    let protect = document.immutability.protect;
    if protect != policy_core::document::Protect::Some {
        out.push_str(&format!(
            "{}: rules apply only under protect: some; this policy has protect: {}\n",
            style.note("note"),
            serde_json::to_value(protect)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use taglock_proxy::preview::ImageTags;

    const POLICY: &str = r#"{"version": 1, "immutability": {"protect": "some",
        "rules": [
          {"name": "semver", "tags": {"regex": "^v\\d+\\.\\d+\\.\\d+$"}},
          {"name": "prod", "tags": {"matching": ["prod"]}}
        ],
        "exceptions": [{"matching": ["v0.*"]}]}}"#;

    fn report(images: &[(&str, &[&str])]) -> (policy_core::Policy, Report) {
        let policy = policy_core::Policy::from_json(POLICY).unwrap();
        let tested = images
            .iter()
            .map(|(image, tags)| TestedImage {
                walked: ImageTags {
                    image: (*image).to_owned(),
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    error: None,
                },
                tests: tags.iter().map(|tag| policy.test_tag(image, tag)).collect(),
            })
            .collect();
        let report = Report::build(&["semver".into(), "prod".into()], tested);
        (policy, report)
    }

    #[test]
    fn the_text_report_has_a_table_per_image_and_the_rules() {
        let (policy, report) = report(&[
            ("acme/web", &["v1.2.3", "latest", "v0.1.0"]),
            ("acme/empty", &[]),
        ]);
        let shown = render(
            policy.document(),
            "http://127.0.0.1:5000",
            &report,
            Style::plain(),
        );
        let expected = "\
registry http://127.0.0.1:5000: 2 images, 3 tags, 1 protected

image acme/web (3 tags, 1 protected)
TAG     PROTECTED  WHY
v1.2.3  yes        rule \"semver\" (^v\\d+\\.\\d+\\.\\d+$)
latest  no         no rule matches
v0.1.0  no         exempted by exception 1 (v0.*); rule \"semver\" would protect it

image acme/empty (0 tags, 0 protected)
no tags

RULE    PROTECTS
semver  1 tag
prod    0 tags
unused: this rule protects no existing tag: \"prod\"
";
        assert_eq!(shown, expected);
    }

    #[test]
    fn a_huge_or_hostile_tag_from_the_registry_is_shown_escaped_and_cut() {
        // A registry's tag list is not checked before it is shown: a tag of 65,536
        // characters once made the table's width formatting panic.
        let huge = "a".repeat(65_536);
        let (policy, report) = report(&[("acme/web", &[huge.as_str(), "v1\x1b[2J"])]);
        let shown = render(policy.document(), "r", &report, Style::plain());
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[4].contains("invalid"), "{}", lines[4]);
        assert!(lines[4].contains("… (65536 characters)"), "{}", lines[4]);
        assert!(
            lines[4].contains("a tag has at most 128 characters"),
            "{}",
            lines[4]
        );
        assert!(shown.len() < 4_000, "{}", shown.len());
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(shown.contains("v1\\u{1b}[2J"), "{shown}");
    }

    #[test]
    fn colour_only_when_asked() {
        let (policy, report) = report(&[("acme/web", &["v1.2.3"])]);
        let plain = render(policy.document(), "r", &report, Style::plain());
        let coloured = render(policy.document(), "r", &report, Style::coloured());
        assert!(!plain.contains('\x1b'));
        assert!(coloured.contains("\x1b[1;33m0 tags\x1b[0m"), "{coloured}");
    }

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_password(&path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_password(&path).is_err());
    }
}
