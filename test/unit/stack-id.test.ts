import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foreignStack, stackIdOf } from '../../lib/stack-id.ts';

test('a process started by PM2 belongs to the launch of its parent daemon: pid and start time', () => {
  assert.equal(stackIdOf({ pm_id: '3' }, 4242, () => '987654'), 'pm2:4242@987654');
  assert.equal(stackIdOf({ pm_id: '0' }, 4242, () => undefined), 'pm2:4242', 'without procfs the pid alone');
  assert.equal(stackIdOf({}, 4242, () => '987654'), undefined, 'outside PM2 there is nothing to compare');
});

test("a proxy process takes its master's stack id: its parent is the master, not the PM2 daemon", () => {
  assert.equal(stackIdOf({ pm_id: '0', SWITCHYARD_STACK_ID: 'pm2:100@5' }, 4242, () => '987654'), 'pm2:100@5');
  assert.equal(stackIdOf({ SWITCHYARD_STACK_ID: 'pm2:100@5' }, 4242, () => '987654'), undefined, 'outside PM2 still nothing');
});

test('the stack id of this process comes from /proc', () => {
  const id = stackIdOf({ pm_id: '0' }, process.ppid);
  assert.match(id!, new RegExp(`^pm2:${process.ppid}@\\d+$`));
});

test('foreignStack: a health answer of another launch, or of none, is foreign; without an expectation nothing is', () => {
  assert.equal(foreignStack('pm2:1@2', { stack: 'pm2:1@2', pid: 5 }), undefined);
  assert.equal(foreignStack(undefined, { pid: 5 }), undefined);
  assert.equal(foreignStack('pm2:1@2', { stack: 'pm2:9@9', pid: 5 }), 'not a process of this stack: pid 5 reports stack pm2:9@9, expected pm2:1@2');
  assert.equal(foreignStack('pm2:1@2', { pid: 5 }), 'not a process of this stack: pid 5 reports no stack id, expected pm2:1@2');
  assert.equal(foreignStack('pm2:1@2', { stack: 42 }), 'not a process of this stack: pid undefined reports no stack id, expected pm2:1@2');
  assert.ok(foreignStack('pm2:1@2', { stack: 'x'.repeat(10_000) })!.length < 300, 'a long answer is cut');
});
