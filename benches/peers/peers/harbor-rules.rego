# Harbor-max, immutability part: the 15 glob rules of `HARBOR_MAX`
# (`protect: some`), verbatim. `taglock.rego` matches repository globs with
# `glob.match(g, ["/"], image)` (`*` stops at `/`, `**` crosses it) and tag globs
# with `glob.match(g, null, tag)` (no delimiter; tags have no `/`), which is
# taglock's glob semantics for `*`, `**`, `?`, `[0-9]` and `{a,b}`.
package policy

rules := [
	{"name": "team-a-semver", "repositories": {"matching": ["team-a/**"]}, "tags": {"matching": ["v*.*.*"]}},
	{"name": "team-a-stable", "repositories": {"matching": ["team-a/**"]}, "tags": {"excluding": ["{rc,test}-*", "nightly*", "dev-*", "latest"]}},
	{"name": "team-b-release", "repositories": {"matching": ["team-b/**"]}, "tags": {"matching": ["release-*", "v*.*.*"]}},
	{"name": "team-c-release", "repositories": {"matching": ["team-c/*"]}, "tags": {"matching": ["release-[0-9]*", "v[0-9]*.[0-9]*.[0-9]*"]}},
	{"name": "platform-base", "repositories": {"matching": ["platform/base/*"]}, "tags": {"matching": ["[0-9]*.[0-9]*", "[0-9]*.[0-9]*.[0-9]*"]}},
	{"name": "platform-tools", "repositories": {"matching": ["platform/tools/**"]}, "tags": {"matching": ["v*", "stable"]}},
	{"name": "mirror-all", "repositories": {"matching": ["mirror/**"]}, "tags": {"matching": ["**"]}},
	{"name": "data-models", "repositories": {"matching": ["data/models/*"]}, "tags": {"matching": ["model-v*", "{prod,staging}-*"]}},
	{"name": "data-jobs", "repositories": {"matching": ["data/jobs/**"]}, "tags": {"excluding": ["{rc,test}-*", "pr-*"]}},
	{"name": "infra-charts", "repositories": {"matching": ["infra/charts/*"]}, "tags": {"matching": ["?.?.?", "??.?.?", "?.??.?"]}},
	{"name": "security-scanners", "repositories": {"matching": ["security/**"]}, "tags": {"matching": ["v*.*.*", "latest-stable"]}},
	{"name": "mobile-builds", "repositories": {"matching": ["mobile/{ios,android}/*"]}, "tags": {"matching": ["build-[0-9]*", "store-*"]}},
	{"name": "edge-prod", "repositories": {"matching": ["edge/*/prod"]}, "tags": {"matching": ["**"]}},
	{"name": "legacy-frozen", "repositories": {"matching": ["legacy/**", "archive/**"]}, "tags": {"matching": ["*"]}},
	{"name": "apps-release", "repositories": {"matching": ["apps/**"]}, "tags": {"matching": ["v*.*.*", "release-*", "{prod,staging}"]}},
]
