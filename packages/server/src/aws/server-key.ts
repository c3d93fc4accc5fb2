// The server key: 32 random bytes in <data-dir>/server-key (mode 0600), made on first start. It encrypts what
// the server must be able to read back but must never store in plain text, such as the secrets of AWS-style
// access keys (SigV4 verification re-signs with the secret, so a hash would not do). AES-256-GCM, a fresh
// 12-byte nonce per value, the value's owner (e.g. its access key id) bound in as associated data, so one
// row's ciphertext cannot be swapped onto another. With CAPSULE_CLUSTER_KEY, values are sealed under a key derived
// from it instead, so every server of the cluster opens what any of them sealed (`c1.`); those sealed before under
// the file's key (`v1.`) still open on the server that sealed them.
import { secretFileText } from '../secret-file.js';
import path from 'node:path';
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { CapsuleError, ErrorCode } from '@capsule/protocol';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Ciphertexts say their format, so a later key rotation can tell old from new: the file's key, the cluster's. */
const FILE_FORMAT = 'v1';
const CLUSTER_FORMAT = 'c1';

export class ServerKey {
  private constructor(
    private readonly fileKey: Buffer,
    private readonly clusterKey: Buffer | null,
  ) {}

  /** Read <dataDir>/server-key, making it (0600, exclusively) on first start; `clusterKey`: sealed under it. */
  static load(dataDir: string, clusterKey: string | null = null): ServerKey {
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
    const derived = clusterKey ? createHmac('sha256', clusterKey).update('capsule server key').digest() : null;
    return new ServerKey(key, derived);
  }

  /** `v1.<nonce>.<ciphertext+tag>` (base64url; `c1.` under the cluster's key), bound to `owner`. */
  seal(plaintext: string, owner: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.clusterKey ?? this.fileKey, nonce).setAAD(Buffer.from(owner));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    const format = this.clusterKey ? CLUSTER_FORMAT : FILE_FORMAT;
    return [format, nonce.toString('base64url'), sealed.toString('base64url')].join('.');
  }

  /** The plaintext of `sealed`, or an error when it was not sealed by this key for `owner`. */
  open(sealed: string, owner: string): string {
    const [format, nonceText, bodyText] = sealed.split('.');
    const nonce = Buffer.from(nonceText ?? '', 'base64url');
    const body = Buffer.from(bodyText ?? '', 'base64url');
    const key = format === FILE_FORMAT ? this.fileKey : format === CLUSTER_FORMAT ? this.clusterKey : null;
    if (!key && format === CLUSTER_FORMAT)
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        `the secret of ${owner} was sealed under a cluster's key: this server needs CAPSULE_CLUSTER_KEY`,
      );
    if (!key || nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) {
      throw new CapsuleError(ErrorCode.INTERNAL, `a sealed secret of ${owner} is malformed`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(owner));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new CapsuleError(
        ErrorCode.INTERNAL,
        format === CLUSTER_FORMAT
          ? `the sealed secret of ${owner} does not open with this cluster's key (was CAPSULE_CLUSTER_KEY changed?)`
          : `the sealed secret of ${owner} does not open with this server key (was server-key replaced?)`,
      );
    }
  }
}
