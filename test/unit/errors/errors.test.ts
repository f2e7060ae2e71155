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

  it('IsolationViolationError carries check, expected and actual', () => {
    const error = new IsolationViolationError('shared-state', 't1/u1', 't2/u1');
    expect(error).toMatchObject({ check: 'shared-state', expected: 't1/u1', actual: 't2/u1' });
    expect(error.message).toContain('shared-state');
  });

  it('isotrace/shared-state exports the same error classes as isotrace', () => {
    expect(sharedStateEntry.SharedStateValueError).toBe(SharedStateValueError);
    expect(sharedStateEntry.SharedStateUnavailableError).toBe(SharedStateUnavailableError);
  });
});
