import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineList, type Deadlined } from '../../proxy/deadline-list.ts';

type Entry = Deadlined & { name: string };
const entry = (name: string): Entry => ({ name, deadline: 0 });

test('expire hands over due entries in order and keeps the rest', () => {
  const list = new DeadlineList<Entry>();
  const [a, b, c] = [entry('a'), entry('b'), entry('c')];
  list.add(a, 10);
  list.add(b, 20);
  list.add(c, 30);
  const expired: string[] = [];
  list.expire(20, (e) => expired.push(e.name));
  assert.deepEqual(expired, ['a', 'b']);
  list.expire(29, (e) => expired.push(e.name));
  assert.deepEqual(expired, ['a', 'b']);
  list.expire(30, (e) => expired.push(e.name));
  assert.deepEqual(expired, ['a', 'b', 'c']);
});

test('removed entries never expire, wherever they were, and removal unlinks them', () => {
  const list = new DeadlineList<Entry>();
  const entries = ['a', 'b', 'c', 'd'].map(entry);
  entries.forEach((e, i) => list.add(e, i));
  list.remove(entries[1]); // middle
  list.remove(entries[0]); // head
  list.remove(entries[3]); // tail
  list.remove(entries[3]); // twice: no-op
  for (const removed of [entries[0], entries[1], entries[3]]) {
    assert.equal(removed.previousInList, undefined);
    assert.equal(removed.nextInList, undefined);
  }
  const expired: string[] = [];
  list.expire(100, (e) => expired.push(e.name));
  assert.deepEqual(expired, ['c']);
  list.add(entries[0], 5); // the list still works after being emptied
  list.expire(5, (e) => expired.push(e.name));
  assert.deepEqual(expired, ['c', 'a']);
});
