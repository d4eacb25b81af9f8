# Bitbucket-max, permissions part: the `permissions` section of `BITBUCKET_MAX`
# as data for `taglock.rego` (principals `kind:id` split into objects; roles by name).
package policy

workspace_admins := [{"kind": "user", "id": "root"}]

repositories := {
	"web-app": [
		{"role": "admin", "principal": {"kind": "user", "id": "alice"}},
		{"role": "write", "principal": {"kind": "group", "name": "devs"}},
		{"role": "write", "principal": {"kind": "pipeline", "repository": "web-app"}},
		{"role": "read", "principal": {"kind": "group", "name": "qa"}},
		{"role": "read", "principal": {"kind": "group", "name": "support"}},
	],
	"tools": [
		{"role": "admin", "principal": {"kind": "user", "id": "dora"}},
		{"role": "write", "principal": {"kind": "group", "name": "platform"}},
		{"role": "write", "principal": {"kind": "pipeline", "repository": "tools", "environment": "prod"}},
		{"role": "read", "principal": {"kind": "group", "name": "devs"}},
	],
}

# Exact image records, by name.
records := {
	"acme/web": {
		"repository": "web-app", "public": false, "publish": "anyone",
		"overrides": [{"principal": {"kind": "user", "id": "bob"}, "role": "read"}],
	},
	"acme/web-worker": {"repository": "web-app", "public": false, "publish": "pipelines-only", "overrides": []},
}

# Pattern links, in order (first match wins).
patterns := [{
	"pattern": "acme/tools/**", "repository": "tools", "public": true,
	"publish": "anyone", "overrides": [],
}]

pipelines_inherit_write := true
