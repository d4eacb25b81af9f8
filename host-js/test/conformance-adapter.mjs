// The JS engines as the conformance runner sees them (tests/conformance/, the Rust
// crate taglock-conformance, `src/node.rs`): JSON lines on stdin, one answer line
// per command on stdout, in the JSON contract of docs/policy.md.
//
//   node test/conformance-adapter.mjs package     the JS package (index.js over pkg/)
//   node test/conformance-adapter.mjs component   the WIT component, transpiled by jco
//
// Prints {"ready": <flavour>} once loaded. Then each command
//   {"id", "op": "load", "policy": text}             -> {"policy": handle} | {"errors": [...]}
//   {"id", "op": "evaluate", "policy", "request": text} -> the decision
//   {"id", "op": "test_tag", "policy", "image", "tag"}  -> the tag test
//   {"id", "op": "lints", "policy"}                  -> the lints
// is answered with {"id", "ok": answer} or {"id", "error": message}. This file only
// translates; the runner compares.

import { createInterface } from 'node:readline';

const flavours = {
  async package() {
    const { Policy, PolicyLoadError } = await import('../index.js');
    return {
      load(text) {
        try {
          return { policy: Policy.load(text) };
        } catch (err) {
          if (err instanceof PolicyLoadError) return { errors: err.errors };
          throw err;
        }
      },
      evaluate: (policy, request) => policy.evaluate(request),
      testTag: (policy, image, tag) => policy.testTag(image, tag),
      lints: (policy) => policy.lints(),
    };
  },
  async component() {
    const component = await import('./component/component.js');
    const { instantiate, cleanup } = await component.loadComponent();
    process.on('exit', cleanup);
    return {
      load(text) {
        const { policy, errors } = component.load(instantiate, text);
        return policy === null ? { errors } : { policy };
      },
      evaluate: (policy, request) => component.evaluate(policy, JSON.parse(request)),
      testTag: (policy, image, tag) => component.testTag(policy, image, tag),
      lints: (policy) => component.lints(policy),
    };
  },
};

const flavour = process.argv[2];
if (!Object.hasOwn(flavours, flavour)) {
  console.error(`usage: node conformance-adapter.mjs ${Object.keys(flavours).join('|')}`);
  process.exit(2);
}
const engine = await flavours[flavour]();
const policies = new Map();
const send = (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);

function policy(handle) {
  if (!policies.has(handle)) throw new Error(`no policy ${handle}`);
  return policies.get(handle);
}

function answer(command) {
  switch (command.op) {
    case 'load': {
      const { policy: loaded, errors } = engine.load(command.policy);
      if (loaded === undefined) return { errors };
      policies.set(policies.size + 1, loaded);
      return { policy: policies.size };
    }
    case 'evaluate':
      return engine.evaluate(policy(command.policy), command.request);
    case 'test_tag':
      return engine.testTag(policy(command.policy), command.image, command.tag);
    case 'lints':
      return engine.lints(policy(command.policy));
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

send({ ready: flavour });
for await (const line of createInterface({ input: process.stdin })) {
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    send({ id: null, error: `not JSON: ${err.message}` });
    continue;
  }
  try {
    send({ id: command.id, ok: answer(command) });
  } catch (err) {
    send({ id: command.id, error: `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}` });
  }
}
