// The pattern tester: an editor over a policy document, and a view of what the
// engine (the JS package, i.e. the same Rust core registries run) decides for it.
// Nothing here decides: every verdict, error, lint, limit and length comes from the
// package. The page keeps the document as plain JSON and re-loads it on each edit.

import { DEFAULTS, Policy, PolicyLoadError, limitsFor, patternLength } from '../index.js';

const DIGEST_NEW = `sha256:${'a'.repeat(64)}`;
const DIGEST_OLD = `sha256:${'b'.repeat(64)}`;

const EXAMPLE = {
  version: 1,
  mode: 'enforce',
  limits: 'bitbucket',
  immutability: {
    protect: 'some',
    rules: [
      { name: 'semver', tags: { regex: '^v\\d+\\.\\d+\\.\\d+$' } },
      { name: 'release-branches', tags: { matching: ['release-*'] } },
    ],
    exceptions: [{ regex: '^dev-' }],
    identical_repush: 'allow',
    admin_delete: true,
    referrer_tags: 'mutable',
  },
};

const EXAMPLE_TAGS = [
  'v1.2.0', 'v1.2.0-rc1', 'v2.0.0', 'release-2024.05', 'latest', 'prod', 'preprod',
  'dev-feature-x', 'main', 'sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig',
].join('\n');

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

/** The document being edited. Sections the editor does not show are kept as they are. */
let doc = structuredClone(EXAMPLE);
/** The loaded policy for `doc`, or null when the engine refused it. */
let policy = null;
let lastProblems = { errors: [], lints: [] };
/** Timings of the last evaluation, for the benchmark and the curious; `readyMs`:
 * when the page became usable, in ms since navigation started. */
const timing = { engineMs: 0, renderMs: 0, totalMs: 0, tags: 0, evaluations: 0, readyMs: 0 };
window.taglockTester = { timing, get document() { return structuredClone(doc); } };

// ---------------------------------------------------------------- document access

const imm = () => {
  if (doc.immutability === null || typeof doc.immutability !== 'object') doc.immutability = {};
  return doc.immutability;
};
const rules = () => (Array.isArray(imm().rules) ? imm().rules : (imm().rules = []));
const exceptions = () => (Array.isArray(imm().exceptions) ? imm().exceptions : (imm().exceptions = []));

function selectorKind(selector) {
  if (selector && typeof selector === 'object') {
    for (const kind of ['regex', 'matching', 'excluding']) if (kind in selector) return kind;
  }
  return 'regex';
}

/** The selector as the editor shows it: the regex, or the globs joined by commas. */
function selectorText(selector) {
  const kind = selectorKind(selector);
  const value = selector?.[kind];
  if (kind === 'regex') return typeof value === 'string' ? value : '';
  return Array.isArray(value) ? value.join(',') : '';
}

/** Splits a glob list at the commas that are not inside `{…}` or `[…]` and not escaped. */
function splitGlobs(text) {
  const globs = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1];
      i += 1;
    } else if (c === ',' && depth === 0) {
      globs.push(current);
      current = '';
    } else {
      if (c === '{' || c === '[') depth += 1;
      if ((c === '}' || c === ']') && depth > 0) depth -= 1;
      current += c;
    }
  }
  globs.push(current);
  return globs.map((g) => g.trim()).filter((g) => g !== '');
}

function makeSelector(kind, text) {
  return kind === 'regex' ? { regex: text } : { [kind]: splitGlobs(text) };
}

// ---------------------------------------------------------------- editor rendering

function renderSettings() {
  const protect = imm().protect ?? DEFAULTS.immutability.protect;
  for (const radio of document.querySelectorAll('input[name="protect"]')) radio.checked = radio.value === protect;
  $('mode').value = doc.mode ?? DEFAULTS.mode;
  const limits = doc.limits ?? DEFAULTS.limits;
  const custom = typeof limits === 'object' && limits !== null;
  $('limits').value = custom ? 'custom' : limits;
  $('custom-limits').hidden = !custom;
  if (custom) {
    $('max-rules').value = limits.max_rules ?? '';
    $('max-pattern').value = limits.max_pattern_length ?? '';
  }
  $('identical-repush').value = imm().identical_repush ?? DEFAULTS.immutability.identical_repush;
  $('referrer-tags').value = imm().referrer_tags ?? DEFAULTS.immutability.referrer_tags;
  $('admin-delete').checked = imm().admin_delete ?? DEFAULTS.immutability.admin_delete;
}

function bindSelector(container, get, set, describe) {
  const kind = container.querySelector('.kind');
  const pattern = container.querySelector('.pattern');
  const selector = get();
  kind.value = selectorKind(selector);
  pattern.value = selectorText(selector);
  const placeholder = () => {
    pattern.placeholder = kind.value === 'regex' ? 'e.g. ^v\\d+\\.\\d+\\.\\d+$' : 'e.g. release-*,hotfix-*';
  };
  placeholder();
  kind.setAttribute('aria-label', `${describe}: how it matches`);
  pattern.setAttribute('aria-label', `${describe}: ${kind.value === 'regex' ? 'regular expression' : 'globs, separated by commas'}`);
  kind.addEventListener('change', () => {
    set(makeSelector(kind.value, pattern.value));
    placeholder();
    pattern.setAttribute('aria-label', `${describe}: ${kind.value === 'regex' ? 'regular expression' : 'globs, separated by commas'}`);
    evaluate();
  });
  pattern.addEventListener('input', () => {
    set(makeSelector(kind.value, pattern.value));
    evaluate();
  });
}

function renderRules() {
  const list = $('rules');
  list.replaceChildren();
  rules().forEach((rule, index) => {
    const item = $('rule-template').content.firstElementChild.cloneNode(true);
    item.dataset.index = String(index);
    const label = () => `Rule ${index + 1}${rule.name ? ` “${rule.name}”` : ''}`;
    item.setAttribute('aria-label', label());
    const name = item.querySelector('.name');
    name.value = typeof rule.name === 'string' ? rule.name : '';
    name.addEventListener('input', () => {
      rule.name = name.value;
      item.setAttribute('aria-label', label());
      relabelRuleButtons(item, index, rule.name);
      evaluate();
    });
    const tags = item.querySelector('.tags-selector');
    bindSelector(tags, () => rule.tags, (s) => { rule.tags = s; }, `Rule ${index + 1} tags`);
    const hasRepos = item.querySelector('.has-repos');
    const repos = item.querySelector('.repos-selector');
    hasRepos.checked = rule.repositories !== undefined;
    repos.hidden = !hasRepos.checked;
    hasRepos.setAttribute('aria-controls', `repos-${index}`);
    repos.id = `repos-${index}`;
    bindSelector(repos, () => rule.repositories ?? { matching: [] }, (s) => { rule.repositories = s; }, `Rule ${index + 1} images`);
    hasRepos.addEventListener('change', () => {
      repos.hidden = !hasRepos.checked;
      if (hasRepos.checked) {
        const kind = repos.querySelector('.kind').value;
        rule.repositories = makeSelector(kind, repos.querySelector('.pattern').value);
        repos.querySelector('.pattern').focus();
      } else {
        delete rule.repositories;
      }
      evaluate();
    });
    item.querySelector('.up').disabled = index === 0;
    item.querySelector('.down').disabled = index === rules().length - 1;
    item.querySelector('.up').addEventListener('click', () => moveRule(index, -1, 'up'));
    item.querySelector('.down').addEventListener('click', () => moveRule(index, 1, 'down'));
    item.querySelector('.remove').addEventListener('click', () => removeRule(index));
    relabelRuleButtons(item, index, rule.name);
    list.append(item);
  });
}

function relabelRuleButtons(item, index, name) {
  const who = name ? `rule “${name}”` : `rule ${index + 1}`;
  item.querySelector('.up').setAttribute('aria-label', `Move ${who} up`);
  item.querySelector('.down').setAttribute('aria-label', `Move ${who} down`);
  item.querySelector('.remove').setAttribute('aria-label', `Remove ${who}`);
}

function renderExceptions() {
  const list = $('exceptions');
  list.replaceChildren();
  exceptions().forEach((selector, index) => {
    const item = $('exception-template').content.firstElementChild.cloneNode(true);
    item.dataset.index = String(index);
    item.setAttribute('aria-label', `Exception ${index + 1}`);
    bindSelector(item.querySelector('.tags-selector'), () => exceptions()[index], (s) => { exceptions()[index] = s; }, `Exception ${index + 1}`);
    const remove = item.querySelector('.remove');
    remove.setAttribute('aria-label', `Remove exception ${index + 1}`);
    remove.addEventListener('click', () => {
      exceptions().splice(index, 1);
      renderExceptions();
      evaluate();
      const items = $('exceptions').querySelectorAll('.pattern');
      (items[Math.min(index, items.length - 1)] ?? $('add-exception')).focus();
    });
    list.append(item);
  });
}

function uniqueRuleName() {
  const names = new Set(rules().map((r) => r.name));
  for (let n = rules().length + 1; ; n += 1) if (!names.has(`rule-${n}`)) return `rule-${n}`;
}

function moveRule(index, delta, direction) {
  const list = rules();
  const to = index + delta;
  if (to < 0 || to >= list.length) return;
  [list[index], list[to]] = [list[to], list[index]];
  renderRules();
  evaluate();
  const button = $('rules').children[to]?.querySelector(`.${direction}`);
  (button && !button.disabled ? button : $('rules').children[to]?.querySelector('.name'))?.focus();
}

function removeRule(index) {
  rules().splice(index, 1);
  renderRules();
  evaluate();
  const items = $('rules').children;
  (items[Math.min(index, items.length - 1)]?.querySelector('.name') ?? $('add-rule')).focus();
}

// ---------------------------------------------------------------- problems, located

/** `immutability.rules[2].tags.regex` → `{list: 'rules', index: 2}`. */
function locate(path) {
  const m = /^immutability\.(rules|exceptions)\[(\d+)\]/.exec(path ?? '');
  return m ? { list: m[1], index: Number(m[2]) } : null;
}

/** The JSON value at a path like `immutability.rules[0].tags.matching[1]`. */
function valueAt(path) {
  let value = doc;
  for (const part of (path ?? '').match(/[^.[\]]+/g) ?? []) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[/^\d+$/.test(part) ? Number(part) : part];
  }
  return value;
}

function problemItem(kind, problem) {
  const item = el('li', { class: `problem ${kind}` });
  item.append(el('span', { class: 'badge', text: kind === 'error' ? 'error' : 'warning' }), ' ');
  item.append(el('span', { class: 'message', text: problem.message }), ' ');
  const where = [problem.path];
  if (problem.line != null) where.push(`line ${problem.line}, column ${problem.column}`);
  item.append(el('code', { class: 'where', text: `${where.filter(Boolean).join(' · ')} [${problem.code}]` }));
  const value = valueAt(problem.path);
  if (problem.offset != null && typeof value === 'string') {
    // Point at the character the engine blames.
    const at = Math.min(problem.offset, value.length);
    const chars = Array.from(value);
    const shown = el('code', { class: 'pointer', 'aria-label': `at character ${problem.offset} of the pattern` });
    shown.append(chars.slice(0, at).join(''), el('mark', { text: chars[at] ?? ' ' }), chars.slice(at + 1).join(''));
    item.append(el('br'), shown, el('span', { class: 'offset', text: ` character ${problem.offset}` }));
  }
  return item;
}

function renderProblems(errors, lints) {
  const byTarget = new Map();
  const general = [];
  const put = (kind, problem) => {
    const at = locate(problem.path);
    const list = at ? $(at.list).children[at.index] : null;
    if (list) {
      const key = `${at.list}:${at.index}`;
      if (!byTarget.has(key)) byTarget.set(key, []);
      byTarget.get(key).push(problemItem(kind, problem));
    } else {
      general.push(problemItem(kind, problem));
    }
  };
  errors.forEach((e) => put('error', e));
  lints.forEach((l) => put('lint', l));
  for (const list of ['rules', 'exceptions']) {
    Array.from($(list).children).forEach((item, index) => {
      const found = byTarget.get(`${list}:${index}`) ?? [];
      item.querySelector('.messages').replaceChildren(...found);
      item.classList.toggle('has-error', found.some((f) => f.classList.contains('error')));
      item.classList.toggle('has-lint', found.some((f) => f.classList.contains('lint')));
      for (const input of item.querySelectorAll('input.pattern, input.name')) input.removeAttribute('aria-invalid');
      for (const e of errors) {
        const at = locate(e.path);
        if (at && at.list === list && at.index === index) {
          const field = /\.name$/.test(e.path) ? item.querySelector('.name')
            : /\.repositories/.test(e.path) ? item.querySelector('.repos-selector .pattern')
              : item.querySelector('.tags-selector .pattern');
          field?.setAttribute('aria-invalid', 'true');
        }
      }
    });
  }
  const box = $('policy-problems');
  if (general.length === 0) {
    box.replaceChildren();
  } else {
    box.replaceChildren(el('ul', { class: 'messages' }, ...general));
  }
}

// ---------------------------------------------------------------- counters

function renderCounters(limits) {
  const counter = (node, used, max, noun) => {
    node.textContent = `${used} of ${max} ${noun}`;
    node.classList.toggle('over', used > max);
  };
  counter($('rule-counter'), rules().length, limits.max_rules, 'rules');
  counter($('exception-counter'), exceptions().length, limits.max_rules, 'exceptions');
  const length = (container, selector) => {
    const node = container.querySelector('.length');
    let n = 0;
    try {
      n = patternLength(selector);
    } catch {
      n = 0;
    }
    node.textContent = `${n}/${limits.max_pattern_length} characters`;
    node.classList.toggle('over', n > limits.max_pattern_length);
  };
  Array.from($('rules').children).forEach((item, i) => {
    const rule = rules()[i];
    length(item.querySelector('.tags-selector'), rule?.tags);
    if (rule?.repositories) length(item.querySelector('.repos-selector'), rule.repositories);
  });
  Array.from($('exceptions').children).forEach((item, i) => length(item.querySelector('.tags-selector'), exceptions()[i]));
  $('add-rule').setAttribute('aria-describedby', 'rule-counter');
  $('rules-note').hidden = (imm().protect ?? DEFAULTS.immutability.protect) === 'some';
  $('rules-section').classList.toggle('inactive', (imm().protect ?? DEFAULTS.immutability.protect) !== 'some');
}

function currentLimits() {
  try {
    return limitsFor(doc.limits ?? DEFAULTS.limits);
  } catch {
    return limitsFor();
  }
}

// ---------------------------------------------------------------- sample tags

const rows = [];

function sampleTags() {
  return $('tags').value.split('\n').map((t) => t.trim()).filter((t) => t !== '');
}

function renderTags(tests) {
  const body = $('results-body');
  while (rows.length < tests.length) {
    const tag = el('span', { class: 'tag', role: 'cell' });
    const verdict = el('span', { class: 'verdict', role: 'cell' });
    const because = el('span', { class: 'because', role: 'cell' });
    const row = el('div', { role: 'row' }, tag, verdict, because);
    rows.push({ row, tag, verdict, because, key: '' });
  }
  let fragment = null;
  tests.forEach((t, i) => {
    const r = rows[i];
    const span = t.matches.find((m) => m.rule === t.rule) ?? t.matches[0];
    const key = `${t.tag}\u0000${t.protected}\u0000${t.because}\u0000${span ? `${span.start}:${span.end}` : ''}\u0000${t.why}`;
    if (r.key !== key) {
      r.key = key;
      const chars = t.tag;
      if (span && span.end > span.start) {
        r.tag.replaceChildren(chars.slice(0, span.start), el('mark', { text: chars.slice(span.start, span.end) }), chars.slice(span.end));
      } else {
        r.tag.textContent = chars;
      }
      const state = t.because === 'invalid' ? 'invalid' : t.protected ? 'immutable' : 'mutable';
      r.row.className = `result ${state}`;
      r.verdict.textContent = state === 'invalid' ? '✗ invalid' : t.protected ? 'immutable' : 'mutable';
      // The core's own words, the same the CLI prints.
      r.because.textContent = t.why;
    }
    if (r.row.parentNode !== body) {
      fragment ??= document.createDocumentFragment();
      fragment.append(r.row);
    }
  });
  if (fragment) body.append(fragment);
  for (let i = tests.length; i < rows.length && rows[i].row.parentNode === body; i += 1) rows[i].row.remove();
  const protectedCount = tests.filter((t) => t.protected).length;
  const invalid = tests.filter((t) => t.because === 'invalid').length;
  $('summary').textContent = tests.length === 0 ? 'Type or paste tags above.'
    : `${protectedCount} of ${tests.length} tags immutable once pushed${invalid ? `, ${invalid} not valid tags` : ''}.`;
  // The "try it" suggestions only change with the tag list, not with the rules.
  const valid = tests.filter((t) => t.because !== 'invalid').slice(0, 200).map((t) => t.tag);
  const suggestions = valid.join('\n');
  if (suggestions !== lastSuggestions) {
    lastSuggestions = suggestions;
    $('try-tag-list').replaceChildren(...valid.map((tag) => el('option', { value: tag })));
  }
}

let lastSuggestions = null;

function refuseTags() {
  for (const r of rows) {
    if (r.row.parentNode) r.row.remove();
    r.key = '';
  }
  $('summary').textContent = 'The engine refused this policy: fix the errors above to see the tags.';
}

// ---------------------------------------------------------------- try it

const TERMINAL_CODE = { DENIED: 'denied', UNAUTHORIZED: 'unauthorized', NAME_INVALID: 'name invalid', TAG_INVALID: 'tag invalid', DIGEST_INVALID: 'digest invalid' };

function tryRequest() {
  const image = $('image').value.trim();
  const tag = $('try-tag').value.trim();
  const exists = $('try-exists').checked;
  const state = { name: tag, current: exists ? $('try-current').value.trim() : null };
  if ($('try-locked').checked) state.locked = true;
  const actor = { kind: $('try-kind').value };
  if (actor.kind !== 'anonymous') {
    actor.id = $('try-id').value.trim();
    if ($('try-admin').checked) actor.workspace_admin = true;
    if ($('try-role').value) actor.role = $('try-role').value;
  }
  if ($('try-op').value === 'push') {
    return { operation: 'push', image, digest: $('try-digest').value.trim(), tags: [state], image_exists: $('try-image-exists').checked, actor };
  }
  return { operation: 'delete', image, target: { tag }, tags: [state], actor };
}

function renderDecision() {
  const box = $('decision');
  const push = $('try-op').value === 'push';
  $('try-digest').closest('label').hidden = !push;
  $('try-image-exists').closest('label').hidden = !push;
  $('try-current').disabled = !$('try-exists').checked;
  if (policy === null) {
    box.replaceChildren(el('p', { class: 'note', text: 'No decision: the engine refused the policy.' }));
    return;
  }
  let decision;
  const request = tryRequest();
  try {
    decision = policy.evaluate(request);
  } catch (err) {
    box.replaceChildren(el('p', { class: 'problem error', text: `${err.name}: ${err.message}` }));
    return;
  }
  const verdict = decision.would_deny ? 'would be denied (audit mode: allowed)' : decision.allowed ? 'allowed' : 'denied';
  const command = push ? `docker push ${request.image}:${request.tags[0].name}` : `regctl tag delete ${request.image}:${request.target.tag}`;
  const http = push ? `PUT /v2/${request.image}/manifests/${request.tags[0].name}` : `DELETE /v2/${request.image}/manifests/${request.target.tag}`;
  const code = decision.error?.errors?.[0]?.code;
  const terminal = el('pre', { class: 'terminal', 'aria-label': 'What the developer sees at the terminal' });
  terminal.append(el('span', { class: 'prompt', text: `$ ${command}\n` }));
  if (decision.allowed) {
    terminal.append(`${push ? `${request.tags[0].name}: digest: ${request.digest}` : `deleted ${request.image}:${request.target.tag}`}\n`);
    if (decision.would_deny) terminal.append(el('span', { class: 'warn', text: `Warning: 299 - "${decision.message}"\n` }));
  } else {
    terminal.append(el('span', { class: 'err', text: `${TERMINAL_CODE[code] ?? code}: ${decision.message}\n` }));
  }
  const facts = el('dl', { class: 'facts' },
    el('dt', { text: 'Decision' }), el('dd', { class: `verdict ${decision.allowed && !decision.would_deny ? 'ok' : 'no'}`, text: verdict }),
    el('dt', { text: 'Reason' }), el('dd', {}, el('code', { text: decision.reason })),
    el('dt', { text: 'Rule' }), el('dd', { text: decision.rule ?? '—' }),
    el('dt', { text: 'Registry answers' }), el('dd', {}, el('code', { text: `${http} → ${decision.status}${code ? ` ${code}` : ''}` })));
  if (decision.protected_tags.length > 0) {
    facts.append(el('dt', { text: 'Now immutable' }), el('dd', { text: decision.protected_tags.join(', ') }));
  }
  const details = el('details', {}, el('summary', { text: 'Decision JSON' }), el('pre', { class: 'json', text: JSON.stringify(decision, null, 2) }));
  box.replaceChildren(facts, el('p', { class: 'message', text: decision.message }), terminal, details);
  box.dataset.reason = decision.reason;
}

// ---------------------------------------------------------------- evaluation

function evaluate() {
  const start = performance.now();
  const text = JSON.stringify(doc);
  policy?.free();
  policy = null;
  let errors = [];
  try {
    policy = Policy.load(text);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    errors = err.errors;
  }
  const lints = policy ? policy.lints() : [];
  const tags = sampleTags();
  const tests = policy ? policy.testTags($('image').value.trim(), tags) : null;
  const engineDone = performance.now();
  lastProblems = { errors, lints };
  renderProblems(errors, lints);
  renderCounters(currentLimits());
  if (tests) renderTags(tests);
  else refuseTags();
  renderDecision();
  if (document.activeElement !== $('json')) $('json').value = JSON.stringify(doc, null, 2);
  const end = performance.now();
  Object.assign(timing, { engineMs: engineDone - start, renderMs: end - engineDone, totalMs: end - start, tags: tags.length });
  timing.evaluations += 1;
  document.body.dataset.state = policy ? 'loaded' : 'refused';
}

function renderAll() {
  renderSettings();
  renderRules();
  renderExceptions();
  evaluate();
}

// ---------------------------------------------------------------- import / export

function importText(text) {
  const box = $('import-problems');
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Let the engine say where: it locates JSON syntax errors by line and column.
    try {
      Policy.load(text).free();
    } catch (err) {
      box.replaceChildren(el('ul', { class: 'messages' }, ...(err.errors ?? [{ code: 'json-syntax', message: err.message, path: '' }]).map((e) => problemItem('error', e))));
    }
    return false;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    box.replaceChildren(el('p', { class: 'problem error', text: 'A policy is a JSON object.' }));
    return false;
  }
  box.replaceChildren();
  doc = parsed;
  renderAll();
  box.replaceChildren(el('p', { class: 'note', text: policy ? 'Imported.' : `Imported, but the engine refuses it: ${lastProblems.errors.length} problem(s), shown next to what they concern.` }));
  return true;
}

function exportPolicy() {
  const blob = new Blob([`${JSON.stringify(doc, null, 2)}\n`], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: 'policy.json' });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

// ---------------------------------------------------------------- wiring

function wire() {
  for (const radio of document.querySelectorAll('input[name="protect"]')) {
    radio.addEventListener('change', () => { imm().protect = radio.value; evaluate(); });
  }
  $('mode').addEventListener('change', () => { doc.mode = $('mode').value; evaluate(); });
  $('limits').addEventListener('change', () => {
    if ($('limits').value === 'custom') {
      const base = currentLimits();
      doc.limits = { max_rules: base.max_rules, max_pattern_length: base.max_pattern_length };
    } else {
      doc.limits = $('limits').value;
    }
    renderSettings();
    evaluate();
  });
  const customLimit = (input, key) => input.addEventListener('input', () => {
    if (typeof doc.limits !== 'object' || doc.limits === null) return;
    doc.limits[key] = input.value === '' ? 0 : Number(input.value);
    evaluate();
  });
  customLimit($('max-rules'), 'max_rules');
  customLimit($('max-pattern'), 'max_pattern_length');
  $('identical-repush').addEventListener('change', () => { imm().identical_repush = $('identical-repush').value; evaluate(); });
  $('referrer-tags').addEventListener('change', () => { imm().referrer_tags = $('referrer-tags').value; evaluate(); });
  $('admin-delete').addEventListener('change', () => { imm().admin_delete = $('admin-delete').checked; evaluate(); });
  $('add-rule').addEventListener('click', () => {
    rules().push({ name: uniqueRuleName(), tags: { regex: '' } });
    if ((imm().protect ?? DEFAULTS.immutability.protect) !== 'some') imm().protect = 'some';
    renderSettings();
    renderRules();
    evaluate();
    $('rules').lastElementChild?.querySelector('.tags-selector .pattern').focus();
  });
  $('add-exception').addEventListener('click', () => {
    exceptions().push({ regex: '' });
    renderExceptions();
    evaluate();
    $('exceptions').lastElementChild?.querySelector('.pattern').focus();
  });
  $('image').addEventListener('input', evaluate);
  $('tags').addEventListener('input', evaluate);
  for (const id of ['try-op', 'try-tag', 'try-exists', 'try-current', 'try-locked', 'try-digest', 'try-image-exists', 'try-kind', 'try-id', 'try-role', 'try-admin']) {
    $(id).addEventListener('input', renderDecision);
    $(id).addEventListener('change', renderDecision);
  }
  $('try-form').addEventListener('submit', (e) => e.preventDefault());
  $('import').addEventListener('click', () => importText($('json').value));
  $('json').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      importText($('json').value);
    }
  });
  $('export').addEventListener('click', exportPolicy);
  $('open-file').addEventListener('change', async () => {
    const file = $('open-file').files?.[0];
    if (file) {
      const text = await file.text();
      $('json').value = text;
      importText(text);
    }
  });
}

function start() {
  $('tags').value = EXAMPLE_TAGS;
  $('try-current').value = DIGEST_OLD;
  $('try-digest').value = DIGEST_NEW;
  wire();
  renderAll();
  $('engine-status').textContent = 'Engine ready: every verdict below comes from the taglock core (WebAssembly).';
  $('engine-status').classList.add('ready');
  $('app').hidden = false;
  document.body.dataset.ready = 'true';
  timing.readyMs = performance.now();
}

start();
