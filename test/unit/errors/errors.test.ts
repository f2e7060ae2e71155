import { describe, it, expect } from 'vitest';
import {
  ConfigError,
  IsolationViolationError,
  IsotraceError,
  RequestContextMissingError,
  SharedStateUnavailableError,
  SharedStateValueError,
  TracingAlreadyStartedError,
  TracingNotStartedError,
  UnresolvedVariableError,
} from 'isotrace';
import * as sharedStateEntry from 'isotrace/shared-state';

describe('isotrace errors', () => {
  const instances: Array<[string, Error]> = [
    ['ConfigError', new ConfigError('bad config')],
    ['IsolationViolationError', new IsolationViolationError('baggage', 't1', 't2')],
    ['RequestContextMissingError', new RequestContextMissingError()],
    ['SharedStateUnavailableError', new SharedStateUnavailableError('down')],
    ['SharedStateValueError', new SharedStateValueError('bad value')],
    ['TracingAlreadyStartedError', new TracingAlreadyStartedError()],
    ['TracingNotStartedError', new TracingNotStartedError('withRequestContext()')],
    ['UnresolvedVariableError', new UnresolvedVariableError(['A'])],
  ];

  it.each(instances)('%s is an IsotraceError named after its class', (name, error) => {
    expect(error).toBeInstanceOf(IsotraceError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.message.length).toBeGreaterThan(0);
    expect(String(error)).toContain(name);
  });

  it('keeps the cause', () => {
    const cause = new Error('ENOENT');
    expect(new ConfigError('cannot read', { cause }).cause).toBe(cause);
    expect(new SharedStateUnavailableError('redis down', { cause }).cause).toBe(cause);
  });

  it('RequestContextMissingError names the call and the wrappers that fix it', () => {
    const message = new RequestContextMissingError('getSharedState()').message;
    expect(message).toContain('getSharedState()');
    expect(message).toContain('withRequestContext()');
    expect(message).toContain('bindToRequest()');
  });

  it('TracingNotStartedError names the call and startTracing()', () => {
    const message = new TracingNotStartedError('withRequestContext()').message;
    expect(message).toContain('withRequestContext()');
    expect(message).toContain('startTracing()');
  });

  it('UnresolvedVariableError lists every variable', () => {
    const error = new UnresolvedVariableError(['TENANT_ID', 'REGION']);
    expect(error.variables).toEqual(['TENANT_ID', 'REGION']);
    expect(error.message).toContain('${TENANT_ID}');
    expect(error.message).toContain('${REGION}');
  });

  it('IsolationViolationError carries check, expected, actual and the current request id', () => {
    const error = new IsolationViolationError('shared-state', 't1/u1', 't2/u1', { requestId: 'req-2' });
    expect(error).toMatchObject({ check: 'shared-state', expected: 't1/u1', actual: 't2/u1', requestId: 'req-2' });
    expect(error.message).toContain('shared-state');
    expect(new IsolationViolationError('trace', 'a', 'b').requestId).toBeUndefined();
  });

  it.each(['context-owner', 'trace', 'baggage', 'shared-state', 'callback-owner'])(
    "IsolationViolationError (%s) keeps the other request's ids in its fields, never in its message (frameworks send messages to clients)",
    (check) => {
      const expected = 'request req-victim-7f3a (tenant tenant-victim, user user-victim)';
      const actual = 'request req-own-91c2 (tenant tenant-own, user user-own)';
      const error = new IsolationViolationError(check, expected, actual, { requestId: 'req-own-91c2' });
      expect(error).toMatchObject({ check, expected, actual });
      for (const id of ['req-victim-7f3a', 'tenant-victim', 'user-victim']) expect(error.message).not.toContain(id);
      expect(error.message).toContain(`(${check})`);
      expect(error.message).toMatch(/expected.*actual/);
    },
  );

  it('isotrace/shared-state exports the same error classes as isotrace', () => {
    expect(sharedStateEntry.SharedStateValueError).toBe(SharedStateValueError);
    expect(sharedStateEntry.SharedStateUnavailableError).toBe(SharedStateUnavailableError);
  });
});
