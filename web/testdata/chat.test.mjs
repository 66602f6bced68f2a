// Unit tests for the DOM-free parts of the chat client, run by TestChatJS
// (web/js_test.go) when node is installed: `node --test web/testdata/`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// The client's modules are plain .js ES modules without a package.json, so
// import them from their source as data: URLs (neither has imports).
const load = (name) => import('data:text/javascript;base64,' +
  readFileSync(new URL('../chat/' + name, import.meta.url)).toString('base64'));
const {
  Room, ROOM_RE, textBytes, MAX_TEXT_BYTES, USER_RE, DM_RE, validRoomName, dmName, dmPeer, displayName,
  linkParts, grouping,
} = await load('rooms.js');
const { backoffDelay, Close } = await load('socket.js');

const msg = (id, from = 'bob', text = 'm' + id) => ({ type: 'message', room: 'r', id, from, text, ts: '2026-01-01T00:00:00Z' });

test('Room.add keeps ids sorted, unique, and tracks lastId', () => {
  const r = new Room('r');
  for (const id of [5, 6, 7]) assert.equal(r.add(msg(id)), true); // join replay
  assert.equal(r.add(msg(6)), false); // duplicate from a reconnect
  assert.equal(r.add(msg(2)), true); // history prepend
  assert.equal(r.add(msg(4)), true); // middle
  assert.equal(r.add(msg(9)), true); // live
  assert.equal(r.add({ ...msg(0) }), false); // ids start at 1
  assert.equal(r.add({ ...msg(3), id: '3' }), false); // not an integer
  assert.deepEqual(r.ids, [2, 4, 5, 6, 7, 9]);
  assert.equal(r.lastId, 9);
  assert.equal(r.oldestId, 2);
  assert.equal(r.nextAfter(7), 9);
  assert.equal(r.nextAfter(9), 0);
});

test('Room.hasOlder stops at id 1 or when history is exhausted', () => {
  const r = new Room('r');
  assert.equal(r.hasOlder, false); // empty room
  r.add(msg(3));
  assert.equal(r.hasOlder, true);
  r.exhausted = true; // e.g. retention removed the older ones
  assert.equal(r.hasOlder, false);
  const s = new Room('s');
  s.add(msg(1));
  assert.equal(s.hasOlder, false);
});

test('Room.gapAbove finds the first id missing after since', () => {
  const r = new Room('r');
  for (const id of [1, 2, 3]) r.add(msg(id));
  assert.equal(r.gapAbove(3), 0); // nothing new
  for (const id of [4, 5]) r.add(msg(id));
  assert.equal(r.gapAbove(3), 0); // contiguous replay
  for (const id of [9, 10]) r.add(msg(id));
  assert.equal(r.gapAbove(3), 6); // replay was capped: 6..8 missing
  assert.equal(r.gapAbove(0), 0); // first join: nothing to compare
});

test('ROOM_RE follows SPEC §6', () => {
  for (const ok of ['general', 'a', 'a.b_c-9', 'x'.repeat(64)]) assert.ok(ROOM_RE.test(ok), ok);
  for (const bad of ['', 'General', 'a b', 'x'.repeat(65), 'é', '#general', '.', '..']) assert.ok(!ROOM_RE.test(bad), bad);
  for (const ok of ['...', '.a', 'a.', '..b']) assert.ok(ROOM_RE.test(ok), ok);
});

test('textBytes counts UTF-8 bytes like the server', () => {
  assert.equal(textBytes('abc'), 3);
  assert.equal(textBytes('é'), 2);
  assert.equal(textBytes('😀'), 4);
  assert.equal(MAX_TEXT_BYTES, 4096);
});

test('backoffDelay grows, is capped, and is jittered within [ceil/2, ceil]', () => {
  assert.equal(backoffDelay(0, () => 0), 250);
  assert.equal(backoffDelay(0, () => 1), 500);
  assert.equal(backoffDelay(3, () => 0), 2000);
  assert.equal(backoffDelay(30, () => 0), 15000);
  assert.equal(backoffDelay(30, () => 1), 30000);
});

test('close codes match SPEC §6', () => {
  assert.deepEqual(
    [Close.GOING_AWAY, Close.TOO_BIG, Close.EXPIRED, Close.REVOKED, Close.SLOW, Close.TOO_MANY],
    [1001, 1009, 4001, 4003, 4008, 4029]);
});

test('Room.clear forgets the ids of an older epoch', () => {
  const r = new Room('r');
  for (const id of [1, 2, 3]) r.add(msg(id));
  r.mine.add(2);
  r.exhausted = true;
  r.epoch = 'old';
  r.clear();
  assert.deepEqual(r.ids, []);
  assert.equal(r.lastId, 0);
  assert.equal(r.mine.size, 0);
  assert.equal(r.exhausted, false);
  assert.equal(r.epoch, 'old'); // the next "joined" sets the new one
  assert.equal(r.add(msg(1, 'carol', 'new room')), true); // id 1 again, now new
  assert.equal(r.byId.get(1).text, 'new room');
});

test('DM names are canonical (SPEC §8): @ + the two names sorted, joined by +', () => {
  assert.equal(dmName('bob', 'alice'), '@alice+bob');
  assert.equal(dmName('alice', 'bob'), '@alice+bob');
  assert.equal(dmPeer('@alice+bob', 'alice'), 'bob');
  assert.equal(dmPeer('@alice+bob', 'bob'), 'alice');
  assert.equal(displayName('@alice+bob', 'alice'), 'bob');
  assert.equal(displayName('general', 'alice'), '#general');
  for (const ok of ['@alice+bob', '@a+b', '@x.y+z-1']) assert.ok(DM_RE.test(ok) && validRoomName(ok), ok);
  for (const bad of ['@alice', 'alice+bob', '@alice+', '@+bob', '@Alice+bob', '@a+b+c', '@.a+b']) assert.ok(!validRoomName(bad), bad);
  assert.ok(USER_RE.test('bob') && !USER_RE.test('-bob') && !USER_RE.test('x'.repeat(33)));
});

test('linkParts makes links of http(s) URLs only, and keeps every character', () => {
  const join = (parts) => parts.map((p) => p.text).join('');
  const cases = [
    'see https://example.com/a?b=1&c=2.',
    'javascript:alert(1) and data:text/html,<script>x</script>',
    '<img src=x onerror=alert(1)> &lt;b&gt; http://x.test/(a)) ok',
    'ftp://example.com/file and https:// alone',
  ];
  for (const text of cases) assert.equal(join(linkParts(text)), text, text);
  assert.deepEqual(linkParts('see https://example.com/a?b=1&c=2.'), [
    { text: 'see ' }, { text: 'https://example.com/a?b=1&c=2', href: 'https://example.com/a?b=1&c=2' }, { text: '.' },
  ]);
  assert.deepEqual(linkParts('javascript:alert(1)'), [{ text: 'javascript:alert(1)' }]);
  assert.deepEqual(linkParts('ftp://example.com/x').filter((p) => p.href), []);
  assert.deepEqual(linkParts('(https://w.test/Go_(game))').filter((p) => p.href).map((p) => p.href), ['https://w.test/Go_(game)']);
  assert.deepEqual(linkParts('HTTPS://EXAMPLE.COM/').map((p) => p.href), ['https://example.com/']);
});

test('grouping: a new group per sender and minute, a separator per day', () => {
  const m = (from, ts) => ({ from, ts });
  const a1 = m('alice', '2026-11-28T12:00:05Z');
  assert.deepEqual(grouping(null, a1).newDay, true);
  const a2 = m('alice', '2026-11-28T12:00:40Z');
  assert.deepEqual([grouping(a1, a2).newDay, grouping(a1, a2).continued], [false, true]);
  const b1 = m('bob', '2026-11-28T12:00:50Z');
  assert.equal(grouping(a2, b1).continued, false);
  const b2 = m('bob', '2026-11-28T12:01:00Z');
  assert.deepEqual([grouping(b1, b2).newDay, grouping(b1, b2).continued], [false, false]);
  const b3 = m('bob', '2026-11-30T12:01:00Z');
  assert.deepEqual([grouping(b2, b3).newDay, grouping(b2, b3).continued], [true, false]);
});

test('Room.unreadAfter counts the loaded messages of others above a marker', () => {
  const r = new Room('r');
  for (const id of [1, 2, 3, 4, 5]) r.add(msg(id, id === 4 ? 'alice' : 'bob'));
  assert.equal(r.unreadAfter(2, 'alice'), 2); // 3 and 5; 4 is alice's own
  assert.equal(r.unreadAfter(5, 'alice'), 0);
});
