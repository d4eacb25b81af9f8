//! `taglock preview`: which tags already in a live registry a policy would
//! protect, and by which rule — before the policy is switched on.
//!
//! Two parts:
//! - [`walk`]: the catalog (or the named images) and each image's tags
//!   ([`listing`](crate::listing)), at most `concurrency` images at a time, over any
//!   [`RegistryClient`] (the CLI uses [`Upstream`](crate::upstream::Upstream));
//! - [`Report::build`]: a pure function from each image's tags and the policy's
//!   [`TagTest`] answers to the report. The core decides; this only counts.

use crate::listing::{self, ListingError, RegistryClient};
use futures_util::stream::{self, StreamExt};
use policy_core::{TagTest, TagVerdict, names};
use serde::Serialize;

/// Which images to walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Images {
    /// Every image of the catalog; one the catalog lists but whose tag list
    /// cannot be had (deleted meanwhile, a malformed name) is reported with an error.
    Catalog,
    /// Only these; one the registry does not know stops the walk.
    Named(Vec<String>),
}

/// How far the walk has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A catalog page was read; `images` listed so far (the last one gives the total).
    Catalog {
        /// Images listed so far.
        images: usize,
    },
    /// The tags of one more image were read.
    Image {
        /// The image.
        image: &'a str,
        /// Images done, this one included.
        done: usize,
        /// Images to do in all.
        total: usize,
    },
}

/// The tags of one image, as the walk found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTags {
    /// The image name.
    pub image: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Why its tags could not be listed (catalog walks only).
    pub error: Option<String>,
}

/// Lists the tags of every image to walk, `concurrency` images at a time, in
/// catalog (or command-line) order. Transport failures, timeouts and error
/// answers stop the walk: a preview never reports a partial registry as whole.
pub async fn walk<C: RegistryClient>(
    client: &C,
    images: Images,
    concurrency: usize,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Vec<ImageTags>, ListingError> {
    let (names, from_catalog) = match images {
        Images::Catalog => {
            let on_page = |images| progress(Progress::Catalog { images });
            (listing::catalog_pages(client, &on_page).await?, true)
        }
        Images::Named(names) => (names, false),
    };
    let total = names.len();
    let mut results = stream::iter(names)
        .map(|image| async move {
            let found = if from_catalog && names::check_image_name(&image).is_err() {
                Err("the catalog lists a name that is not a valid image name".to_owned())
            } else {
                match listing::tags(client, &image).await? {
                    Some(tags) => Ok(tags),
                    None if from_catalog => Err(
                        "the catalog lists it, but its tag list answers 404 (deleted meanwhile?)"
                            .to_owned(),
                    ),
                    None => {
                        return Err(ListingError::Answer {
                            url: client.url(&format!("/v2/{image}/tags/list")),
                            why: format!("404 Not Found: the registry has no image `{image}`"),
                        });
                    }
                }
            };
            let (tags, error) = match found {
                Ok(tags) => (tags, None),
                Err(error) => (Vec::new(), Some(error)),
            };
            Ok(ImageTags { image, tags, error })
        })
        .buffered(concurrency.max(1));
    let mut walked = Vec::with_capacity(total);
    while let Some(result) = results.next().await {
        let image = result?;
        progress(Progress::Image {
            image: &image.image,
            done: walked.len() + 1,
            total,
        });
        walked.push(image);
    }
    Ok(walked)
}

/// The preview: each image's tags with the policy's verdict, and per rule how
/// many tags it protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every image walked, in order.
    pub images: Vec<ImageReport>,
    /// Every rule of the policy, in document order, with the tags it protects.
    pub rules: Vec<RuleCount>,
    /// The rules that protect no existing tag, in document order.
    pub unused_rules: Vec<String>,
}

/// One image of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The image name.
    pub image: String,
    /// Why its tags could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its tags, sorted.
    pub tags: Vec<TagReport>,
}

/// One existing tag and the policy's verdict on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagReport {
    /// The tag.
    pub tag: String,
    /// Whether the policy makes it immutable.
    pub protected: bool,
    /// The rule that protects it (`None` under `protect: all` or when unprotected).
    pub rule: Option<String>,
    /// Why it is (not) protected: `rule`, `all`, `exception`, `referrer`,
    /// `no-rule`, `mode-none` or `invalid`.
    pub because: TagVerdict,
    /// Why the tag is malformed, when `because` is `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The verdict in words, as the core gives it.
    pub why: String,
}

/// How many existing tags one rule protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule's name.
    pub name: String,
    /// Tags it protects (as the first protecting rule in document order).
    pub protected: usize,
}

/// One image's walk result and the policy's answer for each of its tags.
#[derive(Debug, Clone)]
pub struct TestedImage {
    /// The image, its tags and any listing error.
    pub walked: ImageTags,
    /// The policy's answer for each tag, in the same order.
    pub tests: Vec<TagTest>,
}

impl Report {
    /// The report from each image's tests, counting for each of `rules` (the
    /// policy's rule names, in document order) the tags it protects.
    pub fn build(rules: &[String], images: Vec<TestedImage>) -> Report {
        let images: Vec<ImageReport> = images
            .into_iter()
            .map(|tested| ImageReport {
                image: tested.walked.image,
                error: tested.walked.error,
                tags: tested
                    .tests
                    .into_iter()
                    .map(|test| TagReport {
                        tag: test.tag,
                        protected: test.protected,
                        rule: test.rule.filter(|_| test.protected).map(|r| r.to_string()),
                        because: test.because,
                        error: test.error,
                        why: test.why,
                    })
                    .collect(),
            })
            .collect();
        let rules: Vec<RuleCount> = rules
            .iter()
            .map(|name| RuleCount {
                name: name.clone(),
                protected: images
                    .iter()
                    .flat_map(|image| &image.tags)
                    .filter(|tag| tag.protected && tag.rule.as_deref() == Some(name.as_str()))
                    .count(),
            })
            .collect();
        let unused_rules = rules
            .iter()
            .filter(|rule| rule.protected == 0)
            .map(|rule| rule.name.clone())
            .collect();
        Report {
            images,
            rules,
            unused_rules,
        }
    }

    /// Tags walked, in all images.
    pub fn tag_count(&self) -> usize {
        self.images.iter().map(|image| image.tags.len()).sum()
    }

    /// Tags the policy protects, in all images.
    pub fn protected_count(&self) -> usize {
        self.images
            .iter()
            .flat_map(|image| &image.tags)
            .filter(|tag| tag.protected)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::tests::{Table, registry, run};

    #[test]
    fn the_walk_follows_every_page_in_order() {
        let client = registry();
        let seen = std::sync::Mutex::new(Vec::new());
        let progress = |p: Progress<'_>| seen.lock().unwrap().push(format!("{p:?}"));
        let walked = run(walk(&client, Images::Catalog, 2, &progress)).unwrap();
        let summary: Vec<(&str, Vec<&str>, bool)> = walked
            .iter()
            .map(|w| {
                let tags = w.tags.iter().map(String::as_str).collect();
                (w.image.as_str(), tags, w.error.is_some())
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("acme/api", vec![], false),
                ("acme/gone", vec![], true),
                ("acme/web", vec!["latest", "v1", "v2"], false),
            ]
        );
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[..2],
            ["Catalog { images: 1 }", "Catalog { images: 3 }"]
        );
        assert_eq!(
            seen.last().unwrap(),
            r#"Image { image: "acme/web", done: 3, total: 3 }"#
        );
    }

    #[test]
    fn named_images_skip_the_catalog_and_an_unknown_one_stops_the_walk() {
        let client = registry();
        let named = Images::Named(vec!["acme/web".into()]);
        let walked = run(walk(&client, named, 8, &|_| {})).unwrap();
        assert_eq!(walked.len(), 1);
        assert!(
            client
                .asked
                .borrow()
                .iter()
                .all(|p| !p.contains("_catalog"))
        );

        let named = Images::Named(vec!["acme/gone".into()]);
        let err = run(walk(&client, named, 8, &|_| {})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GET http://registry.test/v2/acme/gone/tags/list: \
             404 Not Found: the registry has no image `acme/gone`"
        );
    }

    #[test]
    fn malformed_image_names_never_reach_a_url() {
        let client = Table::default().with(
            "/v2/_catalog?n=100",
            200,
            None,
            r#"{"repositories": ["../admin"]}"#,
        );
        let walked = run(walk(&client, Images::Catalog, 1, &|_| {})).unwrap();
        assert!(walked.first().unwrap().error.is_some());
        assert_eq!(client.asked.borrow().len(), 1);
    }

    fn tested(image: &str, tags: &[&str], policy: &policy_core::Policy) -> TestedImage {
        TestedImage {
            walked: ImageTags {
                image: image.to_owned(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                error: None,
            },
            tests: tags.iter().map(|tag| policy.test_tag(image, tag)).collect(),
        }
    }

    #[test]
    fn the_report_counts_tags_per_rule_and_lists_unused_rules() {
        let policy = policy_core::Policy::from_json(
            r#"{"version": 1, "immutability": {"protect": "some", "rules": [
                {"name": "semver", "tags": {"regex": "^v\\d+\\.\\d+\\.\\d+$"}},
                {"name": "any-v", "tags": {"regex": "^v"}},
                {"name": "prod", "tags": {"matching": ["prod"]}},
                {"name": "web-only", "repositories": {"matching": ["acme/web"]},
                 "tags": {"matching": ["stable"]}}
            ], "exceptions": [{"matching": ["v0.*"]}]}}"#,
        )
        .unwrap();
        let rules: Vec<String> = policy
            .document()
            .immutability
            .rules
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let report = Report::build(
            &rules,
            vec![
                tested("acme/web", &["v1.0.0", "v2", "latest", "v0.1.0"], &policy),
                tested("acme/api", &["v1.2.3", "stable"], &policy),
            ],
        );
        let counts: Vec<(&str, usize)> = report
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.protected))
            .collect();
        assert_eq!(
            counts,
            [("semver", 2), ("any-v", 1), ("prod", 0), ("web-only", 0)]
        );
        assert_eq!(report.unused_rules, ["prod", "web-only"]);
        assert_eq!((report.tag_count(), report.protected_count()), (6, 3));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["images"][0]["tags"][0],
            serde_json::json!({"tag": "v1.0.0", "protected": true, "rule": "semver",
                "because": "rule",
                "why": "rule \"semver\" (^v\\d+\\.\\d+\\.\\d+$); also matched by \"any-v\""})
        );
        assert_eq!(
            json["images"][0]["tags"][3],
            serde_json::json!({"tag": "v0.1.0", "protected": false, "rule": null,
                "because": "exception",
                "why": "exempted by exception 1 (v0.*); rule \"semver\" would protect it"})
        );
        assert_eq!(json["images"][1]["image"], "acme/api");
        assert!(json["images"][1].get("error").is_none());
        assert_eq!(
            json["rules"][0],
            serde_json::json!({"name": "semver", "protected": 2})
        );
    }

    #[test]
    fn the_report_under_protect_all_names_no_rule() {
        let policy = policy_core::Policy::from_json(
            r#"{"version": 1, "immutability": {"protect": "all",
                "exceptions": [{"matching": ["latest"]}]}}"#,
        )
        .unwrap();
        let report = Report::build(&[], vec![tested("acme/web", &["v1", "latest"], &policy)]);
        let tags = &report.images[0].tags;
        assert!(tags[0].protected && tags[0].rule.is_none());
        assert_eq!(tags[0].because, TagVerdict::All);
        assert!(!tags[1].protected);
        assert!(report.rules.is_empty() && report.unused_rules.is_empty());
    }
}
