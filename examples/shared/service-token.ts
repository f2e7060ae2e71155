/**
 * Service-to-service identity for the examples: the agent service signs the
 * tenant and user it acts for, and the inventory service verifies the
 * signature in its identify(). Identity never comes from W3C baggage, which
 * any caller can write; baggage is only for correlation.
 *
 * A stand-in for what a real deployment uses (mTLS plus a signed JWT).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries the token. */
export const SERVICE_TOKEN_HEADER = 'x-service-token';

/** The shared secret: SERVICE_TOKEN_SECRET, else a demo value (never use it in production). */
export function defaultServiceSecret(): string {
  return process.env.SERVICE_TOKEN_SECRET ?? 'isotrace-demo-secret';
}

/** The tenant and user a service call acts for. */
export interface ServiceIdentity {
  tenantId: string;
  userId: string;
}

/** `<base64url JSON>.<base64url HMAC-SHA256>` of the identity. */
export function signServiceToken(identity: ServiceIdentity, secret: string): string {
  const payload = Buffer.from(JSON.stringify({ tenantId: identity.tenantId, userId: identity.userId })).toString('base64url');
  return `${payload}.${mac(payload, secret)}`;
}

/** The identity a token names, or undefined when it is missing, malformed or not signed with `secret`. */
export function verifyServiceToken(token: string | string[] | undefined, secret: string): ServiceIdentity | undefined {
  if (typeof token !== 'string') return undefined;
  const [payload, signature, ...rest] = token.split('.');
  if (!payload || !signature || rest.length > 0) return undefined;
  const expected = Buffer.from(mac(payload, secret));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    const { tenantId, userId } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<ServiceIdentity>;
    return typeof tenantId === 'string' && tenantId !== '' && typeof userId === 'string' && userId !== '' ? { tenantId, userId } : undefined;
  } catch {
    return undefined;
  }
}

function mac(payload: string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
