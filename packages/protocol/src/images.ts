// MicroVM Images: versions built from a zip (Dockerfile subset or capsule.json) on a runtime.
import { z } from 'zod';

/** AWS's image name pattern: letters (either case), digits, `-` and `_`, at most 64. */
export const IMAGE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
export const IMAGE_NAME_RULE = 'must be 1-64 letters, digits, dashes or underscores';
export const ImageBuildState = z.enum(['PENDING', 'IN_PROGRESS', 'SUCCESSFUL', 'FAILED']);
export type ImageBuildState = z.infer<typeof ImageBuildState>;

/** JSON form of POST /v1/images (the other form is the zip itself as the body, `?name=`). */
export const CreateImageRequest = z
  .object({
    name: z.string().regex(IMAGE_NAME, IMAGE_NAME_RULE),
    /** Where the zip is: `s3://bucket/key` on the configured S3-compatible storage. */
    codeUri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+$/, 'must be s3://bucket/key'),
  })
  .strict();
export type CreateImageRequest = z.infer<typeof CreateImageRequest>;

export const ImageVersion = z
  .object({
    name: z.string(),
    version: z.number(),
    state: ImageBuildState,
    runtime: z.string(),
    /** Where the zip came from: "upload" or its s3:// URI. */
    source: z.string(),
    start: z.array(z.string()).nullable(),
    port: z.number().nullable(),
    failureReason: z.string().nullable(),
    /** The step that failed, e.g. "line 4: RUN pip install …". */
    failedStep: z.string().nullable(),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .meta({ id: 'ImageVersion' });
export type ImageVersion = z.infer<typeof ImageVersion>;

export const Image = z.object({
  name: z.string(),
  /** The version a launch without `imageVersion` gets: the newest SUCCESSFUL one not set INACTIVE. */
  latestVersion: z.number().nullable(),
  versions: z.array(ImageVersion),
});
export type Image = z.infer<typeof Image>;

export const ImageList = z.object({ images: z.array(Image) });
export type ImageList = z.infer<typeof ImageList>;
