import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextLink } from './link-header.ts';

const base = 'https://api.example.com/v1/items?page=1';

describe('nextLink', () => {
  it('reads a GitHub-style header', () => {
    const header = [
      '<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev"',
      '<https://api.github.com/repositories/1300192/issues?page=4>; rel="next"',
      '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last"',
      '<https://api.github.com/repositories/1300192/issues?page=1>; rel="first"',
    ].join(', ');
    assert.equal(nextLink(header, base), 'https://api.github.com/repositories/1300192/issues?page=4');
  });

  it('reads an unquoted rel, in any case, with any spacing', () => {
    assert.equal(nextLink('<https://x.test/2>;rel=next', base), 'https://x.test/2');
    assert.equal(nextLink('<https://x.test/2> ;  REL = "Next" ', base), 'https://x.test/2');
    assert.equal(nextLink('<https://x.test/1>; rel=prev,<https://x.test/3>; rel=next;', base), 'https://x.test/3');
  });

  it('finds next among several relation types', () => {
    assert.equal(nextLink('<https://x.test/2>; rel="prev next"', base), 'https://x.test/2');
    assert.equal(nextLink('<https://x.test/2>; rel="next\tlast"', base), 'https://x.test/2');
    assert.equal(nextLink('<https://x.test/2>; rel="nextpage"', base), undefined);
  });

  it('keeps a comma inside the URI', () => {
    assert.equal(nextLink('<https://x.test/items?ids=1,2,3&page=2>; rel="next"', base), 'https://x.test/items?ids=1,2,3&page=2');
    assert.equal(
      nextLink('<https://x.test/a,b>; rel=prev, <https://x.test/c,d>; rel=next', base),
      'https://x.test/c,d',
    );
  });

  it('resolves a relative URI against the base', () => {
    assert.equal(nextLink('</v1/items?page=2>; rel="next"', base), 'https://api.example.com/v1/items?page=2');
    assert.equal(nextLink('<?page=2>; rel="next"', base), 'https://api.example.com/v1/items?page=2');
    assert.equal(nextLink('<other?page=2>; rel="next"', base), 'https://api.example.com/v1/other?page=2');
    assert.equal(nextLink('<//cdn.example.com/p2>; rel="next"', base), 'https://cdn.example.com/p2');
  });

  it('reads past other parameters, including ones that look like rel', () => {
    assert.equal(
      nextLink(`<https://x.test/2>; title*=UTF-8'de'n%C3%A4chste%20Seite; rel="next"; type="application/json"`, base),
      'https://x.test/2',
    );
    assert.equal(nextLink('<https://x.test/1>; title="a, b; rel=next"; rel="prev"', base), undefined);
    assert.equal(nextLink('<https://x.test/1>; title="say \\"next\\", <x>"; rel=next', base), 'https://x.test/1');
    // Only the first rel counts (RFC 8288 §3.3).
    assert.equal(nextLink('<https://x.test/1>; rel=prev; rel=next', base), undefined);
  });

  it('returns undefined when there is no next link', () => {
    assert.equal(nextLink(undefined, base), undefined);
    assert.equal(nextLink('', base), undefined);
    assert.equal(nextLink('<https://x.test/1>; rel="prev", <https://x.test/9>; rel="last"', base), undefined);
    assert.equal(nextLink('<https://x.test/2>', base), undefined);
    assert.equal(nextLink('<https://x.test/2>; rel', base), undefined);
  });

  it('skips malformed parts and never throws', () => {
    const garbage = [
      'garbage',
      ',,, ;;; ,',
      '<https://x.test/2',
      '<https://x.test/2>; rel="next',
      '<https://x.test/2> rel=next',
      '<https://x.test/2>; rel=next garbage',
      '<https://x.test/2>; rel="next"x',
      'https://x.test/2; rel=next',
      '<http://[::1>; rel=next',
      '<javascript:alert(1)>; rel=next',
      '<file:///etc/passwd>; rel=next',
      '"<https://x.test/2>; rel=next',
      '<https://x.test/2>; rel="next\\',
      '\u0000<>\uFFFF;=;"',
    ];
    for (const header of garbage) {
      assert.equal(nextLink(header, base), undefined, header);
    }
    // A relative target with no usable base resolves to nothing.
    assert.equal(nextLink('</p2>; rel=next', 'not a url'), undefined);
  });

  it('finds a good next link after malformed ones', () => {
    assert.equal(nextLink('garbage, <https://x.test/2>; rel=next', base), 'https://x.test/2');
    assert.equal(nextLink('x; title="a, b", <https://x.test/2>; rel=next', base), 'https://x.test/2');
    assert.equal(nextLink('<https://x.test/1>; rel=next junk, <https://x.test/2>; rel=next', base), 'https://x.test/2');
    assert.equal(nextLink('<http://[::1>; rel=next, <https://x.test/2>; rel=next', base), 'https://x.test/2');
  });

  it('reads long hostile headers', () => {
    const header = '<a>; x="'.repeat(10_000);
    assert.equal(nextLink(header, base), undefined);
    assert.equal(nextLink(`${';'.repeat(100_000)}, <https://x.test/2>; rel=next`, base), 'https://x.test/2');
  });
});
