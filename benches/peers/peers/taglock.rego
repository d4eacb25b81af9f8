# taglock's decision logic for `pull` and `push`, in Rego (regorus), driven by
# the policy translated into `data.policy`: a `*-permissions.rego` and a
# `*-rules.rego` module (`package policy`, constants only), which `src/rego.rs`
# evaluates once at load and hands to the engine as data (Rego's usual split of
# logic and configuration). `input` is the taglock request JSON:
#   {"operation": "push", "image", "digest", "tags": [{"name", "current"?}],
#    "image_exists", "actor": {"kind", "id", "groups"}}
#   {"operation": "pull", "image", "actor": {...}}
# The entry point is `data.taglock.allow`.
#
# Translated: links (records first, then patterns in order), grants (the highest
# role naming the actor), overrides (replace the inherited role), workspace
# admins, pipelines_inherit_write, public images, publish: pipelines-only,
# "first push into a pattern-linked image needs admin", unlinked images, and
# immutability under `protect: some` (rules with repository and tag selectors,
# identical re-push allowed, referrer tags exempt). Not translated (not reached
# by the workloads): deletes, mounts, exceptions, `protect: all`, tokens,
# host-resolved roles, host-recorded locks, request validation.
package taglock

roles := {"none": 0, "read": 1, "write": 2, "admin": 3}

default allow := false

allow if {
	input.operation == "pull"
	access_ok
}

allow if {
	input.operation == "push"
	access_ok
	not overwrites_immutable_tag
}

# ---- links ----
is_record if data.policy.records[input.image]

link := data.policy.records[input.image]

link := data.policy.patterns[first_pattern] if not is_record

first_pattern := min({i |
	some i, p in data.policy.patterns
	glob.match(p.pattern, ["/"], input.image)
})

linked if link

# ---- principals ----
authenticated if input.actor.kind != "anonymous"

pipeline_repository := split(input.actor.id, "/")[0] if input.actor.kind == "pipeline"

pipeline_environment := substring(input.actor.id, count(pipeline_repository) + 1, -1) if {
	contains(input.actor.id, "/")
}

matches(p) if {
	p.kind == "user"
	input.actor.kind == "user"
	input.actor.id == p.id
}

matches(p) if {
	p.kind == "group"
	authenticated
	some g in input.actor.groups
	g == p.name
}

matches(p) if {
	p.kind == "pipeline"
	pipeline_repository == p.repository
	not p.environment
}

matches(p) if {
	p.kind == "pipeline"
	pipeline_repository == p.repository
	pipeline_environment == p.environment
}

workspace_admin if {
	some p in data.policy.workspace_admins
	matches(p)
}

# ---- roles ----
override_roles := {roles[o.role] | some o in link.overrides; matches(o.principal)}

grant_roles := {roles[g.role] | some g in data.policy.repositories[link.repository]; matches(g.principal)}

inherited_roles contains 2 if {
	data.policy.pipelines_inherit_write
	pipeline_repository == link.repository
}

granted := max(override_roles) if count(override_roles) > 0

granted := max({0} | grant_roles | inherited_roles) if count(override_roles) == 0

default role := 0

role := 3 if workspace_admin

role := granted if not workspace_admin

required := 1 if input.operation == "pull"

required := 2 if {
	input.operation == "push"
	input.image_exists
}

required := 2 if {
	input.operation == "push"
	not input.image_exists
	is_record
}

required := 3 if {
	input.operation == "push"
	not input.image_exists
	not is_record
}

sufficient if role >= required

sufficient if {
	input.operation == "pull"
	link.public
	authenticated
}

creating if {
	input.operation == "push"
	not input.image_exists
}

pipelines_only_refused if {
	input.operation == "push"
	link.publish == "pipelines-only"
	input.actor.kind != "pipeline"
}

access_ok if {
	sufficient
	linked
	not pipelines_only_refused
}

# An image no link reaches: workspace admins may touch it if it exists.
access_ok if {
	sufficient
	not linked
	workspace_admin
	not creating
}

# ---- immutability (protect: some) ----
overwrites_immutable_tag if {
	some t in input.tags
	t.current
	t.current != input.digest
	protected(t.name)
}

referrer_tag(tag) if regex.match(`^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$`, tag)

protected(tag) if {
	not referrer_tag(tag)
	some r in data.policy.rules
	repository_ok(r)
	selects(r.tags, tag, null)
}

repository_ok(r) if not r.repositories

repository_ok(r) if selects(r.repositories, input.image, ["/"])

# A selector: regex (partial match, like taglock), any glob, or no glob.
selects(s, name, _) if regex.match(s.regex, name)

selects(s, name, delimiters) if {
	some g in s.matching
	glob.match(g, delimiters, name)
}

selects(s, name, delimiters) if {
	s.excluding
	not any_glob(s.excluding, name, delimiters)
}

any_glob(globs, name, delimiters) if {
	some g in globs
	glob.match(g, delimiters, name)
}
