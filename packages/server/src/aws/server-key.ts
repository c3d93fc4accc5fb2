// The server key: 32 random bytes in <data-dir>/server-key (mode 0600), made on first start. It encrypts what
// the server must be able to read back but must never store in plain text, such as the secrets of AWS-style
// access keys (SigV4 verification re-signs with the secret, so a hash would not do). AES-256-GCM, a fresh
// 12-byte nonce per value, the value's owner (e.g. its access key id) bound in as associated data, so one
// row's ciphertext cannot be swapped onto another.
import { secretFileText } from '../secret-file.js';
import path from 'node:path';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Ciphertexts say their format, so a later key rotation can tell old from new. */
const FORMAT = 'v1';

export class ServerKey {
  private constructor(private readonly key: Buffer) {}

  /** Read <dataDir>/server-key, making it (0600, exclusively) on first start. */
  static load(dataDir: string): ServerKey {
    const file = path.join(dataDir, 'server-key');
    const key = Buffer.from(
      secretFileText(file, () => randomBytes(KEY_BYTES).toString('base64')),
      'base64',
    );
    if (key.length !== KEY_BYTES) {
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        `${file} does not hold a ${KEY_BYTES}-byte base64 key: restore it from a backup (the secrets it ` +
          'encrypts cannot be read without it)',
      );
    }
    return new ServerKey(key);
  }

  /** `v1.<nonce>.<ciphertext+tag>` (base64url), bound to `owner`. */
  seal(plaintext: string, owner: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce).setAAD(Buffer.from(owner));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return [FORMAT, nonce.toString('base64url'), sealed.toString('base64url')].join('.');
  }

  /** The plaintext of `sealed`, or an error when it was not sealed by this key for `owner`. */
  open(sealed: string, owner: string): string {
    const [format, nonceText, bodyText] = sealed.split('.');
    const nonce = Buffer.from(nonceText ?? '', 'base64url');
    const body = Buffer.from(bodyText ?? '', 'base64url');
    if (format !== FORMAT || nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) {
      throw new CapsuleError(ErrorCode.INTERNAL, `a sealed secret of ${owner} is malformed`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce).setAAD(Buffer.from(owner));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        `the sealed secret of ${owner} does not open with this server key (was server-key replaced?)`,
      );
    }
  }
}
