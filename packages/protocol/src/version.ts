// The one version string of a Capsule release: the server's /healthz and OpenAPI document, and the
// guest agent's info, say this.
export const RELEASE_VERSION = '0.1.0';
