import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TemplatePointerMissingError, TemplateSyntaxError, TemplateValueError } from './errors.ts';
import { compileTemplate, renderTemplate, resolvePointer } from './template.ts';

const event = {
  id: 'evt_1',
  account: 'acc/42?x#y',
  amount: 1250,
  paid: true,
  nested: { 'a/b': 'slash', 'm~n': 'tilde', list: ['zero', 'one'] },
  dot: '..',
  empty: '',
  nothing: null,
  obj: { k: 1 },
};

describe('compileTemplate / renderTemplate', () => {
  it('substitutes pointers and keeps literal text', () => {
    const t = compileTemplate('{{/id}}-invoice-{{ /amount }}-{{/paid}}');
    assert.equal(renderTemplate(t, event, 'none'), 'evt_1-invoice-1250-true');
  });

  it('renders a text without pointers as itself', () => {
    assert.equal(renderTemplate(compileTemplate('https://x.example.com/v1'), event, 'url'), 'https://x.example.com/v1');
  });

  it('percent-encodes values in URLs so they cannot change the path or query', () => {
    const t = compileTemplate('https://api.example.com/v1/accounts/{{/account}}/invoices');
    const url = renderTemplate(t, event, 'url');
    assert.equal(url, 'https://api.example.com/v1/accounts/acc%2F42%3Fx%23y/invoices');
    assert.equal(new URL(url).pathname, '/v1/accounts/acc%2F42%3Fx%23y/invoices');
  });

  it('follows RFC 6901 escapes and array indexes', () => {
    assert.equal(renderTemplate(compileTemplate('{{/nested/a~1b}} {{/nested/m~0n}} {{/nested/list/1}}'), event, 'none'), 'slash tilde one');
  });

  it('throws a typed error for a pointer that names nothing', () => {
    for (const pointer of ['/missing', '/nested/list/2', '/nested/list/01', '/nested/list/-', '/id/x']) {
      assert.throws(
        () => renderTemplate(compileTemplate(`{{${pointer}}}`), event, 'none'),
        (e: unknown) => e instanceof TemplatePointerMissingError && e.pointer === pointer && !e.retryable,
        pointer,
      );
    }
  });

  it('refuses values that cannot be rendered', () => {
    for (const pointer of ['/nothing', '/obj', '/nested/list']) {
      assert.throws(() => renderTemplate(compileTemplate(`{{${pointer}}}`), event, 'none'), TemplateValueError, pointer);
    }
    // Dot segments and empty values would silently address another endpoint.
    for (const pointer of ['/dot', '/empty']) {
      assert.throws(() => renderTemplate(compileTemplate(`https://x/a/{{${pointer}}}`), event, 'url'), TemplateValueError, pointer);
    }
    assert.equal(renderTemplate(compileTemplate('{{/dot}}'), event, 'none'), '..');
  });

  it('rejects malformed templates when compiled', () => {
    for (const bad of ['{{/id', '{{id}}', '{{}}', 'x{{ }}', '{{/a~2}}', '{{/a~}}']) {
      assert.throws(() => compileTemplate(bad), TemplateSyntaxError, bad);
    }
  });
});

describe('resolvePointer', () => {
  it('distinguishes a missing value from a present falsy one', () => {
    assert.deepEqual(resolvePointer({ a: 0 }, ['a']), { found: true, value: 0 });
    assert.deepEqual(resolvePointer({ a: 0 }, ['b']), { found: false });
    assert.deepEqual(resolvePointer({}, ['constructor']), { found: false });
  });
});
