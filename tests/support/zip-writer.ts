// Tests build zips with the CLI's writer (any name, mode or declared size an attacker could write).
export { zipOf, type ZipSpec } from '../../packages/cli/src/zip-writer.js';
