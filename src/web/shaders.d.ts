/** The browser build's generated module (src/cli/web-build.ts): every shaders/*.wgsl, registered on import. */
declare module 'graft:shaders' {
  export const SHADERS: Record<string, string>;
}
