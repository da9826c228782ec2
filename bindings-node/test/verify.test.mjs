// Receipts produced through Node verify with the reference Python verifier (allowly-receipt-format
// 5.0.0); verifyReceipt rejects a tampered set with the code matching the reference's class.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import {
  Allowly,
  KeyOutsideActiveWindowError,
  SchemaError,
  SignatureMismatchError,
  UnknownKeyError,
  UntrustedKeyError,
  VerificationError,
  loadKeysFromJson,
  verifyCheckpoint,
  verifyReceipt,
} from '../index.js';
import { root, runScenario, tempHome } from './helpers.mjs';

const referenceVenv = process.env.ALLOWLY_REFERENCE_VENV ?? path.join(root, 'target/venv-reference');
const python = path.join(referenceVenv, 'bin/python');
const referenceCli = path.join(referenceVenv, 'bin/allowly-receipt-verify');

const b64 = (obj) => Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
const unb64 = (text) => JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));

describe('receipts and the reference verifier', () => {
  let client;
  let keysDoc;
  let receipts; // signed JWS objects
  let options;
  let work;

  before(async () => {
    client = Allowly.embedded({ home: tempHome() });
    const run = await runScenario(client);
    receipts = [];
    for (const envelope of run.receipts) {
      receipts.push(envelope.status === 'signed' ? envelope.receipt : (await client.receipts.get(envelope.receiptId)).receipt);
    }
    keysDoc = await client.keyDocument();
    options = {
      expectedWorkspaceId: keysDoc.workspace_id,
      trustedKeyFingerprints: keysDoc.keys.map((k) => k.public_key_fingerprint),
    };
    work = tempHome('allowly-verify-');
    fs.writeFileSync(path.join(work, 'keys.json'), JSON.stringify(keysDoc));
  });

  test('every receipt of the quickstart verifies with the reference verifier (export mode)', { skip: !fs.existsSync(referenceCli) && 'no reference venv' }, () => {
    const exportFile = path.join(work, 'export.jsonl');
    fs.writeFileSync(exportFile, receipts.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const trust = options.trustedKeyFingerprints.flatMap((fp) => ['--trusted-key-fingerprint', fp]);
    const out = execFileSync(
      referenceCli,
      ['--workspace-id', keysDoc.workspace_id, ...trust, '--export', exportFile, path.join(work, 'keys.json')],
      { encoding: 'utf8' },
    );
    assert.ok(receipts.length >= 17, `only ${receipts.length} receipts`);
    assert.match(out, /OK|ok|valid|verified/i);
  });

  test('one check receipt verifies with the reference verifier (single mode) and with verifyReceipt', async () => {
    const receipt = receipts[1];
    const file = path.join(work, 'receipt.json');
    fs.writeFileSync(file, JSON.stringify(receipt));
    if (fs.existsSync(referenceCli)) {
      const trust = options.trustedKeyFingerprints.flatMap((fp) => ['--trusted-key-fingerprint', fp]);
      execFileSync(referenceCli, ['--workspace-id', keysDoc.workspace_id, ...trust, file, path.join(work, 'keys.json')]);
    }
    const payload = await verifyReceipt(JSON.stringify(receipt), loadKeysFromJson(JSON.stringify(keysDoc)), options);
    assert.equal(payload.schema_version, '5');
    assert.ok(payload.action);
  });

  test('the tampered set: verifyReceipt rejects each with the right .code, like the reference', async () => {
    const good = receipts[1];
    const header = unb64(good.protected);
    const payload = unb64(good.payload);
    const keyFuture = structuredClone(keysDoc);
    keyFuture.keys[0].active_from = '2099-01-01T00:00:00.000Z';
    const cases = [
      { name: 'untouched', receipt: good, code: null },
      {
        name: 'payload_changed',
        receipt: { ...good, payload: b64({ ...payload, decision: payload.decision === 'allow' ? 'deny' : 'allow' }) },
        code: 'signature_mismatch',
        cls: SignatureMismatchError,
        ref: 'SignatureMismatchError',
      },
      {
        name: 'signature_flipped',
        receipt: { ...good, signature: (good.signature[0] === 'A' ? 'B' : 'A') + good.signature.slice(1) },
        code: 'signature_mismatch',
        cls: SignatureMismatchError,
        ref: 'SignatureMismatchError',
      },
      {
        name: 'unknown_kid',
        receipt: { ...good, protected: b64({ ...header, kid: 'key_unknown' }) },
        code: 'unknown_key',
        cls: UnknownKeyError,
        ref: 'UnknownKeyError',
      },
      {
        name: 'untrusted_key',
        receipt: good,
        trusted: ['sha256:' + '0'.repeat(64)],
        code: 'untrusted_key',
        cls: UntrustedKeyError,
        ref: 'VerificationError',
      },
      {
        name: 'other_workspace',
        receipt: good,
        workspace_id: 'ws_someone_else',
        code: 'schema_error',
        cls: SchemaError,
        ref: 'SchemaError',
      },
      {
        name: 'key_not_yet_active',
        receipt: good,
        keys: keyFuture,
        code: 'key_outside_active_window',
        cls: KeyOutsideActiveWindowError,
        ref: 'KeyOutsideActiveWindowError',
      },
      {
        name: 'extra_payload_field',
        receipt: { ...good, payload: b64({ ...payload, extra: 1 }) },
        code: 'schema_error',
        cls: SchemaError,
        ref: 'SchemaError',
      },
      {
        name: 'extra_envelope_member',
        receipt: { ...good, extra: 'x' },
        code: 'schema_error',
        cls: SchemaError,
        ref: 'SchemaError',
      },
    ];
    for (const c of cases) {
      const keys = loadKeysFromJson(c.keys ?? keysDoc);
      const opts = {
        expectedWorkspaceId: c.workspace_id ?? options.expectedWorkspaceId,
        trustedKeyFingerprints: c.trusted ?? options.trustedKeyFingerprints,
      };
      if (c.code === null) {
        await verifyReceipt(c.receipt, keys, opts);
        continue;
      }
      await assert.rejects(verifyReceipt(c.receipt, keys, opts), (err) => {
        assert.ok(err instanceof c.cls, `${c.name}: ${err.name} ${err.message}`);
        assert.ok(err instanceof VerificationError);
        assert.equal(err.code, c.code, c.name);
        assert.equal(err.referenceClass, c.ref, c.name);
        return true;
      });
    }
    if (fs.existsSync(python)) {
      const input = JSON.stringify({
        keys: keysDoc,
        workspace_id: options.expectedWorkspaceId,
        trusted: options.trustedKeyFingerprints,
        cases: cases.map((c) => ({ name: c.name, receipt: c.receipt, keys: c.keys, workspace_id: c.workspace_id, trusted: c.trusted })),
      });
      const reference = JSON.parse(
        execFileSync(python, [path.join(root, 'bindings-node/test/reference_verify.py')], { input, encoding: 'utf8' }),
      );
      for (const c of cases) assert.equal(reference[c.name], c.ref ?? 'ok', `reference on ${c.name}`);
    }
  });

  test('malformed keys and checkpoints are typed errors', async () => {
    assert.throws(() => loadKeysFromJson('{"keys": 1}'), (err) => err instanceof SchemaError && err.code === 'schema_error');
    assert.throws(() => loadKeysFromJson('not json'), (err) => err instanceof SchemaError);
    const keys = loadKeysFromJson(keysDoc);
    assert.equal(keys.workspaceId, keysDoc.workspace_id);
    // A check receipt is not a checkpoint.
    await assert.rejects(verifyCheckpoint(receipts[1], [], keys, options), (err) => err instanceof VerificationError);
    await assert.rejects(verifyReceipt({ protected: 1 }, keys, options), (err) => err instanceof SchemaError);
  });
});
