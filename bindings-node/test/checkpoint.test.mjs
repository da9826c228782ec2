// verifyCheckpoint on real daily checkpoints: the engine's interop corpus (two checkpointed days
// across a key rotation, exported with checkpoint evidence) verifies day by day, chained; a missing
// or altered member, or a broken chain, is a CheckpointMismatchError; a member of another day a
// SchemaError.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { CheckpointMismatchError, SchemaError, VerificationError, loadKeysFromJson, verifyCheckpoint } from '../index.js';
import { root, tempHome } from './helpers.mjs';

describe('daily checkpoints', () => {
  let keys;
  let options;
  let days; // [{checkpoint, members}] in order
  let receiptsById;

  before(() => {
    const corpus = tempHome('allowly-corpus-');
    execFileSync(
      'cargo',
      ['run', '--quiet', '--release', '--locked', '-p', 'allowly-core', '--example', 'interop_corpus', '--', corpus],
      { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const keysDoc = JSON.parse(fs.readFileSync(path.join(corpus, 'keys.json'), 'utf8'));
    keys = loadKeysFromJson(keysDoc);
    options = {
      expectedWorkspaceId: fs.readFileSync(path.join(corpus, 'workspace_id'), 'utf8').trim(),
      trustedKeyFingerprints: fs.readFileSync(path.join(corpus, 'fingerprints'), 'utf8').trim().split('\n'),
    };
    receiptsById = new Map();
    for (const line of fs.readFileSync(path.join(corpus, 'export.jsonl'), 'utf8').trim().split('\n')) {
      const entry = JSON.parse(line);
      receiptsById.set(entry.receipt_id, entry.receipt);
    }
    const evidence = JSON.parse(fs.readFileSync(path.join(corpus, 'evidence.json'), 'utf8'));
    days = evidence.checkpoints.map(({ checkpoint, member_receipt_ids: ids }) => ({
      checkpoint,
      members: ids.map((id) => receiptsById.get(id)),
    }));
    assert.equal(days.length, 2);
    assert.ok(days.every((day) => day.members.length > 0 && day.members.every(Boolean)));
  });

  test('each day verifies against its members, the second chained to the first', async () => {
    await verifyCheckpoint(days[0].checkpoint, days[0].members, keys, options);
    await verifyCheckpoint(days[1].checkpoint, days[1].members, keys, { ...options, previous: days[0].checkpoint });
    // Members may come in any order.
    await verifyCheckpoint(days[0].checkpoint, [...days[0].members].reverse(), keys, options);
  });

  test('a missing, extra or altered member, or the wrong previous checkpoint, does not verify', async () => {
    const [first, second] = days;
    const mismatch = (err) => err instanceof CheckpointMismatchError && err.code === 'checkpoint_mismatch';
    await assert.rejects(verifyCheckpoint(first.checkpoint, first.members.slice(1), keys, options), mismatch);
    // A receipt of another day is refused as such, before any root is computed.
    await assert.rejects(
      verifyCheckpoint(first.checkpoint, [...first.members, second.members[0]], keys, options),
      (err) => err instanceof SchemaError && /outside checkpoint period/.test(err.message),
    );
    const altered = { ...first.members[0], signature: first.members[1].signature };
    await assert.rejects(
      verifyCheckpoint(first.checkpoint, [altered, ...first.members.slice(1)], keys, options),
      (err) => err instanceof VerificationError,
    );
    await assert.rejects(
      verifyCheckpoint(second.checkpoint, second.members, keys, { ...options, previous: second.checkpoint }),
      mismatch,
    );
  });
});
