// SigV4 verification for the AWS-compatible routes: AWS's own clients sign every request with an access
// key pair that Capsule issued, and the server re-signs what it received with the stored secret and compares.
// Re-signing uses @smithy/signature-v4, the signer those clients use. What it cannot check is checked here
// first: the Authorization header's shape and scope, the clock skew, and the payload hash (the signer trusts
// `x-amz-content-sha256` instead of hashing the body, so a tampered body would still "match").
import { createHash, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

/** The signing name of Lambda MicroVMs (`aws.auth#sigv4 {name: "lambda"}`), not `lambda-microvms`. */
const SIGNING_SERVICE = 'lambda';
/** AWS's allowed clock skew between the client's `x-amz-date` and the server. */
const MAX_SKEW_MS = 15 * 60_000;

/** AWS's common authentication failures: all 403, named in `x-amzn-ErrorType`. */
type AwsAuthErrorType =
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'UnrecognizedClientException'
  | 'InvalidSignatureException';

function authError(awsErrorType: AwsAuthErrorType, message: string): CapsuleError {
  return new CapsuleError(ErrorCode.UNAUTHORIZED, message, { details: { awsErrorType } });
}

/** A request as received: the raw URL (path and query not decoded), its headers, the whole body. */
export interface ReceivedRequest {
  method: string;
  rawUrl: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface AwsKeySecret {
  secretAccessKey: string;
  tenantId: string;
}

export interface VerifiedCaller {
  accessKeyId: string;
  tenantId: string;
  region: string;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTHORIZATION = new RegExp(
  String.raw`^AWS4-HMAC-SHA256\s+Credential=([^/\s,]+)/(\d{8})/([^/\s,]+)/([^/\s,]+)/aws4_request\s*,` +
    String.raw`\s*SignedHeaders=([a-z0-9;-]+)\s*,\s*Signature=([0-9a-f]{64})$`,
);

function parseAuthorization(header: string | undefined): ParsedAuthorization {
  if (!header) throw authError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTHORIZATION.exec(header.trim());
  if (!m) {
    throw authError(
      'IncompleteSignatureException',
      'Authorization header requires AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature',
    );
  }
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m;
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(';'), signature };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/** `x-amz-date` (YYYYMMDDTHHMMSSZ) as a Date, or null when malformed. */
function parseAmzDate(value: string | undefined): Date | null {
  const m = value ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value) : null;
  if (!m) return null;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The raw query split on `&` and the first `=`, each part decoded (no `+` → space); repeated keys as arrays. */
function parseQuery(rawQuery: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const at = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(at < 0 ? pair : pair.slice(0, at));
      value = at < 0 ? '' : decodeURIComponent(pair.slice(at + 1));
    } catch {
      throw authError('IncompleteSignatureException', 'the query string is not valid percent-encoding');
    }
    const seen = query[key];
    query[key] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return query;
}

/**
 * Verify `request`'s SigV4 signature; `lookup` gives an access key's secret and tenant. Throws UNAUTHORIZED
 * with `details.awsErrorType` naming AWS's error for the failure.
 */
export async function verifySigV4(
  request: ReceivedRequest,
  lookup: (accessKeyId: string) => Promise<AwsKeySecret | null>,
  nowMs = Date.now(),
): Promise<VerifiedCaller> {
  const auth = parseAuthorization(single(request.headers.authorization));
  if (auth.service !== SIGNING_SERVICE) {
    throw authError(
      'IncompleteSignatureException',
      `Credential should be scoped to correct service: '${SIGNING_SERVICE}'`,
    );
  }
  for (const required of ['host', 'x-amz-date']) {
    if (!auth.signedHeaders.includes(required))
      throw authError('IncompleteSignatureException', `SignedHeaders must include '${required}'`);
  }
  const amzDate = single(request.headers['x-amz-date']);
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate || amzDate?.slice(0, 8) !== auth.date) {
    throw authError('IncompleteSignatureException', "X-Amz-Date must be YYYYMMDDTHHMMSSZ, on the Credential's date");
  }
  if (Math.abs(nowMs - signingDate.getTime()) > MAX_SKEW_MS) {
    throw authError(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than or later than the server's time by more than 15 minutes`,
    );
  }
  const key = await lookup(auth.accessKeyId);
  if (!key) throw authError('UnrecognizedClientException', 'The security token included in the request is invalid.');

  const claimedHash = single(request.headers['x-amz-content-sha256']);
  if (claimedHash !== undefined && claimedHash !== createHash('sha256').update(request.body).digest('hex')) {
    // also refuses UNSIGNED-PAYLOAD and STREAMING-*: the body must be what was signed
    throw authError('InvalidSignatureException', 'The provided x-amz-content-sha256 header does not match the body');
  }

  const at = request.rawUrl.indexOf('?');
  const headers: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = single(request.headers[name]);
    if (value === undefined) throw authError('IncompleteSignatureException', `signed header '${name}' is missing`);
    headers[name] = value;
  }
  const signer = new SignatureV4({
    service: auth.service,
    region: auth.region,
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: key.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false, // botocore sends no x-amz-content-sha256: adding one would change what was signed
  });
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: headers.host,
      path: at < 0 ? request.rawUrl : request.rawUrl.slice(0, at),
      query: at < 0 ? {} : parseQuery(request.rawUrl.slice(at + 1)),
      headers,
      body: request.body,
    },
    { signingDate, signingRegion: auth.region, signingService: auth.service },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  if (expected.length !== 64 || !timingSafeEqual(Buffer.from(expected), Buffer.from(auth.signature))) {
    throw authError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. ' +
        'Check your AWS Secret Access Key and signing method.',
    );
  }
  return { accessKeyId: auth.accessKeyId, tenantId: key.tenantId, region: auth.region };
}
