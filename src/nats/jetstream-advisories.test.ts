import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADVISORY_SUBJECTS, parseAdvisorySubject } from './jetstream-advisories.ts';

describe('JetStream advisories', () => {
  it('reads a deleted consumer and a created, deleted or updated stream from the subject', () => {
    assert.deepEqual(parseAdvisorySubject('$JS.EVENT.ADVISORY.CONSUMER.DELETED.CRM_EVENTS.ferry_revops_good'), { kind: 'consumer-deleted', stream: 'CRM_EVENTS', consumer: 'ferry_revops_good' });
    assert.deepEqual(parseAdvisorySubject('$JS.EVENT.ADVISORY.STREAM.CREATED.LATE'), { kind: 'stream-created', stream: 'LATE' });
    assert.deepEqual(parseAdvisorySubject('$JS.EVENT.ADVISORY.STREAM.DELETED.FERRY_FALLBACK_revops_good'), { kind: 'stream-deleted', stream: 'FERRY_FALLBACK_revops_good' });
    assert.deepEqual(parseAdvisorySubject('$JS.EVENT.ADVISORY.STREAM.UPDATED.NARROW'), { kind: 'stream-updated', stream: 'NARROW' });
  });

  it('ignores every other subject, including the ones it does not subscribe to', () => {
    for (const subject of [
      '$JS.EVENT.ADVISORY.CONSUMER.CREATED.CRM_EVENTS.ferry_revops_good',
      '$JS.EVENT.ADVISORY.CONSUMER.DELETED.CRM_EVENTS',
      '$JS.EVENT.ADVISORY.CONSUMER.DELETED.CRM_EVENTS.a.b',
      '$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.CRM_EVENTS',
      '$JS.EVENT.ADVISORY.STREAM.UPDATED.CRM_EVENTS.extra',
      '$JS.EVENT.ADVISORY.STREAM.UPDATED.',
      '$JS.EVENT.ADVISORY.API',
      '$JS.API.STREAM.INFO.CRM_EVENTS',
      'crm.deals.closed',
    ]) {
      assert.equal(parseAdvisorySubject(subject), undefined, subject);
    }
  });

  it('subscribes only to subjects it can read', () => {
    for (const subject of ADVISORY_SUBJECTS) assert.notEqual(parseAdvisorySubject(subject.replaceAll('*', 'X')), undefined, subject);
  });
});
