// taglock for JavaScript: the policy engine's decision core (Rust, compiled to
// WebAssembly with wasm-bindgen) behind a small typed API. Node >= 20 and browsers,
// ESM. The same core decides for the CLI, the component and the proxy; this file
// only converts values and errors, it never decides anything itself.

import initWasm, {
  initSync,
  WasmPolicy,
  limitsFor as wasmLimitsFor,
  patternLength as wasmPatternLength,
  documentDefaults as wasmDocumentDefaults,
} from './pkg/taglock_policy.js';

const wasmUrl = new URL('./pkg/taglock_policy_bg.wasm', import.meta.url);

// Node reads the module from disk (fetch cannot load file: URLs); a browser (or
// any other host serving the package over http) streams it.
if (wasmUrl.protocol === 'file:' && typeof process === 'object' && process.versions?.node) {
  const { readFileSync } = await import('node:fs');
  initSync({ module: readFileSync(wasmUrl) });
} else {
  await initWasm({ module_or_path: wasmUrl });
}

/** The base class of every error this package throws on bad input. */
export class TaglockError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TaglockError';
  }
}

/** A policy was refused; `errors` lists every problem, each located. */
export class PolicyLoadError extends TaglockError {
  constructor(message, errors) {
    super(message);
    this.name = 'PolicyLoadError';
    /** @type {import('./index.d.ts').LoadError[]} */
    this.errors = errors;
  }
}

/**
 * A request (or another JSON argument) is not of the expected shape. A request that
 * has the right shape but a malformed tag, image name or digest is not an error: it
 * gets an `invalid_request` decision.
 */
export class RequestError extends TaglockError {
  constructor(message, error) {
    super(message);
    this.name = 'RequestError';
    /** JSON path of the offending value, e.g. `tags[0].name` (empty for the root). */
    this.path = error.path;
    /** 1-based line in the JSON text (0 when the input was a JS object or unknown). */
    this.line = error.line;
    /** 1-based column in the JSON text (0 when unknown). */
    this.column = error.column;
    /** The bare problem, without its location. */
    this.detail = error.message;
    /** Whether the text is not JSON at all. */
    this.syntax = error.syntax;
  }
}

// The adapter throws a JSON string for input problems; anything else (a bug or a
// WebAssembly trap) is passed on untouched.
function rethrow(thrown, Kind) {
  if (typeof thrown !== 'string') throw thrown;
  const payload = JSON.parse(thrown);
  if (Kind === PolicyLoadError) throw new PolicyLoadError(payload.message, payload.errors);
  throw new RequestError(payload.message, payload.error);
}

// JSON text stays as it is (the engine locates its errors by line and column);
// anything else is written as JSON first.
function toJsonText(value, what) {
  return typeof value === 'string' ? value : jsonOf(value, what);
}

function jsonOf(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new RequestError(`${what} cannot be written as JSON: ${err.message}`, {
      path: '', line: 0, column: 0, message: err.message, syntax: false,
    });
  }
  if (text === undefined) {
    throw new RequestError(`${what} is not a JSON value`, {
      path: '', line: 0, column: 0, message: `${what} is not a JSON value`, syntax: false,
    });
  }
  return text;
}

const dispose = Symbol.dispose ?? Symbol.for('Symbol.dispose');

/** A validated, compiled policy. Load once, evaluate many requests. */
export class Policy {
  #inner;

  /** Use `Policy.load`. */
  constructor(inner) {
    if (!(inner instanceof WasmPolicy)) throw new TypeError('use Policy.load(json) to load a policy');
    this.#inner = inner;
  }

  /**
   * Parses, validates and compiles a policy (JSON text or a plain object).
   * Throws `PolicyLoadError` listing every located problem; a policy never half-loads.
   */
  static load(policy) {
    if (typeof policy !== 'string' && (policy === null || typeof policy !== 'object')) {
      throw new TypeError('Policy.load takes policy JSON text or a policy object');
    }
    const text = toJsonText(policy, 'the policy');
    let inner;
    try {
      inner = WasmPolicy.load(text);
    } catch (thrown) {
      rethrow(thrown, PolicyLoadError);
    }
    return new Policy(inner);
  }

  #live() {
    if (this.#inner === undefined) throw new TypeError('this policy has been freed');
    return this.#inner;
  }

  /**
   * Decides one request (object or JSON text) and returns the decision (docs/policy.md, "Decisions").
   * Throws `RequestError` (with `path`) when the request does not have a request's shape.
   */
  evaluate(request) {
    const inner = this.#live();
    const text = toJsonText(request, 'the request');
    try {
      return JSON.parse(inner.evaluate(text));
    } catch (thrown) {
      rethrow(thrown, RequestError);
    }
  }

  /** Decides many requests in one call; paths in errors start with the index (`[2].tags`). */
  evaluateAll(requests) {
    const inner = this.#live();
    if (typeof requests !== 'string' && !Array.isArray(requests)) {
      throw new TypeError('evaluateAll takes an array of requests');
    }
    const text = toJsonText(requests, 'the requests');
    try {
      const decisions = JSON.parse(inner.evaluateAll(text));
      return decisions;
    } catch (thrown) {
      rethrow(thrown, RequestError);
    }
  }

  /**
   * Tests tags of one image: for each, protected or not, by which rule, and every
   * matching rule with the matched span (`start`/`end`, character offsets).
   */
  testTags(image, tags) {
    const inner = this.#live();
    if (typeof image !== 'string') throw new TypeError('image must be a string');
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
      throw new TypeError('tags must be an array of strings');
    }
    return JSON.parse(inner.testTags(image, tags));
  }

  /** Tests one tag of one image (see `testTags`). */
  testTag(image, tag) {
    return this.testTags(image, [tag])[0];
  }

  /** Warnings a careful admin wants before saving (docs/policy.md, "Lints"), each located by JSON path. */
  lints() {
    return JSON.parse(this.#live().lints());
  }

  /** The document the policy was loaded from, with every default filled in. */
  document() {
    return JSON.parse(this.#live().document());
  }

  /** The limits the policy was validated against. */
  limits() {
    return JSON.parse(this.#live().limits());
  }

  /** Releases the policy's WebAssembly memory now; the policy is unusable afterwards. */
  free() {
    if (this.#inner !== undefined) {
      this.#inner.free();
      this.#inner = undefined;
    }
  }

  /** Whether `free()` has been called. */
  get freed() {
    return this.#inner === undefined;
  }

  /** `using policy = Policy.load(...)` frees it at the end of the block. */
  [dispose]() {
    this.free();
  }
}

/**
 * What every optional setting of a policy document is when it is absent, as the
 * engine applies it (`mode`, `limits`, the `immutability` settings, `publish`).
 */
export const DEFAULTS = deepFreeze(JSON.parse(wasmDocumentDefaults()));

function deepFreeze(value) {
  for (const inner of Object.values(value)) if (typeof inner === 'object' && inner !== null) deepFreeze(inner);
  return Object.freeze(value);
}

/**
 * The numbers behind a `limits` value (`"bitbucket"`, `"harbor"`, or
 * `{max_rules, max_pattern_length}`), as the engine enforces them; without one,
 * the default profile's.
 */
export function limitsFor(limits = DEFAULTS.limits) {
  const text = jsonOf(limits, 'the limits');
  try {
    return JSON.parse(wasmLimitsFor(text));
  } catch (thrown) {
    rethrow(thrown, RequestError);
  }
}

/** How many characters a selector counts against `max_pattern_length`. */
export function patternLength(selector) {
  const text = jsonOf(selector, 'the selector');
  try {
    return wasmPatternLength(text);
  } catch (thrown) {
    rethrow(thrown, RequestError);
  }
}
