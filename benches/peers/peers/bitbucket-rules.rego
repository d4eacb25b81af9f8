# Bitbucket-max, immutability part: the 7 regex rules of `BITBUCKET_MAX`
# (`protect: some`), verbatim (`regex.match` is a partial match, as in taglock;
# every pattern is anchored). Rust's regex engine (regorus) and RE2 agree on
# these patterns for ASCII tags.
package policy

rules := [
	{"name": "prod", "tags": {"regex": `^prod$`}},
	{"name": "semver", "tags": {"regex": `^v\d+\.\d+\.\d+$`}},
	{"name": "release", "tags": {"regex": `^release-.*$`}},
	{"name": "staging-or-prod", "tags": {"regex": `^(staging|prod)$`}},
	{"name": "hotfix", "tags": {"regex": `^hotfix-\d+$`}},
	{"name": "release-candidate", "tags": {"regex": `^v\d+\.\d+\.\d+-rc\.\d+$`}},
	{"name": "stable", "tags": {"regex": `^stable-[a-z]+$`}},
]
