# Harbor-max, permissions part: the `permissions` section of `HARBOR_MAX` as data
# for `taglock.rego`.
package policy

workspace_admins := [{"kind": "user", "id": "root"}]

repositories := {
	"apps": [
		{"role": "admin", "principal": {"kind": "user", "id": "alice"}},
		{"role": "write", "principal": {"kind": "group", "name": "devs"}},
		{"role": "write", "principal": {"kind": "pipeline", "repository": "apps"}},
		{"role": "read", "principal": {"kind": "group", "name": "qa"}},
		{"role": "read", "principal": {"kind": "group", "name": "support"}},
	],
	"platform": [
		{"role": "admin", "principal": {"kind": "user", "id": "dora"}},
		{"role": "write", "principal": {"kind": "group", "name": "platform"}},
		{"role": "read", "principal": {"kind": "group", "name": "devs"}},
	],
	"data": [
		{"role": "admin", "principal": {"kind": "user", "id": "erin"}},
		{"role": "write", "principal": {"kind": "group", "name": "data"}},
		{"role": "write", "principal": {"kind": "pipeline", "repository": "data", "environment": "prod"}},
		{"role": "read", "principal": {"kind": "group", "name": "analysts"}},
	],
}

records := {}

# Pattern links, in order (first match wins).
patterns := [
	{"pattern": "apps/**", "repository": "apps", "public": false, "publish": "anyone", "overrides": []},
	{"pattern": "platform/**", "repository": "platform", "public": true, "publish": "anyone", "overrides": []},
	{"pattern": "data/**", "repository": "data", "public": false, "publish": "pipelines-only", "overrides": []},
]

pipelines_inherit_write := true
