import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { decodeEvent } from './decode.ts';
import { EventDecodeError } from './errors.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const headers = (entries: Record<string, string>): ReadonlyMap<string, readonly string[]> => new Map(Object.entries(entries).map(([k, v]) => [k, [v]]));

/** Asserts that `fn` throws an EventDecodeError and returns it for further checks. */
function decodeError(fn: () => unknown): EventDecodeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof EventDecodeError, `expected EventDecodeError, got ${String(err)}`);
    assert.equal(err.code, 'FERRY_EVENT_DECODE');
    assert.equal(err.retryable, false);
    return err;
  }
  assert.fail('expected decodeEvent to throw');
}

describe('decodeEvent json', () => {
  it('parses UTF-8 JSON and returns the payload itself as raw', () => {
    const payload = bytes('{"id":"d-1","amount":12.5,"name":"Zoë"}');
    const decoded = decodeEvent(payload, undefined, 'json');
    assert.deepEqual(decoded.data, { id: 'd-1', amount: 12.5, name: 'Zoë' });
    assert.equal(decoded.raw, payload);
    assert.equal(decoded.cloudEvent, undefined);
  });

  it('accepts any JSON value and a leading byte order mark', () => {
    assert.deepEqual(decodeEvent(bytes('[1,2]'), undefined, 'json').data, [1, 2]);
    assert.equal(decodeEvent(bytes(' null '), undefined, 'json').data, null);
    assert.deepEqual(decodeEvent(new Uint8Array([0xef, 0xbb, 0xbf, ...bytes('{"a":1}')]), undefined, 'json').data, { a: 1 });
  });

  it('ignores headers, even CloudEvents ones', () => {
    const decoded = decodeEvent(bytes('{"a":1}'), headers({ 'ce-id': '1', 'content-type': 'application/cloudevents+json' }), 'json');
    assert.deepEqual(decoded.data, { a: 1 });
    assert.equal(decoded.cloudEvent, undefined);
  });

  it('refuses invalid JSON, saying what and where', () => {
    const err = decodeError(() => decodeEvent(bytes('{"a": }'), undefined, 'json'));
    assert.equal(err.reason, 'json');
    assert.equal(err.format, 'json');
    assert.equal(err.offset, 6);
    assert.equal(err.message, "payload is not valid JSON: unexpected '}', expected a value at position 6 (line 1, column 7)");
    assert.ok(err.cause instanceof SyntaxError);
  });

  it('reports line and column in multi-line payloads', () => {
    const err = decodeError(() => decodeEvent(bytes('{\n  "a": 1,\n  "b": tru\n}'), undefined, 'json'));
    assert.match(err.message, /unexpected 't', expected a value at position 19 \(line 3, column 8\)$/);
  });

  it('never quotes the payload in the message', () => {
    const err = decodeError(() => decodeEvent(bytes('{"ssn": "123-45-6789" "x"}'), undefined, 'json'));
    assert.doesNotMatch(err.message, /123-45-6789/);
    assert.match(err.message, /unexpected '"', expected ',' or '}' at position 22/);
  });

  it('locates every kind of syntax error', () => {
    const cases: [string, string][] = [
      ['', 'unexpected end of input, expected a value at position 0'],
      ['{"a":1', "unexpected end of input, expected ',' or '}' at position 6"],
      ['[1,2,]', "unexpected ']', expected a value at position 5"],
      ['{"a":1} x', "unexpected 'x' after the JSON value at position 8"],
      ['{a:1}', "unexpected 'a', expected a property name in double quotes at position 1"],
      ['{"a" 1}', "unexpected '1', expected ':' at position 5"],
      ['"abc', 'unterminated string at position 4'],
      ['"a\tb"', 'control character U+0009 in a string (escape it) at position 2'],
      ['"\\x"', 'invalid escape in a string at position 1'],
      ['"\\u12G4"', 'invalid \\u escape in a string at position 1'],
      ['01', "unexpected '1' after the JSON value at position 1"],
      ['-', 'invalid number at position 0'],
      ['1.', 'invalid number (no digits after the decimal point) at position 0'],
      ['1e+', 'invalid number (no digits in the exponent) at position 0'],
      ['nul', 'unexpected \'n\', expected a value at position 0'],
      ['\u00a0{}', 'unexpected U+00A0, expected a value at position 0'],
      ['[[[[1]]]', "unexpected end of input, expected ',' or ']' at position 8"],
    ];
    for (const [text, expected] of cases) {
      const err = decodeError(() => decodeEvent(bytes(text), undefined, 'json'));
      assert.equal(err.message.replace(/ \(line \d+, column \d+\)$/, ''), `payload is not valid JSON: ${expected}`, `for ${JSON.stringify(text)}`);
    }
  });

  it('agrees with JSON.parse on thousands of mutated documents', () => {
    // Deterministic PRNG, so a failure reproduces.
    let seed = 12345;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const source = JSON.stringify({ a: [1, -2.5e3, 0.1, true, false, null], 'b\\"': { c: 'x\u00e9\n', d: [] }, e: {} });
    const alphabet = '{}[]",:.-+eE0123456789 \\/ntrfalsu\t\n';
    for (let round = 0; round < 2000; round++) {
      let text = source;
      for (let k = 0, edits = 1 + random(3); k < edits; k++) {
        const at = random(text.length + 1);
        const ch = alphabet.charAt(random(alphabet.length));
        const op = random(3);
        text = op === 0 ? text.slice(0, at) + text.slice(at + 1) : op === 1 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
      }
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      if (valid) continue;
      const err = decodeError(() => decodeEvent(bytes(text), undefined, 'json'));
      assert.match(err.message, /at position \d+ \(line \d+, column \d+\)$/, `no position found for ${JSON.stringify(text)}`);
    }
  });

  it('handles deeply nested input without overflowing the stack', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(199_999);
    const err = decodeError(() => decodeEvent(bytes(deep), undefined, 'json'));
    assert.equal(err.reason, 'json');
  });

  it('refuses invalid UTF-8 with the offset of the first bad byte', () => {
    const cases: [number[], number][] = [
      [[0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d], 6], // 0xff never appears in UTF-8
      [[0x22, 0xc0, 0xaf, 0x22], 1], // overlong '/'
      [[0x22, 0xed, 0xa0, 0x80, 0x22], 1], // UTF-16 surrogate
      [[0x22, 0x41, 0xe2, 0x82], 2], // truncated at the end
      [[0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], 1], // above U+10FFFF
    ];
    for (const [raw, offset] of cases) {
      const err = decodeError(() => decodeEvent(new Uint8Array(raw), undefined, 'json'));
      assert.equal(err.reason, 'utf8');
      assert.equal(err.offset, offset);
      assert.match(err.message, new RegExp(`^payload is not valid UTF-8: invalid byte sequence starting with 0x[0-9a-f]{2} at offset ${offset}$`));
    }
  });
});

describe('decodeEvent cloudevents, binary mode', () => {
  const required = { 'ce-id': 'evt-1', 'ce-source': '/crm', 'ce-specversion': '1.0', 'ce-type': 'com.example.deal.closed' };

  it('reads attributes from ce- headers and parses JSON data', () => {
    const decoded = decodeEvent(
      bytes('{"dealId":7}'),
      headers({ ...required, 'content-type': 'application/json; charset=utf-8', 'ce-subject': 'deal/7', 'ce-time': '2024-06-01T10:00:00Z', 'ce-traceparent': '00-abc-01' }),
      'cloudevents',
    );
    assert.deepEqual(decoded.data, { dealId: 7 });
    assert.ok(decoded.cloudEvent);
    const { extensions, ...attributes } = decoded.cloudEvent;
    assert.deepEqual(attributes, {
      id: 'evt-1',
      source: '/crm',
      specversion: '1.0',
      type: 'com.example.deal.closed',
      subject: 'deal/7',
      time: '2024-06-01T10:00:00Z',
      datacontenttype: 'application/json; charset=utf-8',
    });
    assert.deepEqual({ ...extensions }, { traceparent: '00-abc-01' });
  });

  it('matches header names case-insensitively and lowercases extension names', () => {
    const decoded = decodeEvent(
      bytes('{"a":1}'),
      headers({ 'Ce-Id': 'evt-2', 'CE-SOURCE': '/crm', 'ce-SpecVersion': '1.0', 'Ce-Type': 't', 'Content-Type': 'Application/JSON', 'Ce-TenantId': 'acme' }),
      'cloudevents',
    );
    assert.equal(decoded.cloudEvent?.id, 'evt-2');
    assert.equal(decoded.cloudEvent.source, '/crm');
    assert.deepEqual({ ...decoded.cloudEvent.extensions }, { tenantid: 'acme' });
    assert.deepEqual(decoded.data, { a: 1 });
  });

  it('percent-decodes header values, keeping values that are not percent-encoded', () => {
    const decoded = decodeEvent(bytes('1'), headers({ ...required, 'ce-subject': 'Zo%C3%AB%20K', 'ce-discount': '50%' }), 'cloudevents');
    assert.equal(decoded.cloudEvent?.subject, 'Zoë K');
    assert.equal(decoded.cloudEvent.extensions.discount, '50%');
  });

  it('uses the first value of a repeated header', () => {
    const decoded = decodeEvent(bytes('1'), new Map([...headers(required), ['ce-region', ['eu', 'us']]]), 'cloudevents');
    assert.equal(decoded.cloudEvent?.extensions.region, 'eu');
  });

  it('parses data as JSON when the content type is absent or a +json type', () => {
    assert.deepEqual(decodeEvent(bytes('{"a":1}'), headers(required), 'cloudevents').data, { a: 1 });
    assert.deepEqual(decodeEvent(bytes('{"a":1}'), headers({ ...required, 'content-type': 'application/vnd.deal+json' }), 'cloudevents').data, { a: 1 });
  });

  it('falls back to ce-datacontenttype when there is no content-type header', () => {
    const decoded = decodeEvent(bytes('hello'), headers({ ...required, 'ce-datacontenttype': 'text/plain' }), 'cloudevents');
    assert.equal(decoded.data, 'hello');
    assert.equal(decoded.cloudEvent?.datacontenttype, 'text/plain');
    assert.equal(decoded.cloudEvent.extensions.datacontenttype, undefined);
  });

  it('decodes text data as a string and an empty payload as no data', () => {
    assert.equal(decodeEvent(bytes('hi there'), headers({ ...required, 'content-type': 'text/plain' }), 'cloudevents').data, 'hi there');
    assert.equal(decodeEvent(new Uint8Array(0), headers(required), 'cloudevents').data, undefined);
  });

  it('refuses data that is neither JSON nor text', () => {
    const err = decodeError(() => decodeEvent(new Uint8Array([1, 2, 3]), headers({ ...required, 'content-type': 'application/octet-stream' }), 'cloudevents'));
    assert.equal(err.reason, 'content-type');
    assert.match(err.message, /application\/octet-stream is not supported/);
  });

  it('refuses invalid JSON data', () => {
    const err = decodeError(() => decodeEvent(bytes('{"a":'), headers(required), 'cloudevents'));
    assert.equal(err.reason, 'json');
    assert.equal(err.format, 'cloudevents');
  });

  it('names every missing required attribute', () => {
    const err = decodeError(() => decodeEvent(bytes('{}'), headers({ 'ce-id': 'evt-1', 'ce-subject': 's' }), 'cloudevents'));
    assert.equal(err.reason, 'missing-attributes');
    assert.deepEqual(err.attributes, ['source', 'specversion', 'type']);
    assert.equal(err.message, 'CloudEvent (binary mode) is missing required attributes ce-source, ce-specversion, ce-type');
  });

  it('refuses empty required attributes and other spec versions', () => {
    const empty = decodeError(() => decodeEvent(bytes('1'), headers({ ...required, 'ce-id': '' }), 'cloudevents'));
    assert.equal(empty.reason, 'invalid-attribute');
    assert.deepEqual(empty.attributes, ['id']);
    const version = decodeError(() => decodeEvent(bytes('1'), headers({ ...required, 'ce-specversion': '0.3' }), 'cloudevents'));
    assert.equal(version.reason, 'specversion');
    assert.match(version.message, /"0\.3" is not supported/);
  });

  it('keeps a ce-__proto__ header as an ordinary extension', () => {
    const decoded = decodeEvent(bytes('1'), headers({ ...required, 'ce-__proto__': 'x' }), 'cloudevents');
    assert.equal(Object.getOwnPropertyDescriptor(decoded.cloudEvent?.extensions, '__proto__')?.value, 'x');
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });
});

describe('decodeEvent cloudevents, structured mode', () => {
  const envelope = { specversion: '1.0', id: 'evt-9', source: 'https://crm.example.com', type: 'deal.closed' };

  it('reads the envelope when the content type says so', () => {
    const payload = bytes(JSON.stringify({ ...envelope, subject: 'deal/9', datacontenttype: 'application/json', priority: 3, urgent: true, dataschema: null, data: { dealId: 9 } }));
    const decoded = decodeEvent(payload, headers({ 'Content-Type': 'application/cloudevents+json; charset=UTF-8' }), 'cloudevents');
    assert.deepEqual(decoded.data, { dealId: 9 });
    assert.equal(decoded.raw, payload);
    assert.ok(decoded.cloudEvent);
    const { extensions, ...attributes } = decoded.cloudEvent;
    assert.deepEqual(attributes, { ...envelope, subject: 'deal/9', datacontenttype: 'application/json' });
    assert.deepEqual({ ...extensions }, { priority: 3, urgent: true });
  });

  it('recognises an envelope by its specversion when there are no ce- headers', () => {
    const decoded = decodeEvent(bytes(JSON.stringify({ ...envelope, data: [1, 2] })), undefined, 'cloudevents');
    assert.deepEqual(decoded.data, [1, 2]);
    assert.equal(decoded.cloudEvent?.id, 'evt-9');
    // Other headers do not make it binary.
    assert.equal(decodeEvent(bytes(JSON.stringify({ ...envelope, data: 1 })), headers({ 'Nats-Msg-Id': 'm-1' }), 'cloudevents').data, 1);
  });

  it('prefers the structured content type over ce- headers', () => {
    const decoded = decodeEvent(bytes(JSON.stringify({ ...envelope, data: 1 })), headers({ 'content-type': 'application/cloudevents+json', 'ce-id': 'other' }), 'cloudevents');
    assert.equal(decoded.cloudEvent?.id, 'evt-9');
  });

  it('has no data when the envelope carries none', () => {
    assert.equal(decodeEvent(bytes(JSON.stringify(envelope)), undefined, 'cloudevents').data, undefined);
  });

  it('decodes data_base64 by datacontenttype', () => {
    const base64 = (s: string): string => Buffer.from(s).toString('base64');
    const json = decodeEvent(bytes(JSON.stringify({ ...envelope, datacontenttype: 'application/json', data_base64: base64('{"x":1}') })), undefined, 'cloudevents');
    assert.deepEqual(json.data, { x: 1 });
    const absent = decodeEvent(bytes(JSON.stringify({ ...envelope, data_base64: base64('[true]') })), undefined, 'cloudevents');
    assert.deepEqual(absent.data, [true]);
    const text = decodeEvent(bytes(JSON.stringify({ ...envelope, datacontenttype: 'text/csv', data_base64: base64('a,b\n1,2') })), undefined, 'cloudevents');
    assert.equal(text.data, 'a,b\n1,2');
    const unpadded = decodeEvent(bytes(JSON.stringify({ ...envelope, datacontenttype: 'text/plain', data_base64: 'aGk' })), undefined, 'cloudevents');
    assert.equal(unpadded.data, 'hi');
  });

  it('refuses data_base64 that is not base64, not a string, or not the declared content', () => {
    const bad = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, data_base64: 'eyJ4Ijox*Q==' })), undefined, 'cloudevents'));
    assert.equal(bad.reason, 'base64');
    assert.equal(bad.offset, 8);
    assert.match(bad.message, /unexpected character '\*' at position 8/);
    const length = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, data_base64: 'abcde' })), undefined, 'cloudevents'));
    assert.equal(length.reason, 'base64');
    const notString = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, data_base64: 12 })), undefined, 'cloudevents'));
    assert.equal(notString.reason, 'invalid-attribute');
    const json = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, data_base64: Buffer.from('{"x":').toString('base64') })), undefined, 'cloudevents'));
    assert.equal(json.reason, 'json');
    assert.match(json.message, /^data_base64 is not valid JSON: unexpected end of input/);
  });

  it('refuses an envelope with both data and data_base64', () => {
    const err = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, data: 1, data_base64: 'MQ==' })), undefined, 'cloudevents'));
    assert.equal(err.reason, 'invalid-attribute');
    assert.deepEqual(err.attributes, ['data', 'data_base64']);
  });

  it('names every missing required attribute', () => {
    const err = decodeError(() => decodeEvent(bytes('{"specversion":"1.0","id":"1","data":{}}'), undefined, 'cloudevents'));
    assert.equal(err.reason, 'missing-attributes');
    assert.deepEqual(err.attributes, ['source', 'type']);
    assert.equal(err.message, 'CloudEvent (structured mode) is missing required attributes source, type');
    // A plain JSON object without specversion is reported the same way.
    const plain = decodeError(() => decodeEvent(bytes('{"dealId":1}'), undefined, 'cloudevents'));
    assert.deepEqual(plain.attributes, ['id', 'source', 'specversion', 'type']);
  });

  it('refuses attributes of the wrong type', () => {
    const id = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, id: 5 })), undefined, 'cloudevents'));
    assert.equal(id.reason, 'invalid-attribute');
    assert.equal(id.message, 'CloudEvent attribute id must be a non-empty string, not a number');
    const subject = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, subject: ['a'] })), undefined, 'cloudevents'));
    assert.deepEqual(subject.attributes, ['subject']);
    const extension = decodeError(() => decodeEvent(bytes(JSON.stringify({ ...envelope, tenant: { id: 1 } })), undefined, 'cloudevents'));
    assert.deepEqual(extension.attributes, ['tenant']);
  });

  it('refuses payloads that are not an envelope object', () => {
    for (const text of ['[1]', '"x"', 'null']) {
      const err = decodeError(() => decodeEvent(bytes(text), undefined, 'cloudevents'));
      assert.equal(err.reason, 'not-cloudevent');
    }
  });

  it('refuses batch mode and non-JSON event formats', () => {
    const batch = decodeError(() => decodeEvent(bytes('[]'), headers({ 'content-type': 'application/cloudevents-batch+json' }), 'cloudevents'));
    assert.equal(batch.reason, 'content-type');
    assert.match(batch.message, /batched CloudEvents/);
    const avro = decodeError(() => decodeEvent(bytes(''), headers({ 'content-type': 'application/cloudevents+avro' }), 'cloudevents'));
    assert.equal(avro.reason, 'content-type');
  });

  it('keeps a __proto__ attribute as an ordinary extension, without touching prototypes', () => {
    const decoded = decodeEvent(bytes(`{"specversion":"1.0","id":"1","source":"s","type":"t","__proto__":"x"}`), undefined, 'cloudevents');
    assert.equal(Object.getOwnPropertyDescriptor(decoded.cloudEvent?.extensions, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(decoded.cloudEvent?.extensions), null);
  });
});
